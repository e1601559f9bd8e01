package placement

import (
	"fmt"
	"math"

	"github.com/e3-platform/e3/topology"
)

// Constraint names one rule a placement must obey.
type Constraint uint8

// The constraints, in the order the checkers run: the cheap and absolute
// ones first, so that a node is rejected for the most telling reason.
const (
	// NoConstraint is the Constraint of a Rejection that rejects nothing.
	NoConstraint Constraint = iota
	// ConstraintPin: host-pinned and non-migratable instances on hosts,
	// SmartNIC-pinned instances on SmartNICs.
	ConstraintPin
	// ConstraintFaultDomain: replicas of one shard on different servers
	// (a server and its SmartNICs share a power supply and fail together).
	ConstraintFaultDomain
	// ConstraintMemory: memory in use within the node's memory.
	ConstraintMemory
	// ConstraintCPU: busy cores within the node's cores.
	ConstraintCPU
	// ConstraintBandwidth: traffic within every NIC port's rate.
	ConstraintBandwidth
	// NumConstraints is the number of constraints plus one; not a
	// constraint.
	NumConstraints
)

var constraintNames = [NumConstraints]string{"none", "pin", "fault-domain", "memory", "cpu", "bandwidth"}

// String returns the constraint's short name, e.g. "fault-domain".
func (c Constraint) String() string {
	if c < NumConstraints {
		return constraintNames[c]
	}
	return fmt.Sprintf("Constraint(%d)", uint8(c))
}

// MarshalText writes the short name, so JSON output is readable.
func (c Constraint) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Hard reports whether no amount of freed capacity can lift the
// constraint: pinning and fault domains.
func (c Constraint) Hard() bool { return c == ConstraintPin || c == ConstraintFaultDomain }

// Why details a rejection beyond its constraint.
type Why uint8

// The details.
const (
	WhyNone Why = iota
	// WhyPinnedHost: the instance is pinned to hosts.
	WhyPinnedHost
	// WhyPinnedSmartNIC: the instance is pinned to SmartNICs.
	WhyPinnedSmartNIC
	// WhyNotMigratable: the service cannot migrate and runs on hosts.
	WhyNotMigratable
	// WhyTx and WhyRx: the outgoing or incoming direction of a port.
	WhyTx
	WhyRx
)

// Rejection is a checker's verdict on one node for one instance. The zero
// value rejects nothing.
type Rejection struct {
	Constraint Constraint
	Why        Why
	// Need is what the instance would add (MB, cores, Gb/s) and Free what
	// is left within the limit, for the capacity constraints.
	Need, Free float64
	// At is the node that lacks the resource (for bandwidth, a port's
	// node, which for a host behind SmartNICs is one of its SmartNICs) or
	// that holds the conflicting replica (fault domain); Unassigned if the
	// candidate itself.
	At topology.NodeID
	// Other is the replica sharing the server, for a fault domain.
	Other InstanceID
}

// OK reports whether the rejection rejects nothing.
func (r Rejection) OK() bool { return r.Constraint == NoConstraint }

// Shortfall measures how far a node is from satisfying the constraint:
// the missing part of the need as a fraction of it for capacities,
// infinity for the hard constraints, 0 when satisfied.
func (r Rejection) Shortfall() float64 {
	switch {
	case r.OK():
		return 0
	case r.Constraint.Hard():
		return math.Inf(1)
	case r.Need <= 0:
		return math.Inf(1) // a node already over its limit
	}
	return min(1, max(0, (r.Need-r.Free)/r.Need))
}

// String describes the rejection without names.
func (r Rejection) String() string { return r.describe(nil) }

// Describe describes the rejection with the names of p's instances and
// nodes, e.g. "memory: needs 1024 MB, 312 MB free".
func (r Rejection) Describe(p *Problem) string { return r.describe(p) }

func (r Rejection) describe(p *Problem) string {
	node := func(n topology.NodeID) string {
		if p == nil {
			return fmt.Sprintf("node %d", n)
		}
		return p.Topology().Name(n)
	}
	inst := func(i InstanceID) string {
		if p == nil || i < 0 || int(i) >= len(p.instances) {
			return fmt.Sprintf("instance %d", i)
		}
		return p.instances[i].Name
	}
	c := r.Constraint
	switch c {
	case NoConstraint:
		return "fits"
	case ConstraintPin:
		switch r.Why {
		case WhyNotMigratable:
			return "pin: not migratable, runs on hosts only, not on a SmartNIC"
		case WhyPinnedHost:
			return "pin: pinned to hosts, not a SmartNIC"
		case WhyPinnedSmartNIC:
			return "pin: pinned to SmartNICs, not a host"
		}
	case ConstraintFaultDomain:
		return fmt.Sprintf("fault-domain: replica %s is on %s, the same server", inst(r.Other), node(r.At))
	case ConstraintMemory:
		return fmt.Sprintf("memory: needs %.0f MB, %.0f MB free", r.Need, max(r.Free, 0))
	case ConstraintCPU:
		return fmt.Sprintf("cpu: needs %.3g cores, %.3g free", r.Need, max(r.Free, 0))
	case ConstraintBandwidth:
		dir := "tx"
		if r.Why == WhyRx {
			dir = "rx"
		}
		at := ""
		if r.At >= 0 {
			at = " on " + node(r.At) + "'s ports"
		}
		return fmt.Sprintf("bandwidth: needs %.3g Gb/s %s%s, %.3g Gb/s free", r.Need, dir, at, max(r.Free, 0))
	}
	return c.String()
}

// Checker decides one constraint for one instance on one node, given the
// placement so far. Every placement algorithm uses the same checkers, so
// they agree on what fits: HCM while it searches, annealing on every move,
// the ILP when it writes its constraints' right-hand sides, and
// [Validate] on any finished assignment.
type Checker interface {
	// Constraint names the constraint checked.
	Constraint() Constraint
	// Check returns the zero Rejection if instance i may go on node n in
	// state s, and why not otherwise. i must not be assigned in s.
	Check(s *State, i InstanceID, n topology.NodeID) Rejection
}

// Checkers returns the checkers of every constraint in the order they run.
func Checkers() []Checker { return append([]Checker(nil), checkers[:]...) }

var checkers = [...]Checker{PinCheck{}, FaultDomainCheck{}, MemoryCheck{}, CPUCheck{}, BandwidthCheck{}}

// Every checker implements Checker.
var (
	_ Checker = PinCheck{}
	_ Checker = FaultDomainCheck{}
	_ Checker = MemoryCheck{}
	_ Checker = CPUCheck{}
	_ Checker = BandwidthCheck{}
)

// capSlack absorbs floating-point error in capacity sums: a need within a
// billionth of the free capacity fits.
const capSlack = 1e-9

func exceeds(need, free float64) bool { return need > free+capSlack*max(1, math.Abs(free)) }

// PinCheck keeps host-pinned and non-migratable instances off SmartNICs
// and SmartNIC-pinned ones off hosts.
type PinCheck struct{}

// Constraint returns ConstraintPin.
func (PinCheck) Constraint() Constraint { return ConstraintPin }

// Check implements [Checker].
func (PinCheck) Check(s *State, i InstanceID, n topology.NodeID) Rejection {
	in := &s.p.instances[i]
	host := s.c.isHost(n)
	switch {
	case in.NonMigratable && !host:
		return Rejection{Constraint: ConstraintPin, Why: WhyNotMigratable, At: Unassigned, Other: None}
	case in.Pin == PinHost && !host:
		return Rejection{Constraint: ConstraintPin, Why: WhyPinnedHost, At: Unassigned, Other: None}
	case in.Pin == PinSmartNIC && host:
		return Rejection{Constraint: ConstraintPin, Why: WhyPinnedSmartNIC, At: Unassigned, Other: None}
	}
	return Rejection{}
}

// FaultDomainCheck keeps the replicas of a shard (its primary and backups)
// on different servers.
type FaultDomainCheck struct{}

// Constraint returns ConstraintFaultDomain.
func (FaultDomainCheck) Constraint() Constraint { return ConstraintFaultDomain }

// Check implements [Checker].
func (FaultDomainCheck) Check(s *State, i InstanceID, n topology.NodeID) Rejection {
	group := s.p.Replicas(i)
	if len(group) == 0 {
		return Rejection{}
	}
	srv := s.c.topo.ServerOf(n)
	for _, r := range group {
		if r == i {
			continue
		}
		if m := s.assign[r]; m >= 0 && s.c.topo.ServerOf(m) == srv {
			return Rejection{Constraint: ConstraintFaultDomain, At: m, Other: r}
		}
	}
	return Rejection{}
}

// MemoryCheck keeps memory in use within Limits.Memory of the node's.
type MemoryCheck struct{}

// Constraint returns ConstraintMemory.
func (MemoryCheck) Constraint() Constraint { return ConstraintMemory }

// Check implements [Checker].
func (MemoryCheck) Check(s *State, i InstanceID, n topology.NodeID) Rejection {
	need := s.p.instances[i].MemoryMB
	if need == 0 {
		return Rejection{}
	}
	free := s.c.capMem[n]*s.lim.Memory - s.Used(n).MemoryMB
	if exceeds(need, free) {
		return Rejection{Constraint: ConstraintMemory, Need: need, Free: free, At: Unassigned, Other: None}
	}
	return Rejection{}
}

// CPUCheck keeps busy cores within Limits.CPU of the node's cores. The
// cores an instance needs depend on the node: its message rate times the
// service's demand on the node's core kind (Table 1), so a service that
// the SmartNIC runs slowly needs more of its cores.
type CPUCheck struct{}

// Constraint returns ConstraintCPU.
func (CPUCheck) Constraint() Constraint { return ConstraintCPU }

// Check implements [Checker].
func (CPUCheck) Check(s *State, i InstanceID, n topology.NodeID) Rejection {
	need := s.p.needCores(i, n)
	if need == 0 {
		return Rejection{}
	}
	free := s.c.capCores[n]*s.lim.CPU - s.Used(n).Cores
	if exceeds(need, free) {
		return Rejection{Constraint: ConstraintCPU, Need: need, Free: free, At: Unassigned, Other: None}
	}
	return Rejection{}
}

// BandwidthCheck keeps the traffic through every NIC port within
// Limits.Network of its rate.
//
// The traffic model: a message costs port bandwidth only when its path
// crosses a switch (topology.Path's SwitchHops > 0): between servers, and
// between two SmartNICs of one server, which talk through the ToR (§3.1).
// Messages on one node or between a host and its own SmartNIC (PCIe) cost
// none; the PCIe link itself is not modelled as a limit (63 Gb/s against
// at most 2 x 10 Gb/s of ports per LiquidIO). A SmartNIC's traffic uses its
// own ports. A host with plain NIC ports uses those; a host without them is
// reached through all of its SmartNICs' ports by ECMP, so its traffic is
// spread over them in proportion to their rates and each SmartNIC's ports
// must carry their own traffic plus their share of the host's. Client
// requests of a source instance arrive from outside the cluster and as
// many replies of the same size leave. Each direction is checked
// separately (links are full duplex).
type BandwidthCheck struct{}

// Constraint returns ConstraintBandwidth.
func (BandwidthCheck) Constraint() Constraint { return ConstraintBandwidth }

// Check implements [Checker].
func (BandwidthCheck) Check(s *State, i InstanceID, n topology.NodeID) Rejection {
	d := s.trafficDeltas(i, n)
	if len(d) == 0 {
		return Rejection{}
	}
	// Check every server that gains traffic, each once.
	for k := range d {
		srv := s.c.topo.ServerOf(d[k].node)
		seen := false
		for j := range k {
			if s.c.topo.ServerOf(d[j].node) == srv {
				seen = true
				break
			}
		}
		if seen {
			continue
		}
		if r := s.serverPorts(srv, d); !r.OK() {
			return r
		}
	}
	return Rejection{}
}

// portDelta is traffic a placement would add to a node's ports.
type portDelta struct {
	node   topology.NodeID
	tx, rx float64
}

// trafficDeltas returns the port traffic that placing i on n adds, per
// node, in s.scratch.
func (s *State) trafficDeltas(i InstanceID, n topology.NodeID) []portDelta {
	p := s.p
	d := s.scratch[:0]
	add := func(node topology.NodeID, tx, rx float64) {
		for k := range d {
			if d[k].node == node {
				d[k].tx += tx
				d[k].rx += rx
				return
			}
		}
		d = append(d, portDelta{node, tx, rx})
	}
	if g := p.ingressGbps(i); g > 0 {
		add(n, g, g)
	}
	for _, e := range p.out[i] {
		ed := &p.edges[e]
		if m := s.assign[ed.To]; m >= 0 && s.c.crossesPorts(n, m) {
			if g := ed.Gbps(); g > 0 {
				add(n, g, 0)
				add(m, 0, g)
			}
		}
	}
	for _, e := range p.in[i] {
		ed := &p.edges[e]
		if m := s.assign[ed.From]; m >= 0 && s.c.crossesPorts(m, n) {
			if g := ed.Gbps(); g > 0 {
				add(m, g, 0)
				add(n, 0, g)
			}
		}
	}
	s.scratch = d
	return d
}

// serverPorts checks the ports of server srv with the extra traffic d
// (entries for other servers are ignored).
func (s *State) serverPorts(srv topology.ServerID, d []portDelta) Rejection {
	c := s.c
	lim := s.lim.Network
	h, end := c.serverHost[srv], c.serverHost[srv+1]
	extra := func(n topology.NodeID) (tx, rx float64) {
		for k := range d {
			if d[k].node == n {
				return d[k].tx, d[k].rx
			}
		}
		return 0, 0
	}
	check := func(at topology.NodeID, capGbps, beforeTx, afterTx, beforeRx, afterRx float64) Rejection {
		limit := capGbps * lim
		if afterTx > beforeTx && exceeds(afterTx-beforeTx, limit-beforeTx) {
			return Rejection{Constraint: ConstraintBandwidth, Why: WhyTx, Need: afterTx - beforeTx, Free: limit - beforeTx, At: at, Other: None}
		}
		if afterRx > beforeRx && exceeds(afterRx-beforeRx, limit-beforeRx) {
			return Rejection{Constraint: ConstraintBandwidth, Why: WhyRx, Need: afterRx - beforeRx, Free: limit - beforeRx, At: at, Other: None}
		}
		return Rejection{}
	}
	if !c.hostBehindNICs[srv] {
		for n := h; n < end; n++ {
			tx, rx := extra(n)
			if tx == 0 && rx == 0 {
				continue
			}
			u := s.Used(n)
			if r := check(n, c.capNet[n], u.TxGbps, u.TxGbps+tx, u.RxGbps, u.RxGbps+rx); !r.OK() {
				return r
			}
		}
		return Rejection{}
	}
	htx, hrx := extra(h)
	hu := s.Used(h)
	total := 0.0
	for n := h + 1; n < end; n++ {
		total += c.capNet[n]
	}
	for n := h + 1; n < end; n++ {
		tx, rx := extra(n)
		if tx == 0 && rx == 0 && htx == 0 && hrx == 0 {
			continue
		}
		share := c.capNet[n] / total
		u := s.Used(n)
		bt, br := u.TxGbps+hu.TxGbps*share, u.RxGbps+hu.RxGbps*share
		if r := check(n, c.capNet[n], bt, bt+tx+htx*share, br, br+rx+hrx*share); !r.OK() {
			return r
		}
	}
	return Rejection{}
}

// isHost reports whether node n is a host.
func (c *Cluster) isHost(n topology.NodeID) bool {
	return c.serverHost[c.topo.ServerOf(n)] == n
}

// crossesPorts reports whether a message from a to b goes through a NIC
// port: everything but a node to itself and a host to or from its own
// SmartNIC (PCIe). Two SmartNICs of one server talk through the ToR.
func (c *Cluster) crossesPorts(a, b topology.NodeID) bool {
	if a == b {
		return false
	}
	sa := c.topo.ServerOf(a)
	if sa != c.topo.ServerOf(b) {
		return true
	}
	h := c.serverHost[sa]
	return a != h && b != h
}
