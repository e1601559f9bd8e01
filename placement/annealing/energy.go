package annealing

import (
	"math"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// Service Fabric's metric weights (Reliability/LoadBalancing/Constants.cpp:
// MetricWeightHigh = 1, MetricWeightMedium = 0.3, MetricWeightLow = 0.1).
// The documented enum (Zero, Low, Medium, High) maps to these numbers when
// the Cluster Resource Manager computes its score.
const (
	WeightHigh   = 1.0
	WeightMedium = 0.3
	WeightLow    = 0.1
)

// Weights are the weights of the energy's terms. See [Energy].
type Weights struct {
	// CPU and Memory weigh the two load metrics inside the balance term,
	// as Service Fabric weighs the metrics of its AvgStdDev.
	CPU, Memory float64
	// Balance weighs the balance term (the weighted mean of the metrics'
	// normalised standard deviations) in the total.
	Balance float64
	// Interference weighs co-execution: pairs of active instances sharing
	// a compute node.
	Interference float64
	// Communication weighs traffic x hops.
	Communication float64
}

// DefaultWeights weigh balanced load and the avoidance of co-execution
// interference highest, as the paper's annealing baseline does (its cost is
// "weighted toward spreading"), and communication second: CPU, Balance and
// Interference High, Memory and Communication Medium, in Service Fabric's
// numbers.
var DefaultWeights = Weights{CPU: WeightHigh, Memory: WeightMedium, Balance: WeightHigh, Interference: WeightHigh, Communication: WeightMedium}

func (w Weights) orDefault() Weights {
	if w == (Weights{}) {
		return DefaultWeights
	}
	return w
}

// Energy is the annealing's cost of an assignment, term by term; lower is
// better. Every term is normalised to about [0, 1] so that the weights say
// what matters:
//
//   - Balance is Service Fabric's AvgStdDev: over the load metrics (CPU: busy
//     cores over the node's cores; memory: MB in use over the node's MB),
//     the weighted mean of each metric's normalised standard deviation
//     across all compute nodes of the cluster (standard deviation over mean,
//     Accumulator::get_NormStdDev; 0 when perfectly even). Loads include
//     the Load's, so already busy nodes count.
//   - Interference is the number of pairs of active instances (those that
//     process messages: primaries with RPS > 0) that share a compute node,
//     over the pairs there would be were all on one node. It is what
//     spreading buys: fewer services contending for one node's cores, caches
//     and, on a SmartNIC, the firmware's memory bandwidth (§2.4).
//   - Communication is the sum over edges of traffic x [placement.Hops],
//     over the sum of traffic times the cluster's largest hop count.
//
// Total = Balance·w.Balance + Interference·w.Interference +
// Communication·w.Communication.
type Energy struct {
	CPU, Memory   float64 // normalised standard deviations of the metrics
	Balance       float64
	Interference  float64
	Communication float64
	Total         float64
}

// Cost computes the energy of assignment a for p from scratch, with w (a
// zero Weights means DefaultWeights). It visits every node of the cluster.
func Cost(p *placement.Problem, a placement.Assignment, w Weights) (Energy, error) {
	if err := p.Err(); err != nil {
		return Energy{}, err
	}
	if len(a) != p.NumInstances() {
		return Energy{}, errShape(p, a)
	}
	s := placement.NewState(p)
	for i, n := range a {
		if n >= 0 && p.Instance(placement.InstanceID(i)).Deployed < 0 {
			if err := s.Assign(placement.InstanceID(i), n); err != nil {
				return Energy{}, err
			}
		}
	}
	sc := newScorer(s, w.orDefault())
	return sc.energy(), nil
}

// metric accumulates one load metric over the nodes, as Service Fabric's
// Accumulator does with percentages: the sum and the sum of squares of
// each node's use over its capacity.
type metric struct {
	use, capacity []float64
	count         int
	sum, sumSq    float64
}

func (m *metric) frac(n topology.NodeID) float64 {
	if m.capacity[n] <= 0 {
		return 0
	}
	return m.use[n] / m.capacity[n]
}

func (m *metric) recompute() {
	m.sum, m.sumSq, m.count = 0, 0, 0
	for n := range m.use {
		if m.capacity[n] <= 0 {
			continue
		}
		f := m.use[n] / m.capacity[n]
		m.count++
		m.sum += f
		m.sumSq += f * f
	}
}

// add changes node n's use by d.
func (m *metric) add(n topology.NodeID, d float64) {
	if d == 0 || m.capacity[n] <= 0 {
		m.use[n] += d
		return
	}
	old := m.frac(n)
	m.use[n] += d
	nw := m.frac(n)
	m.sum += nw - old
	m.sumSq += nw*nw - old*old
}

// normStdDev is the standard deviation over the mean, 0 for an idle
// metric (Accumulator::get_NormStdDev).
func (m *metric) normStdDev() float64 {
	if m.sum <= 0 || m.count == 0 {
		return 0
	}
	v := float64(m.count)*m.sumSq/(m.sum*m.sum) - 1
	if v <= 0 {
		return 0
	}
	return math.Sqrt(v)
}

// scorer keeps the energy's aggregates up to date as instances move, so a
// transition costs time in proportion to the moved instances' edges, not
// to the cluster.
type scorer struct {
	p   *placement.Problem
	s   *placement.State
	t   *topology.Topology
	w   Weights
	cpu metric
	mem metric
	// count[n] is the number of active instances on node n; pairs the sum
	// of count*(count-1)/2.
	count []int32
	pairs float64
	// comm is the sum of traffic x hops over edges with both ends placed.
	comm float64
	// pairsNorm and commNorm scale the interference and communication
	// terms to [0, 1].
	pairsNorm, commNorm float64
}

// active reports whether instance i does work on its node (processes
// messages); backups and idle instances do not interfere.
func active(in *placement.Instance) bool { return in.RPS > 0 }

// MaxHops returns the largest [placement.Hops] between two nodes of the
// cluster, the communication term's scale: from the first server's host,
// the first node of every level, farthest last. It reads at most one node
// per level.
func MaxHops(t *topology.Topology) int {
	if t.NumNodes() == 0 {
		return 1
	}
	from := t.Server(0).Host
	best := 1
	for l := range topology.NumLevels {
		for n := range t.LevelNodes(from, l) {
			best = max(best, placement.Hops(t, from, n))
			break
		}
	}
	return best
}

// Norms returns the scales of the interference and communication terms for
// p: the pairs of its active instances were they all on one node (at least
// 1), and the sum of its edges' traffic times the cluster's [MaxHops] (at
// least 1e-300, so an edgeless problem scores 0). The ILP uses the same
// scales.
func Norms(p *placement.Problem) (pairs, traffic float64) {
	act := 0
	for i := range p.NumInstances() {
		if active(p.Instance(placement.InstanceID(i))) {
			act++
		}
	}
	pairs = max(1, float64(act)*float64(act-1)/2)
	g := 0.0
	for e := range p.NumEdges() {
		g += p.Edge(placement.EdgeID(e)).Gbps()
	}
	traffic = max(1e-300, g*float64(MaxHops(p.Topology())))
	return pairs, traffic
}

func newScorer(s *placement.State, w Weights) *scorer {
	p := s.Problem()
	t := p.Topology()
	nn := t.NumNodes()
	sc := &scorer{
		p: p, s: s, t: t, w: w,
		cpu:   metric{use: make([]float64, nn), capacity: make([]float64, nn)},
		mem:   metric{use: make([]float64, nn), capacity: make([]float64, nn)},
		count: make([]int32, nn),
	}
	c := p.Cluster()
	for n := range t.Nodes() {
		cores, memMB, _ := c.Capacity(n)
		sc.cpu.capacity[n], sc.mem.capacity[n] = cores, memMB
	}
	sc.pairsNorm, sc.commNorm = Norms(p)
	sc.recompute()
	return sc
}

// recompute rebuilds every aggregate from the state, clearing the rounding
// error incremental updates accumulate.
func (sc *scorer) recompute() {
	for n := range sc.t.Nodes() {
		u := sc.s.Used(n)
		sc.cpu.use[n], sc.mem.use[n] = u.Cores, u.MemoryMB
		sc.count[n] = 0
	}
	sc.cpu.recompute()
	sc.mem.recompute()
	for i := range sc.p.NumInstances() {
		id := placement.InstanceID(i)
		if n := sc.s.Node(id); n >= 0 && active(sc.p.Instance(id)) {
			sc.count[n]++
		}
	}
	sc.pairs = 0
	for _, k := range sc.count {
		sc.pairs += float64(k) * float64(k-1) / 2
	}
	sc.comm = 0
	for e := range sc.p.NumEdges() {
		ed := sc.p.Edge(placement.EdgeID(e))
		a, b := sc.s.Node(ed.From), sc.s.Node(ed.To)
		if a >= 0 && b >= 0 {
			sc.comm += ed.Gbps() * float64(placement.Hops(sc.t, a, b))
		}
	}
}

func (sc *scorer) energy() Energy {
	e := Energy{CPU: sc.cpu.normStdDev(), Memory: sc.mem.normStdDev()}
	if ws := sc.w.CPU + sc.w.Memory; ws > 1e-7 {
		e.Balance = (sc.w.CPU*e.CPU + sc.w.Memory*e.Memory) / ws
	}
	e.Interference = sc.pairs / sc.pairsNorm
	e.Communication = sc.comm / sc.commNorm
	e.Total = sc.w.Balance*e.Balance + sc.w.Interference*e.Interference + sc.w.Communication*e.Communication
	return e
}

// total is energy().Total without the breakdown.
func (sc *scorer) total() float64 { return sc.energy().Total }

// move puts instance i, now on node from, on node to (either may be
// Unassigned), in the state and in the aggregates. The caller has checked
// the constraints.
func (sc *scorer) move(i placement.InstanceID, from, to topology.NodeID) {
	in := sc.p.Instance(i)
	if from >= 0 {
		sc.detach(i, in, from)
	}
	if to >= 0 {
		sc.s.Assign(i, to)
	} else {
		sc.s.Unassign(i)
	}
	if to >= 0 {
		sc.attach(i, in, to)
	}
}

// detach takes i's share of the aggregates off node n; i is still
// assigned there in the state, so its edges see where it was.
func (sc *scorer) detach(i placement.InstanceID, in *placement.Instance, n topology.NodeID) {
	sc.cpu.add(n, -sc.s.NeedCores(i, n))
	sc.mem.add(n, -in.MemoryMB)
	if active(in) {
		sc.count[n]--
		sc.pairs -= float64(sc.count[n])
	}
	sc.comm -= sc.edgeCost(i, n)
}

func (sc *scorer) attach(i placement.InstanceID, in *placement.Instance, n topology.NodeID) {
	sc.cpu.add(n, sc.s.NeedCores(i, n))
	sc.mem.add(n, in.MemoryMB)
	if active(in) {
		sc.pairs += float64(sc.count[n])
		sc.count[n]++
	}
	sc.comm += sc.edgeCost(i, n)
}

// edgeCost is the traffic x hops of i's edges to placed neighbours were i
// on node n.
func (sc *scorer) edgeCost(i placement.InstanceID, n topology.NodeID) float64 {
	c := 0.0
	for _, e := range sc.p.Out(i) {
		ed := sc.p.Edge(e)
		if m := sc.s.Node(ed.To); m >= 0 && ed.To != i {
			c += ed.Gbps() * float64(placement.Hops(sc.t, n, m))
		}
	}
	for _, e := range sc.p.In(i) {
		ed := sc.p.Edge(e)
		if m := sc.s.Node(ed.From); m >= 0 && ed.From != i {
			c += ed.Gbps() * float64(placement.Hops(sc.t, m, n))
		}
	}
	return c
}
