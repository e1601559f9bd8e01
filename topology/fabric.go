package topology

import (
	"fmt"
	"iter"
)

// SwitchID names a switch. IDs are dense: the ToR of rack r is SwitchID(r),
// then come the aggregation switches pod by pod, then the core switches.
// Switches and links are derived from the racks and the [Fabric] when asked
// for, so they cost no memory.
type SwitchID int32

// Tier is the layer of a switch.
type Tier uint8

// The switch tiers, bottom up.
const (
	TierToR Tier = iota
	TierAggregation
	TierCore
)

// String returns "tor", "aggregation" or "core".
func (t Tier) String() string {
	switch t {
	case TierToR:
		return "tor"
	case TierAggregation:
		return "aggregation"
	case TierCore:
		return "core"
	}
	return fmt.Sprintf("Tier(%d)", uint8(t))
}

// Switch describes one switch.
type Switch struct {
	ID   SwitchID
	Tier Tier
	// Pod is the pod of a ToR or aggregation switch, -1 for a core switch.
	Pod PodID
	// Rack is the rack of a ToR, -1 otherwise.
	Rack RackID
	// Index is the position within the pod for an aggregation switch and
	// among all core switches for a core switch; for a ToR it equals Rack.
	Index int
}

// aggPerPod and numCore give the counts of the upper tiers, which exist
// only when some path needs them.
func (t *Topology) aggPerPod() int {
	if t.NumRacks() < 2 {
		return 0
	}
	return t.fabric.AggregationPerPod
}

func (t *Topology) numCore() int {
	if t.NumPods() < 2 {
		return 0
	}
	return t.fabric.AggregationPerPod * t.fabric.CoreUplinks
}

// NumSwitches returns the number of switches of all tiers.
func (t *Topology) NumSwitches() int {
	return t.NumRacks() + t.NumPods()*t.aggPerPod() + t.numCore()
}

// Fabric returns the switch fabric above the ToRs, defaults filled in.
func (t *Topology) Fabric() Fabric { return t.fabric }

// ToR returns the top-of-rack switch of rack r.
func (t *Topology) ToR(r RackID) SwitchID { return SwitchID(r) }

// Switch returns the description of switch id. It panics if id is not a
// switch of t.
func (t *Topology) Switch(id SwitchID) Switch {
	i := int(id)
	if i < 0 || i >= t.NumSwitches() {
		panic(fmt.Sprintf("topology: switch %d out of range [0,%d)", id, t.NumSwitches()))
	}
	if i < t.NumRacks() {
		return Switch{ID: id, Tier: TierToR, Pod: t.rackPod[i], Rack: RackID(i), Index: i}
	}
	i -= t.NumRacks()
	if a := t.aggPerPod(); i < t.NumPods()*a {
		return Switch{ID: id, Tier: TierAggregation, Pod: PodID(i / a), Rack: -1, Index: i % a}
	}
	i -= t.NumPods() * t.aggPerPod()
	return Switch{ID: id, Tier: TierCore, Pod: -1, Rack: -1, Index: i}
}

// aggSwitch returns aggregation switch i of pod p.
func (t *Topology) aggSwitch(p PodID, i int) SwitchID {
	return SwitchID(t.NumRacks() + int(p)*t.aggPerPod() + i)
}

// coreSwitch returns core switch j.
func (t *Topology) coreSwitch(j int) SwitchID {
	return SwitchID(t.NumRacks() + t.NumPods()*t.aggPerPod() + j)
}

// SwitchName returns a stable name: "r3/tor", "p1/agg2" or "core17".
func (t *Topology) SwitchName(id SwitchID) string {
	sw := t.Switch(id)
	switch sw.Tier {
	case TierToR:
		return fmt.Sprintf("r%d/tor", sw.Rack)
	case TierAggregation:
		return fmt.Sprintf("p%d/agg%d", sw.Pod, sw.Index)
	}
	return fmt.Sprintf("core%d", sw.Index)
}

// LinkKind tells the kinds of link apart.
type LinkKind uint8

// The kinds of link, bottom up.
const (
	// PCIeLink joins a SmartNIC to its host.
	PCIeLink LinkKind = iota
	// AccessLink joins a NIC port (of a SmartNIC, or a host's plain NIC)
	// to the rack's ToR.
	AccessLink
	// ToRAggLink joins a ToR to an aggregation switch of its pod.
	ToRAggLink
	// AggCoreLink joins an aggregation switch to a core switch.
	AggCoreLink
)

// String returns "pcie", "access", "tor-agg" or "agg-core".
func (k LinkKind) String() string {
	switch k {
	case PCIeLink:
		return "pcie"
	case AccessLink:
		return "access"
	case ToRAggLink:
		return "tor-agg"
	case AggCoreLink:
		return "agg-core"
	}
	return fmt.Sprintf("LinkKind(%d)", uint8(k))
}

// End is one end of a link: a compute node (with a port, for an access
// link) or a switch.
type End struct {
	// Node is the compute node at this end, -1 at a switch.
	Node NodeID
	// Port is the NIC port of Node for an access link, -1 otherwise.
	Port int
	// Switch is the switch at this end, -1 at a compute node.
	Switch SwitchID
}

// Link is a full-duplex link with Gbps in each direction.
type Link struct {
	Kind LinkKind
	// A is the end nearer the servers (the host for a PCIe link), B the
	// other end (the SmartNIC, or the switch above).
	A, B End
	Gbps float64
}

func nodeEnd(n NodeID, port int) End { return End{Node: n, Port: port, Switch: -1} }
func switchEnd(s SwitchID) End       { return End{Node: -1, Port: -1, Switch: s} }

// Port is one network port of a compute node: port Index of Node.
type Port struct {
	Node  NodeID
	Index int
}

// HostPorts returns the ports through which the ToR reaches the host of
// server s, the ECMP group of the host's address: the host's plain NIC
// ports if the server has any, otherwise every port of every SmartNIC of
// the server (the SmartNIC forwards the host's traffic over PCIe). The
// runtime hashes a flow's 5-tuple to pick one. The slice is new on each
// call.
func (t *Topology) HostPorts(s ServerID) []Port {
	host := t.serverFirst[s]
	spec := &t.specs[t.serverSpec[s]]
	if spec.NICPorts > 0 {
		ports := make([]Port, spec.NICPorts)
		for i := range ports {
			ports[i] = Port{Node: host, Index: i}
		}
		return ports
	}
	n := 0
	for _, nic := range spec.SmartNICs {
		n += nic.Ports
	}
	ports := make([]Port, 0, n)
	for i, nic := range spec.SmartNICs {
		for p := range nic.Ports {
			ports = append(ports, Port{Node: host + 1 + NodeID(i), Index: p})
		}
	}
	return ports
}

// ServerLinks yields the links of server s: a PCIe link per SmartNIC, then
// an access link per port (the host's plain ports, then each SmartNIC's).
func (t *Topology) ServerLinks(s ServerID) iter.Seq[Link] {
	return func(yield func(Link) bool) { t.serverLinks(s, yield) }
}

func (t *Topology) serverLinks(s ServerID, yield func(Link) bool) bool {
	host := t.serverFirst[s]
	spec := &t.specs[t.serverSpec[s]]
	tor := switchEnd(t.ToR(t.serverRack[s]))
	for i, nic := range spec.SmartNICs {
		if !yield(Link{Kind: PCIeLink, A: nodeEnd(host, -1), B: nodeEnd(host+1+NodeID(i), -1), Gbps: nic.HostLinkGbps}) {
			return false
		}
	}
	for p := range spec.NICPorts {
		if !yield(Link{Kind: AccessLink, A: nodeEnd(host, p), B: tor, Gbps: spec.NICGbps}) {
			return false
		}
	}
	for i, nic := range spec.SmartNICs {
		for p := range nic.Ports {
			if !yield(Link{Kind: AccessLink, A: nodeEnd(host+1+NodeID(i), p), B: tor, Gbps: nic.PortGbps}) {
				return false
			}
		}
	}
	return true
}

// Links yields every link: server links in server order, then ToR to
// aggregation links rack by rack, then aggregation to core links.
func (t *Topology) Links() iter.Seq[Link] {
	return func(yield func(Link) bool) {
		for s := range ServerID(t.NumServers()) {
			if !t.serverLinks(s, yield) {
				return
			}
		}
		a, gbps := t.aggPerPod(), t.fabric.UplinkGbps
		for r := range RackID(t.NumRacks()) {
			for i := range a {
				if !yield(Link{Kind: ToRAggLink, A: switchEnd(t.ToR(r)), B: switchEnd(t.aggSwitch(t.rackPod[r], i)), Gbps: gbps}) {
					return
				}
			}
		}
		if t.numCore() == 0 {
			return
		}
		up := t.fabric.CoreUplinks
		for p := range PodID(t.NumPods()) {
			for i := range a {
				for j := range up {
					if !yield(Link{Kind: AggCoreLink, A: switchEnd(t.aggSwitch(p, i)), B: switchEnd(t.coreSwitch(i*up + j)), Gbps: gbps}) {
						return
					}
				}
			}
		}
	}
}
