// Package topology models the datacenter E3 places microservices on: pods of
// racks of servers, each server a host processor and zero or more SmartNICs,
// joined by PCIe links, a ToR switch per rack and, above the ToRs,
// aggregation and core switches wired as a fat tree.
//
// # Model
//
// A compute node is a host or a SmartNIC: it has cores, memory and network
// ports, and it runs microservices. A server is its host plus its SmartNICs;
// they share one power supply, so a server is one fault domain. Every NIC
// port, smart or plain, is wired to the rack's ToR. The ToR reaches a
// SmartNIC through that SmartNIC's own ports, and the host through the
// server's plain NIC ports if it has any, otherwise through all its
// SmartNICs' ports by ECMP ([Topology.HostPorts]); the SmartNIC then
// forwards over PCIe.
//
// Machines are described by [ServerSpec] values, which hwmodel fills from
// its catalogue; this package knows no machine models. Clusters are built
// with [New] (one rack, as in the paper's testbed), a [Builder] (any shape),
// or [FatTree] (thousands of identical servers, 40 per rack by default).
// A built [Topology] is immutable and safe for concurrent use.
//
// # Levels
//
// HCM, the paper's placement algorithm (Algorithm 1, §3.3), tries to put a
// microservice close to its predecessor, trying communication levels from
// the closest outward. [Topology.Distance] gives the [Level] of node b as
// seen from node a:
//
//	0 SameNode         a itself: in-memory queue
//	1 SameServer       the other nodes of a's server: PCIe between host and
//	                   SmartNIC, via the ToR between two SmartNICs
//	2 RackSmartNIC     a SmartNIC on another server of a's rack
//	3 RackHost         a host on another server of a's rack
//	4 PodSmartNIC      a SmartNIC in another rack of a's pod
//	5 PodHost          a host in another rack of a's pod
//	6 ClusterSmartNIC  a SmartNIC in another pod
//	7 ClusterHost      a host in another pod
//
// SmartNICs come before hosts at each tier because a remote host sits
// behind a SmartNIC and a PCIe crossing. [Topology.Path] adds the
// [Mechanism], the switch hops and the PCIe crossings, from which the
// runtime picks a transport and the simulator a latency.
//
// [Topology.LevelNodes] yields the nodes of one level and
// [Topology.Levels] all nodes level by level. Their cost is proportional to
// what a level holds: the near levels never touch the rest of the cluster,
// which is what makes HCM fast on 50,000 servers.
//
// # Identifiers and storage
//
// [NodeID], [ServerID], [RackID] and [PodID] are dense int32 indexes. The
// nodes of a server are consecutive (host first, then its SmartNICs in slot
// order), the servers of a rack are consecutive, and so are the racks of a
// pod. The topology is a few flat slices indexed by them, about 32 bytes
// per server for a server with four SmartNICs; switches and links are
// derived on demand. Nodes also have stable names such as "r0/s3/host" and
// "r0/s3/nic1" ([Topology.Name], [Topology.Lookup]).
//
// # Usage
//
//	t, err := topology.FatTree(topology.FatTreeOptions{Servers: 1000, Server: spec})
//	if err != nil {
//		return err
//	}
//	from, _ := t.Lookup("r0/s0/nic0")
//	for l := range topology.NumLevels {
//		for n := range t.LevelNodes(from, l) {
//			if fits(t.Node(n)) {
//				return n // the closest node that fits
//			}
//		}
//	}
//
// The package is pure: no I/O, no clock, no randomness.
package topology
