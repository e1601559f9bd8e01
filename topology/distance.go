package topology

import (
	"fmt"
	"iter"
)

// Level is the communication distance between two compute nodes, the
// hierarchy HCM (Algorithm 1 of the paper) searches from the closest level
// outward. Within a rack the paper names four levels; beyond it each switch
// tier adds two more, SmartNICs before hosts, because a host is reached
// through a SmartNIC of its server (one more PCIe crossing).
type Level uint8

// The levels, closest first.
const (
	// SameNode: the very same compute node (in-memory queue).
	SameNode Level = iota
	// SameServer: another compute node of the same server: host and
	// SmartNIC over PCIe, or two SmartNICs of one server.
	SameServer
	// RackSmartNIC: a SmartNIC on another server of the same rack.
	RackSmartNIC
	// RackHost: a host on another server of the same rack.
	RackHost
	// PodSmartNIC: a SmartNIC in another rack of the same pod.
	PodSmartNIC
	// PodHost: a host in another rack of the same pod.
	PodHost
	// ClusterSmartNIC: a SmartNIC in another pod.
	ClusterSmartNIC
	// ClusterHost: a host in another pod.
	ClusterHost
	// NumLevels is the number of levels; it is not a level.
	NumLevels
)

var levelNames = [NumLevels]string{
	"same-node", "same-server", "rack-smartnic", "rack-host",
	"pod-smartnic", "pod-host", "cluster-smartnic", "cluster-host",
}

// String returns a short name such as "rack-smartnic".
func (l Level) String() string {
	if l < NumLevels {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// Mechanism is how a message travels between two nodes: the farthest
// element it crosses. The runtime picks its transport by it and the
// simulator its latency.
type Mechanism uint8

// The mechanisms, cheapest first.
const (
	// ViaQueue: both ends on one node; an in-memory queue.
	ViaQueue Mechanism = iota
	// ViaHostLink: a host and one of its own SmartNICs; the PCIe link.
	ViaHostLink
	// ViaToR: up to the rack's ToR switch and back down. Two SmartNICs of
	// one server also talk this way: the paper measured it faster than a
	// relay through the host or PCIe peer-to-peer (§3.1).
	ViaToR
	// ViaAggregation: through an aggregation switch of the pod.
	ViaAggregation
	// ViaCore: through a core switch.
	ViaCore
)

var mechanismNames = [...]string{"queue", "host-link", "tor", "aggregation", "core"}

// String returns a short name such as "host-link".
func (m Mechanism) String() string {
	if int(m) < len(mechanismNames) {
		return mechanismNames[m]
	}
	return fmt.Sprintf("Mechanism(%d)", uint8(m))
}

// Path describes how a message gets from one node to another.
type Path struct {
	Level Level
	Via   Mechanism
	// SwitchHops counts the switches crossed: 0 (same node, or host and
	// own SmartNIC), 1 (ToR), 3 (ToR, aggregation, ToR) or 5 (through
	// the core).
	SwitchHops int
	// HostLinks counts crossings of a PCIe link between a SmartNIC and its
	// host: 1 between a host and its own SmartNIC, and one for each end
	// that is a host reached through its SmartNICs when the path leaves
	// the server. A host with plain NIC ports uses those and crosses none.
	HostLinks int
}

// Distance returns the level of node b as seen from node a. It is
// symmetric only up to kind: the level names the kind of b. It panics if a
// or b is not a node of t.
func (t *Topology) Distance(a, b NodeID) Level {
	if a == b {
		return SameNode
	}
	sa, sb := t.nodeServer[a], t.nodeServer[b]
	if sa == sb {
		return SameServer
	}
	var l Level
	ra, rb := t.serverRack[sa], t.serverRack[sb]
	switch {
	case ra == rb:
		l = RackSmartNIC
	case t.rackPod[ra] == t.rackPod[rb]:
		l = PodSmartNIC
	default:
		l = ClusterSmartNIC
	}
	if t.serverFirst[sb] == b {
		l++ // the host level follows the SmartNIC level of each tier
	}
	return l
}

// Hops returns the number of switches a message from a to b crosses; see
// [Path.SwitchHops].
func (t *Topology) Hops(a, b NodeID) int { return t.Path(a, b).SwitchHops }

// Path returns the level, mechanism and cost of the route from a to b. It
// panics if a or b is not a node of t.
func (t *Topology) Path(a, b NodeID) Path {
	l := t.Distance(a, b)
	switch l {
	case SameNode:
		return Path{Level: l, Via: ViaQueue}
	case SameServer:
		s := t.nodeServer[a]
		if a == t.serverFirst[s] || b == t.serverFirst[s] {
			return Path{Level: l, Via: ViaHostLink, HostLinks: 1}
		}
		return Path{Level: l, Via: ViaToR, SwitchHops: 1}
	}
	p := Path{Level: l}
	switch l {
	case RackSmartNIC, RackHost:
		p.Via, p.SwitchHops = ViaToR, 1
	case PodSmartNIC, PodHost:
		p.Via, p.SwitchHops = ViaAggregation, 3
	default:
		p.Via, p.SwitchHops = ViaCore, 5
	}
	if t.hostBehindSmartNIC(a) {
		p.HostLinks++
	}
	if t.hostBehindSmartNIC(b) {
		p.HostLinks++
	}
	return p
}

// hostBehindSmartNIC reports whether n is a host whose network traffic
// passes through its server's SmartNICs.
func (t *Topology) hostBehindSmartNIC(n NodeID) bool {
	s := t.nodeServer[n]
	if t.serverFirst[s] != n || t.serverFirst[s+1] == n+1 {
		return false // a SmartNIC, or a host without SmartNICs
	}
	return t.specs[t.serverSpec[s]].NICPorts == 0
}

// visitServerHook, when set by a test, is called for every server the
// level walks look at, so a test can prove they stay near.
var visitServerHook func(ServerID)

// LevelNodes yields, in ID order, the nodes at level l as seen from node
// from. The work done is proportional to the servers the level spans: the
// own server for levels 0-1, the own rack for 2-3, the own pod for 4-5;
// only levels 6-7 walk the rest of the cluster. It panics if from is not a
// node of t.
func (t *Topology) LevelNodes(from NodeID, l Level) iter.Seq[NodeID] {
	return func(yield func(NodeID) bool) { t.walkLevel(from, l, yield) }
}

// Levels yields every node of the cluster once, paired with its level as
// seen from node from, closest level first. A caller that stops at the
// first level with a fit never pays for the farther ones.
func (t *Topology) Levels(from NodeID) iter.Seq2[Level, NodeID] {
	return func(yield func(Level, NodeID) bool) {
		for l := range NumLevels {
			if !t.walkLevel(from, l, func(n NodeID) bool { return yield(l, n) }) {
				return
			}
		}
	}
}

// LevelSize returns the number of nodes at level l as seen from node from,
// in constant time. Every server has exactly one host, so the SmartNICs of
// a run of servers are its nodes minus its servers.
func (t *Topology) LevelSize(from NodeID, l Level) int {
	switch l {
	case SameNode:
		_ = t.nodeServer[from] // panic on a bad ID, as the other levels do
		return 1
	case SameServer:
		s := t.nodeServer[from]
		return int(t.serverFirst[s+1]-t.serverFirst[s]) - 1
	}
	count := 0
	t.levelRanges(from, l, func(lo, hi ServerID) {
		hosts := int(hi - lo)
		if l&1 == 1 {
			count += hosts
		} else {
			count += int(t.serverFirst[hi]-t.serverFirst[lo]) - hosts
		}
	})
	return count
}

// walkLevel calls yield for each node of level l from node from and
// reports whether it was not told to stop.
func (t *Topology) walkLevel(from NodeID, l Level, yield func(NodeID) bool) bool {
	s := t.nodeServer[from]
	switch l {
	case SameNode:
		return yield(from)
	case SameServer:
		for n := t.serverFirst[s]; n < t.serverFirst[s+1]; n++ {
			if n != from && !yield(n) {
				return false
			}
		}
		return true
	}
	ok := true
	hosts := l&1 == 1 // odd levels above SameServer are the host levels
	t.levelRanges(from, l, func(lo, hi ServerID) {
		for x := lo; ok && x < hi; x++ {
			if visitServerHook != nil {
				visitServerHook(x)
			}
			if hosts {
				ok = yield(t.serverFirst[x])
				continue
			}
			for n := t.serverFirst[x] + 1; ok && n < t.serverFirst[x+1]; n++ {
				ok = yield(n)
			}
		}
	})
	return ok
}

// levelRanges calls f with the (at most two) half-open runs of servers
// whose nodes make up level l >= RackSmartNIC as seen from node from: the
// servers of the enclosing rack, pod or cluster minus those of the nested
// one. Levels below RackSmartNIC produce no runs.
func (t *Topology) levelRanges(from NodeID, l Level, f func(lo, hi ServerID)) {
	s := t.nodeServer[from]
	r := t.serverRack[s]
	var inLo, inHi, outLo, outHi ServerID // inner run excluded from the outer one
	switch l {
	case RackSmartNIC, RackHost:
		inLo, inHi = s, s+1
		outLo, outHi = t.rackFirst[r], t.rackFirst[r+1]
	case PodSmartNIC, PodHost:
		inLo, inHi = t.rackFirst[r], t.rackFirst[r+1]
		outLo, outHi = t.podServers(t.rackPod[r])
	case ClusterSmartNIC, ClusterHost:
		inLo, inHi = t.podServers(t.rackPod[r])
		outLo, outHi = 0, ServerID(len(t.serverRack))
	default:
		return
	}
	if outLo < inLo {
		f(outLo, inLo)
	}
	if inHi < outHi {
		f(inHi, outHi)
	}
}
