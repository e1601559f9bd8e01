package hcm

import (
	"math/rand/v2"
	"slices"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// Name is the algorithm's registry name.
const Name = "hcm"

func init() {
	placement.Register(Name, func() placement.Placer { return New(Options{}) })
}

// Options tune HCM. The zero value is the algorithm as the paper gives it.
type Options struct {
	// BestFitLimit, if above 0, stops find_best_fit within a level after
	// that many feasible candidates and takes the best of them, as
	// Kubernetes' percentageOfNodesToScore and Nomad's candidate limit do.
	// 0 scores every feasible node of the level.
	BestFitLimit int
	// ServerAsOneLevel searches the ancestor's node and the rest of its
	// server as one level, so that the best-fit score's kind preference
	// can send a SmartNIC-friendly service from a host ancestor to a
	// SmartNIC of the same server rather than onto the host itself. The
	// paper's Algorithm 1 keeps them apart (false): the same node first.
	ServerAsOneLevel bool
}

// Placer is HCM, the paper's hierarchical communication-aware placement
// (Algorithm 1). Its zero value is ready to use.
type Placer struct {
	opts Options
}

// New returns an HCM placer.
func New(o Options) *Placer { return &Placer{opts: o} }

// Name returns "hcm".
func (*Placer) Name() string { return Name }

var _ placement.Placer = (*Placer)(nil)

// Place implements placement.Placer. HCM is deterministic: rng is not
// used, and the same problem always gets the same assignment.
func (h *Placer) Place(p *placement.Problem, _ *rand.Rand) (*placement.Result, error) {
	if err := p.Err(); err != nil {
		return nil, err
	}
	n := p.NumInstances()
	r := &run{h: h, p: p, s: placement.NewState(p), visited: make([]bool, n), failed: make([]bool, n)}
	if p.Explain {
		r.ex = make([]placement.Explanation, p.NumInstances())
		for i := range r.ex {
			r.ex[i] = placement.Explanation{Instance: placement.InstanceID(i), Node: placement.Unassigned, Ancestor: placement.None}
		}
	}
	// MS_DAG_TRAVERSE from the sources, then from any primary not reached
	// (a problem whose every instance has an upstream neighbour, as in a
	// cycle), so that every primary is placed.
	r.traverse(p.Sources())
	for i := range p.NumInstances() {
		id := placement.InstanceID(i)
		if !p.Instance(id).IsBackup() && !r.visited[i] {
			r.traverse([]placement.InstanceID{id})
		}
	}
	// Backups follow their primaries: MS_PLACE from the primary's node,
	// where the fault-domain checker rules out the primary's server, so a
	// backup lands in the nearest other server (its replication traffic
	// crosses one ToR).
	for i := range p.NumInstances() {
		id := placement.InstanceID(i)
		in := p.Instance(id)
		if !in.IsBackup() {
			continue
		}
		if in.Deployed >= 0 {
			r.deployed(id)
		} else if pn := r.s.Node(in.Primary); pn >= 0 {
			r.msPlace(id, in.Primary, pn)
		} else {
			r.firstFit(id, placement.HowFirstFit)
		}
	}
	res := &placement.Result{Algorithm: Name, Assignment: r.s.Assignment(), Unplaced: r.unplaced, Explanations: r.ex}
	sortUnplaced(res.Unplaced)
	return res, nil
}

// run is one execution of HCM.
type run struct {
	h        *Placer
	p        *placement.Problem
	s        *placement.State
	visited  []bool
	queue    []placement.InstanceID
	unplaced []placement.Unplaced
	failed   []bool // failed[i]: i was found unplaceable
	ex       []placement.Explanation
}

func (r *run) explain(i placement.InstanceID) *placement.Explanation {
	if r.ex == nil {
		return nil
	}
	return &r.ex[i]
}

func (r *run) deployed(i placement.InstanceID) {
	if e := r.explain(i); e != nil {
		e.Node, e.How = r.s.Node(i), placement.HowDeployed
	}
}

// traverse is MS_DAG_TRAVERSE: breadth first from srcs. A dequeued
// instance without a node gets find_first_fit; each of its direct
// descendants not yet placed gets MS_PLACE from its node.
func (r *run) traverse(srcs []placement.InstanceID) {
	r.queue = r.queue[:0]
	for _, v := range srcs {
		if !r.visited[v] {
			r.visited[v] = true
			r.queue = append(r.queue, v)
		}
	}
	for head := 0; head < len(r.queue); head++ {
		v := r.queue[head]
		n := r.s.Node(v) // get_deployed_node
		if n < 0 && r.p.Instance(v).Deployed < 0 && !r.tried(v) {
			r.firstFit(v, placement.HowFirstFit)
			n = r.s.Node(v)
		} else if r.p.Instance(v).Deployed >= 0 {
			r.deployed(v)
		}
		for _, e := range r.p.Out(v) {
			w := r.p.Edge(e).To
			if r.visited[w] {
				continue
			}
			r.visited[w] = true
			r.queue = append(r.queue, w)
			if r.p.Instance(w).Deployed >= 0 {
				continue
			}
			if n >= 0 {
				r.msPlace(w, v, n)
			} else {
				// The ancestor found no node: there is no topology to
				// be near, so W is placed as if it had no ancestor.
				r.firstFit(w, placement.HowFirstFit)
			}
		}
	}
}

// tried reports whether i was already given its chance (placed or found
// unplaceable) by an earlier MS_PLACE.
func (r *run) tried(i placement.InstanceID) bool { return r.s.Node(i) >= 0 || r.failed[i] }

// msPlace is MS_PLACE(W, N): the levels of N's hierarchical topology from
// the closest, find_best_fit within each. Algorithm 1 falls back to
// find_first_fit over the whole cluster if no level has room; here the
// levels cover every node of the cluster, so that scan could only fail
// again, and W is reported unplaced straight away.
func (r *run) msPlace(w, anc placement.InstanceID, from topology.NodeID) {
	e := r.explain(w)
	if e != nil {
		e.Ancestor = anc
	}
	groups := paperLevels
	if r.h.opts.ServerAsOneLevel {
		groups = serverLevels
	}
	for _, g := range groups {
		best, score := r.bestFit(w, from, g, e)
		if best >= 0 {
			r.s.Assign(w, best)
			if e != nil {
				e.Node, e.How, e.Level, e.Score = best, placement.HowBestFit, r.p.Topology().Distance(from, best), score
			}
			return
		}
	}
	r.unplace(w)
}

// paperLevels are the levels MS_PLACE searches one after the other, as
// the paper gives them; serverLevels join the first two (the ancestor's
// node and the rest of its server) for Options.ServerAsOneLevel.
var paperLevels, serverLevels = func() (p, s [][]topology.Level) {
	for l := range topology.NumLevels {
		p = append(p, []topology.Level{l})
	}
	s = append([][]topology.Level{{topology.SameNode, topology.SameServer}}, p[2:]...)
	return p, s
}()

// bestFit is find_best_fit over the nodes of the given levels from node
// from (one level, unless Options.ServerAsOneLevel joins the first two).
//
// The score (lower is better) has two parts. First, the node kind the
// instance prefers for energy (Instance.PreferSmartNIC, from Table 1's
// SmartNIC-over-host efficiency) beats the other; this matters only on
// the one mixed level, the ancestor's own server. Second, among nodes of
// one kind, the tightest fit: the smallest fraction of capacity left, after
// placing the instance, on the node's binding resource (the one of cores
// and memory with the least left). Packing tightly fills the SmartNICs an
// application already uses and keeps other nodes, above all hosts, idle:
// idle host cores sleep and cost nothing in the power model, and whole
// idle nodes are what a power manager can turn off. It also keeps large
// holes free for memory-hungry instances (KVS, SQL) that fit few
// SmartNICs. Spreading for balance, Service Fabric's goal, is the
// annealing baseline's job; ties go to the first node in ID order.
func (r *run) bestFit(w placement.InstanceID, from topology.NodeID, levels []topology.Level, e *placement.Explanation) (topology.NodeID, float64) {
	best, bestScore := placement.Unassigned, 0.0
	feasible := 0
	limit := r.h.opts.BestFitLimit
	// A node that cannot beat the best so far need not be checked: the
	// score is a few loads, the checkers (bandwidth above all) much more.
	// Explanations and a candidate limit count every feasible node, so
	// they check everything; the choice is the same.
	prune := e == nil && limit == 0
	for _, l := range levels {
		examined, levelFeasible := 0, 0
		for n := range r.s.LevelCandidates(w, from, l) {
			examined++
			var sc float64
			if prune && best >= 0 {
				if sc = r.score(w, n); sc >= bestScore {
					continue
				}
			}
			if rej := r.s.Check(w, n); !rej.OK() {
				if e != nil {
					e.Reject(n, rej)
				}
				continue
			}
			if e != nil {
				e.Accept()
			}
			feasible++
			levelFeasible++
			if !prune || best < 0 {
				sc = r.score(w, n)
			}
			if best < 0 || sc < bestScore {
				best, bestScore = n, sc
			}
			if limit > 0 && feasible >= limit {
				break
			}
		}
		if e != nil && examined > 0 {
			e.Levels = append(e.Levels, placement.LevelTrace{Level: l, Examined: examined, Feasible: levelFeasible})
		}
		if limit > 0 && feasible >= limit {
			break
		}
	}
	return best, bestScore
}

// score is find_best_fit's score of node n for instance w (see bestFit):
// 2 for the kind w does not prefer, plus the fraction left on the binding
// resource, in [0, 1].
func (r *run) score(w placement.InstanceID, n topology.NodeID) float64 {
	capC, capM := r.s.Capacity(n)
	freeC, freeM := r.s.Free(n)
	leftC := (freeC - r.s.NeedCores(w, n)) / capC
	leftM := (freeM - r.p.Instance(w).MemoryMB) / capM
	sc := min(max(min(leftC, leftM), 0), 1)
	if r.s.IsHost(n) == r.p.Instance(w).PreferSmartNIC() {
		sc += 2
	}
	return sc
}

// firstFit is find_first_fit: the first node in the fixed scan order
// (servers in ID order, the preferred kind first within a server) that
// passes every checker. If none does, the instance stays unplaced and the
// node closest to fitting is reported with the reason; HCM never
// overcommits a node to place an instance.
func (r *run) firstFit(v placement.InstanceID, how placement.How) {
	e := r.explain(v)
	for n := range r.s.ScanCandidates(v) {
		rej := r.s.Check(v, n)
		if !rej.OK() {
			if e != nil {
				e.Reject(n, rej)
			}
			continue
		}
		if e != nil {
			e.Accept()
			e.Node, e.How = n, how
		}
		r.s.Assign(v, n)
		return
	}
	r.unplace(v)
}

// unplace reports v as unplaced, with the node closest to fitting it.
func (r *run) unplace(v placement.InstanceID) {
	r.unplaced = append(r.unplaced, r.s.Closest(v))
	r.failed[v] = true
	if e := r.explain(v); e != nil {
		e.How = placement.HowUnplaced
	}
}

func sortUnplaced(u []placement.Unplaced) {
	slices.SortFunc(u, func(a, b placement.Unplaced) int { return int(a.Instance - b.Instance) })
}
