package runtime

import (
	"net/netip"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// TestNoAllocsBare: a request on the client socket of an agent in real
// mode, run to completion on the reading goroutine and answered, allocates
// nothing once the pools are warm (the whole round trip is counted: the
// client's write and read, the agent's loop, the handler).
func TestNoAllocsBare(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	ag, client, agentAddr := singleAgent(t)
	_ = ag
	out := transport.NewMessages(1, 256)
	in := transport.NewMessages(1, 2048)
	h := transport.Header{Kind: transport.KindRequest, App: 1, Instance: 0, KeyHash: 7, PayloadLen: 16}
	roundTrip := func() {
		h.Request++
		b, _ := h.Append(out[0].Buf[:0])
		out[0].N = len(b) + 16
		out[0].Addr = agentAddr
		if _, err := client.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		if _, err := client.ReadBatch(in); err != nil {
			t.Fatal(err)
		}
	}
	for range 200 {
		roundTrip()
	}
	var rh transport.Header
	if err := rh.Decode(in[0].Payload()); err != nil || rh.Kind != transport.KindReply || rh.Request != h.Request {
		t.Fatalf("reply %+v, %v; want a reply to request %d", rh, err, h.Request)
	}
	if n := testing.AllocsPerRun(500, roundTrip); n > 0 {
		t.Errorf("%.2f allocations per request, want 0", n)
	}
}

// singleAgent starts one real-mode agent on a 1xBeefy cluster with an echo
// application and a client socket, all on an in-memory network.
func singleAgent(t testing.TB) (*Agent, *transport.MemConn, netip.AddrPort) {
	t.Helper()
	cl, _ := hwmodel.ClusterByName("1xBeefy")
	topo, err := hwmodel.Topology(cl)
	if err != nil {
		t.Fatal(err)
	}
	nw := transport.NewNetwork(nil, nil)
	conn, _ := nw.Listen(netip.MustParseAddrPort("10.0.0.1:7000"))
	cconn, _ := nw.Listen(netip.MustParseAddrPort("10.0.0.1:7001"))
	ag, err := New(Config{Node: 0, Topology: topo, Cores: 1, Registry: services.Registry(), Conn: conn, ClientConn: cconn})
	if err != nil {
		t.Fatal(err)
	}
	ag.Start()
	a := loadApp(t, "name: one\nclass: RTA\nnodes:\n  e: {service: echo}\n")
	tbl := &Table{Epoch: 1, Addrs: []netip.AddrPort{ag.Addr()}, Apps: []AppRoute{{ID: 1, App: a, Nodes: []topology.NodeID{0}}}}
	if err := ag.Apply(tbl); err != nil {
		t.Fatal(err)
	}
	client, _ := nw.Listen(netip.MustParseAddrPort("10.0.1.1:9000"))
	t.Cleanup(func() {
		ag.Close()
		client.Close()
		nw.Close()
	})
	return ag, client, cconn.LocalAddr()
}

// TestNoAllocsChannels: requests through a two-stage DAG whose stages sit
// on two agents joined by a lossless channel, with the client on another
// channel, allocate nothing per request in steady state.
func TestNoAllocsChannels(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	tc := newTestCluster(t, clusterOpts{})
	a := loadApp(t, `
name: two
class: RTA
nodes:
  a: {service: echo}
  b: {service: echo}
edges:
  - {from: a, to: b}
`)
	id := tc.deploy(a, func(i *app.Instance) string {
		if i.Node.Name == "a" {
			return "r0/s0/nic0"
		}
		return "r0/s1/nic0"
	})
	payload := make([]byte, 64)
	var n uint64
	timeout := time.NewTimer(time.Hour)
	roundTrip := func() {
		n++
		if err := tc.client.Send(id, 0, n, payload, n); err != nil {
			t.Fatal(err)
		}
		timeout.Reset(5 * time.Second)
		select {
		case <-tc.done:
		case <-timeout.C:
			t.Fatal("no reply")
		}
	}
	// Warm up: pools, channel rings, the reply map of the test.
	for range 2000 {
		roundTrip()
	}
	tc.mu.Lock()
	clear(tc.replies)
	tc.mu.Unlock()
	allocs := testing.AllocsPerRun(1000, roundTrip)
	// The test's reply map was cleared, not replaced: its buckets are
	// reused, so nothing at all may allocate.
	if allocs > 0 {
		t.Errorf("%.2f allocations per request through two agents, want 0", allocs)
	}
	t.Logf("%.3f allocations per request", allocs)
}
