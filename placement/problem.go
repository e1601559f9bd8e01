package placement

import (
	"errors"
	"fmt"
	"math"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/topology"
)

// InstanceID names an instance of a [Problem]. IDs are dense:
// 0..NumInstances()-1, in the order the instances were added.
type InstanceID int32

// None is the InstanceID of no instance: the Primary of a primary, the
// ancestor of a source.
const None InstanceID = -1

// Unassigned is the node of an instance that has no node.
const Unassigned topology.NodeID = -1

// Pin restricts the kind of compute node an instance may run on.
type Pin uint8

// The pins.
const (
	// PinAny lets placement choose a host or a SmartNIC.
	PinAny Pin = iota
	// PinHost keeps the instance on host processors.
	PinHost
	// PinSmartNIC keeps the instance on SmartNICs.
	PinSmartNIC
)

var pinNames = [...]string{"any", "host", "smartnic"}

// String returns "any", "host" or "smartnic".
func (p Pin) String() string {
	if int(p) < len(pinNames) {
		return pinNames[p]
	}
	return fmt.Sprintf("Pin(%d)", uint8(p))
}

// numCoreKinds is the number of hwmodel.CoreKind values; TestCoreKinds
// keeps it honest when hwmodel grows a core.
const numCoreKinds = int(hwmodel.CnMIPS64) + 1

// CoreDemand is the seconds of one core that one message keeps busy, per
// hwmodel.CoreKind. Cores an instance needs on node n are its message rate
// times the demand of n's core kind.
type CoreDemand [numCoreKinds]float64

// DemandOf returns service's demand on every core kind from hwmodel's
// Table 1 calibration.
func DemandOf(service string) (CoreDemand, error) {
	var d CoreDemand
	for k := range d {
		v, err := hwmodel.Demand(service, hwmodel.CoreKind(k))
		if err != nil {
			return d, err
		}
		d[k] = v
	}
	return d, nil
}

// Instance is one thing to place: the primary of a shard of a DAG node, or
// one of its backups.
type Instance struct {
	// Name identifies the instance to people ("sql.3", "sql.3.b1").
	Name string
	// App is the application the instance belongs to.
	App string
	// Service is the microservice's registry name ("sql", "kvs").
	Service string
	// Pin restricts the node kind.
	Pin Pin
	// NonMigratable services (SQL: its state is not in reliable
	// collections) cannot move and run on hosts only, whatever Pin says.
	NonMigratable bool
	// RPS is the rate of messages the instance processes, clients' and
	// upstream instances' together. Backups process none.
	RPS float64
	// IngressRPS is the part of RPS that comes from clients outside the
	// cluster; an instance with IngressRPS > 0 is a source of the DAG.
	IngressRPS float64
	// Source marks an ingress instance even when its ingress rate is not
	// known (zero).
	Source bool
	// Bytes is the size of one client message, for network bandwidth.
	Bytes float64
	// MemoryMB is the resident memory of the instance.
	MemoryMB float64
	// Demand is the per-message core time by core kind. Left zero, it is
	// filled from hwmodel (Table 1) by Service.
	Demand CoreDemand
	// NICBenefit is the SmartNIC's energy efficiency over the host's for
	// this service (Table 1's × column, recomputed from its RPS and W
	// columns). Placement prefers a SmartNIC when it is at least 1. Left
	// zero, it is filled from hwmodel by Service, or 1 if unknown.
	NICBenefit float64

	// Primary is the primary of a backup, None for a primary. It is set
	// by [Problem.AddBackup]; AddInstance ignores what the caller put here.
	Primary InstanceID
	// Deployed is the node an instance already runs on, Unassigned if it
	// is to be placed. It is set by [Problem.Deploy].
	Deployed topology.NodeID
}

// IsBackup reports whether the instance is a backup replica.
func (in *Instance) IsBackup() bool { return in.Primary != None }

// PreferSmartNIC reports whether, between a host and a SmartNIC equally
// near, the instance is better off on the SmartNIC for energy.
func (in *Instance) PreferSmartNIC() bool { return in.NICBenefit >= 1 }

// EdgeID names an edge of a Problem.
type EdgeID int32

// Edge is a channel between two primaries: From sends RPS messages a
// second of Bytes bytes each to To.
type Edge struct {
	From, To InstanceID
	RPS      float64
	Bytes    float64
}

// Gbps is the edge's traffic in gigabits a second.
func (e *Edge) Gbps() float64 { return e.RPS * e.Bytes * 8 / 1e9 }

// Limits are the fractions of each capacity placement may fill. Zero
// fields mean 1: the whole capacity. All must lie in (0, 1]: placement
// never overcommits.
type Limits struct {
	// CPU is the fraction of a node's cores that instances may keep busy.
	// Below 1 it leaves headroom for load spikes, which matters most on
	// SmartNICs whose overload starves the host of packets (§3.4).
	CPU float64
	// Memory is the fraction of a node's memory instances may use.
	Memory float64
	// Network is the fraction of a port's bandwidth traffic may use.
	Network float64
}

// effective returns l with defaults filled in, or an error naming the
// first field out of range. It leaves l alone, so a Problem can be placed
// by several placers at once.
func (l Limits) effective() (Limits, error) {
	for _, f := range []struct {
		name string
		v    *float64
	}{{"CPU", &l.CPU}, {"Memory", &l.Memory}, {"Network", &l.Network}} {
		if *f.v == 0 {
			*f.v = 1
		}
		if !(*f.v > 0 && *f.v <= 1) {
			return l, fmt.Errorf("placement: Limits.%s = %v, want a fraction in (0, 1] (0 means 1)", f.name, *f.v)
		}
	}
	return l, nil
}

// ErrBadProblem is wrapped by every error about a malformed Problem.
var ErrBadProblem = errors.New("placement: bad problem")

// Problem is one placement question: instances with their demands, the
// edges between them, and the cluster with its current load. Build it with
// [NewProblem] and the Add methods; errors in the input are remembered and
// returned by [Problem.Err] (and by every Placer), so a caller can add many
// instances without checking each call.
//
// Instances already deployed (see [Problem.Deploy]) stay where they are;
// their resources are part of the Load already. Placement adds the others.
// A Problem is not modified by placing it, so it may be placed again, by
// another algorithm or as a dry run.
type Problem struct {
	// Limits caps utilisation; see [Limits].
	Limits Limits
	// Explain asks placers for an [Explanation] of every decision. It
	// makes placement visit every candidate instead of skipping full
	// servers through the free-capacity index, so it costs time linear in
	// the nodes examined; the decisions are the same either way.
	Explain bool

	load      *Load
	instances []Instance
	edges     []Edge
	out, in   [][]EdgeID
	replicas  [][]InstanceID // replicas[primary] = primary then its backups
	sources   []InstanceID
	err       error
}

// NewProblem starts a problem on the cluster of load, taking load as the
// resources already in use. Placement reads load and never changes it;
// [Load.Apply] commits a result.
func NewProblem(load *Load) *Problem {
	p := &Problem{load: load}
	if load == nil {
		p.err = fmt.Errorf("%w: NewProblem: nil Load", ErrBadProblem)
	}
	return p
}

// Load returns the load the problem was built on.
func (p *Problem) Load() *Load { return p.load }

// Cluster returns the cluster of the problem.
func (p *Problem) Cluster() *Cluster { return p.load.c }

// Topology returns the cluster's topology.
func (p *Problem) Topology() *topology.Topology { return p.load.c.topo }

// NumInstances returns the number of instances.
func (p *Problem) NumInstances() int { return len(p.instances) }

// Instance returns instance i. The pointer is into the problem: read it,
// do not change it.
func (p *Problem) Instance(i InstanceID) *Instance { return &p.instances[i] }

// NumEdges returns the number of edges.
func (p *Problem) NumEdges() int { return len(p.edges) }

// Edge returns edge e.
func (p *Problem) Edge(e EdgeID) *Edge { return &p.edges[e] }

// Out returns the edges leaving i, in the order they were added.
func (p *Problem) Out(i InstanceID) []EdgeID { return p.out[i] }

// In returns the edges entering i, in the order they were added.
func (p *Problem) In(i InstanceID) []EdgeID { return p.in[i] }

// Replicas returns the replica group of i's shard: its primary first, then
// the backups. Replicas of one group must be on different servers.
func (p *Problem) Replicas(i InstanceID) []InstanceID {
	if pr := p.instances[i].Primary; pr != None {
		i = pr
	}
	if r := p.replicas[i]; r != nil {
		return r
	}
	return nil
}

// Sources returns the instances where the DAG starts: those marked as
// sources or with ingress traffic, then primaries with no edge entering
// them, in ID order. HCM starts its breadth-first walk here.
func (p *Problem) Sources() []InstanceID {
	out := append([]InstanceID(nil), p.sources...)
	for i := range p.instances {
		in := &p.instances[i]
		if !in.IsBackup() && len(p.in[i]) == 0 && !in.Source && in.IngressRPS == 0 {
			out = append(out, InstanceID(i))
		}
	}
	return out
}

// Err returns the first error in the problem's input, or nil.
func (p *Problem) Err() error {
	if p.err != nil {
		return p.err
	}
	if _, err := p.Limits.effective(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadProblem, err)
	}
	return nil
}

func (p *Problem) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s", ErrBadProblem, fmt.Sprintf(format, args...))
	}
}

func finiteNonNeg(x float64) bool { return x >= 0 && !math.IsInf(x, 0) }

// AddInstance adds a primary and returns its ID. Its Primary and Deployed
// fields are reset; see [Problem.AddBackup] and [Problem.Deploy]. A bad
// field is recorded for [Problem.Err] and the instance is still added, so
// IDs stay in step with the caller's.
func (p *Problem) AddInstance(in Instance) InstanceID {
	in.Primary, in.Deployed = None, Unassigned
	return p.add(in)
}

// AddBackup adds a backup replica of primary and returns its ID. A backup
// carries memory but no traffic: its RPS and IngressRPS must be zero.
func (p *Problem) AddBackup(primary InstanceID, in Instance) InstanceID {
	in.Primary, in.Deployed = None, Unassigned
	id := InstanceID(len(p.instances))
	if primary < 0 || int(primary) >= len(p.instances) {
		p.fail("instance %d (%s): backup of instance %d, which does not exist", id, in.Name, primary)
		return p.add(in)
	}
	if p.instances[primary].IsBackup() {
		p.fail("instance %d (%s): backup of %s, which is itself a backup", id, in.Name, p.instances[primary].Name)
		return p.add(in)
	}
	if in.RPS != 0 || in.IngressRPS != 0 || in.Source {
		p.fail("instance %d (%s): a backup takes no traffic, want RPS = IngressRPS = 0 and Source false", id, in.Name)
	}
	in.Primary = primary
	id = p.add(in)
	if p.replicas[primary] == nil {
		p.replicas[primary] = []InstanceID{primary}
	}
	p.replicas[primary] = append(p.replicas[primary], id)
	return id
}

func (p *Problem) add(in Instance) InstanceID {
	id := InstanceID(len(p.instances))
	bad := func(format string, args ...any) {
		p.fail("instance %d (%s): %s", id, in.Name, fmt.Sprintf(format, args...))
	}
	switch {
	case !finiteNonNeg(in.RPS):
		bad("RPS = %v, want a finite rate >= 0", in.RPS)
	case !finiteNonNeg(in.IngressRPS) || in.IngressRPS > in.RPS:
		bad("IngressRPS = %v, want 0..RPS (%v)", in.IngressRPS, in.RPS)
	case !finiteNonNeg(in.Bytes):
		bad("Bytes = %v, want >= 0", in.Bytes)
	case !finiteNonNeg(in.MemoryMB):
		bad("MemoryMB = %v, want >= 0", in.MemoryMB)
	case in.Pin > PinSmartNIC:
		bad("Pin = %d, want PinAny, PinHost or PinSmartNIC", in.Pin)
	case in.NonMigratable && in.Pin == PinSmartNIC:
		bad("pinned to SmartNICs but not migratable (non-migratable services run on hosts)")
	case !finiteNonNeg(in.NICBenefit):
		bad("NICBenefit = %v, want >= 0", in.NICBenefit)
	}
	zero := true
	for k, d := range in.Demand {
		if !finiteNonNeg(d) {
			bad("Demand[%s] = %v, want seconds >= 0", hwmodel.CoreKind(k), d)
		}
		zero = zero && d == 0
	}
	if zero && in.RPS > 0 {
		d, err := DemandOf(in.Service)
		if err != nil {
			bad("no Demand given and %v", err)
		}
		in.Demand = d
	}
	if in.NICBenefit == 0 {
		in.NICBenefit = nicBenefit(in.Service)
	}
	if in.IngressRPS > 0 {
		in.Source = true
	}
	if in.Source {
		p.sources = append(p.sources, id)
	}
	p.instances = append(p.instances, in)
	p.out = append(p.out, nil)
	p.in = append(p.in, nil)
	p.replicas = append(p.replicas, nil)
	return id
}

// nicBenefit is Table 1's SmartNIC-over-host energy efficiency of service,
// computed from RPS and active power (kernel-bypass host), or 1 when
// service is not in Table 1.
func nicBenefit(service string) float64 {
	c, ok := hwmodel.Lookup(service)
	if !ok {
		return 1
	}
	return c.Stacks[hwmodel.SmartNIC].RPJComputed() / c.Stacks[hwmodel.HostBypass].RPJComputed()
}

// AddEdge adds a channel on which from sends rps messages a second of
// bytes bytes each to to. Both must be primaries (backups take no
// traffic).
func (p *Problem) AddEdge(from, to InstanceID, rps, bytes float64) EdgeID {
	id := EdgeID(len(p.edges))
	n := InstanceID(len(p.instances))
	switch {
	case from < 0 || from >= n || to < 0 || to >= n:
		p.fail("edge %d: %d -> %d: no such instance (have 0..%d)", id, from, to, n-1)
		return -1
	case from == to:
		p.fail("edge %d: %s -> itself", id, p.instances[from].Name)
		return -1
	case p.instances[from].IsBackup() || p.instances[to].IsBackup():
		p.fail("edge %d: %s -> %s: backups take no traffic", id, p.instances[from].Name, p.instances[to].Name)
		return -1
	case !finiteNonNeg(rps) || !finiteNonNeg(bytes):
		p.fail("edge %d: %s -> %s: rps = %v, bytes = %v, want finite values >= 0", id, p.instances[from].Name, p.instances[to].Name, rps, bytes)
		return -1
	}
	p.edges = append(p.edges, Edge{From: from, To: to, RPS: rps, Bytes: bytes})
	p.out[from] = append(p.out[from], id)
	p.in[to] = append(p.in[to], id)
	return id
}

// Deploy records that instance i already runs on node n. Placement keeps
// it there and takes its resources as already counted in the Load.
func (p *Problem) Deploy(i InstanceID, n topology.NodeID) {
	switch {
	case i < 0 || int(i) >= len(p.instances):
		p.fail("Deploy: no instance %d", i)
	case p.load == nil:
	case n < 0 || int(n) >= p.load.c.topo.NumNodes():
		p.fail("instance %d (%s): deployed on node %d, the cluster has nodes 0..%d", i, p.instances[i].Name, n, p.load.c.topo.NumNodes()-1)
	default:
		p.instances[i].Deployed = n
	}
}

// needCores returns the cores instance i needs on node n.
func (p *Problem) needCores(i InstanceID, n topology.NodeID) float64 {
	in := &p.instances[i]
	if in.RPS == 0 {
		return 0
	}
	return in.RPS * in.Demand[p.load.c.coreKind[n]]
}

// ingressGbps is the client traffic of instance i in each direction:
// requests arrive from outside the cluster and as many replies of the
// same size leave.
func (p *Problem) ingressGbps(i InstanceID) float64 {
	in := &p.instances[i]
	return in.IngressRPS * in.Bytes * 8 / 1e9
}
