package annealing

import (
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// explain describes the final state instance by instance. A global search
// has no per-instance decision sequence to show, so each explanation is
// the constraint elimination over the whole cluster as the result stands:
// every node judged for the instance as if it were moved there, how many
// each constraint eliminates (with examples), how many would take it. The
// ancestor is the instance's nearest placed upstream neighbour (a backup's
// primary), for the level.
func explain(s *placement.State) []placement.Explanation {
	p := s.Problem()
	t := p.Topology()
	levels := placement.Levels(p, s.Assignment())
	out := make([]placement.Explanation, p.NumInstances())
	for i := range out {
		id := placement.InstanceID(i)
		in := p.Instance(id)
		e := &out[i]
		*e = placement.Explanation{Instance: id, Node: s.Node(id), How: placement.HowSearch, Ancestor: placement.None}
		switch {
		case in.Deployed >= 0:
			e.How = placement.HowDeployed
			continue
		case e.Node < 0:
			e.How = placement.HowUnplaced
		}
		if levels[i] != placement.NoLevel {
			e.Ancestor, e.Level = ancestor(s, id, levels[i]), levels[i]
		}
		for n := range t.Nodes() {
			if rej := s.Check(id, n); rej.OK() {
				e.Accept()
			} else {
				e.Reject(n, rej)
			}
		}
	}
	return out
}

// ancestor returns the placed upstream neighbour of i (its primary, for a
// backup) from whose node i's node is at level l.
func ancestor(s *placement.State, i placement.InstanceID, l topology.Level) placement.InstanceID {
	p := s.Problem()
	t := p.Topology()
	if pr := p.Instance(i).Primary; pr != placement.None {
		return pr
	}
	for _, e := range p.In(i) {
		from := p.Edge(e).From
		if m := s.Node(from); m >= 0 && t.Distance(m, s.Node(i)) == l {
			return from
		}
	}
	return placement.None
}
