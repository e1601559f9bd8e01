package placement

import "github.com/e3-platform/e3/topology"

// PackByMemory places p's instances "as many on SmartNICs as fit in
// memory", the starting point of experiment X6: CPU is ignored on
// purpose, so the SmartNICs end up overloaded or starving their hosts and
// the data-plane orchestrator has something to correct. Primaries come
// first, then backups; each goes on the next SmartNIC in turn that the
// pinning, fault-domain and memory checkers accept, else on the next such
// host (round-robin cursors, one per kind, so the load spreads over the
// servers). Instances no node takes stay Unassigned.
//
// The simulator's X6 (package experiments) and the emulated cluster's
// (package cluster) both pack with it, so the two engines start from the
// same placement.
func PackByMemory(p *Problem) Assignment {
	topo := p.Topology()
	var nics, hosts []topology.NodeID
	for n := range topo.Nodes() {
		if topo.Node(n).Kind == topology.SmartNIC {
			nics = append(nics, n)
		} else {
			hosts = append(hosts, n)
		}
	}
	s := NewState(p)
	checks := []Checker{PinCheck{}, FaultDomainCheck{}, MemoryCheck{}}
	cursor := [2]int{} // next SmartNIC, next host
	place := func(i InstanceID, nodes []topology.NodeID, k int) bool {
		for j := range nodes {
			n := nodes[(cursor[k]+j)%len(nodes)]
			ok := true
			for _, c := range checks {
				if !c.Check(s, i, n).OK() {
					ok = false
					break
				}
			}
			if ok && s.Assign(i, n) == nil {
				cursor[k] = (cursor[k] + j + 1) % len(nodes)
				return true
			}
		}
		return false
	}
	for _, backups := range []bool{false, true} {
		for i := range p.NumInstances() {
			id := InstanceID(i)
			if p.Instance(id).IsBackup() != backups {
				continue
			}
			if len(nics) > 0 && place(id, nics, 0) {
				continue
			}
			place(id, hosts, 1)
		}
	}
	return s.Assignment()
}
