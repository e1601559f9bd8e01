package sim

import (
	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/topology"
)

// Run simulates cfg and returns what it measured. It places the
// applications that come without an assignment (see [PlaceApps]), runs
// Warmup then Duration of virtual time, and reports the window after the
// warm-up. The same cfg (and Seed) always gives the same Result.
func Run(cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := newSim(&cfg)
	if err != nil {
		return nil, err
	}
	if err := s.run(); err != nil {
		return nil, err
	}
	return s.result()
}

// run starts the clients and processes events until the window closes.
func (s *sim) run() error {
	for i := range s.apps {
		s.startClients(int32(i))
	}
	s.q.push(s.w0, evWarm, 0, 0)
	if s.cfg.Orchestrator != nil && s.p.HeartbeatPeriod > 0 {
		s.q.push(int64(s.p.HeartbeatPeriod), evHeartbeat, 0, 0)
		s.hbStart()
	}
	for s.q.Len() > 0 && s.q.peekTime() <= s.w1 {
		e := s.q.pop()
		s.now = e.at
		s.events++
		switch e.kind() {
		case evArrive:
			s.arrive(e.a, topology.NodeID(e.b))
		case evDone:
			s.done(e.a, topology.NodeID(e.b))
		case evPort:
			s.atPort(e.a)
		case evSend:
			s.clientSend(e.a, e.b)
		case evRespond:
			s.respond(e.a)
		case evReply:
			s.reply(e.a)
		case evHeartbeat:
			if err := s.heartbeat(); err != nil {
				return err
			}
			s.q.push(s.now+int64(s.p.HeartbeatPeriod), evHeartbeat, 0, 0)
		case evMigrated:
			s.migrated(e.a)
		case evWarm:
			s.warm()
		}
	}
	s.now = s.w1
	return nil
}

// warm starts the measured window: snapshot the integrals.
func (s *sim) warm() {
	for i := range s.nodes {
		n := &s.nodes[i]
		n.area0 = n.areaAt(s.now)
		n.tmArea0 = n.tmAreaAt(s.now)
		n.tmMax = n.tm
	}
}

func (n *nodeState) areaAt(t int64) int64   { return n.area + int64(n.busy)*(t-n.last) }
func (n *nodeState) tmAreaAt(t int64) int64 { return n.tmArea + int64(n.tm)*(t-n.tmLast) }

func (s *sim) inWindow(t int64) bool { return t >= s.w0 && t <= s.w1 }

// arrive handles a message reaching node nd.
func (s *sim) arrive(m int32, nd topology.NodeID) {
	msg := &s.msgs[m]
	if msg.completion && msg.stage == stageInstance {
		// Completion weight back at the ingress node: accounted there,
		// without a core (the runtime's agent does it as it dispatches).
		r := msg.req
		s.freeMsg(m)
		req := &s.reqs[r]
		req.done = max(req.done, s.now)
		if req.pending--; req.pending == 0 {
			s.complete(r)
		}
		return
	}
	if msg.stage == stageInstance {
		in := &s.insts[msg.inst]
		if in.migrating {
			// The instance stopped taking requests; the message waits for
			// the migration and is then sent on from here.
			msg.from = nd
			in.held = append(in.held, m)
			return
		}
		if in.node != nd {
			// It moved while the message travelled: forward it.
			s.send(m, nd)
			return
		}
	} else {
		n := &s.nodes[nd]
		n.tmArea = n.tmAreaAt(s.now)
		n.tmLast = s.now
		n.tm++
		n.tmMax = max(n.tmMax, n.tm)
		n.hbTMMax = max(n.hbTMMax, n.tm)
	}
	s.enqueue(m, nd)
}

// enqueue puts a job on node nd: on an idle core if there is one, else at
// the end of the node's queue. All cores of a node serve one FIFO queue;
// see the package documentation for why.
func (s *sim) enqueue(m int32, nd topology.NodeID) {
	s.msgs[m].enq = s.now
	n := &s.nodes[nd]
	if n.busy < n.cores {
		s.startJob(m, nd, n)
		return
	}
	n.q.push(m)
}

// startJob runs message m's job on a free core of node n.
func (s *sim) startJob(m int32, nd topology.NodeID, n *nodeState) {
	n.area = n.areaAt(s.now)
	n.last = s.now
	n.busy++
	msg := &s.msgs[m]
	msg.start = s.now
	var d int64
	if msg.stage == stageInstance {
		d = s.svc.draw(&s.r, s.insts[msg.inst].meanNs[n.kind])
	} else {
		d = s.tmDemand
	}
	s.q.push(s.now+d, evDone, m, int32(nd))
}

// done handles the end of message m's job on node nd.
func (s *sim) done(m int32, nd topology.NodeID) {
	n := &s.nodes[nd]
	n.area = n.areaAt(s.now)
	n.last = s.now
	n.busy--
	if n.q.size > 0 {
		s.startJob(n.q.pop(), nd, n)
	}
	msg := &s.msgs[m]
	switch msg.stage {
	case stageTMIn:
		s.tmLeave(n)
		// Forward over PCIe to the host.
		msg.stage = stageInstance
		fin := s.pcie(n, true, s.now, msg.bytes)
		s.q.push(fin+int64(s.p.PCIeLatency), evArrive, m, int32(n.host))
		return
	case stageTMOut:
		s.tmLeave(n)
		msg.stage = stageInstance
		s.transmit(m, msg.port, s.now)
		return
	}
	s.processed(m, nd)
}

func (s *sim) tmLeave(n *nodeState) {
	n.tmArea = n.tmAreaAt(s.now)
	n.tmLast = s.now
	n.tm--
	if s.inWindow(s.now) {
		n.tmPackets++
	}
}

// processed handles an instance having processed message m on node nd:
// record it, emit its successors, account the request's completion.
func (s *sim) processed(m int32, nd topology.NodeID) {
	msg := &s.msgs[m]
	in := &s.insts[msg.inst]
	service := s.now - msg.start
	soj := s.now - msg.enq
	if s.inWindow(s.now) {
		in.win.processed++
		in.win.serviceNs += service
		in.win.sojNs += soj
	}
	in.hb.processed++
	in.hb.serviceNs += service
	in.hb.sojNs += soj

	r, i := msg.req, msg.inst
	// emit may grow the message pool: msg is not used after it.
	if s.emit(i, m, nd) == 0 {
		// A leaf: its share of the completion weight returns to the
		// ingress (at no cost if that is the instance itself; through an
		// in-memory queue on the same node). From another node it is a
		// message like the others, a bare header on the request's flow to
		// the node the request entered at, and it costs what the runtime's
		// completion message costs: the links it crosses and, to or from
		// a host behind SmartNICs, traffic-manager work on a SmartNIC core.
		req := &s.reqs[r]
		switch {
		case i == req.ingress:
			req.done = max(req.done, s.now)
		case nd == req.origin:
			req.done = max(req.done, s.now+int64(s.p.QueueLatency))
		default:
			req.pending++
			c := s.allocMsg()
			s.msgs[c] = message{req: r, inst: req.ingress, src: i, flow: req.flow, completion: true}
			s.send(c, nd)
		}
	}
	s.freeMsg(m)
	req := &s.reqs[r]
	if req.pending--; req.pending == 0 {
		s.complete(r)
	}
}

// emit sends the messages instance i emits after processing message m on
// node nd, edge by edge: each edge takes the message with probability
// Share, and its policy picks the destination shard(s). It returns how
// many messages were emitted.
func (s *sim) emit(i, m int32, nd topology.NodeID) int32 {
	in := &s.insts[i]
	d := &s.dags[in.dag]
	key := s.msgs[m].key
	r := s.msgs[m].req
	var n int32
	for j := range d.out {
		e := &d.out[j]
		if e.share < 1 && s.r.routing.Float64() >= e.share {
			continue
		}
		to := &s.dags[e.to]
		switch e.policy {
		case app.KeyHash:
			k := key
			if !e.sameKey {
				// A new key: the sender emits under another key of its
				// data (a topic, a translated flow). Hashing the old key
				// keeps popular keys popular while sending them to an
				// unrelated shard.
				k = mix64(key ^ e.salt)
			}
			s.emitTo(r, i, to.primaries[app.ShardOf(k, len(to.primaries))], k, nd)
			n++
		case app.RoundRobin:
			c := &s.rr[in.rrOff+int32(j)]
			s.emitTo(r, i, to.primaries[int(*c)%len(to.primaries)], key, nd)
			*c++
			n++
		case app.Broadcast:
			for _, dst := range to.primaries {
				s.emitTo(r, i, dst, key, nd)
			}
			n += int32(len(to.primaries))
		}
	}
	s.reqs[r].pending += n
	return n
}

// emitTo creates a message of request r from instance src on node nd to
// instance dst and sends it.
func (s *sim) emitTo(r, src, dst int32, key uint64, nd topology.NodeID) {
	m := s.allocMsg()
	s.msgs[m] = message{
		key: key, req: r, inst: dst, src: src,
		// A channel between two instances is one flow: ECMP keeps it on
		// one path.
		flow:  mix64(uint64(src)<<32 | uint64(uint32(dst))),
		bytes: s.apps[s.insts[src].app].bytes,
	}
	s.send(m, nd)
}

// complete is called when request r has no message left: once its last
// completion weight is back at the ingress, the ingress replies.
func (s *sim) complete(r int32) {
	if at := s.reqs[r].done; at > s.now {
		s.q.push(at, evRespond, r, 0)
		return
	}
	s.respond(r)
}

// respond sends request r's reply from its ingress instance's node to the
// client: a message like any other, through the node's port (and for a
// host behind SmartNICs, PCIe and a traffic manager), on the request's
// flow, so it leaves by the port the request came in by.
func (s *sim) respond(r int32) {
	req := &s.reqs[r]
	from := s.insts[req.ingress].node
	m := s.allocMsg()
	s.msgs[m] = message{
		req: r, inst: req.ingress, src: req.ingress, from: from, to: -1,
		flow: req.flow, bytes: s.apps[req.app].bytes,
	}
	src := &s.nodes[from]
	switch {
	case src.nic:
		s.transmit(m, src.portLo+int32(pick(req.flow, saltPort, int(src.portHi-src.portLo))), s.now)
	case src.behindNICs:
		group := s.hostPorts[src.server]
		port := group[pick(req.flow, saltPort, len(group))]
		nic := s.ports[port].node
		s.msgs[m].port = port
		s.msgs[m].stage = stageTMOut
		fin := s.pcie(&s.nodes[nic], false, s.now, s.msgs[m].bytes)
		s.q.push(fin+int64(s.p.PCIeLatency), evArrive, m, int32(nic))
	default:
		s.transmit(m, src.portLo+int32(pick(req.flow, saltPort, int(src.portHi-src.portLo))), s.now+int64(s.p.PCIeLatency))
	}
}

// delivered records that reply message m reaches its client at time at.
func (s *sim) delivered(m int32, at int64) {
	r := s.msgs[m].req
	s.freeMsg(m)
	req := &s.reqs[r]
	ar := &s.apps[req.app]
	ar.inFlight--
	if s.inWindow(at) {
		lat := at - req.sent
		ar.completed++
		ar.latSum += float64(lat)
		ar.latMax = max(ar.latMax, lat)
		_ = ar.hist.RecordValue(min(max(lat, 1), maxLatency))
	}
	if req.client >= 0 {
		s.q.push(at, evReply, r, 0)
		return
	}
	s.freeReq(r)
}

// reply hands request r's reply to its closed-loop client, which thinks
// and then sends its next request.
func (s *sim) reply(r int32) {
	req := &s.reqs[r]
	a, c := req.app, req.client
	s.freeReq(r)
	s.clientReady(a, c, s.now)
}
