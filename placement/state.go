package placement

import (
	"fmt"
	"iter"
	"math"

	"github.com/e3-platform/e3/topology"
)

// State is a placement in progress: which instance is on which node, and
// what that adds to the Problem's Load. The additions are kept sparsely,
// for the nodes that received something, so a State costs memory and
// time in proportion to what is placed, not to the size of the cluster;
// the Load itself is never written.
//
// Every algorithm works on a State: HCM assigns as it goes, annealing
// assigns and unassigns as it moves instances, and the shared checkers
// read it. A State is not safe for concurrent use.
type State struct {
	p   *Problem
	c   *Cluster
	lim Limits
	// assign[i] is instance i's node or Unassigned.
	assign []topology.NodeID
	// slot maps a node to its entry in touched and delta.
	slot    map[topology.NodeID]int32
	touched []topology.NodeID
	delta   []Usage
	scratch []portDelta
}

// NewState starts a placement of p with its deployed instances on their
// nodes and nothing else assigned. p must be valid ([Problem.Err] nil);
// placers check that before they start.
func NewState(p *Problem) *State {
	lim, _ := p.Limits.effective()
	s := &State{
		p:      p,
		c:      p.load.c,
		lim:    lim,
		assign: make([]topology.NodeID, len(p.instances)),
	}
	for i := range p.instances {
		s.assign[i] = p.instances[i].Deployed
	}
	return s
}

// Problem returns the problem being placed.
func (s *State) Problem() *Problem { return s.p }

// Limits returns the limits in force, defaults filled in.
func (s *State) Limits() Limits { return s.lim }

// Node returns instance i's node, or Unassigned.
func (s *State) Node(i InstanceID) topology.NodeID { return s.assign[i] }

// Assignment returns a copy of the current assignment.
func (s *State) Assignment() Assignment { return append(Assignment(nil), s.assign...) }

// Used returns what is in use on node n: the Load's figure plus what the
// state has placed there.
func (s *State) Used(n topology.NodeID) Usage {
	u := s.p.load.use[n]
	if len(s.slot) > 0 {
		if k, ok := s.slot[n]; ok {
			u.add(s.delta[k], 1)
		}
	}
	return u
}

// Free returns the cores and memory left on node n within the limits.
func (s *State) Free(n topology.NodeID) (cores, memoryMB float64) {
	u := s.Used(n)
	return s.c.capCores[n]*s.lim.CPU - u.Cores, s.c.capMem[n]*s.lim.Memory - u.MemoryMB
}

// Capacity returns the cores and memory of node n that the limits let
// placement fill.
func (s *State) Capacity(n topology.NodeID) (cores, memoryMB float64) {
	return s.c.capCores[n] * s.lim.CPU, s.c.capMem[n] * s.lim.Memory
}

// IsHost reports whether node n is a host (and not a SmartNIC).
func (s *State) IsHost(n topology.NodeID) bool { return s.c.isHost(n) }

// NeedCores returns the cores instance i needs on node n.
func (s *State) NeedCores(i InstanceID, n topology.NodeID) float64 { return s.p.needCores(i, n) }

func (s *State) bump(n topology.NodeID, d Usage, sign float64) {
	if s.slot == nil {
		s.slot = make(map[topology.NodeID]int32)
	}
	k, ok := s.slot[n]
	if !ok {
		k = int32(len(s.touched))
		s.slot[n] = k
		s.touched = append(s.touched, n)
		s.delta = append(s.delta, Usage{})
	}
	s.delta[k].add(d, sign)
}

// Assign puts instance i on node n, moving it if it was elsewhere. It
// does not check constraints (see [State.Check]); it fails only for an
// instance the problem lists as deployed, or IDs out of range.
func (s *State) Assign(i InstanceID, n topology.NodeID) error {
	if i < 0 || int(i) >= len(s.assign) || n < 0 || int(n) >= len(s.c.capCores) {
		return fmt.Errorf("placement: Assign(%d, %d): out of range", i, n)
	}
	if s.p.instances[i].Deployed >= 0 {
		return fmt.Errorf("placement: Assign: %s is deployed on %s and stays there", s.p.instances[i].Name, s.c.topo.Name(s.p.instances[i].Deployed))
	}
	if s.assign[i] >= 0 {
		s.Unassign(i)
	}
	s.account(i, n, +1)
	s.assign[i] = n
	return nil
}

// Unassign takes instance i off its node, if it has one and is not
// deployed.
func (s *State) Unassign(i InstanceID) {
	n := s.assign[i]
	if n < 0 || s.p.instances[i].Deployed >= 0 {
		return
	}
	s.assign[i] = Unassigned
	s.account(i, n, -1)
}

// account adds (sign +1) or removes (-1) what instance i on node n uses:
// its cores and memory on n and the traffic of its edges to assigned
// neighbours, on both ends.
func (s *State) account(i InstanceID, n topology.NodeID, sign float64) {
	in := &s.p.instances[i]
	s.bump(n, Usage{Cores: s.p.needCores(i, n), MemoryMB: in.MemoryMB}, sign)
	for _, d := range s.trafficDeltas(i, n) {
		s.bump(d.node, Usage{TxGbps: d.tx, RxGbps: d.rx}, sign)
	}
}

// Check runs every checker for instance i on node n and returns the first
// rejection, or the zero Rejection if n fits. If i is assigned it is
// judged as if moved from its node to n.
func (s *State) Check(i InstanceID, n topology.NodeID) Rejection {
	if old := s.assign[i]; old >= 0 && s.p.instances[i].Deployed < 0 {
		s.Unassign(i)
		defer s.Assign(i, old)
	}
	// The checkers of Checkers(), called directly rather than through the
	// interface: this is the innermost loop of every placer.
	if r := (PinCheck{}).Check(s, i, n); !r.OK() {
		return r
	}
	if r := (FaultDomainCheck{}).Check(s, i, n); !r.OK() {
		return r
	}
	if r := (MemoryCheck{}).Check(s, i, n); !r.OK() {
		return r
	}
	if r := (CPUCheck{}).Check(s, i, n); !r.OK() {
		return r
	}
	return BandwidthCheck{}.Check(s, i, n)
}

// Shortfall returns how far node n is from fitting instance i: 0 if it
// fits, infinity if a hard constraint (pin, fault domain) rejects it, and
// otherwise the largest missing fraction of any capacity, with the
// rejection that sets it. find_first_fit uses it to name the node closest
// to fitting when none fits.
func (s *State) Shortfall(i InstanceID, n topology.NodeID) (float64, Rejection) {
	if old := s.assign[i]; old >= 0 && s.p.instances[i].Deployed < 0 {
		s.Unassign(i)
		defer s.Assign(i, old)
	}
	worst, why := 0.0, Rejection{}
	for _, c := range checkers {
		r := c.Check(s, i, n)
		if f := r.Shortfall(); !r.OK() && (why.OK() || f > worst) {
			worst, why = f, r
			if math.IsInf(f, 1) {
				break
			}
		}
	}
	return worst, why
}

// Touched yields the nodes whose use the state changed, with the change.
func (s *State) Touched() iter.Seq2[topology.NodeID, Usage] {
	return func(yield func(topology.NodeID, Usage) bool) {
		for k, n := range s.touched {
			if !yield(n, s.delta[k]) {
				return
			}
		}
	}
}

// need returns the lower bounds the free-capacity index filters with.
func (s *State) need(i InstanceID) need {
	in := &s.p.instances[i]
	q := need{hostCores: math.Inf(1), nicCores: math.Inf(1), mem: in.MemoryMB}
	minDemand := func(kinds uint8) float64 {
		d := math.Inf(1)
		for k := range numCoreKinds {
			if kinds&(1<<k) != 0 {
				d = min(d, in.Demand[k])
			}
		}
		return in.RPS * d
	}
	hostOK := in.Pin != PinSmartNIC
	nicOK := in.Pin != PinHost && !in.NonMigratable
	if hostOK {
		q.hostCores = 0
		if in.RPS > 0 {
			q.hostCores = minDemand(s.c.hostKinds)
		}
	}
	if nicOK {
		q.nicCores = 0
		if in.RPS > 0 {
			q.nicCores = minDemand(s.c.nicKinds)
		}
	}
	return q
}

// mayFit is the index's test for one node: committed free cores and
// memory cover i's need. A node that fails it fails the CPU or memory
// checker too, since the state only adds to the Load.
func (s *State) mayFit(i InstanceID, n topology.NodeID) bool {
	u := &s.p.load.use[n]
	in := &s.p.instances[i]
	// A zero need fits anywhere, as the checkers say, even on a node whose
	// free capacity went negative (a promoted backup can overcommit one).
	cores := s.p.needCores(i, n)
	return (cores == 0 || s.c.capCores[n]-u.Cores+indexSlack >= cores) &&
		(in.MemoryMB == 0 || s.c.capMem[n]-u.MemoryMB+indexSlack >= in.MemoryMB)
}

// LevelCandidates yields, in ID order, the nodes at level l as seen from
// node from that may fit instance i: the nodes of topology.LevelNodes,
// minus, unless the problem asks for explanations, those the free-capacity
// index shows to lack cores or memory (they would fail the CPU or memory
// checker anyway). The caller still runs [State.Check] on each.
func (s *State) LevelCandidates(i InstanceID, from topology.NodeID, l topology.Level) iter.Seq[topology.NodeID] {
	return func(yield func(topology.NodeID) bool) {
		if s.p.Explain || l <= topology.SameServer {
			for n := range s.c.topo.LevelNodes(from, l) {
				if (s.p.Explain || s.mayFit(i, n)) && !yield(n) {
					return
				}
			}
			return
		}
		q := s.need(i)
		hosts := l%2 == 1 // the odd levels above SameServer are hosts
		if hosts {
			q.nicCores = math.Inf(1)
		} else {
			q.hostCores = math.Inf(1)
		}
		inLo, inHi, outLo, outHi := s.c.levelRuns(from, l)
		if !s.walk(i, &q, outLo, inLo, hosts, !hosts, yield) {
			return
		}
		s.walk(i, &q, inHi, outHi, hosts, !hosts, yield)
	}
}

// ScanCandidates yields every node that may fit instance i in
// find_first_fit's fixed scan order: servers in ID order, and within a
// server the kind the instance prefers for energy first
// ([Instance.PreferSmartNIC]), SmartNICs in slot order. Like
// LevelCandidates it skips, unless explaining, nodes the index shows full.
func (s *State) ScanCandidates(i InstanceID) iter.Seq[topology.NodeID] {
	return func(yield func(topology.NodeID) bool) {
		nicFirst := s.p.instances[i].PreferSmartNIC()
		if s.p.Explain {
			for srv := range topology.ServerID(s.c.topo.NumServers()) {
				if !s.serverNodes(i, srv, true, true, nicFirst, false, yield) {
					return
				}
			}
			return
		}
		q := s.need(i)
		ns := s.c.topo.NumServers()
		for srv := s.p.load.idx.first(0, ns, &q); srv >= 0; srv = s.p.load.idx.first(srv+1, ns, &q) {
			b := s.p.load.idx.leafBounds(topology.ServerID(srv))
			if !s.serverNodes(i, topology.ServerID(srv), q.host(b), q.nic(b), nicFirst, true, yield) {
				return
			}
		}
	}
}

// walk yields the candidate nodes of the given kinds on servers [lo, hi).
func (s *State) walk(i InstanceID, q *need, lo, hi topology.ServerID, hosts, nics bool, yield func(topology.NodeID) bool) bool {
	idx := &s.p.load.idx
	for srv := idx.first(int(lo), int(hi), q); srv >= 0; srv = idx.first(srv+1, int(hi), q) {
		if !s.serverNodes(i, topology.ServerID(srv), hosts, nics, false, true, yield) {
			return false
		}
	}
	return true
}

// serverNodes yields server srv's host and/or SmartNICs, SmartNICs first
// if nicFirst, skipping nodes that cannot fit when filter is set.
func (s *State) serverNodes(i InstanceID, srv topology.ServerID, host, nics, nicFirst, filter bool, yield func(topology.NodeID) bool) bool {
	h, end := s.c.serverHost[srv], s.c.serverHost[srv+1]
	try := func(n topology.NodeID) bool { return (filter && !s.mayFit(i, n)) || yield(n) }
	if host && !nicFirst && !try(h) {
		return false
	}
	if nics {
		for n := h + 1; n < end; n++ {
			if !try(n) {
				return false
			}
		}
	}
	if host && nicFirst && !try(h) {
		return false
	}
	return true
}

// levelRuns returns the servers of level l >= RackSmartNIC as seen from
// node from: the servers of the enclosing rack, pod or cluster [outLo,
// outHi) minus those of the nested one [inLo, inHi), as topology's level
// walk defines them.
func (c *Cluster) levelRuns(from topology.NodeID, l topology.Level) (inLo, inHi, outLo, outHi topology.ServerID) {
	t := c.topo
	s := t.ServerOf(from)
	rk := t.Rack(t.Server(s).Rack)
	rackLo, rackHi := rk.FirstServer, rk.FirstServer+topology.ServerID(rk.Servers)
	switch l {
	case topology.RackSmartNIC, topology.RackHost:
		return s, s + 1, rackLo, rackHi
	case topology.PodSmartNIC, topology.PodHost:
		return rackLo, rackHi, c.podLo[rk.Pod], c.podHi[rk.Pod]
	default:
		return c.podLo[rk.Pod], c.podHi[rk.Pod], 0, topology.ServerID(t.NumServers())
	}
}
