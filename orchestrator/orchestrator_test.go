package orchestrator

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/hcm"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

func newCluster(t testing.TB, name string) *placement.Cluster {
	t.Helper()
	c, err := hwmodel.ClusterByName(name)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := hwmodel.Topology(c)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := placement.NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func deployApp(t testing.TB, o *Orchestrator, name string, rps float64) []InstanceID {
	t.Helper()
	a, err := app.Builtin(name, services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	p, err := placement.FromApp(a, o.Load(), rps)
	if err != nil {
		t.Fatal(err)
	}
	res, err := hcm.New(hcm.Options{}).Place(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := o.Deploy(p, res)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestConfigValidate(t *testing.T) {
	load := placement.NewLoad(newCluster(t, "3xType1-SmartNIC"))
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no load", Config{}, "Load is nil"},
		{"negative timeout", Config{Load: load, FailureTimeout: -1}, "FailureTimeout = -1ns"},
		{"timeout below period", Config{Load: load, FailureTimeout: time.Millisecond}, "FailureTimeout = 1ms, want at least HeartbeatPeriod (50ms)"},
		{"alpha above 1", Config{Load: load, EMAAlpha: 1.5}, "EMAAlpha = 1.5"},
		{"alpha NaN", Config{Load: load, EMAAlpha: math.NaN()}, "EMAAlpha = NaN"},
		{"port fraction", Config{Load: load, PortFraction: 2}, "PortFraction = 2"},
		{"threshold", Config{Load: load, OverloadThreshold: -0.2}, "OverloadThreshold = -0.2"},
		{"queue heartbeats", Config{Load: load, QueueHeartbeats: 300}, "QueueHeartbeats = 300, want 0..255"},
		{"queue threshold", Config{Load: load, QueueThreshold: -1}, "QueueThreshold = -1"},
		{"limits", Config{Load: load, Limits: placement.Limits{CPU: 1.5}}, "Limits.CPU = 1.5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, 0)
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want ErrBadConfig mentioning %q", err, tc.want)
			}
		})
	}
	o, err := New(Config{Load: load}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := o.Config()
	if c.HeartbeatPeriod != DefaultHeartbeatPeriod || c.FailureTimeout != DefaultFailureTimeout || c.OverloadThreshold != 0.2 ||
		c.EMAAlpha != DefaultEMAAlpha || c.QueueHeartbeats != 3 || c.Placer == nil || c.Rand == nil {
		t.Errorf("defaults not filled: %+v", c)
	}
}

func TestObserveErrors(t *testing.T) {
	o, err := New(Config{Load: placement.NewLoad(newCluster(t, "3xType1-SmartNIC"))}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Observe(0, &Heartbeat{Node: 6}); !errors.Is(err, ErrUnknownNode) || !strings.Contains(err.Error(), "node 6, the cluster has 0..5") {
		t.Errorf("Observe(node 6) = %v", err)
	}
	before := o.Stats()
	if err := o.ObservePayload(0, []byte{1, 2, 3}); !errors.Is(err, ErrBadHeartbeat) {
		t.Errorf("ObservePayload(3 bytes) = %v", err)
	}
	if o.Stats() != before {
		t.Error("a malformed payload changed the counters")
	}
	// Samples for instances it does not know, or not on the node, are
	// counted and ignored.
	ids := deployApp(t, o, "iot-ts", 1000)
	info, _ := o.Instance(ids[0])
	other := (info.Node + 1) % 6
	if err := o.Observe(0, &Heartbeat{Node: other, Samples: []ExecSample{{Instance: ids[0], Count: 1, MeanNs: 1}, {Instance: 1 << 20, Count: 1, MeanNs: 1}}}); err != nil {
		t.Fatal(err)
	}
	if s := o.Stats(); s.MisplacedSamples != 1 || s.UnknownSamples != 1 || s.Samples != 0 {
		t.Errorf("stats %+v, want one misplaced and one unknown sample", s)
	}
}

func TestDeployErrors(t *testing.T) {
	c := newCluster(t, "3xType1-SmartNIC")
	o, _ := New(Config{Load: placement.NewLoad(c)}, 0)
	other := placement.NewProblem(placement.NewLoad(c))
	other.AddInstance(placement.Instance{Name: "x", Service: "ema"})
	if _, err := o.Deploy(other, &placement.Result{Assignment: placement.Assignment{0}}); !errors.Is(err, ErrBadDeploy) || !strings.Contains(err.Error(), "another Load") {
		t.Errorf("Deploy on another load = %v", err)
	}
	p := placement.NewProblem(o.Load())
	p.AddInstance(placement.Instance{Name: "x", Service: "ema"})
	if _, err := o.Deploy(p, &placement.Result{Assignment: placement.Assignment{0, 1}}); !errors.Is(err, ErrBadDeploy) {
		t.Errorf("Deploy with a wrong-sized assignment = %v", err)
	}
	p.Deploy(0, 1)
	if _, err := o.Deploy(p, &placement.Result{Assignment: placement.Assignment{1}}); !errors.Is(err, ErrBadDeploy) || !strings.Contains(err.Error(), "marked deployed") {
		t.Errorf("Deploy of a deployed instance = %v", err)
	}
	if err := o.Undeploy([]InstanceID{5}); !errors.Is(err, ErrBadDeploy) {
		t.Errorf("Undeploy(5) = %v", err)
	}
}

// TestSteadyStateAllocs holds the hot path to zero allocations: decoding
// and ingesting heartbeats, and a Decide with nothing to do.
func TestSteadyStateAllocs(t *testing.T) {
	o, _ := New(Config{Load: placement.NewLoad(newCluster(t, "3xType2-SmartNIC"))}, 0)
	ids := deployApp(t, o, "iot-ts", 1000)
	var payloads [][]byte
	for n := range topology.NodeID(o.topo.NumNodes()) {
		h := Heartbeat{Node: n}
		for _, id := range o.InstancesOn(n) {
			h.Samples = append(h.Samples, ExecSample{Instance: id, Count: 100, MeanNs: 1000})
		}
		b, err := h.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, b)
	}
	if len(ids) == 0 {
		t.Fatal("nothing deployed")
	}
	now := time.Duration(0)
	seq := uint16(0)
	period := func() {
		now += DefaultHeartbeatPeriod
		seq++
		for _, b := range payloads {
			b[4], b[5] = byte(seq), byte(seq>>8)
			if err := o.ObservePayload(now, b); err != nil {
				t.Fatal(err)
			}
		}
		if acts := o.Decide(now); len(acts) != 0 {
			t.Fatalf("quiet cluster decided %s", o.Describe(acts[0]))
		}
	}
	period() // first heartbeats grow the scratch slices
	if n := testing.AllocsPerRun(50, period); n != 0 {
		t.Errorf("a quiet period (%d heartbeats and a Decide) allocates %v times", len(payloads), n)
	}
}

// TestRandomRunKeepsInvariants drives an orchestrator with random loads,
// server failures and recoveries and random migration outcomes, and after
// every decision checks what must always hold: the load is the sum of what
// is placed (path independence of the incremental accounting), no
// instance sits on a failed server, a shard's replicas are on distinct
// servers (but for a backup waiting on the server its migrating primary
// leaves), every placed shard has a placed primary unless it waits, and
// epochs only grow.
func TestRandomRunKeepsInvariants(t *testing.T) {
	seed := uint64(20240611)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	o, err := New(Config{Load: placement.NewLoad(newCluster(t, "6xType2-SmartNIC"))}, 0)
	if err != nil {
		t.Fatal(err)
	}
	deployApp(t, o, "iot-ts", 20000)
	deployApp(t, o, "rta-shm", 5000)
	deployApp(t, o, "nfv-fin", 5000)
	nn := o.topo.NumNodes()
	seq := make([]uint16, nn)
	dead := make([]bool, o.topo.NumServers())
	queue := make([]uint16, nn)
	var now time.Duration
	lastEpoch := uint64(0)
	const steps = 400 // 0.2 s; short mode needs no cut
	counts := map[ActionKind]int{}
	for step := range steps {
		now += DefaultHeartbeatPeriod
		for n := range topology.NodeID(nn) {
			if rng.IntN(200) == 0 {
				queue[n] = uint16(rng.IntN(400))
			}
		}
		for n := range topology.NodeID(nn) {
			if dead[o.topo.ServerOf(n)] {
				continue
			}
			seq[n]++
			h := Heartbeat{Node: n, Seq: seq[n], Queue: queue[n], RxBytes: uint32(rng.IntN(1 << 20)), TxBytes: uint32(rng.IntN(1 << 20))}
			for _, id := range o.InstancesOn(n) {
				mean := uint32(10000 + rng.IntN(2000))
				if rng.IntN(50) == 0 {
					mean *= 3
				}
				h.Samples = append(h.Samples, ExecSample{Instance: id, Count: uint32(50 + rng.IntN(100)), MeanNs: mean})
			}
			if err := o.Observe(now, &h); err != nil {
				t.Fatal(err)
			}
		}
		switch r := rng.IntN(100); {
		case r < 3:
			// Kill the server of a random placed instance, so that
			// failures hit primaries and backups alike.
			i := InstanceID(rng.IntN(o.NumInstances()))
			if o.inst[i].node < 0 {
				break
			}
			s := int(o.topo.ServerOf(o.inst[i].node))
			ndead := 0
			for _, d := range dead {
				if d {
					ndead++
				}
			}
			if !dead[s] && ndead < 2 {
				dead[s] = true
			}
		case r < 6:
			s := rng.IntN(len(dead))
			if dead[s] {
				dead[s] = false
				for n := range o.topo.ServerNodes(topology.ServerID(s)) {
					seq[n] = 0
				}
			}
		}
		for _, m := range o.Migrations() {
			switch rng.IntN(4) {
			case 0:
				e, err := o.MigrationDone(now, m.ID)
				if err != nil {
					t.Fatal(err)
				}
				if e <= lastEpoch {
					t.Fatalf("step %d: MigrationDone epoch %d after %d", step, e, lastEpoch)
				}
				lastEpoch = e
			case 1:
				if err := o.MigrationFailed(now, m.ID, "random"); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, a := range o.Decide(now) {
			counts[a.Kind]++
			if a.Kind == PublishRoutes {
				if a.Epoch <= lastEpoch {
					t.Fatalf("step %d: epoch %d after %d", step, a.Epoch, lastEpoch)
				}
				lastEpoch = a.Epoch
			}
			if testing.Verbose() && a.Kind != CreateBackup {
				t.Logf("%v %s", now, o.Describe(a))
			}
			if d := o.Describe(a); d == "" {
				t.Fatal("empty description")
			}
		}
		checkInvariants(t, o, step)
	}
	t.Logf("actions: %v", counts)
	for _, k := range []ActionKind{ServerFailed, Promote, CreateBackup, Migrate, NodeRejoined, PublishRoutes} {
		if counts[k] == 0 {
			t.Errorf("the run never produced a %s action; it tests too little", k)
		}
	}
}

func checkInvariants(t *testing.T, o *Orchestrator, step int) {
	t.Helper()
	topo := o.topo
	// Failed servers hold nothing; replicas on distinct servers.
	for gi := range o.groups {
		g := &o.groups[gi]
		if g.removed {
			continue
		}
		pr := g.primary
		if o.inst[pr].flags&instBackup != 0 {
			t.Fatalf("step %d: primary %s of its shard is flagged a backup", step, o.InstanceName(pr))
		}
		servers := map[topology.ServerID]InstanceID{}
		for _, m := range g.members {
			is := &o.inst[m]
			if m != pr && is.flags&instBackup == 0 {
				t.Fatalf("step %d: %s is neither its shard's primary nor a backup", step, o.InstanceName(m))
			}
			if is.node < 0 {
				if is.flags&instPending == 0 {
					t.Fatalf("step %d: %s has no node and is not pending", step, o.InstanceName(m))
				}
				continue
			}
			if o.NodeFailed(is.node) {
				t.Fatalf("step %d: %s on failed node %s", step, o.InstanceName(m), topo.Name(is.node))
			}
			s := topo.ServerOf(is.node)
			if other, ok := servers[s]; ok {
				// Allowed only while the primary migrates away from there.
				if !(o.inst[pr].flags&instMigrating != 0 && (other == pr || m == pr)) {
					t.Fatalf("step %d: %s and %s share server %s", step, o.InstanceName(other), o.InstanceName(m), topo.ServerName(s))
				}
			}
			servers[s] = m
		}
	}
	// The load is what is placed, summed from scratch, plus reservations.
	want := placement.NewLoad(o.cluster)
	p := placement.NewProblem(want)
	local := map[InstanceID]placement.InstanceID{}
	var assign placement.Assignment
	for gi := range o.groups {
		g := &o.groups[gi]
		if g.removed {
			continue
		}
		lp := p.AddInstance(o.specOf(g.primary, false))
		local[g.primary] = lp
		assign = append(assign, o.inst[g.primary].node)
		for _, m := range g.members {
			if m == g.primary || o.inst[m].flags&instRemoved != 0 {
				continue
			}
			local[m] = p.AddBackup(lp, o.specOf(m, false))
			assign = append(assign, o.inst[m].node)
		}
	}
	for gi := range o.groups {
		g := &o.groups[gi]
		for _, e := range g.out {
			if !g.removed && !o.groups[e.peer].removed {
				p.AddEdge(local[g.primary], local[o.groups[e.peer].primary], e.rps, e.bytes)
			}
		}
	}
	if err := want.Apply(p, &placement.Result{Assignment: assign}); err != nil {
		t.Fatal(err)
	}
	for _, id := range o.active {
		m := o.migs[id]
		u := want.Usage(m.to)
		u.Cores += m.reserved.Cores
		u.MemoryMB += m.reserved.MemoryMB
		_ = want.Set(m.to, u)
	}
	for n := range topo.Nodes() {
		if o.NodeFailed(n) {
			continue
		}
		g, w := o.load.Usage(n), want.Usage(n)
		for _, f := range []struct {
			name string
			a, b float64
		}{{"cores", g.Cores, w.Cores}, {"memory", g.MemoryMB, w.MemoryMB}, {"tx", g.TxGbps, w.TxGbps}, {"rx", g.RxGbps, w.RxGbps}} {
			if math.Abs(f.a-f.b) > 1e-6*max(1, math.Abs(f.b)) {
				t.Fatalf("step %d: %s %s = %v in the orchestrator's load, %v summed from scratch", step, topo.Name(n), f.name, f.a, f.b)
			}
		}
	}
}

func TestUndeploy(t *testing.T) {
	o, _ := New(Config{Load: placement.NewLoad(newCluster(t, "3xType1-SmartNIC"))}, 0)
	first := deployApp(t, o, "iot-ts", 5000)
	before := make([]placement.Usage, o.topo.NumNodes())
	for n := range o.topo.Nodes() {
		before[n] = o.Load().Usage(n)
	}
	second := deployApp(t, o, "rta-shm", 5000)
	if err := o.Undeploy(second); err != nil {
		t.Fatal(err)
	}
	for n := range o.topo.Nodes() {
		got := o.Load().Usage(n)
		if math.Abs(got.Cores-before[n].Cores) > 1e-9 || math.Abs(got.MemoryMB-before[n].MemoryMB) > 1e-9 ||
			math.Abs(got.TxGbps-before[n].TxGbps) > 1e-9 || math.Abs(got.RxGbps-before[n].RxGbps) > 1e-9 {
			t.Errorf("%s: usage %+v after undeploy, %+v before the deploy", o.topo.Name(n), got, before[n])
		}
	}
	info, _ := o.Instance(second[0])
	if !info.Removed || info.Node >= 0 {
		t.Errorf("undeployed instance %+v", info)
	}
	if err := o.Undeploy(first); err != nil {
		t.Fatal(err)
	}
	for n := range o.topo.Nodes() {
		if u := o.Load().Usage(n); u.Cores > 1e-9 || u.MemoryMB > 1e-9 {
			t.Errorf("%s: %+v left after everything was undeployed", o.topo.Name(n), u)
		}
	}
}
