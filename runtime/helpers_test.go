package runtime

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/collections/durable"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// testCluster is a small cluster of agents on an in-memory network.
type testCluster struct {
	t      testing.TB
	topo   *topology.Topology
	net    *transport.Network
	agents []*Agent
	table  *Table
	client *Client
	emu    *Emulation

	mu      sync.Mutex
	replies map[uint64]int
	errs    map[uint64]string
	waiters map[uint64]chan reply
	done    chan uint64
}

type reply struct {
	payload []byte
	err     error
}

type clusterOpts struct {
	cluster string
	link    transport.LinkConfig
	seed    uint64
	emu     *Emulation
	timeout time.Duration
	cores   int
	epCfg   transport.EndpointConfig
	ctrl    Controller
	// dataDir, if set, gives every agent a state directory under it
	// (durable stores, fsync off unless durableOpts says otherwise).
	dataDir     string
	durableOpts *durable.Options
	migTimeout  time.Duration
}

func newTestCluster(t testing.TB, o clusterOpts) *testCluster {
	t.Helper()
	if o.cluster == "" {
		o.cluster = "2xType1-SmartNIC"
	}
	cl, err := hwmodel.ClusterByName(o.cluster)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := hwmodel.Topology(cl)
	if err != nil {
		t.Fatal(err)
	}
	nw := transport.NewNetwork(nil, rand.New(rand.NewPCG(o.seed, 7)))
	nw.SetDefaultLink(o.link)
	tc := &testCluster{t: t, topo: topo, net: nw, emu: o.emu, replies: map[uint64]int{}, errs: map[uint64]string{}, waiters: map[uint64]chan reply{}, done: make(chan uint64, 1<<16)}
	addrs := make([]netip.AddrPort, topo.NumNodes())
	for n := range topo.Nodes() {
		conn, err := nw.Listen(netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:7000", n+1)))
		if err != nil {
			t.Fatal(err)
		}
		kind := hwmodel.XeonE5v3
		if topo.Node(n).Kind == topology.SmartNIC {
			kind = hwmodel.CnMIPS64
		}
		cfg := Config{Node: n, Topology: topo, CoreKind: kind, Cores: o.cores, Registry: services.Registry(), Conn: conn,
			Endpoint: o.epCfg, Emulation: o.emu, RequestTimeout: o.timeout, Controller: o.ctrl, MigrationTimeout: o.migTimeout}
		if os.Getenv("E3_TEST_LOG") != "" {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		if o.dataDir != "" {
			cfg.DataDir = filepath.Join(o.dataDir, safeName(topo.Name(n)))
			cfg.Durable = durable.Options{NoSync: true}
			if o.durableOpts != nil {
				cfg.Durable = *o.durableOpts
			}
		}
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		addrs[n] = a.Addr()
		tc.agents = append(tc.agents, a)
	}
	for s := range topo.Servers() {
		srv := topo.Server(s)
		for i := range srv.SmartNICs {
			nic := srv.Host + 1 + topology.NodeID(i)
			np, hp, err := transport.NewHostLink(transport.HostLinkConfig{Capacity: 1024})
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.agents[nic].AttachHostLink(srv.Host, np); err != nil {
				t.Fatal(err)
			}
			if err := tc.agents[srv.Host].AttachHostLink(nic, hp); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, a := range tc.agents {
		a.Start()
	}
	tc.table = &Table{Epoch: 1, Addrs: addrs}
	cconn, err := nw.Listen(netip.MustParseAddrPort("10.0.1.1:9000"))
	if err != nil {
		t.Fatal(err)
	}
	ccfg := ClientConfig{Topology: topo, Endpoint: o.epCfg, OnReply: tc.onReply}
	if o.emu != nil {
		ccfg.ClientLatency = o.emu.ClientLatency
		ccfg.Now = func() int64 { return int64(float64(time.Since(o.emu.Origin)) / o.emu.Dilation) }
	}
	tc.client, err = NewClient(cconn, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.close)
	return tc
}

func (tc *testCluster) onReply(id uint64, payload []byte, err error, at int64) {
	tc.mu.Lock()
	tc.replies[id]++
	if err != nil {
		tc.errs[id] = err.Error()
	}
	w := tc.waiters[id]
	delete(tc.waiters, id)
	tc.mu.Unlock()
	if w != nil {
		w <- reply{payload: append([]byte(nil), payload...), err: err}
		return
	}
	tc.done <- id
}

func (tc *testCluster) close() {
	tc.client.Close()
	for _, a := range tc.agents {
		a.Close()
	}
	tc.net.Close()
}

// deploy places a on the nodes given by place (instance index -> node
// name), applies the table everywhere and returns the app id.
func (tc *testCluster) deploy(a *app.App, place func(i *app.Instance) string) uint32 {
	tc.t.Helper()
	id := uint32(len(tc.table.Apps) + 1)
	nodes := make([]topology.NodeID, len(a.Instances()))
	for _, in := range a.Instances() {
		n, err := tc.topo.Lookup(place(in))
		if err != nil {
			tc.t.Fatal(err)
		}
		nodes[in.Index] = n
	}
	t := &Table{Epoch: tc.table.Epoch + 1, Addrs: tc.table.Addrs, Apps: append(append([]AppRoute(nil), tc.table.Apps...), AppRoute{ID: id, App: a, Nodes: nodes, Seed: 1})}
	for _, ag := range tc.agents {
		if err := ag.Apply(t); err != nil {
			tc.t.Fatal(err)
		}
	}
	tc.table = t
	tc.client.SetTable(t)
	return id
}

func loadApp(t testing.TB, spec string) *app.App {
	t.Helper()
	a, err := app.Load("test.yaml", []byte(spec), services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitReplies waits until n replies have arrived.
func (tc *testCluster) waitReplies(n int, timeout time.Duration) {
	tc.t.Helper()
	deadline := time.After(timeout)
	for i := 0; i < n; i++ {
		select {
		case <-tc.done:
		case <-deadline:
			tc.mu.Lock()
			got := len(tc.replies)
			tc.mu.Unlock()
			tc.t.Fatalf("only %d of %d replies after %v", got, n, timeout)
		}
	}
}
