package controller

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// countSpec is the count service, sharded, with a backup per shard.
const countSpec = `name: count2
class: RTA
nodes:
  count: {service: count, shards: 2, backups: 1}
`

// liveAgent is a runtime agent reporting to the controller through an
// AgentLink and applying the routing tables it delivers.
type liveAgent struct {
	name  string
	agent *runtime.Agent
	link  *AgentLink
	mu    sync.Mutex
	errs  []error
}

// runtimeCluster is the 3xType1-SmartNIC cluster as real runtime agents
// on an in-memory network, managed by the controller replicas rs.
type runtimeCluster struct {
	t      *testing.T
	topo   *topology.Topology
	net    *transport.Network
	agents []*liveAgent
	client *runtime.Client

	mu      sync.Mutex
	table   *runtime.Table
	replies map[uint64]string // id -> error text ("" for success)
	done    chan uint64
}

func startRuntime(t *testing.T, endpoints []string) *runtimeCluster {
	t.Helper()
	topo := mustTopo(t)
	rc := &runtimeCluster{t: t, topo: topo, net: transport.NewNetwork(nil, rand.New(rand.NewPCG(1, 1))),
		replies: map[uint64]string{}, done: make(chan uint64, 1<<12)}
	for n := range topo.Nodes() {
		conn, err := rc.net.Listen(netip.MustParseAddrPort(fmt.Sprintf("10.0.0.%d:7000", n+1)))
		if err != nil {
			t.Fatal(err)
		}
		name := topo.Name(n)
		la := &liveAgent{name: name}
		la.link = NewAgentLink(AgentConfig{Controllers: endpoints, JoinToken: joinTok,
			Register: RegisterRequest{Node: name, Role: roleOf(name), Addr: conn.LocalAddr().String()},
			OnRoutes: func(r *Routes) { rc.apply(la, r) }})
		kind := hwmodel.XeonE5v3
		if topo.Node(n).Kind == topology.SmartNIC {
			kind = hwmodel.CnMIPS64
		}
		la.agent, err = runtime.New(runtime.Config{Node: n, Topology: topo, CoreKind: kind, Cores: 2, Registry: services.Registry(),
			Conn: conn, Controller: la.link, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		rc.agents = append(rc.agents, la)
	}
	for s := range topo.Servers() {
		srv := topo.Server(s)
		for i := range srv.SmartNICs {
			nic := srv.Host + 1 + topology.NodeID(i)
			np, hp, err := transport.NewHostLink(transport.HostLinkConfig{Capacity: 1024})
			if err != nil {
				t.Fatal(err)
			}
			rc.agents[nic].agent.AttachHostLink(srv.Host, np)
			rc.agents[srv.Host].agent.AttachHostLink(nic, hp)
		}
	}
	cconn, err := rc.net.Listen(netip.MustParseAddrPort("10.0.1.1:9000"))
	if err != nil {
		t.Fatal(err)
	}
	rc.client, err = runtime.NewClient(cconn, runtime.ClientConfig{Topology: topo, OnReply: func(id uint64, _ []byte, err error, _ int64) {
		rc.mu.Lock()
		rc.replies[id] = ""
		if err != nil {
			rc.replies[id] = err.Error()
		}
		rc.mu.Unlock()
		rc.done <- id
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, la := range rc.agents {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := la.link.Register(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		la.agent.Start()
		la.link.Start()
	}
	t.Cleanup(rc.close)
	return rc
}

// apply is an agent's OnRoutes: the wire table becomes the runtime's.
func (rc *runtimeCluster) apply(la *liveAgent, r *Routes) {
	tab, _, err := r.Table(rc.topo, services.Registry())
	if err == nil {
		err = la.agent.Apply(tab)
	}
	if err != nil {
		la.mu.Lock()
		la.errs = append(la.errs, err)
		la.mu.Unlock()
		return
	}
	rc.mu.Lock()
	if rc.table == nil || tab.Epoch > rc.table.Epoch {
		rc.table = tab
		rc.client.SetTable(tab)
	}
	rc.mu.Unlock()
}

// stopServer stops both agents of server srv: its power failed.
func (rc *runtimeCluster) stopServer(srv string) {
	for _, la := range rc.agents {
		if serverOf(la.name) == srv {
			la.link.Close()
			la.agent.Close()
		}
	}
}

func (rc *runtimeCluster) close() {
	rc.client.Close()
	for _, la := range rc.agents {
		la.link.Close()
		la.agent.Close()
	}
	rc.net.Close()
}

// waitEpoch waits until every running agent runs epoch e or later.
func (rc *runtimeCluster) waitEpoch(e uint64, skip string, d time.Duration) {
	rc.t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok := true
		for _, la := range rc.agents {
			if serverOf(la.name) != skip && la.agent.Epoch() < e {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, la := range rc.agents {
				rc.t.Logf("%s: epoch %d, errors %v", la.name, la.agent.Epoch(), la.errs)
			}
			rc.t.Fatalf("agents did not reach epoch %d within %v", e, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// roundTrip sends n requests into the application and waits for their
// replies; it returns how many failed.
func (rc *runtimeCluster) roundTrip(appID uint32, firstID uint64, n int) int {
	rc.t.Helper()
	rc.mu.Lock()
	a := rc.table.Apps[0].App
	rc.mu.Unlock()
	src := a.Sources()[0]
	d, _ := services.Registry().Lookup(src.Service)
	gen := d.NewGenerator(int64(firstID), 64)
	for i := range n {
		req, key := gen.Next(nil)
		inst := src.Primary(app.ShardOf(key, src.Shards))
		if err := rc.client.Send(appID, uint32(inst.Index), key, req, firstID+uint64(i)); err != nil {
			rc.t.Fatalf("send %d: %v", i, err)
		}
	}
	deadline := time.After(5 * time.Second)
	for range n {
		select {
		case <-rc.done:
		case <-deadline:
			rc.t.Fatalf("replies missing 5 s after sending %d requests", n)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	failed := 0
	for i := range n {
		if e := rc.replies[firstID+uint64(i)]; e != "" {
			if failed == 0 {
				rc.t.Logf("first failure: request %d: %s", firstID+uint64(i), e)
			}
			failed++
		}
	}
	return failed
}

// TestRuntimeAgents runs the controller with real runtime agents that
// register through AgentLink, heartbeat every 50 ms and apply the routing
// tables the controller publishes: a deploy reaches every agent and
// requests complete; when a server's agents stop, the controller fails
// the server over, the surviving agents apply the new routes, and
// requests complete again.
func TestRuntimeAgents(t *testing.T) {
	rs := startReplicas(t, clusterOpts{n: 1, inmem: true, tweak: func(_ int, c *Config) { c.LeaderGrace = 200 * time.Millisecond }})
	rc := startRuntime(t, rs.endpoints())
	c := rs.client(adminTok)
	dep, err := c.Deploy(context.Background(), deployReq(countSpec))
	if err != nil {
		t.Fatal(err)
	}
	rc.waitEpoch(dep.Epoch, "", 3*time.Second)
	if failed := rc.roundTrip(dep.AppID, 1, 200); failed > 0 {
		t.Fatalf("%d of 200 requests failed before any failure", failed)
	}
	victim := serverOf(dep.Instances[0].Node)
	time.Sleep(300 * time.Millisecond) // past the leader's grace
	stopped := time.Now()
	rc.stopServer(victim)
	var epoch uint64
	for {
		rs.servers[0].Read(func(s *State) {
			if s.Nodes[victim+"/host"].Failed {
				epoch = s.Epoch
			}
		})
		if epoch > 0 {
			break
		}
		if time.Since(stopped) > 5*time.Second {
			t.Fatalf("server %s not failed over", victim)
		}
		time.Sleep(5 * time.Millisecond)
	}
	detected := time.Since(stopped)
	rc.waitEpoch(epoch, victim, 3*time.Second)
	resumed := time.Since(stopped)
	t.Logf("server %s stopped: failed over after %v, every surviving agent on the new routes after %v", victim, detected, resumed)
	if failed := rc.roundTrip(dep.AppID, 1000, 200); failed > 0 {
		t.Fatalf("%d of 200 requests failed after failover", failed)
	}
	for _, la := range rc.agents {
		if serverOf(la.name) != victim && len(la.errs) > 0 {
			t.Errorf("%s: applying routes: %v", la.name, la.errs)
		}
	}
}
