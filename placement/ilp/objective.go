package ilp

import (
	"fmt"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/annealing"
)

// Objective evaluates the model's objective for assignment a of p,
// directly from its definition (see [Model]) rather than through the LP:
// Balance times the largest CPU utilisation of any node, Interference
// times the pairs of active instances sharing a node over
// annealing.Norms' pairs, Communication times the sum of traffic x
// placement.Hops over its traffic scale. Unassigned instances count
// nothing. Tests hold cbc's optimum to the least Objective over every
// feasible assignment of small problems.
func Objective(p *placement.Problem, a placement.Assignment, w Weights) (float64, error) {
	if err := p.Err(); err != nil {
		return 0, err
	}
	if len(a) != p.NumInstances() {
		return 0, fmt.Errorf("ilp: assignment of %d instances for a problem of %d", len(a), p.NumInstances())
	}
	w = w.orDefault()
	t := p.Topology()
	c := p.Cluster()
	s := placement.NewState(p)
	busy := make(map[int32]float64)
	count := make(map[int32]int)
	for i, n := range a {
		id := placement.InstanceID(i)
		if n < 0 {
			continue
		}
		if p.Instance(id).Deployed < 0 {
			busy[int32(n)] += s.NeedCores(id, n)
		}
		if isActive(p.Instance(id)) {
			count[int32(n)]++
		}
	}
	u := 0.0
	for n := range t.Nodes() {
		cores, _, _ := c.Capacity(n)
		if cores > 0 {
			u = max(u, (p.Load().Usage(n).Cores+busy[int32(n)])/cores)
		}
	}
	pairs := 0.0
	for _, k := range count {
		pairs += float64(k) * float64(k-1) / 2
	}
	comm := 0.0
	for e := range p.NumEdges() {
		ed := p.Edge(placement.EdgeID(e))
		if x, y := a[ed.From], a[ed.To]; x >= 0 && y >= 0 {
			comm += ed.Gbps() * float64(placement.Hops(t, x, y))
		}
	}
	pairsNorm, commNorm := annealing.Norms(p)
	return w.Balance*u + w.Interference*pairs/pairsNorm + w.Communication*comm/commNorm, nil
}
