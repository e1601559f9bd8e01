package placement

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/topology"
)

// forEachAssignment calls f with every assignment of n instances to the
// nodes of a cluster of nodes nodes (Unassigned included).
func forEachAssignment(n, nodes int, f func(Assignment)) {
	a := make(Assignment, n)
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(a)
			return
		}
		for m := -1; m < nodes; m++ {
			a[k] = topology.NodeID(m)
			rec(k + 1)
		}
	}
	rec(0)
}

// tinyProblem draws a problem of up to 4 instances on 3xType1-SmartNIC
// with random edges, a backup and a random load.
func tinyProblem(t *rapid.T, c *Cluster) *Problem {
	l := NewLoad(c)
	for n := range c.Topology().Nodes() {
		l.Set(n, Usage{
			Cores:    rapid.SampledFrom([]float64{0, 6, 11.5}).Draw(t, "cores"),
			MemoryMB: rapid.SampledFrom([]float64{0, 2048, 4000}).Draw(t, "mem"),
			TxGbps:   rapid.SampledFrom([]float64{0, 19}).Draw(t, "tx"),
		})
	}
	p := NewProblem(l)
	n := rapid.IntRange(1, 3).Draw(t, "instances")
	for k := range n {
		svc := rapid.SampledFrom(mixServices).Draw(t, "service")
		in := Instance{Name: svc, Service: svc, RPS: rapid.SampledFrom([]float64{1e3, 5e4, 3e5}).Draw(t, "rps"),
			MemoryMB: rapid.SampledFrom([]float64{64, 1024}).Draw(t, "memory"), Bytes: 1500,
			NonMigratable: svc == "sql", Pin: Pin(rapid.IntRange(0, 2).Draw(t, "pin"))}
		if in.NonMigratable && in.Pin == PinSmartNIC {
			in.Pin = PinHost
		}
		if k == 0 {
			in.IngressRPS = in.RPS
		}
		p.AddInstance(in)
	}
	for k := 1; k < n; k++ {
		p.AddEdge(InstanceID(rapid.IntRange(0, k-1).Draw(t, "from")), InstanceID(k), rapid.SampledFrom([]float64{1e4, 9e4, 1e6}).Draw(t, "edge"), 1500)
	}
	if rapid.Bool().Draw(t, "backup") {
		p.AddBackup(0, Instance{Name: "b", Service: "kvs", MemoryMB: 1024})
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckersAgreeWithValidate enumerates every assignment of tiny
// problems: an assignment passes Validate exactly when the checkers accept
// its instances one after the other, so the incremental checkers and the
// from-scratch validator implement the same constraints.
func TestCheckersAgreeWithValidate(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	nodes := c.Topology().NumNodes()
	rapid.Check(t, func(t *rapid.T) {
		p := tinyProblem(t, c)
		forEachAssignment(p.NumInstances(), nodes, func(a Assignment) {
			s := NewState(p)
			accepted := true
			var why Rejection
			for i, n := range a {
				if n < 0 {
					continue
				}
				r := s.Check(InstanceID(i), n)
				// State.Check calls the checkers directly; it must agree
				// with running Checkers() in order.
				var first Rejection
				for _, ch := range Checkers() {
					if first = ch.Check(s, InstanceID(i), n); !first.OK() {
						break
					}
				}
				if r != first {
					t.Fatalf("State.Check %+v, Checkers() in order %+v", r, first)
				}
				if !r.OK() {
					accepted, why = false, r
					break
				}
				s.Assign(InstanceID(i), n)
			}
			v := Validate(p, a)
			if accepted != (len(v) == 0) {
				t.Fatalf("assignment %v: checkers accept %v (%s), Validate says %v", a, accepted, why.Describe(p), v)
			}
		})
	})
}

// TestEvaluateBruteForce recomputes the metrics of every assignment of
// tiny problems by hand: hops from the node kinds, power from Table 4's
// envelope, utilisation node by node.
func TestEvaluateBruteForce(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	topo := c.Topology()
	m := hwmodel.Type1SmartNIC
	// On Type1 servers the host is reached through its SmartNIC.
	hops := func(a, b topology.NodeID) float64 {
		switch {
		case a == b:
			return 0
		case topo.ServerOf(a) == topo.ServerOf(b):
			return 1 // PCIe between host and its SmartNIC
		}
		h := 1.0 // the ToR
		if c.isHost(a) {
			h++
		}
		if c.isHost(b) {
			h++
		}
		return h
	}
	rapid.Check(t, func(t *rapid.T) {
		p := tinyProblem(t, c)
		offered := 1e5
		forEachAssignment(p.NumInstances(), topo.NumNodes(), func(a Assignment) {
			got, err := Evaluate(p, a, offered)
			if err != nil {
				t.Fatal(err)
			}
			var comm float64
			for e := range EdgeID(p.NumEdges()) {
				ed := p.Edge(e)
				if a[ed.From] >= 0 && a[ed.To] >= 0 {
					comm += ed.RPS * ed.Bytes * 8 / 1e9 * hops(a[ed.From], a[ed.To])
				}
			}
			busy := make([]float64, topo.NumNodes())
			onNIC, onHost, unplaced := 0, 0, 0
			for n := range busy {
				busy[n] = p.Load().Usage(topology.NodeID(n)).Cores
			}
			for i, n := range a {
				in := p.Instance(InstanceID(i))
				switch {
				case n < 0:
					unplaced++
					continue
				case topo.Node(n).Kind == topology.Host:
					onHost++
					busy[n] += in.RPS * in.Demand[m.HostCore]
				default:
					onNIC++
					busy[n] += in.RPS * in.Demand[m.NIC.Core]
				}
			}
			var power, maxU, sum, sumSq float64
			for srv := range topo.Servers() {
				power += m.IdleW
				power += min(busy[topo.Server(srv).Host], 1) * m.HostUncoreW()
				for n := range topo.ServerNodes(srv) {
					cores := float64(topo.Node(n).Cores)
					b := min(busy[n], cores)
					u := b / cores
					maxU, sum, sumSq = max(maxU, u), sum+u, sumSq+u*u
					if topo.Node(n).Kind == topology.Host {
						power += b * m.HostCoreW()
					} else {
						power += b * m.NICCoreW()
					}
				}
			}
			mean := sum / float64(topo.NumNodes())
			cv := 0.0
			if mean > 0 {
				cv = math.Sqrt(max(sumSq/float64(topo.NumNodes())-mean*mean, 0)) / mean
			}
			rpj := 0.0
			if unplaced == 0 {
				rpj = offered / power
			}
			near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*max(1, math.Abs(y)) }
			if !near(got.CommCost, comm) || !near(got.PowerW, power) || !near(got.RequestsPerJoule, rpj) ||
				got.OnSmartNIC != onNIC || got.OnHost != onHost || got.Unplaced != unplaced ||
				!near(got.MaxCPUUtil, maxU) || !near(got.MeanCPUUtil, mean) || !near(got.CVCPUUtil, cv) {
				t.Fatalf("assignment %v: Evaluate %+v; by hand comm %v power %v rpj %v nic %d host %d unplaced %d max %v mean %v cv %v",
					a, got, comm, power, rpj, onNIC, onHost, unplaced, maxU, mean, cv)
			}
		})
	})
}

func TestLevels(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	p := NewProblem(NewLoad(c))
	a := p.AddInstance(Instance{Name: "a", Service: "kvs"})
	b := p.AddInstance(Instance{Name: "b", Service: "kvs"})
	d := p.AddInstance(Instance{Name: "d", Service: "kvs"})
	bb := p.AddBackup(b, Instance{Name: "b.b1", Service: "kvs"})
	p.AddEdge(a, b, 1, 1)
	p.AddEdge(a, d, 1, 1)
	p.AddEdge(b, d, 1, 1)
	h0, n0, h1 := node(t, c, "r0/s0/host"), node(t, c, "r0/s0/nic0"), node(t, c, "r0/s1/host")
	got := Levels(p, Assignment{h0, n0, h1, h1})
	want := []topology.Level{NoLevel, topology.SameServer, topology.RackHost, topology.RackHost}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("instance %s: level %v, want %v", p.Instance(InstanceID(i)).Name, got[i], want[i])
		}
	}
	_ = bb
}
