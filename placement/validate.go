package placement

import (
	"fmt"
	"slices"

	"github.com/e3-platform/e3/topology"
)

// Violation is one broken constraint in an assignment.
type Violation struct {
	// Constraint is the rule broken; NoConstraint for an assignment that
	// does not fit the problem's shape at all.
	Constraint Constraint
	// Instance is the instance at fault, or None for a node over capacity.
	Instance InstanceID
	// Node is the node concerned, or Unassigned.
	Node   topology.NodeID
	Detail string
}

func (v Violation) String() string { return v.Constraint.String() + ": " + v.Detail }

// validateSlack tolerates the different order of floating-point sums here
// and in the incremental checkers.
const validateSlack = 1e-6

// Validate checks a finished assignment of p against every constraint,
// from scratch: it sums what the assignment adds to the Load node by node
// and port by port, without the incremental bookkeeping of [State] or the
// checkers, so that tests can hold any algorithm's output to the rules
// independently of the code the algorithms share. Unassigned instances
// break nothing (a placer reports them as unplaced); deployed instances
// count as part of the Load already. It returns nil if nothing is broken.
func Validate(p *Problem, a Assignment) []Violation {
	if err := p.Err(); err != nil {
		return []Violation{{Instance: None, Node: Unassigned, Detail: err.Error()}}
	}
	if err := checkShape(p, a); err != nil {
		return []Violation{{Instance: None, Node: Unassigned, Detail: err.Error()}}
	}
	c := p.Cluster()
	t := c.topo
	lim, _ := p.Limits.effective()
	var out []Violation
	isHost := func(n topology.NodeID) bool { return t.Node(n).Kind == topology.Host }

	// Pinning.
	for i, n := range a {
		in := &p.instances[i]
		if n < 0 {
			continue
		}
		host := isHost(n)
		if (in.NonMigratable || in.Pin == PinHost) && !host || in.Pin == PinSmartNIC && host {
			out = append(out, Violation{ConstraintPin, InstanceID(i), n,
				fmt.Sprintf("%s (pin %s, migratable %v) on %s, a %s", in.Name, in.Pin, !in.NonMigratable, t.Name(n), t.Node(n).Kind)})
		}
	}

	// Fault domains: the replicas of a shard on distinct servers.
	for i := range p.instances {
		group := p.replicas[i]
		for x := range group {
			for y := x + 1; y < len(group); y++ {
				nx, ny := a[group[x]], a[group[y]]
				if nx >= 0 && ny >= 0 && t.ServerOf(nx) == t.ServerOf(ny) {
					out = append(out, Violation{ConstraintFaultDomain, group[y], ny,
						fmt.Sprintf("%s on %s and %s on %s share server %s", p.instances[group[x]].Name, t.Name(nx),
							p.instances[group[y]].Name, t.Name(ny), t.ServerName(t.ServerOf(ny)))})
				}
			}
		}
	}

	// What the assignment adds, node by node.
	added := map[topology.NodeID]*Usage{}
	at := func(n topology.NodeID) *Usage {
		u := added[n]
		if u == nil {
			u = &Usage{}
			added[n] = u
		}
		return u
	}
	isNew := func(i InstanceID) bool { return a[i] >= 0 && p.instances[i].Deployed < 0 }
	for i, n := range a {
		if !isNew(InstanceID(i)) {
			continue
		}
		in := &p.instances[i]
		u := at(n)
		u.Cores += in.RPS * in.Demand[c.coreKind[n]]
		u.MemoryMB += in.MemoryMB
		g := in.IngressRPS * in.Bytes * 8 / 1e9
		u.TxGbps += g
		u.RxGbps += g
	}
	for _, e := range p.edges {
		na, nb := a[e.From], a[e.To]
		if na < 0 || nb < 0 || !(isNew(e.From) || isNew(e.To)) {
			continue
		}
		if t.Path(na, nb).SwitchHops == 0 {
			continue // same node, or a host and its own SmartNIC
		}
		g := e.RPS * e.Bytes * 8 / 1e9
		at(na).TxGbps += g
		at(nb).RxGbps += g
	}

	over := func(total, limit float64) bool { return total > limit+validateSlack*max(1, limit) }
	servers := map[topology.ServerID]bool{}
	for _, n := range sortedNodes(added) {
		d := added[n]
		base := p.load.use[n]
		nd := t.Node(n)
		if lc := float64(nd.Cores) * lim.CPU; d.Cores > 0 && over(base.Cores+d.Cores, lc) {
			out = append(out, Violation{ConstraintCPU, None, n, fmt.Sprintf("%s: %.4g busy cores, limit %.4g", t.Name(n), base.Cores+d.Cores, lc)})
		}
		if lm := float64(nd.MemoryMB) * lim.Memory; d.MemoryMB > 0 && over(base.MemoryMB+d.MemoryMB, lm) {
			out = append(out, Violation{ConstraintMemory, None, n, fmt.Sprintf("%s: %.0f MB in use, limit %.0f MB", t.Name(n), base.MemoryMB+d.MemoryMB, lm)})
		}
		if d.TxGbps > 0 || d.RxGbps > 0 {
			servers[t.ServerOf(n)] = true
		}
	}

	// Ports, server by server, with the host's traffic spread over its
	// SmartNICs' ports when it has no ports of its own.
	for _, srv := range sortedServers(servers) {
		sv := t.Server(srv)
		host := t.Node(sv.Host)
		type port struct {
			n             topology.NodeID
			capGbps       float64
			base, add     [2]float64 // tx, rx
			carryHostFrac float64
		}
		var ports []port
		totalNIC := 0.0
		for n := range t.ServerNodes(srv) {
			nd := t.Node(n)
			if nd.Kind == topology.SmartNIC {
				totalNIC += float64(nd.Ports) * nd.PortGbps
			}
		}
		for n := range t.ServerNodes(srv) {
			nd := t.Node(n)
			if nd.Kind == topology.Host && host.Ports == 0 {
				continue // carried by the SmartNICs below
			}
			pt := port{n: n, capGbps: float64(nd.Ports) * nd.PortGbps}
			if nd.Kind == topology.SmartNIC && host.Ports == 0 {
				pt.carryHostFrac = pt.capGbps / totalNIC
			}
			ports = append(ports, pt)
		}
		hb, ha := p.load.use[sv.Host], added[sv.Host]
		for _, pt := range ports {
			b, d := p.load.use[pt.n], added[pt.n]
			base := [2]float64{b.TxGbps + pt.carryHostFrac*hb.TxGbps, b.RxGbps + pt.carryHostFrac*hb.RxGbps}
			var add [2]float64
			if d != nil {
				add[0], add[1] = d.TxGbps, d.RxGbps
			}
			if ha != nil {
				add[0] += pt.carryHostFrac * ha.TxGbps
				add[1] += pt.carryHostFrac * ha.RxGbps
			}
			for dir, name := range [2]string{"tx", "rx"} {
				if limit := pt.capGbps * lim.Network; add[dir] > 0 && over(base[dir]+add[dir], limit) {
					out = append(out, Violation{ConstraintBandwidth, None, pt.n,
						fmt.Sprintf("%s ports: %.4g Gb/s %s, limit %.4g Gb/s", t.Name(pt.n), base[dir]+add[dir], name, limit)})
				}
			}
		}
	}
	return out
}

func sortedNodes(m map[topology.NodeID]*Usage) []topology.NodeID {
	out := make([]topology.NodeID, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func sortedServers(m map[topology.ServerID]bool) []topology.ServerID {
	out := make([]topology.ServerID, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}
