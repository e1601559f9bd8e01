package ilp

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/annealing"
	"github.com/e3-platform/e3/topology"
)

// Weights are the objective's weights; see [Model]. A zero value means
// DefaultWeights.
type Weights struct {
	Balance, Interference, Communication float64
}

// DefaultWeights are the annealing's (annealing.DefaultWeights): balance
// and interference High, communication Medium, in Service Fabric's numbers.
var DefaultWeights = Weights{
	Balance:       annealing.DefaultWeights.Balance,
	Interference:  annealing.DefaultWeights.Interference,
	Communication: annealing.DefaultWeights.Communication,
}

func (w Weights) orDefault() Weights {
	if w == (Weights{}) {
		return DefaultWeights
	}
	return w
}

// Model is the integer program of one placement problem. Build it with
// [Build] and write it with [Model.WriteLP].
//
// Variables (x and u binary, the rest continuous and non-negative):
//
//	x_i_n   instance i on node n, for the candidate nodes of i only: those
//	        that pass every checker for i alone in the problem's Load
//	        (pinning, fault domain against deployed replicas, memory, CPU,
//	        bandwidth), since the other pairs cannot be part of any
//	        solution; and, when the servers are interchangeable, only the
//	        first k servers for the k-th instance (see breakSymmetry)
//	u_i     instance i left unplaced (elastic model only)
//	U       the largest CPU utilisation of any node
//	P_n     pairs of active instances on node n
//	d_e r_e q_e       edge e's ends on different nodes, racks, pods
//	ta_e tb_e         edge e leaves a server and its sender (receiver) is a
//	                  host reached through its SmartNICs
//	vt_e_n vr_e_n     edge e's traffic leaves (enters) node n through ports
//
// Rows:
//
//	one_i     sum_n x_i_n = 1 (+ u_i in the elastic model)
//	cpu_n     sum_i cores(i,n) x_i_n <= cores(n) Limits.CPU - cores in use
//	mem_n     sum_i MB(i) x_i_n <= MB(n) Limits.Memory - MB in use (both
//	          only where the candidates together could exceed it)
//	fd_a_b_k  for replicas a, b of a shard and a server k both may use:
//	          sum over k's nodes of x_a_n + x_b_n <= 1
//	util_n    U >= (cores in use + sum_i cores(i,n) x_i_n) / cores(n), only
//	          where that could exceed U's lower bound, the utilisation of
//	          the busiest node in the Load
//	pair_n_t  P_n >= t(t-1)/2 + t (k_n - t) for t = 1..K_n-1, k_n the active
//	          instances on n, K_n the most it can get: the chords of
//	          k(k-1)/2 through consecutive integers, so at integer k_n the
//	          largest is exactly k_n(k_n-1)/2
//	hd_e_n    d_e >= x_a_n - x_b_n, for the nodes n of a's candidates (and
//	          hr, hq alike with sums over a rack's, pod's nodes)
//	cta_e_h   ta_e >= x_a_h - (sum of x_b over h's server), for each host
//	          h behind SmartNICs among a's candidates; ctb_e_h alike for b
//	colo      sum_n P_n + sum_e d_e >= the number of edges between two
//	          active instances (see colocationCut)
//	cvt_e_n   vt_e_n >= x_a_n - sum of x_b_m over the nodes m that n reaches
//	          without a port (itself, and its host or SmartNICs over PCIe);
//	          cvr_e_n alike
//	tx_p rx_p for a port node p (a SmartNIC, or a host with ports of its
//	          own): traffic in use + client and edge traffic of instances on
//	          p + p's share of a host behind its SmartNICs (ECMP, in
//	          proportion to port rates) <= p's rate x Limits.Network; only
//	          written when the traffic that could ever reach p exceeds that
//
// Objective, minimised, with the annealing's scales (annealing.Norms):
//
//	Balance·U + Interference·sum_n P_n / pairs
//	  + Communication·sum_e g_e (d_e + 2 r_e + 2 q_e + ta_e + tb_e) / (traffic x max hops)
//	  (+ a penalty above any placement's cost per u_i, elastic only)
//
// The hop count of an edge is exact at integer x: [placement.Hops] is 1
// between two nodes of one server (PCIe, or the ToR between two SmartNICs),
// 1 through the ToR, 3 through an aggregation switch, 5 through the core,
// plus one for each end that is a host behind its SmartNICs when the path
// leaves the server: d + 2r + 2q + ta + tb. Edges with a deployed end are
// linear in the other end's x. Every auxiliary variable is bounded below
// only and costs something (or only tightens a capacity row), so at an
// optimum each equals the indicator it stands for. [Objective] evaluates
// the same function for any assignment.
//
// The size: |candidates| binaries; per edge between two instances to
// place, up to 5 continuous variables and |candidates of its sender| +
// |racks| + |pods| + |hosts among both ends' candidates| rows; per node up
// to one cpu, mem and util row and K_n - 1 pair rows; rows that cannot
// bind are left out.
type Model struct {
	p        *placement.Problem
	w        Weights
	elastic  bool
	cand     [][]topology.NodeID // candidate nodes per instance; nil if none or deployed
	free     []bool              // placed by the model
	cols     []column
	colIndex map[string]int
	obj      []term
	rows     []row
	penalty  float64
	// constant is the part of the objective no variable carries (edges
	// and pairs among deployed instances); the LP leaves it out.
	constant float64
}

type column struct {
	name   string
	binary bool
	lower  float64
}

type term struct {
	c float64
	v int // column index
}

type row struct {
	name  string
	terms []term
	sense string // "<=", ">=", "="
	rhs   float64
}

// Build formulates p. With elastic set every instance may also be left
// unplaced, at a penalty larger than any placement's cost, so the model is
// always feasible and its optimum places as many instances as possible.
func Build(p *placement.Problem, w Weights, elastic bool) (*Model, error) {
	if err := p.Err(); err != nil {
		return nil, err
	}
	m := &Model{p: p, w: w.orDefault(), elastic: elastic, colIndex: map[string]int{}}
	m.candidates()
	m.assignment()
	m.capacity()
	m.faultDomains()
	m.balance()
	m.interference()
	m.communication()
	m.bandwidth()
	return m, nil
}

// candidates finds, for every instance to place, the nodes that pass every
// checker for it alone: any node that fails then fails in every solution,
// since the checked resources only fill up as instances are added.
func (m *Model) candidates() {
	p := m.p
	s := placement.NewState(p)
	m.cand = make([][]topology.NodeID, p.NumInstances())
	m.free = make([]bool, p.NumInstances())
	for i := range p.NumInstances() {
		id := placement.InstanceID(i)
		if p.Instance(id).Deployed >= 0 {
			continue
		}
		for n := range p.Topology().Nodes() {
			if s.Check(id, n).OK() {
				m.cand[i] = append(m.cand[i], n)
			}
		}
		m.free[i] = len(m.cand[i]) > 0
	}
	m.breakSymmetry()
}

// breakSymmetry removes candidates that only mirror others when the
// servers are interchangeable: one rack, one machine model, the same use
// in the Load on corresponding nodes, nothing deployed. Then any solution
// can have its servers renamed in the order in which instances, in ID
// order, first use them, so the k-th instance to be placed needs only the
// first k servers: instance 0 goes to server 0, instance 1 to server 0 or
// 1, and so on. Every solution keeps an equivalent one (same cost, the
// constraints are the same on every server), and the solver no longer
// searches servers.Factorial copies of each.
func (m *Model) breakSymmetry() {
	p := m.p
	t := p.Topology()
	if t.NumRacks() != 1 || t.NumServers() < 2 {
		return
	}
	first := t.Server(0)
	for srv := range t.Servers() {
		sv := t.Server(srv)
		if sv.Model != first.Model || sv.SmartNICs != first.SmartNICs {
			return
		}
		for k := range sv.SmartNICs + 1 {
			if p.Load().Usage(sv.Host+topology.NodeID(k)) != p.Load().Usage(first.Host+topology.NodeID(k)) {
				return
			}
		}
	}
	for i := range p.NumInstances() {
		if p.Instance(placement.InstanceID(i)).Deployed >= 0 {
			return
		}
	}
	rank := 0
	for i := range m.cand {
		if !m.free[i] {
			continue
		}
		keep := m.cand[i][:0]
		for _, n := range m.cand[i] {
			if int(t.ServerOf(n)) <= rank {
				keep = append(keep, n)
			}
		}
		m.cand[i] = keep
		m.free[i] = len(keep) > 0
		rank++
	}
}

// FirstFit returns a feasible point of the model to start cbc's search
// from: each instance, in ID order, on its first candidate node that the
// shared checkers accept given those before it; in the elastic model an
// instance with none is left out (u_i = 1). It returns nil if the model
// insists on placing everything and first fit cannot. Continuous variables
// are left for cbc to complete.
func (m *Model) FirstFit() map[string]float64 {
	s := placement.NewState(m.p)
	vals := map[string]float64{}
	for _, c := range m.cols {
		if c.binary {
			vals[c.name] = 0
		}
	}
	for i := range m.cand {
		if !m.free[i] {
			continue
		}
		id := placement.InstanceID(i)
		placed := false
		for _, n := range m.cand[i] {
			if s.Check(id, n).OK() {
				s.Assign(id, n)
				vals[xName(id, n)] = 1
				placed = true
				break
			}
		}
		if !placed {
			if !m.elastic {
				return nil
			}
			vals[fmt.Sprintf("u_%d", i)] = 1
		}
	}
	return vals
}

// Unplaceable returns the instances no node can take even alone; the model
// leaves them out.
func (m *Model) Unplaceable() []placement.InstanceID {
	var out []placement.InstanceID
	for i := range m.cand {
		if !m.free[i] && m.p.Instance(placement.InstanceID(i)).Deployed < 0 {
			out = append(out, placement.InstanceID(i))
		}
	}
	return out
}

func (m *Model) col(name string, binary bool, lower float64) int {
	if k, ok := m.colIndex[name]; ok {
		return k
	}
	m.cols = append(m.cols, column{name: name, binary: binary, lower: lower})
	m.colIndex[name] = len(m.cols) - 1
	return len(m.cols) - 1
}

func xName(i placement.InstanceID, n topology.NodeID) string { return fmt.Sprintf("x_%d_%d", i, n) }

// x returns the column of x_i_n, or -1 if n is not a candidate of i.
func (m *Model) x(i placement.InstanceID, n topology.NodeID) int {
	if !m.free[i] {
		return -1
	}
	k, ok := m.colIndex[xName(i, n)]
	if !ok {
		return -1
	}
	return k
}

// fixed returns the node of a deployed instance, or Unassigned.
func (m *Model) fixed(i placement.InstanceID) topology.NodeID { return m.p.Instance(i).Deployed }

// present reports whether instance i is in the model: deployed or free.
func (m *Model) present(i placement.InstanceID) bool { return m.free[i] || m.fixed(i) >= 0 }

func (m *Model) assignment() {
	for i := range m.cand {
		if !m.free[i] {
			continue
		}
		id := placement.InstanceID(i)
		var ts []term
		for _, n := range m.cand[i] {
			ts = append(ts, term{1, m.col(xName(id, n), true, 0)})
		}
		if m.elastic {
			ts = append(ts, term{1, m.col(fmt.Sprintf("u_%d", i), true, 0)})
		}
		m.rows = append(m.rows, row{fmt.Sprintf("one_%d", i), ts, "=", 1})
	}
	if m.elastic {
		// Any placement costs at most the sum of the weights (every term
		// is scaled to [0, 1]); leaving one instance out must cost more.
		m.penalty = 2*(m.w.Balance+m.w.Interference+m.w.Communication) + 1
		for i := range m.cand {
			if m.free[i] {
				m.obj = append(m.obj, term{m.penalty, m.colIndex[fmt.Sprintf("u_%d", i)]})
			}
		}
	}
}

// onNode returns the x columns of node n with a coefficient per instance.
func (m *Model) onNode(coef func(i placement.InstanceID, n topology.NodeID) float64) map[topology.NodeID][]term {
	out := map[topology.NodeID][]term{}
	for i := range m.cand {
		if !m.free[i] {
			continue
		}
		id := placement.InstanceID(i)
		for _, n := range m.cand[i] {
			if c := coef(id, n); c != 0 {
				out[n] = append(out[n], term{c, m.x(id, n)})
			}
		}
	}
	return out
}

// capacity writes the CPU and memory rows that can bind: a row whose
// candidates' needs all together fit the node's free capacity holds in
// every solution and is left out (with one instance to place, as in the
// scale experiment, that is every row).
func (m *Model) capacity() {
	s := placement.NewState(m.p)
	cpu := m.onNode(func(i placement.InstanceID, n topology.NodeID) float64 { return s.NeedCores(i, n) })
	mem := m.onNode(func(i placement.InstanceID, _ topology.NodeID) float64 { return m.p.Instance(i).MemoryMB })
	for n := range m.p.Topology().Nodes() {
		freeC, freeM := s.Free(n)
		if ts := cpu[n]; len(ts) > 0 && exceeds(sum(ts), freeC) {
			m.rows = append(m.rows, row{fmt.Sprintf("cpu_%d", n), ts, "<=", freeC})
		}
		if ts := mem[n]; len(ts) > 0 && exceeds(sum(ts), freeM) {
			m.rows = append(m.rows, row{fmt.Sprintf("mem_%d", n), ts, "<=", freeM})
		}
	}
}

// sum adds the absolute values of the terms' coefficients: the most they
// can add up to with binary variables.
func sum(ts []term) float64 {
	t := 0.0
	for _, x := range ts {
		t += math.Abs(x.c)
	}
	return t
}

func (m *Model) faultDomains() {
	t := m.p.Topology()
	for i := range m.cand {
		id := placement.InstanceID(i)
		group := m.p.Replicas(id)
		if len(group) < 2 || group[0] != id {
			continue // each group once, from its primary
		}
		for x := range group {
			for y := x + 1; y < len(group); y++ {
				a, b := group[x], group[y]
				if !m.free[a] || !m.free[b] {
					continue // a deployed replica's server is not a candidate of the other
				}
				byServer := map[topology.ServerID][]term{}
				var order []topology.ServerID
				for _, r := range []placement.InstanceID{a, b} {
					for _, n := range m.cand[r] {
						k := t.ServerOf(n)
						if _, ok := byServer[k]; !ok {
							order = append(order, k)
						}
						byServer[k] = append(byServer[k], term{1, m.x(r, n)})
					}
				}
				for _, k := range order {
					ts := byServer[k]
					if hasBoth(m, ts, a, b) {
						m.rows = append(m.rows, row{fmt.Sprintf("fd_%d_%d_%d", a, b, k), ts, "<=", 1})
					}
				}
			}
		}
	}
}

// hasBoth reports whether the terms hold columns of both instances (a
// server only one of them can use needs no row).
func hasBoth(m *Model, ts []term, a, b placement.InstanceID) bool {
	var sa, sb bool
	for _, tm := range ts {
		name := m.cols[tm.v].name
		sa = sa || hasPrefix(name, fmt.Sprintf("x_%d_", a))
		sb = sb || hasPrefix(name, fmt.Sprintf("x_%d_", b))
	}
	return sa && sb
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// balance writes U >= each node's CPU utilisation. The busiest node in
// the Load bounds U from below whatever is placed, so a node that cannot
// pass that bound even with every candidate on it needs no row; on a
// large, lightly loaded cluster that is nearly every node.
func (m *Model) balance() {
	if m.w.Balance == 0 {
		return
	}
	c := m.p.Cluster()
	s := placement.NewState(m.p)
	util := m.onNode(func(i placement.InstanceID, n topology.NodeID) float64 {
		cores, _, _ := c.Capacity(n)
		return -s.NeedCores(i, n) / cores
	})
	lower := 0.0
	for n := range m.p.Topology().Nodes() {
		if cores, _, _ := c.Capacity(n); cores > 0 {
			lower = max(lower, m.p.Load().Usage(n).Cores/cores)
		}
	}
	u := m.col("U", false, lower)
	m.obj = append(m.obj, term{m.w.Balance, u})
	for n := range m.p.Topology().Nodes() {
		cores, _, _ := c.Capacity(n)
		ts := util[n]
		if cores <= 0 || len(ts) == 0 {
			continue
		}
		base := m.p.Load().Usage(n).Cores / cores
		if !exceeds(base+sum(ts), lower) {
			continue
		}
		m.rows = append(m.rows, row{fmt.Sprintf("util_%d", n), append([]term{{1, u}}, ts...), ">=", base})
	}
}

func isActive(in *placement.Instance) bool { return in.RPS > 0 }

func (m *Model) interference() {
	if m.w.Interference == 0 {
		return
	}
	pairsNorm, _ := annealing.Norms(m.p)
	deployed := map[topology.NodeID]int{}
	for i := range m.cand {
		id := placement.InstanceID(i)
		if n := m.fixed(id); n >= 0 && isActive(m.p.Instance(id)) {
			deployed[n]++
		}
	}
	act := m.onNode(func(i placement.InstanceID, _ topology.NodeID) float64 {
		if isActive(m.p.Instance(i)) {
			return 1
		}
		return 0
	})
	for n := range m.p.Topology().Nodes() {
		ts := act[n]
		d := deployed[n]
		hi := d + len(ts) // the most active instances n can get
		if len(ts) == 0 || hi < 2 {
			m.constant += m.w.Interference / pairsNorm * float64(d) * float64(d-1) / 2
			continue
		}
		pc := m.col(fmt.Sprintf("P_%d", n), false, float64(d)*float64(d-1)/2)
		m.obj = append(m.obj, term{m.w.Interference / pairsNorm, pc})
		for t := max(1, d); t <= hi-1; t++ {
			// P >= t(t-1)/2 + t(d + sum x - t)
			rt := []term{{1, pc}}
			for _, tm := range ts {
				rt = append(rt, term{-float64(t), tm.v})
			}
			rhs := float64(t)*float64(t-1)/2 + float64(t)*float64(d-t)
			m.rows = append(m.rows, row{fmt.Sprintf("pair_%d_%d", n, t), rt, ">=", rhs})
		}
	}
}

// hostBehind reports whether node n is a host whose traffic goes through
// its server's SmartNICs.
func hostBehind(t *topology.Topology, c *placement.Cluster, n topology.NodeID) bool {
	srv := t.ServerOf(n)
	return t.Server(srv).Host == n && c.HostBehindSmartNICs(srv) && t.Server(srv).SmartNICs > 0
}

func (m *Model) communication() {
	if m.w.Communication == 0 {
		return
	}
	t := m.p.Topology()
	c := m.p.Cluster()
	_, commNorm := annealing.Norms(m.p)
	scale := m.w.Communication / commNorm
	racks, pods := t.NumRacks() > 1, t.NumPods() > 1
	// colo collects d_e of edges between two active instances, one per
	// pair, for the co-location cut below.
	var colo []term
	colocated := map[[2]placement.InstanceID]bool{}
	defer func() { m.colocationCut(colo) }()
	for e := range m.p.NumEdges() {
		ed := m.p.Edge(placement.EdgeID(e))
		a, b := ed.From, ed.To
		g := ed.Gbps()
		if g == 0 || !m.present(a) || !m.present(b) {
			continue
		}
		fa, fb := m.fixed(a), m.fixed(b)
		switch {
		case fa >= 0 && fb >= 0:
			m.constant += scale * g * float64(placement.Hops(t, fa, fb))
			continue
		case fa >= 0 || fb >= 0:
			// One end deployed: the cost is linear in the other's x.
			f, o := fa, b
			if fb >= 0 {
				f, o = fb, a
			}
			for _, n := range m.cand[o] {
				if h := placement.Hops(t, f, n); h > 0 {
					m.obj = append(m.obj, term{scale * g * float64(h), m.x(o, n)})
				}
			}
			continue
		}
		d := m.col(fmt.Sprintf("d_%d", e), false, 0)
		m.obj = append(m.obj, term{scale * g, d})
		if pair := [2]placement.InstanceID{min(a, b), max(a, b)}; isActive(m.p.Instance(a)) && isActive(m.p.Instance(b)) && !colocated[pair] {
			colocated[pair] = true
			colo = append(colo, term{1, d})
		}
		for _, n := range m.cand[a] {
			ts := []term{{1, d}, {-1, m.x(a, n)}}
			if xb := m.x(b, n); xb >= 0 {
				ts = append(ts, term{1, xb})
			}
			m.rows = append(m.rows, row{fmt.Sprintf("hd_%d_%d", e, n), ts, ">=", 0})
		}
		group := func(name string, key func(topology.NodeID) int, w float64) int {
			v := m.col(fmt.Sprintf("%s_%d", name, e), false, 0)
			if w > 0 {
				m.obj = append(m.obj, term{scale * g * w, v})
			}
			ga, gb := map[int][]term{}, map[int][]term{}
			var order []int
			for _, n := range m.cand[a] {
				k := key(n)
				if _, ok := ga[k]; !ok {
					order = append(order, k)
				}
				ga[k] = append(ga[k], term{-1, m.x(a, n)})
			}
			for _, n := range m.cand[b] {
				gb[key(n)] = append(gb[key(n)], term{1, m.x(b, n)})
			}
			for _, k := range order {
				ts := append(append([]term{{1, v}}, ga[k]...), gb[k]...)
				m.rows = append(m.rows, row{fmt.Sprintf("h%s_%d_%d", name, e, k), ts, ">=", 0})
			}
			return v
		}
		rackOf := func(n topology.NodeID) int { return int(t.Server(t.ServerOf(n)).Rack) }
		if racks {
			group("r", rackOf, 2)
		}
		if pods {
			group("q", func(n topology.NodeID) int { return int(t.Server(t.ServerOf(n)).Pod) }, 2)
		}
		// A host behind its SmartNICs at either end costs one more hop
		// when the other end is on another server: for each such host h
		// the end may use, t >= x_end_h - (the other end's x on h's
		// server). Per host rather than through a "servers differ"
		// indicator, which makes the relaxation a little tighter.
		for _, side := range []struct {
			name       string
			end, other placement.InstanceID
		}{{"ta", a, b}, {"tb", b, a}} {
			v := -1
			for _, h := range m.cand[side.end] {
				if !hostBehind(t, c, h) {
					continue
				}
				if v < 0 {
					v = m.col(fmt.Sprintf("%s_%d", side.name, e), false, 0)
					m.obj = append(m.obj, term{scale * g, v})
				}
				ts := []term{{1, v}, {-1, m.x(side.end, h)}}
				srv := t.ServerOf(h)
				for _, o := range m.cand[side.other] {
					if t.ServerOf(o) == srv {
						ts = append(ts, term{1, m.x(side.other, o)})
					}
				}
				m.rows = append(m.rows, row{fmt.Sprintf("c%s_%d_%d", side.name, e, h), ts, ">=", 0})
			}
		}
	}
}

// colocationCut ties communication to interference: two active instances
// joined by an edge and on one node are a pair on that node, and distinct
// edges make distinct pairs, so sum_n P_n >= sum_e (1 - d_e) over those
// edges. The row is redundant at integer points but not in the linear
// relaxation, which without it puts the ends of every edge on the same
// fractional mix of nodes and pays neither for separating them nor for
// co-locating them; with it cbc's bound rises and it proves optima it
// otherwise does not.
func (m *Model) colocationCut(colo []term) {
	if len(colo) == 0 {
		return
	}
	ts := append([]term(nil), colo...)
	for n := range m.p.Topology().Nodes() {
		if k, ok := m.colIndex[fmt.Sprintf("P_%d", n)]; ok {
			ts = append(ts, term{1, k})
		}
	}
	if len(ts) == len(colo) {
		return // no pair variables: interference is not weighed
	}
	m.rows = append(m.rows, row{"colo", ts, ">=", float64(len(colo))})
}

// bandwidth writes the port constraints that can bind; see Model.
func (m *Model) bandwidth() {
	p := m.p
	t := p.Topology()
	c := p.Cluster()
	lim := placement.NewState(p).Limits().Network
	for srv := range t.Servers() {
		sv := t.Server(srv)
		// As the bandwidth checker: a host without ports of its own is
		// carried by its SmartNICs' ports (none if it has no SmartNICs).
		behind := c.HostBehindSmartNICs(srv)
		total := 0.0
		for n := range t.ServerNodes(srv) {
			if n != sv.Host {
				_, _, g := c.Capacity(n)
				total += g
			}
		}
		for port := range t.ServerNodes(srv) {
			if behind && port == sv.Host {
				continue // its traffic is spread over the SmartNICs below
			}
			_, _, rate := c.Capacity(port)
			// The nodes whose traffic this port carries, with its share.
			srcs := []share{{port, 1}}
			if behind && total > 0 {
				srcs = append(srcs, share{sv.Host, rate / total})
			}
			for _, dir := range []bool{true, false} {
				m.portRow(port, rate*lim, srcs, dir)
			}
		}
	}
}

type share struct {
	n topology.NodeID
	f float64
}

// portRow writes the tx (out) or rx row of port node port if it can bind.
func (m *Model) portRow(port topology.NodeID, limit float64, srcs []share, out bool) {
	p := m.p
	c := p.Cluster()
	base, bound := 0.0, 0.0
	for _, sh := range srcs {
		u := p.Load().Usage(sh.n)
		if out {
			base += sh.f * u.TxGbps
		} else {
			base += sh.f * u.RxGbps
		}
	}
	bound = base
	// Collect the terms and, alongside, the most traffic they can add.
	type pending struct {
		coef             float64
		e                placement.EdgeID
		n                topology.NodeID
		direct           int // an x column, or -1 for an edge variable to make
		sender, receiver placement.InstanceID
	}
	var terms []pending
	dir := "rx"
	if out {
		dir = "tx"
	}
	for _, sh := range srcs {
		n := sh.n
		for i := range m.cand {
			id := placement.InstanceID(i)
			if g := p.Instance(id).IngressRPS * p.Instance(id).Bytes * 8 / 1e9; g > 0 {
				if x := m.x(id, n); x >= 0 {
					terms = append(terms, pending{coef: sh.f * g, direct: x})
					bound += sh.f * g
				}
			}
		}
		for e := range p.NumEdges() {
			ed := p.Edge(placement.EdgeID(e))
			g := ed.Gbps()
			here, there := ed.From, ed.To // the end on n and the other
			if !out {
				here, there = ed.To, ed.From
			}
			if g == 0 || !m.present(here) || !m.present(there) {
				continue
			}
			fh, ft := m.fixed(here), m.fixed(there)
			switch {
			case fh >= 0 && ft >= 0:
				// Both deployed: already in the Load.
			case fh >= 0:
				if fh != n {
					continue
				}
				for _, o := range m.cand[there] {
					if crosses(c, n, o, out) {
						terms = append(terms, pending{coef: sh.f * g, direct: m.x(there, o)})
					}
				}
				bound += sh.f * g
			case ft >= 0:
				x := m.x(here, n)
				if x < 0 || !crosses(c, n, ft, out) {
					continue
				}
				terms = append(terms, pending{coef: sh.f * g, direct: x})
				bound += sh.f * g
			default:
				if m.x(here, n) < 0 {
					continue
				}
				terms = append(terms, pending{coef: sh.f * g, direct: -1, e: placement.EdgeID(e), n: n, sender: here, receiver: there})
				bound += sh.f * g
			}
		}
	}
	if !exceeds(bound, limit) {
		return // this port can never be short
	}
	var ts []term
	for _, pt := range terms {
		if pt.direct >= 0 {
			ts = append(ts, term{pt.coef, pt.direct})
			continue
		}
		ts = append(ts, term{pt.coef, m.edgePortVar(pt.e, pt.n, pt.sender, pt.receiver, out)})
	}
	if len(ts) == 0 {
		return
	}
	m.rows = append(m.rows, row{fmt.Sprintf("%s_%d", dir, port), ts, "<=", limit - base})
}

// edgePortVar returns (making it once) the variable that is 1 when the
// edge's end here is on node n and its other end is somewhere n reaches
// only through a port.
func (m *Model) edgePortVar(e placement.EdgeID, n topology.NodeID, here, there placement.InstanceID, out bool) int {
	name := fmt.Sprintf("vr_%d_%d", e, n)
	if out {
		name = fmt.Sprintf("vt_%d_%d", e, n)
	}
	if k, ok := m.colIndex[name]; ok {
		return k
	}
	v := m.col(name, false, 0)
	ts := []term{{1, v}, {-1, m.x(here, n)}}
	for _, o := range m.cand[there] {
		if !crosses(m.p.Cluster(), n, o, out) {
			ts = append(ts, term{1, m.x(there, o)})
		}
	}
	m.rows = append(m.rows, row{"c" + name, ts, ">=", 0})
	return v
}

// crosses reports whether traffic between node n (the sender if out) and
// node o uses NIC ports.
func crosses(c *placement.Cluster, n, o topology.NodeID, out bool) bool {
	if out {
		return c.CrossesPorts(n, o)
	}
	return c.CrossesPorts(o, n)
}

func exceeds(need, free float64) bool { return need > free+1e-9*max(1, math.Abs(free)) }

// Size reports the model's binary and continuous variables and its rows.
func (m *Model) Size() (binaries, continuous, rows int) {
	for _, c := range m.cols {
		if c.binary {
			binaries++
		} else {
			continuous++
		}
	}
	return binaries, continuous, len(m.rows)
}

// Elastic reports whether the model may leave instances unplaced.
func (m *Model) Elastic() bool { return m.elastic }

// num writes a coefficient in the shortest form that reads back exactly.
func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// WriteLP writes the model in CPLEX LP format, the input cbc reads. Lines
// stay short: a long expression continues on the next line.
func (m *Model) WriteLP(w io.Writer) error {
	bw := bufio.NewWriter(w)
	b, cn, r := m.Size()
	fmt.Fprintf(bw, "\\ E3 placement: %d instances, %d binaries, %d continuous, %d rows; see placement/ilp\n",
		m.p.NumInstances(), b, cn, r)
	bw.WriteString("Minimize\n")
	obj := m.obj
	if len(obj) == 0 && len(m.cols) > 0 {
		obj = []term{{0, 0}} // an objective must name a variable
	}
	m.expr(bw, " obj:", obj)
	bw.WriteString("\nSubject To\n")
	for _, rw := range m.rows {
		m.expr(bw, " "+rw.name+":", rw.terms)
		fmt.Fprintf(bw, " %s %s\n", rw.sense, num(rw.rhs))
	}
	bw.WriteString("Bounds\n")
	for _, c := range m.cols {
		if !c.binary && c.lower != 0 {
			fmt.Fprintf(bw, " %s >= %s\n", c.name, num(c.lower))
		}
	}
	bw.WriteString("Binaries\n")
	line := 0
	for _, c := range m.cols {
		if !c.binary {
			continue
		}
		if line > 72 {
			bw.WriteByte('\n')
			line = 0
		}
		bw.WriteString(" " + c.name)
		line += 1 + len(c.name)
	}
	bw.WriteString("\nEnd\n")
	return bw.Flush()
}

// expr writes label and a linear expression, merging repeated columns and
// wrapping lines near 80 characters.
func (m *Model) expr(bw *bufio.Writer, label string, ts []term) {
	merged := make([]term, 0, len(ts))
	seen := map[int]int{}
	for _, tm := range ts {
		if k, ok := seen[tm.v]; ok {
			merged[k].c += tm.c
			continue
		}
		seen[tm.v] = len(merged)
		merged = append(merged, tm)
	}
	bw.WriteString(label)
	line := len(label)
	for k, tm := range merged {
		var s string
		switch {
		case tm.c < 0:
			s = " - " + coef(-tm.c) + m.cols[tm.v].name
		case k == 0:
			s = " " + coef(tm.c) + m.cols[tm.v].name
		default:
			s = " + " + coef(tm.c) + m.cols[tm.v].name
		}
		if line+len(s) > 80 && k > 0 {
			bw.WriteString("\n  ")
			line = 2
		}
		bw.WriteString(s)
		line += len(s)
	}
}

func coef(c float64) string {
	if c == 1 {
		return ""
	}
	return num(c) + " "
}
