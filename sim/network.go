package sim

import (
	"time"

	"github.com/e3-platform/e3/topology"
)

// Salts that make the hashes of one flow independent for each decision
// taken on it.
const (
	saltPort   = 0x51af3c5d2b8e4f17 // which port of an ECMP group or NIC
	saltSource = 0x2c1b7e39d4a6f805 // which shard of a source node
)

// pick returns one of n choices for flow under salt.
func pick(flow, salt uint64, n int) int {
	if n == 1 {
		return 0
	}
	return int(mix64(flow^salt) % uint64(n))
}

// send starts message m on its way from node from to the current node of
// its destination instance, at s.now. The mechanism follows
// topology.Path: an in-memory queue on one node, the PCIe link between a
// host and its own SmartNIC, otherwise the network through the ToR (and
// aggregation and core switches further out).
func (s *sim) send(m int32, from topology.NodeID) {
	msg := &s.msgs[m]
	msg.from = from
	var to topology.NodeID
	if msg.completion {
		// Completion weight goes to the node the request entered at,
		// wherever its ingress instance is now.
		to = s.reqs[msg.req].origin
	} else {
		in := &s.insts[msg.inst]
		if in.migrating {
			in.held = append(in.held, m)
			return
		}
		to = in.node
	}
	msg.to = to
	msg.stage = stageInstance
	if from == to {
		s.q.push(s.now+int64(s.p.QueueLatency), evArrive, m, int32(to))
		return
	}
	p := s.topo.Path(from, to)
	if p.Via == topology.ViaHostLink {
		// Host and one of its own SmartNICs.
		if s.nodes[from].nic {
			fin := s.pcie(&s.nodes[from], true, s.now, msg.bytes)
			s.q.push(fin+int64(s.p.PCIeLatency), evArrive, m, int32(to))
		} else {
			fin := s.pcie(&s.nodes[to], false, s.now, msg.bytes)
			s.q.push(fin+int64(s.p.PCIeLatency), evArrive, m, int32(to))
		}
		return
	}
	src := &s.nodes[from]
	switch {
	case src.nic:
		port := src.portLo + int32(pick(msg.flow, saltPort, int(src.portHi-src.portLo)))
		s.transmit(m, port, s.now)
	case src.behindNICs:
		// Out through one of the server's SmartNIC ports (NIC teaming
		// hashes the flow), over PCIe and that SmartNIC's traffic manager.
		group := s.hostPorts[src.server]
		port := group[pick(msg.flow, saltPort, len(group))]
		nic := s.ports[port].node
		msg.port = port
		msg.stage = stageTMOut
		fin := s.pcie(&s.nodes[nic], false, s.now, msg.bytes)
		s.q.push(fin+int64(s.p.PCIeLatency), evArrive, m, int32(nic))
	default:
		// A host with plain NIC ports: DMA to the NIC, then the wire.
		port := src.portLo + int32(pick(msg.flow, saltPort, int(src.portHi-src.portLo)))
		s.transmit(m, port, s.now+int64(s.p.PCIeLatency))
	}
}

// transmit sends message m out of port at time t (at the earliest): the
// port's transmit FIFO serialises it, and it reaches the switch port in
// front of its destination after the NIC, the switches and the hops.
func (s *sim) transmit(m int32, port int32, t int64) {
	msg := &s.msgs[m]
	ps := &s.ports[port]
	wire := int64(msg.bytes) + int64(s.p.WireOverhead)
	start := max(t, ps.txFree)
	fin := start + int64(float64(wire)*ps.nsPerByte+0.5)
	ps.txFree = fin
	if s.inWindow(start) {
		ps.txBytes += wire
	}
	ps.hbTxBytes += wire
	if msg.to < 0 {
		// A reply: through the ToR to the client's NIC. Clients are
		// outside the model; they absorb whatever arrives.
		s.delivered(m, fin+2*int64(s.p.PortLatency)+int64(s.p.SwitchLatency))
		return
	}
	hops := s.topo.Path(s.ports[port].node, msg.to).SwitchHops
	s.q.push(fin+int64(s.p.PortLatency)+int64(hops)*int64(s.p.SwitchLatency), evPort, m, 0)
}

// atPort handles message m reaching the switch port in front of its
// destination: it picks the destination's NIC port (the SmartNIC's own
// ports, the host's plain ports, or the host's ECMP group of SmartNIC
// ports), queues for that link, and after it goes to the node, or to the
// SmartNIC's traffic manager if the host is the destination.
func (s *sim) atPort(m int32) {
	msg := &s.msgs[m]
	dst := &s.nodes[msg.to]
	var port int32
	if dst.behindNICs {
		group := s.hostPorts[dst.server]
		port = group[pick(msg.flow, saltPort, len(group))]
	} else {
		port = dst.portLo + int32(pick(msg.flow, saltPort, int(dst.portHi-dst.portLo)))
	}
	ps := &s.ports[port]
	wire := int64(msg.bytes) + int64(s.p.WireOverhead)
	start := max(s.now, ps.rxFree)
	fin := start + int64(float64(wire)*ps.nsPerByte+0.5)
	ps.rxFree = fin
	if s.inWindow(start) {
		ps.rxBytes += wire
		ps.rxPackets++
	}
	ps.hbRxByt += wire
	fin += int64(s.p.PortLatency)
	switch {
	case dst.behindNICs:
		msg.stage = stageTMIn
		msg.port = port
		s.q.push(fin, evArrive, m, int32(ps.node))
	case dst.nic:
		s.q.push(fin, evArrive, m, int32(msg.to))
	default:
		s.q.push(fin+int64(s.p.PCIeLatency), evArrive, m, int32(msg.to))
	}
}

// pcie reserves SmartNIC n's PCIe link, toward the host (up) or from it,
// for a message of bytes from time t, and returns when it has crossed.
func (s *sim) pcie(n *nodeState, up bool, t int64, bytes int32) int64 {
	free := &n.downFree
	if up {
		free = &n.upFree
	}
	start := max(t, *free)
	fin := start + int64(float64(int64(bytes)+int64(s.p.WireOverhead))*n.pcieNsPerByte+0.5)
	*free = fin
	return fin
}

// unloaded is the one-way latency from node a to node b of a message of
// bytes when nothing else is in the way: the delays of the mechanisms on
// the path, serialisation on each link, and the traffic managers' work for
// a host behind SmartNICs. It is [UnloadedLatency] computed from
// per-node constants (TestUnloadedMatches checks that they agree).
func (s *sim) unloaded(a, b topology.NodeID, bytes int32) int64 {
	if a == b {
		return int64(s.p.QueueLatency)
	}
	wire := float64(int64(bytes) + int64(s.p.WireOverhead))
	na, nb := &s.nodes[a], &s.nodes[b]
	p := s.topo.Path(a, b)
	if p.Via == topology.ViaHostLink {
		nic := na
		if !nic.nic {
			nic = nb
		}
		return int64(s.p.PCIeLatency) + int64(wire*nic.pcieNsPerByte+0.5)
	}
	d := na.endNs + int64(wire*na.endNsPerByte+0.5) + nb.endNs + int64(wire*nb.endNsPerByte+0.5)
	d += 2*int64(s.p.PortLatency) + int64(p.SwitchHops)*int64(s.p.SwitchLatency)
	d += int64(wire*na.portNsPerByte+0.5) + int64(wire*nb.portNsPerByte+0.5)
	return d
}

// UnloadedLatency returns the one-way latency the model gives a message of
// bytes from node a to node b on an idle cluster: the per-mechanism
// delays of p, serialisation on every link crossed, and the traffic
// manager's work on a SmartNIC that forwards to or from its host. X3 (the
// paper's Figure 3) is twice this for each mechanism.
func UnloadedLatency(t *topology.Topology, p Params, a, b topology.NodeID, bytes int) time.Duration {
	return unloadedLatency(t, &p, a, b, bytes)
}

func unloadedLatency(t *topology.Topology, p *Params, a, b topology.NodeID, bytes int) time.Duration {
	if a == b {
		return p.QueueLatency
	}
	wire := float64(bytes + p.WireOverhead)
	path := t.Path(a, b)
	na, nb := t.Node(a), t.Node(b)
	if path.Via == topology.ViaHostLink {
		nic := na
		if nic.Kind != topology.SmartNIC {
			nic = nb
		}
		return p.PCIeLatency + ser(wire, nic.HostLinkGbps)
	}
	d := endLatency(t, p, na, wire) + endLatency(t, p, nb, wire)
	d += 2*p.PortLatency + time.Duration(path.SwitchHops)*p.SwitchLatency
	d += ser(wire, portGbps(t, na)) + ser(wire, portGbps(t, nb))
	return d
}

// ClientLatency returns the one-way latency between a client outside the
// cluster and node n on an idle network.
func ClientLatency(t *topology.Topology, p Params, n topology.NodeID, bytes int) time.Duration {
	return clientLatency(t, &p, n, bytes)
}

func clientLatency(t *topology.Topology, p *Params, n topology.NodeID, bytes int) time.Duration {
	wire := float64(bytes + p.WireOverhead)
	nd := t.Node(n)
	return endLatency(t, p, nd, wire) + 2*p.PortLatency + p.SwitchLatency + ser(wire, portGbps(t, nd))
}

// endLatency is what one end of a network path adds besides its port: a
// host's PCIe crossing, and for a host behind SmartNICs the PCIe link's
// serialisation and the traffic manager's work.
func endLatency(t *topology.Topology, p *Params, n topology.Node, wire float64) time.Duration {
	if n.Kind == topology.SmartNIC {
		return 0
	}
	if n.Ports > 0 {
		return p.PCIeLatency
	}
	nic := t.Node(n.ID + 1) // a host behind SmartNICs has at least one
	return p.PCIeLatency + ser(wire, nic.HostLinkGbps) + p.TMDemand
}

// portGbps is the rate of the port a node's traffic uses.
func portGbps(t *topology.Topology, n topology.Node) float64 {
	if n.Ports > 0 {
		return n.PortGbps
	}
	return t.Node(n.ID + 1).PortGbps
}

func ser(wireBytes, gbps float64) time.Duration {
	return time.Duration(wireBytes*8/gbps + 0.5)
}
