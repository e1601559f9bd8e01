package topology

import (
	"fmt"
	"iter"
)

// NodeID names a compute node (a host or a SmartNIC). IDs are dense:
// 0..NumNodes()-1. The nodes of one server are consecutive, host first,
// then its SmartNICs in slot order.
type NodeID int32

// ServerID names a server (one fault domain). IDs are dense, and the
// servers of one rack are consecutive.
type ServerID int32

// RackID names a rack (one ToR switch). IDs are dense, and the racks of one
// pod are consecutive.
type RackID int32

// PodID names a pod: racks that share aggregation switches.
type PodID int32

// Kind tells a host processor from a SmartNIC.
type Kind uint8

// The kinds of compute node.
const (
	Host Kind = iota
	SmartNIC
)

// String returns "host" or "smartnic".
func (k Kind) String() string {
	switch k {
	case Host:
		return "host"
	case SmartNIC:
		return "smartnic"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Node describes one compute node. It is assembled on demand from the
// topology's compact storage, so it is a value: changing it changes nothing.
type Node struct {
	ID     NodeID
	Kind   Kind
	Server ServerID
	Rack   RackID
	Pod    PodID
	// NIC is the SmartNIC's slot on its server, counted from 0 (the 1 in
	// "r0/s3/nic1"); -1 for a host.
	NIC      int
	Cores    int
	MemoryMB int
	// Ports network ports of PortGbps each: a SmartNIC's own ports, or a
	// host's plain NIC ports (often 0 on a SmartNIC server).
	Ports    int
	PortGbps float64
	// HostLinkGbps is a SmartNIC's PCIe bandwidth to its host; 0 for a host.
	HostLinkGbps float64
}

// Server describes one server: a host and its SmartNICs, which share power
// and therefore fail together.
type Server struct {
	ID   ServerID
	Rack RackID
	Pod  PodID
	// Index is the server's position in its rack (the 3 in "r0/s3").
	Index int
	// Model is [ServerSpec.Model] of the spec it was built from.
	Model string
	// Host is the server's host node; its SmartNICs are Host+1 ..
	// Host+SmartNICs.
	Host      NodeID
	SmartNICs int
}

// Rack describes one rack: consecutive servers under one ToR switch.
type Rack struct {
	ID          RackID
	Pod         PodID
	FirstServer ServerID
	Servers     int
}

// Topology is an immutable datacenter: pods of racks of servers of compute
// nodes, plus the switch fabric joining them. It is safe for concurrent use.
//
// Storage is a handful of flat slices indexed by ID (about 12 bytes per
// server plus 4 per node), so memory is linear in the number of servers and
// every lookup is a few array loads.
type Topology struct {
	// nodeServer[n] is the server of node n.
	nodeServer []ServerID
	// serverFirst[s] is the host of server s; its nodes are
	// serverFirst[s] .. serverFirst[s+1]-1. One extra entry holds NumNodes.
	serverFirst []NodeID
	serverRack  []RackID
	serverSpec  []int32
	// rackFirst[r] is the first server of rack r, plus a final NumServers.
	rackFirst []ServerID
	rackPod   []PodID
	// podFirst[p] is the first rack of pod p, plus a final NumRacks.
	podFirst []RackID
	// specs holds each distinct validated server spec once.
	specs  []ServerSpec
	fabric Fabric
}

// NumNodes returns the number of compute nodes.
func (t *Topology) NumNodes() int { return len(t.nodeServer) }

// NumServers returns the number of servers.
func (t *Topology) NumServers() int { return len(t.serverRack) }

// NumRacks returns the number of racks (and of ToR switches).
func (t *Topology) NumRacks() int { return len(t.rackPod) }

// NumPods returns the number of pods.
func (t *Topology) NumPods() int { return len(t.podFirst) - 1 }

// String summarises the topology's size.
func (t *Topology) String() string {
	return fmt.Sprintf("%d nodes on %d servers in %d racks, %d pods", t.NumNodes(), t.NumServers(), t.NumRacks(), t.NumPods())
}

// Node returns the description of node n. Like a slice index, it panics if
// n is not a node of t; IDs from outside the program should go through
// [Topology.Lookup].
func (t *Topology) Node(n NodeID) Node {
	s := t.nodeServer[n]
	r := t.serverRack[s]
	spec := &t.specs[t.serverSpec[s]]
	nd := Node{ID: n, Server: s, Rack: r, Pod: t.rackPod[r]}
	if i := int(n - t.serverFirst[s]); i == 0 {
		nd.Kind, nd.NIC = Host, -1
		nd.Cores, nd.MemoryMB = spec.Cores, spec.MemoryMB
		nd.Ports, nd.PortGbps = spec.NICPorts, spec.NICGbps
	} else {
		nic := &spec.SmartNICs[i-1]
		nd.Kind, nd.NIC = SmartNIC, i-1
		nd.Cores, nd.MemoryMB = nic.Cores, nic.MemoryMB
		nd.Ports, nd.PortGbps = nic.Ports, nic.PortGbps
		nd.HostLinkGbps = nic.HostLinkGbps
	}
	return nd
}

// ServerOf returns the server, and so the fault domain, of node n.
func (t *Topology) ServerOf(n NodeID) ServerID { return t.nodeServer[n] }

// Server returns the description of server s.
func (t *Topology) Server(s ServerID) Server {
	r := t.serverRack[s]
	return Server{
		ID:        s,
		Rack:      r,
		Pod:       t.rackPod[r],
		Index:     int(s - t.rackFirst[r]),
		Model:     t.specs[t.serverSpec[s]].Model,
		Host:      t.serverFirst[s],
		SmartNICs: int(t.serverFirst[s+1]-t.serverFirst[s]) - 1,
	}
}

// Rack returns the description of rack r.
func (t *Topology) Rack(r RackID) Rack {
	return Rack{ID: r, Pod: t.rackPod[r], FirstServer: t.rackFirst[r], Servers: int(t.rackFirst[r+1] - t.rackFirst[r])}
}

// Nodes yields every node in ID order.
func (t *Topology) Nodes() iter.Seq[NodeID] {
	return func(yield func(NodeID) bool) {
		for n := range NodeID(len(t.nodeServer)) {
			if !yield(n) {
				return
			}
		}
	}
}

// Servers yields every server in ID order.
func (t *Topology) Servers() iter.Seq[ServerID] {
	return func(yield func(ServerID) bool) {
		for s := range ServerID(len(t.serverRack)) {
			if !yield(s) {
				return
			}
		}
	}
}

// Racks yields every rack in ID order.
func (t *Topology) Racks() iter.Seq[RackID] {
	return func(yield func(RackID) bool) {
		for r := range RackID(len(t.rackPod)) {
			if !yield(r) {
				return
			}
		}
	}
}

// ServerNodes yields the nodes of server s: its host, then its SmartNICs.
func (t *Topology) ServerNodes(s ServerID) iter.Seq[NodeID] {
	return func(yield func(NodeID) bool) {
		for n := t.serverFirst[s]; n < t.serverFirst[s+1]; n++ {
			if !yield(n) {
				return
			}
		}
	}
}

// RackServers yields the servers of rack r in ID order.
func (t *Topology) RackServers(r RackID) iter.Seq[ServerID] {
	return func(yield func(ServerID) bool) {
		for s := t.rackFirst[r]; s < t.rackFirst[r+1]; s++ {
			if !yield(s) {
				return
			}
		}
	}
}

// PodRacks yields the racks of pod p in ID order.
func (t *Topology) PodRacks(p PodID) iter.Seq[RackID] {
	return func(yield func(RackID) bool) {
		for r := t.podFirst[p]; r < t.podFirst[p+1]; r++ {
			if !yield(r) {
				return
			}
		}
	}
}

// podServers returns the servers of pod p as a half-open range.
func (t *Topology) podServers(p PodID) (ServerID, ServerID) {
	return t.rackFirst[t.podFirst[p]], t.rackFirst[t.podFirst[p+1]]
}
