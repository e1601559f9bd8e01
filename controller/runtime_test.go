package controller

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/orchestrator"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/service"
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

	mu       sync.Mutex
	table    *runtime.Table
	replies  map[uint64]string // id -> error text ("" for success)
	payloads map[uint64][]byte // id -> reply payload
	done     chan uint64
}

// runtimeOpts configure startRuntime.
type runtimeOpts struct {
	// durable gives every agent a data directory: stateful instances keep
	// durable stores replicated to their backups.
	durable bool
	// wrap, if set, stands between an agent and its link (to alter its
	// heartbeats); it must pass everything on.
	wrap func(node string, link *AgentLink) runtime.Controller
}

func startRuntime(t *testing.T, endpoints []string, opts ...runtimeOpts) *runtimeCluster {
	t.Helper()
	var o runtimeOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	topo := mustTopo(t)
	rc := &runtimeCluster{t: t, topo: topo, net: transport.NewNetwork(nil, rand.New(rand.NewPCG(1, 1))),
		replies: map[uint64]string{}, payloads: map[uint64][]byte{}, done: make(chan uint64, 1<<16)}
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
		var ctl runtime.Controller = la.link
		if o.wrap != nil {
			ctl = o.wrap(name, la.link)
		}
		cfg := runtime.Config{Node: n, Topology: topo, CoreKind: kind, Cores: 2, Registry: services.Registry(),
			Conn: conn, Controller: ctl, Logger: slog.New(slog.DiscardHandler)}
		if o.durable {
			cfg.DataDir = t.TempDir()
			cfg.Durable.NoSync = true // the test is about protocol, not disks
		}
		la.agent, err = runtime.New(cfg)
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
	rc.client, err = runtime.NewClient(cconn, runtime.ClientConfig{Topology: topo, OnReply: func(id uint64, payload []byte, err error, _ int64) {
		rc.mu.Lock()
		rc.replies[id] = ""
		rc.payloads[id] = append([]byte(nil), payload...)
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

// countOp sends one count event (observe or query) for item to the shard
// that owns it, as request id.
func (rc *runtimeCluster) countOp(appID uint32, op service.Op, item, id uint64) error {
	rc.mu.Lock()
	a := rc.table.Apps[0].App
	rc.mu.Unlock()
	src := a.Sources()[0]
	req, err := service.AppendEvent(nil, &service.Event{Op: op, Key: item, Item: item}, 0)
	if err != nil {
		return err
	}
	return rc.client.Send(appID, uint32(src.Primary(app.ShardOf(item, src.Shards)).Index), item, req, id)
}

// wait waits for the replies of ids and returns, per id, the count the
// reply carries (-1 for an error reply).
func (rc *runtimeCluster) wait(ids []uint64, d time.Duration) map[uint64]int64 {
	rc.t.Helper()
	want := map[uint64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	deadline := time.After(d)
	for len(want) > 0 {
		rc.mu.Lock()
		for id := range want {
			if _, ok := rc.replies[id]; ok {
				delete(want, id)
			}
		}
		rc.mu.Unlock()
		if len(want) == 0 {
			break
		}
		select {
		case <-rc.done:
		case <-deadline:
			rc.t.Fatalf("%d replies missing after %v", len(want), d)
		}
	}
	out := map[uint64]int64{}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, id := range ids {
		if rc.replies[id] != "" || len(rc.payloads[id]) < 8 {
			out[id] = -1
			continue
		}
		out[id] = int64(binary.LittleEndian.Uint64(rc.payloads[id]))
	}
	return out
}

// TestRuntimeDurableFailover observes 400 distinct items through real
// agents whose count instances keep durable stores replicated to their
// backups, stops the server that holds a primary, and checks that after
// failover every acknowledged observation is still counted: the promoted
// backup serves the shard with the primary's state.
func TestRuntimeDurableFailover(t *testing.T) {
	rs := startReplicas(t, clusterOpts{n: 1, inmem: true, tweak: func(_ int, c *Config) { c.LeaderGrace = 200 * time.Millisecond }})
	rc := startRuntime(t, rs.endpoints(), runtimeOpts{durable: true})
	dep, err := rs.client(adminTok).Deploy(context.Background(), deployReq(countSpec))
	if err != nil {
		t.Fatal(err)
	}
	rc.waitEpoch(dep.Epoch, "", 3*time.Second)
	const items = 400
	var ids []uint64
	for i := range items {
		id := uint64(1 + i)
		if err := rc.countOp(dep.AppID, service.OpObserve, uint64(1000+i), id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	acked := 0
	for _, n := range rc.wait(ids, 10*time.Second) {
		if n == 1 {
			acked++
		}
	}
	if acked != items {
		t.Fatalf("%d of %d observations acknowledged with count 1 before any failure", acked, items)
	}
	victim := serverOf(dep.Instances[0].Node)
	time.Sleep(300 * time.Millisecond) // past the leader's grace
	stopped := time.Now()
	rc.stopServer(victim)
	var epoch uint64
	for epoch == 0 {
		rs.servers[0].Read(func(s *State) {
			if s.Nodes[victim+"/host"].Failed {
				epoch = s.Epoch
			}
		})
		if time.Since(stopped) > 5*time.Second {
			t.Fatalf("server %s not failed over", victim)
		}
		time.Sleep(5 * time.Millisecond)
	}
	detected := time.Since(stopped)
	rc.waitEpoch(epoch, victim, 3*time.Second)
	routed := time.Since(stopped)
	ids = ids[:0]
	for i := range items {
		id := uint64(10000 + i)
		if err := rc.countOp(dep.AppID, service.OpQuery, uint64(1000+i), id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	lost := 0
	for id, n := range rc.wait(ids, 10*time.Second) {
		if n != 1 {
			if lost == 0 {
				t.Errorf("item %d counts %d after failover, want 1", 1000+id-10000, n)
			}
			lost++
		}
	}
	t.Logf("server %s stopped: failed over after %v, routes everywhere after %v; %d of %d acknowledged observations lost", victim, detected, routed, lost, items)
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged observations lost in failover", lost, items)
	}
}

// inflater passes an agent's heartbeats on with one instance's execution
// time tripled from the after-th heartbeat on: to the orchestrator, that
// instance is overloaded on its SmartNIC.
type inflater struct {
	link  *AgentLink
	inst  string
	after atomic.Int64
	n     atomic.Int64
}

func (f *inflater) Heartbeat(hb *runtime.Heartbeat) {
	if f.n.Add(1) > f.after.Load() {
		for i := range hb.Instances {
			if hb.Instances[i].Instance == f.inst {
				hb.Instances[i].ExecEMA = 3*hb.Instances[i].ExecEMA + time.Microsecond
			}
		}
	}
	f.link.Heartbeat(hb)
}

func (f *inflater) MigrationUpdate(n topology.NodeID, st runtime.MigrationStatus) {
	f.link.MigrationUpdate(n, st)
}

// TestRuntimeMigration makes a SmartNIC's count.0 look overloaded in its
// agent's heartbeats while observations stream in, and checks the whole
// migration path: the orchestrator orders a move off that SmartNIC to a
// host, the routing table lists it, the agents ship the durable state,
// the source reports ready through AgentLink, the controller commits and
// routes the instance to the host, and every acknowledged observation is
// still counted.
func TestRuntimeMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("streams load for a few seconds; skipped with -short")
	}
	rs := startReplicas(t, clusterOpts{n: 1, inmem: true, tweak: func(_ int, c *Config) {
		c.LeaderGrace = 200 * time.Millisecond
		// A shorter warm-up and smaller samples than in production, so
		// that a modest stream on a shared test machine trips it.
		c.Orchestrator.WarmUp, c.Orchestrator.MinExecCount = 5, 4
	}})
	// Plan first to learn where count.0 goes, then start the agents with
	// that node's heartbeats inflated.
	infl := map[string]*inflater{}
	var mu sync.Mutex
	rc := startRuntime(t, rs.endpoints(), runtimeOpts{durable: true, wrap: func(node string, link *AgentLink) runtime.Controller {
		f := &inflater{link: link, inst: "count.0"}
		f.after.Store(1 << 62)
		mu.Lock()
		infl[node] = f
		mu.Unlock()
		return f
	}})
	dep, err := rs.client(adminTok).Deploy(context.Background(), deployReq(countSpec))
	if err != nil {
		t.Fatal(err)
	}
	src := dep.Instances[0].Node
	if dep.Instances[0].Instance != "count.0" || dep.Instances[0].Kind != RoleSmartNIC {
		t.Skipf("count.0 placed on %s (%s); the test needs it on a SmartNIC", src, dep.Instances[0].Kind)
	}
	rc.waitEpoch(dep.Epoch, "", 3*time.Second)

	// Stream observations of distinct items into shard 0.
	stop := make(chan struct{})
	sent := make(chan []uint64, 1)
	streamStart := time.Now()
	go func() {
		var ids []uint64
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; {
			select {
			case <-stop:
				sent <- ids
				return
			case <-tk.C:
			}
			for range 5 {
				item := uint64(2 * (5000 + i)) // even: shard 0
				id := uint64(1 + i)
				if rc.countOp(dep.AppID, service.OpObserve, item, id) == nil {
					ids = append(ids, id)
				}
				i++
			}
		}
	}()
	// Let the orchestrator learn count.0's normal execution time (its
	// warm-up is 5 heartbeats here), then make it look three times slower.
	time.Sleep(800 * time.Millisecond)
	mu.Lock()
	infl[src].n.Store(0)
	infl[src].after.Store(0)
	mu.Unlock()

	var done *Event
	deadline := time.Now().Add(15 * time.Second)
	for done == nil {
		rs.servers[0].Read(func(s *State) {
			for i := range s.Events {
				if e := s.Events[i]; e.Kind == "migrated" || e.Kind == "migration-failed" {
					done = &e
				}
			}
		})
		if time.Now().After(deadline) {
			s0 := rs.servers[0]
			s0.lmu.Lock()
			if l := s0.lead; l != nil {
				t.Logf("orchestrator stats %+v", l.o.Stats())
				for i := range l.o.NumInstances() {
					info, _ := l.o.Instance(orchestrator.InstanceID(i))
					t.Logf("instance %+v", info)
				}
			}
			s0.lmu.Unlock()
			var evs []string
			rs.servers[0].Read(func(s *State) {
				for _, e := range s.Events {
					evs = append(evs, e.Kind+": "+e.Message)
				}
			})
			t.Fatalf("no migration finished within 15 s; events:\n%s", strings.Join(evs, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	ids := <-sent
	if done.Kind != "migrated" {
		t.Fatalf("migration failed: %s", done.Message)
	}
	// The orchestrator moves the SmartNIC's instance with the highest CPU
	// use, which need not be count.0: an instance whose samples are too
	// small to measure is credited its modelled CPU at the planned rate.
	var node string
	var epoch uint64
	rs.servers[0].Read(func(s *State) {
		for _, in := range s.Apps["count2"].Instances {
			if in.Instance == done.Instance {
				node = in.Node
			}
		}
		epoch = s.Epoch
	})
	t.Logf("%s", done.Message)
	if done.From != src || node != done.To || !strings.HasSuffix(node, "/host") {
		t.Fatalf("%s on %s after the migration %s -> %s (the overloaded SmartNIC is %s)", done.Instance, node, done.From, done.To, src)
	}
	rc.waitEpoch(epoch, "", 3*time.Second)

	// Every observation acknowledged before, during or after the move is
	// counted at the destination.
	counts := rc.wait(ids, 10*time.Second)
	var acked []uint64
	for _, id := range ids {
		if counts[id] == 1 {
			acked = append(acked, id)
		}
	}
	var qids []uint64
	for _, id := range acked {
		qid := 1_000_000 + id
		if err := rc.countOp(dep.AppID, service.OpQuery, uint64(2*(5000+id-1)), qid); err != nil {
			t.Fatal(err)
		}
		qids = append(qids, qid)
	}
	lost := 0
	for _, n := range rc.wait(qids, 10*time.Second) {
		if n != 1 {
			lost++
		}
	}
	t.Logf("%d observations sent (%.0f/s), %d acknowledged, %d of those lost", len(ids), float64(len(ids))/time.Since(streamStart).Seconds(), len(acked), lost)
	if len(acked) < len(ids)/2 {
		t.Errorf("only %d of %d observations acknowledged", len(acked), len(ids))
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged observations lost in the migration", lost)
	}
}
