package placement

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/topology"
)

func TestCoreKinds(t *testing.T) {
	for k := range numCoreKinds {
		if hwmodel.CoreKind(k).ClockGHz() == 0 {
			t.Errorf("core kind %d has no clock: numCoreKinds = %d is too large", k, numCoreKinds)
		}
	}
	if hwmodel.CoreKind(numCoreKinds).ClockGHz() != 0 {
		t.Errorf("hwmodel has a core kind %d: raise numCoreKinds", numCoreKinds)
	}
}

// TestHWModelTopology checks hwmodel.Topology and ServerSpec against the
// machines: every cluster of Table 4 becomes a topology whose servers,
// memory and bandwidth add up to the cluster's, and NewCluster accepts it.
func TestHWModelTopology(t *testing.T) {
	for _, hc := range hwmodel.Clusters() {
		topo, err := hwmodel.Topology(hc)
		if err != nil {
			t.Fatalf("%s: %v", hc.Name, err)
		}
		if topo.NumServers() != hc.Servers() {
			t.Errorf("%s: %d servers, want %d", hc.Name, topo.NumServers(), hc.Servers())
		}
		c, err := NewCluster(topo)
		if err != nil {
			t.Fatalf("%s: %v", hc.Name, err)
		}
		var mem, bw float64
		for n := range topo.Nodes() {
			mem += c.capMem[n]
			bw += c.capNet[n]
			m := c.Machine(topo.ServerOf(n))
			want := m.HostCore
			if topo.Node(n).Kind == topology.SmartNIC {
				want = m.NIC.Core
			}
			if c.CoreKind(n) != want {
				t.Errorf("%s: %s core kind %v, want %v", hc.Name, topo.Name(n), c.CoreKind(n), want)
			}
		}
		if mem != hc.MemoryGB()*1024 || bw != hc.BandwidthGbps() {
			t.Errorf("%s: %v MB and %v Gb/s, want %v MB and %v Gb/s", hc.Name, mem, bw, hc.MemoryGB()*1024, hc.BandwidthGbps())
		}
	}
	if m, ok := hwmodel.MachineByName("type2-smartnic"); !ok || m.Name != "Type2-SmartNIC" {
		t.Errorf("MachineByName ignores case: got %q %v", m.Name, ok)
	}
	if _, ok := hwmodel.MachineByName("Toaster"); ok {
		t.Error("MachineByName found a toaster")
	}
}

func TestNewClusterErrors(t *testing.T) {
	toaster := hwmodel.ServerSpec(hwmodel.Beefy)
	toaster.Model = "Toaster"
	big := hwmodel.ServerSpec(hwmodel.Beefy)
	big.Cores = 16
	for _, tc := range []struct {
		spec topology.ServerSpec
		want string
	}{
		{toaster, `model "Toaster" has no machine profile`},
		{big, "host has 16 cores, machine profile 12"},
	} {
		topo, err := topology.New(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewCluster(topo); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewCluster: %v, want an error containing %q", err, tc.want)
		}
	}
}

func TestProblemErrors(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	ok := Instance{Name: "kvs.0", Service: "kvs", RPS: 1000, MemoryMB: 1024}
	for _, tc := range []struct {
		name  string
		build func(p *Problem)
		want  string
	}{
		{"negative rate", func(p *Problem) { p.AddInstance(Instance{Name: "x", Service: "kvs", RPS: -1}) }, "instance 0 (x): RPS = -1"},
		{"ingress above rate", func(p *Problem) { p.AddInstance(Instance{Name: "x", Service: "kvs", RPS: 1, IngressRPS: 2}) }, "IngressRPS = 2, want 0..RPS"},
		{"NaN memory", func(p *Problem) { p.AddInstance(Instance{Name: "x", Service: "kvs", MemoryMB: math.NaN()}) }, "MemoryMB = NaN"},
		{"unknown service", func(p *Problem) { p.AddInstance(Instance{Name: "x", Service: "toaster", RPS: 1}) }, `no calibration for microservice "toaster"`},
		{"pin conflict", func(p *Problem) {
			p.AddInstance(Instance{Name: "s", Service: "sql", NonMigratable: true, Pin: PinSmartNIC})
		}, "not migratable"},
		{"backup of nothing", func(p *Problem) { p.AddBackup(4, ok) }, "backup of instance 4, which does not exist"},
		{"backup of backup", func(p *Problem) {
			a := p.AddInstance(ok)
			b := p.AddBackup(a, Instance{Name: "b"})
			p.AddBackup(b, Instance{Name: "c"})
		}, "itself a backup"},
		{"busy backup", func(p *Problem) { a := p.AddInstance(ok); p.AddBackup(a, ok) }, "a backup takes no traffic"},
		{"self edge", func(p *Problem) { a := p.AddInstance(ok); p.AddEdge(a, a, 1, 1) }, "kvs.0 -> itself"},
		{"edge to nowhere", func(p *Problem) { a := p.AddInstance(ok); p.AddEdge(a, 7, 1, 1) }, "0 -> 7: no such instance"},
		{"edge to backup", func(p *Problem) {
			a := p.AddInstance(ok)
			b := p.AddBackup(a, Instance{Name: "b"})
			p.AddEdge(a, b, 1, 1)
		}, "backups take no traffic"},
		{"infinite edge", func(p *Problem) { a, b := p.AddInstance(ok), p.AddInstance(ok); p.AddEdge(a, b, math.Inf(1), 1) }, "rps = +Inf"},
		{"deploy off cluster", func(p *Problem) { a := p.AddInstance(ok); p.Deploy(a, 6) }, "deployed on node 6, the cluster has nodes 0..5"},
		{"limits", func(p *Problem) { p.AddInstance(ok); p.Limits.CPU = 1.5 }, "Limits.CPU = 1.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewProblem(NewLoad(c))
			tc.build(p)
			err := p.Err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Err() = %v, want one containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrBadProblem) {
				t.Errorf("%v does not wrap ErrBadProblem", err)
			}
		})
	}
	if err := NewProblem(nil).Err(); err == nil {
		t.Error("a problem without a load is accepted")
	}
}

// TestCheckers runs each checker on a hand-built case and checks its
// verdict and message.
func TestCheckers(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	host0, nic0, host1 := node(t, c, "r0/s0/host"), node(t, c, "r0/s0/nic0"), node(t, c, "r0/s1/host")
	kvsNIC, _ := hwmodel.Demand("kvs", hwmodel.CnMIPS64)
	for _, tc := range []struct {
		name string
		// setup fills the load and returns the problem and the instance
		// to check.
		setup func(l *Load) (*Problem, InstanceID)
		at    topology.NodeID
		want  Constraint
		msg   string
	}{
		{"memory", func(l *Load) (*Problem, InstanceID) {
			l.Set(nic0, Usage{MemoryMB: 4096 - 312})
			p := NewProblem(l)
			return p, p.AddInstance(Instance{Name: "kvs.0", Service: "kvs", MemoryMB: 1024})
		}, nic0, ConstraintMemory, "memory: needs 1024 MB, 312 MB free"},
		{"memory fits exactly", func(l *Load) (*Problem, InstanceID) {
			l.Set(nic0, Usage{MemoryMB: 4096 - 1024})
			p := NewProblem(l)
			return p, p.AddInstance(Instance{Name: "kvs.0", Service: "kvs", MemoryMB: 1024})
		}, nic0, NoConstraint, "fits"},
		{"cpu", func(l *Load) (*Problem, InstanceID) {
			l.Set(nic0, Usage{Cores: 10.8})
			p := NewProblem(l)
			return p, p.AddInstance(Instance{Name: "kvs.0", Service: "kvs", RPS: 2.5 / kvsNIC})
		}, nic0, ConstraintCPU, "cpu: needs 2.5 cores, 1.2 free"},
		{"cpu limit", func(l *Load) (*Problem, InstanceID) {
			p := NewProblem(l)
			p.Limits.CPU = 0.5
			return p, p.AddInstance(Instance{Name: "kvs.0", Service: "kvs", RPS: 7 / kvsNIC})
		}, nic0, ConstraintCPU, "cpu: needs 7 cores, 6 free"},
		{"not migratable", func(l *Load) (*Problem, InstanceID) {
			p := NewProblem(l)
			return p, p.AddInstance(Instance{Name: "sql.0", Service: "sql", NonMigratable: true})
		}, nic0, ConstraintPin, "pin: not migratable, runs on hosts only, not on a SmartNIC"},
		{"pinned host", func(l *Load) (*Problem, InstanceID) {
			p := NewProblem(l)
			return p, p.AddInstance(Instance{Name: "x", Service: "kvs", Pin: PinHost})
		}, nic0, ConstraintPin, "pin: pinned to hosts, not a SmartNIC"},
		{"pinned smartnic", func(l *Load) (*Problem, InstanceID) {
			p := NewProblem(l)
			return p, p.AddInstance(Instance{Name: "x", Service: "kvs", Pin: PinSmartNIC})
		}, host0, ConstraintPin, "pin: pinned to SmartNICs, not a host"},
		{"fault domain", func(l *Load) (*Problem, InstanceID) {
			p := NewProblem(l)
			a := p.AddInstance(Instance{Name: "kvs.0", Service: "kvs", MemoryMB: 1})
			p.Deploy(a, host0)
			return p, p.AddBackup(a, Instance{Name: "kvs.0.b1", Service: "kvs", MemoryMB: 1})
		}, nic0, ConstraintFaultDomain, "fault-domain: replica kvs.0 is on r0/s0/host, the same server"},
		{"fault domain other server", func(l *Load) (*Problem, InstanceID) {
			p := NewProblem(l)
			a := p.AddInstance(Instance{Name: "kvs.0", Service: "kvs", MemoryMB: 1})
			p.Deploy(a, host0)
			return p, p.AddBackup(a, Instance{Name: "kvs.0.b1", Service: "kvs", MemoryMB: 1})
		}, host1, NoConstraint, "fits"},
		{"bandwidth ingress", func(l *Load) (*Problem, InstanceID) {
			p := NewProblem(l)
			// 21 Gb/s of requests against the LiquidIO's 2 x 10 Gb/s.
			return p, p.AddInstance(Instance{Name: "x", Service: "kvs", RPS: 21e9 / 8 / 512, IngressRPS: 21e9 / 8 / 512, Bytes: 512, Demand: CoreDemand{1e-12, 1e-12, 1e-12, 1e-12}})
		}, nic0, ConstraintBandwidth, "bandwidth: needs 21 Gb/s tx on r0/s0/nic0's ports, 20 Gb/s free"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, i := tc.setup(NewLoad(c))
			if err := p.Err(); err != nil {
				t.Fatal(err)
			}
			r := NewState(p).Check(i, tc.at)
			if r.Constraint != tc.want || r.Describe(p) != tc.msg {
				t.Errorf("Check = %v %q, want %v %q", r.Constraint, r.Describe(p), tc.want, tc.msg)
			}
			// The checker of the constraint alone agrees.
			for _, ch := range Checkers() {
				got := ch.Check(NewState(p), i, tc.at)
				if ch.Constraint() == tc.want && got.Constraint != tc.want {
					t.Errorf("%T alone: %v", ch, got)
				}
			}
		})
	}
}

// TestBandwidthModel checks the traffic model on a Type2 server, whose
// host has no ports of its own and reaches the ToR through its four
// SmartNICs (one 10 Gb/s port each) by ECMP.
func TestBandwidthModel(t *testing.T) {
	c := clusterOf(t, "2xType2-SmartNIC")
	host, nic0, nic1 := node(t, c, "r0/s0/host"), node(t, c, "r0/s0/nic0"), node(t, c, "r0/s0/nic1")
	other := node(t, c, "r0/s1/nic0")
	tiny := CoreDemand{1e-12, 1e-12, 1e-12, 1e-12}
	gbps := func(g float64) float64 { return g * 1e9 / 8 / 512 } // messages/s of 512 B
	source := func(g float64) Instance {
		return Instance{Name: "src", Service: "kvs", RPS: gbps(g), IngressRPS: gbps(g), Bytes: 512, Demand: tiny}
	}

	l := NewLoad(c)
	p := NewProblem(l)
	a := p.AddInstance(source(30))
	b := p.AddInstance(source(41))
	s := NewState(p)
	if r := s.Check(a, host); !r.OK() {
		t.Errorf("30 Gb/s on a host behind 4 x 10 Gb/s: %s", r.Describe(p))
	}
	if r := s.Check(b, host); r.Constraint != ConstraintBandwidth || r.At != nic0 {
		t.Errorf("41 Gb/s on the host: %s, want bandwidth on nic0", r.Describe(p))
	}

	// 8 Gb/s of nic0's own plus a quarter of the host's 9 Gb/s exceeds 10.
	l = NewLoad(c)
	l.Set(nic0, Usage{TxGbps: 8})
	p = NewProblem(l)
	a = p.AddInstance(source(9))
	if r := NewState(p).Check(a, host); r.Constraint != ConstraintBandwidth || r.At != nic0 || math.Abs(r.Need-2.25) > 1e-9 || math.Abs(r.Free-2) > 1e-9 {
		t.Errorf("host share on a busy nic0: %+v", r)
	}
	if r := NewState(p).Check(a, nic1); !r.OK() {
		t.Errorf("9 Gb/s on an idle nic1: %s", r.Describe(p))
	}

	// Host to own SmartNIC is PCIe: no port traffic. SmartNIC to
	// SmartNIC of one server goes through the ToR: both ports.
	p = NewProblem(NewLoad(c))
	x := p.AddInstance(Instance{Name: "x", Service: "kvs", RPS: 1, Demand: tiny})
	y := p.AddInstance(Instance{Name: "y", Service: "kvs", RPS: 1, Demand: tiny})
	p.AddEdge(x, y, gbps(4), 512)
	s = NewState(p)
	s.Assign(x, host)
	s.Assign(y, nic0)
	if u := s.Used(host); u.TxGbps != 0 || s.Used(nic0).RxGbps != 0 {
		t.Errorf("host to own SmartNIC used ports: host %+v nic0 %+v", u, s.Used(nic0))
	}
	s.Assign(x, nic1)
	if tx, rx := s.Used(nic1).TxGbps, s.Used(nic0).RxGbps; math.Abs(tx-4) > 1e-9 || math.Abs(rx-4) > 1e-9 {
		t.Errorf("nic1 -> nic0: tx %v rx %v, want 4 and 4", tx, rx)
	}
	s.Assign(y, other)
	if tx, rx, old := s.Used(nic1).TxGbps, s.Used(other).RxGbps, s.Used(nic0).RxGbps; math.Abs(tx-4) > 1e-9 || math.Abs(rx-4) > 1e-9 || math.Abs(old) > 1e-9 {
		t.Errorf("after moving y to another server: nic1 tx %v, other rx %v, nic0 rx %v", tx, rx, old)
	}
}

// TestStateUndo checks that unassigning undoes assigning, traffic included.
func TestStateUndo(t *testing.T) {
	c := clusterOf(t, "2xType2-SmartNIC")
	p := NewProblem(NewLoad(c))
	var ids []InstanceID
	for k := range 6 {
		ids = append(ids, p.AddInstance(Instance{Name: "i", Service: "ema", RPS: 1e4 * float64(k+1), IngressRPS: 100, Bytes: 512, MemoryMB: 64}))
	}
	for k := 1; k < len(ids); k++ {
		p.AddEdge(ids[k-1], ids[k], 5e3, 512)
		p.AddEdge(ids[0], ids[k], 1e3, 256)
	}
	s := NewState(p)
	nodes := c.Topology().NumNodes()
	for k, i := range ids {
		s.Assign(i, topology.NodeID((k*3)%nodes))
	}
	for k, i := range ids {
		s.Assign(i, topology.NodeID((k*7+1)%nodes)) // a move
	}
	for _, i := range ids {
		s.Unassign(i)
	}
	for n, d := range s.Touched() {
		if math.Abs(d.Cores)+math.Abs(d.MemoryMB)+math.Abs(d.TxGbps)+math.Abs(d.RxGbps) > 1e-9 {
			t.Errorf("%s: %+v left after undoing everything", c.Topology().Name(n), d)
		}
	}
	if err := s.Assign(ids[0], topology.NodeID(nodes)); err == nil {
		t.Error("Assign to a node off the cluster accepted")
	}
	q := NewProblem(NewLoad(c))
	d := q.AddInstance(Instance{Name: "d", Service: "ema"})
	q.Deploy(d, 0)
	if err := NewState(q).Assign(d, 1); err == nil || !strings.Contains(err.Error(), "deployed on r0/s0/host") {
		t.Errorf("moving a deployed instance: %v", err)
	}
}

// TestLoadApplyRelease commits an assignment and takes it back.
func TestLoadApplyRelease(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	l := NewLoad(c)
	p := NewProblem(l)
	a := p.AddInstance(Instance{Name: "a", Service: "kvs", RPS: 1e5, IngressRPS: 1e5, Bytes: 512, MemoryMB: 1024})
	b := p.AddInstance(Instance{Name: "b", Service: "ema", RPS: 1e5, Bytes: 512, MemoryMB: 64})
	bb := p.AddBackup(b, Instance{Name: "b.b1", Service: "ema", MemoryMB: 64})
	p.AddEdge(a, b, 1e5, 512)
	asg := Assignment{node(t, c, "r0/s0/nic0"), node(t, c, "r0/s1/nic0"), node(t, c, "r0/s2/host")}
	if v := Validate(p, asg); v != nil {
		t.Fatalf("Validate: %v", v)
	}
	if err := l.Apply(p, &Result{Assignment: asg}); err != nil {
		t.Fatal(err)
	}
	u := l.Usage(asg[a])
	wantCores := 1e5 * p.Instance(a).Demand[hwmodel.CnMIPS64]
	wantGbps := 2 * 1e5 * 512 * 8 / 1e9 // ingress reply and the edge to b
	if math.Abs(u.Cores-wantCores) > 1e-12 || u.MemoryMB != 1024 || math.Abs(u.TxGbps-wantGbps) > 1e-12 {
		t.Errorf("after Apply, a's node uses %+v, want %v cores, 1024 MB, %v Gb/s tx", u, wantCores, wantGbps)
	}
	if got := l.Usage(asg[bb]).MemoryMB; got != 64 {
		t.Errorf("backup memory %v, want 64", got)
	}
	checkIndex(t, l)
	if err := l.Release(p, asg); err != nil {
		t.Fatal(err)
	}
	for n := range c.Topology().Nodes() {
		if u := l.Usage(n); u != (Usage{}) {
			t.Errorf("%s uses %+v after Release", c.Topology().Name(n), u)
		}
	}
	checkIndex(t, l)

	// Apply refuses results that do not fit the problem, changing nothing.
	for _, bad := range []Assignment{{0}, {0, 1, 99}} {
		if err := l.Apply(p, &Result{Assignment: bad}); err == nil {
			t.Errorf("Apply(%v) accepted", bad)
		}
	}
	if err := NewLoad(c).Apply(p, &Result{Assignment: asg}); err == nil {
		t.Error("Apply of a problem built on another load accepted")
	}
}

// checkIndex compares the load's free-capacity index with one built from
// scratch.
func checkIndex(t *testing.T, l *Load) {
	t.Helper()
	fresh := freeIndex{}
	fresh.init(l.c)
	for s := range l.c.topo.NumServers() {
		fresh.update(l, topology.ServerID(s))
	}
	for v := range fresh.tree {
		if fresh.tree[v] != l.idx.tree[v] {
			t.Fatalf("index node %d: %+v, rebuilt %+v", v, l.idx.tree[v], fresh.tree[v])
		}
	}
}

// TestValidate breaks each constraint on purpose.
func TestValidate(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	host0, nic0, host1, nic1 := node(t, c, "r0/s0/host"), node(t, c, "r0/s0/nic0"), node(t, c, "r0/s1/host"), node(t, c, "r0/s1/nic0")
	build := func() (*Problem, []InstanceID) {
		l := NewLoad(c)
		l.Set(nic1, Usage{Cores: 11, MemoryMB: 4000})
		p := NewProblem(l)
		s := p.AddInstance(Instance{Name: "sql.0", Service: "sql", NonMigratable: true, RPS: 1000, MemoryMB: 1024})
		sb := p.AddBackup(s, Instance{Name: "sql.0.b1", Service: "sql", NonMigratable: true, MemoryMB: 1024})
		k := p.AddInstance(Instance{Name: "kvs.0", Service: "kvs", RPS: 2e5, MemoryMB: 1024})
		f := p.AddInstance(Instance{Name: "big", Service: "kvs", RPS: 1, IngressRPS: 1, Bytes: 3e9, MemoryMB: 1})
		return p, []InstanceID{s, sb, k, f}
	}
	for _, tc := range []struct {
		name string
		a    func([]InstanceID) Assignment
		want []Constraint
	}{
		{"valid", func([]InstanceID) Assignment { return Assignment{host0, host1, nic0, Unassigned} }, nil},
		{"pin", func([]InstanceID) Assignment { return Assignment{nic0, host1, host0, Unassigned} }, []Constraint{ConstraintPin}},
		{"fault domain", func([]InstanceID) Assignment { return Assignment{host0, host0, nic0, Unassigned} }, []Constraint{ConstraintFaultDomain}},
		{"cpu and memory", func([]InstanceID) Assignment { return Assignment{host0, host1, nic1, Unassigned} }, []Constraint{ConstraintCPU, ConstraintMemory}},
		{"bandwidth", func([]InstanceID) Assignment { return Assignment{host0, host1, nic0, host1} }, []Constraint{ConstraintBandwidth, ConstraintBandwidth}},
		{"shape", func([]InstanceID) Assignment { return Assignment{host0} }, []Constraint{NoConstraint}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ids := build()
			v := Validate(p, tc.a(ids))
			var got []Constraint
			for _, x := range v {
				got = append(got, x.Constraint)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("violations %v, want constraints %v", v, tc.want)
			}
			for k := range got {
				if got[k] != tc.want[k] {
					t.Errorf("violation %d: %v, want %v", k, v[k], tc.want[k])
				}
			}
			t.Logf("%v", v)
		})
	}
}

// TestCrossesPorts holds the traffic model's shortcut to topology's paths:
// a message uses port bandwidth exactly when its path crosses a switch.
func TestCrossesPorts(t *testing.T) {
	var b topology.Builder
	for _, m := range hwmodel.Machines() {
		b.AddServer(hwmodel.ServerSpec(m))
	}
	b.AddRack()
	b.AddServer(hwmodel.ServerSpec(hwmodel.Type2SmartNIC))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	for a := range topo.Nodes() {
		for b := range topo.Nodes() {
			if got, want := c.CrossesPorts(a, b), topo.Path(a, b).SwitchHops > 0; got != want {
				t.Errorf("%s -> %s: crosses ports %v, path %+v", topo.Name(a), topo.Name(b), got, topo.Path(a, b))
			}
		}
		if cores, mem, _ := c.Capacity(a); cores != float64(topo.Node(a).Cores) || mem != float64(topo.Node(a).MemoryMB) {
			t.Errorf("%s: capacity %v cores %v MB", topo.Name(a), cores, mem)
		}
	}
	for s := range topo.Servers() {
		if got, want := c.HostBehindSmartNICs(s), topo.Node(topo.Server(s).Host).Ports == 0; got != want {
			t.Errorf("%s: host behind SmartNICs %v, want %v", topo.ServerName(s), got, want)
		}
	}
}
