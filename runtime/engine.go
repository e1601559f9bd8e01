package runtime

import (
	"container/heap"
	"errors"
	goruntime "runtime"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// input takes a message that arrived at this agent. In emulation it waits
// in the pacer until its due time; in real mode it is dispatched at once.
func (a *Agent) input(m *msg) {
	if a.pace != nil {
		m.due = m.h.Timestamp
		a.pace.push(m)
		return
	}
	a.dispatch(m)
}

// destination returns the node a message is for: the node of its
// instance for a request, the ingress (origin) for completions and errors,
// the edge node (origin) for a reply on its way to a client.
func (a *Agent) destination(st *agentState, m *msg) (topology.NodeID, *appState) {
	switch m.h.Kind {
	case transport.KindRequest:
		if int(m.h.App) >= len(st.apps) || st.apps[m.h.App] == nil {
			return -1, nil
		}
		as := st.apps[m.h.App]
		return as.nodeOf(m.h.Instance), as
	case transport.KindCompletion, transport.KindError, transport.KindReply:
		return topology.NodeID(m.h.OriginNode), nil
	}
	return -1, nil
}

// dispatch decides what to do with a message that is due now: run it on a
// core of this node, admit a client request, account a completion, send a
// reply to a client, or forward it (the SmartNIC traffic manager).
func (a *Agent) dispatch(m *msg) { a.dispatchOn(m, nil) }

// dispatchOn is dispatch; with a worker it runs a local request on that
// worker at once instead of queueing it (real mode's run-to-completion on
// the receiving goroutine).
func (a *Agent) dispatchOn(m *msg, inline *worker) {
	st := a.state.Load()
	fresh := m.h.Kind == transport.KindRequest && m.h.Weight == 0
	if fresh {
		switch m.src {
		case fromClient:
			// The request entered the system here: remember the client
			// connection as its return path.
			m.h.OriginNode, m.h.OriginSlot = uint32(a.self), m.conn
		case fromHostLink, fromBare, fromSubmit:
		default:
			a.stats.badMessages.Add(1)
			putMsg(m)
			return
		}
	}
	dst, as := a.destination(st, m)
	if dst < 0 || int(dst) >= a.topo.NumNodes() {
		a.reject(m, "runtime: message for an unknown application, instance or node")
		return
	}
	if dst != a.self {
		if fresh && !(a.isNIC && dst == a.host) {
			// A client reached a node that neither runs the instance nor
			// is the SmartNIC in front of its host: its table is out of
			// date (the instance moved). This node becomes the request's
			// ingress and passes it on, so the request is not lost.
			a.admit(m)
		}
		a.forward(m, dst)
		return
	}
	switch m.h.Kind {
	case transport.KindRequest:
		in := as.local[m.h.Instance]
		if in == nil || in.state.Load() == stateStopped || (fresh && in.state.Load() != stateRunning) {
			a.reject(m, "runtime: instance "+instanceName(as, m.h.Instance)+" is not running on "+a.Name())
			return
		}
		if fresh {
			a.admit(m)
		}
		if !in.enter(m) {
			return // held while the instance migrates or compacts
		}
		in.bytesIn.Add(uint64(len(m.b)))
		if inline != nil {
			inline.handle(m)
			return
		}
		a.schedule(m)
	case transport.KindCompletion:
		out := getOutcome()
		defer putOutcome(out)
		if a.ing.complete(m.h.Request, m.h.Weight, m.payload(), out) {
			a.stats.completed.Add(1)
			a.replyClient(out, m.due)
		}
		putMsg(m)
	case transport.KindError:
		out := getOutcome()
		defer putOutcome(out)
		if a.ing.fail(m.h.Request, string(m.payload()), out) {
			a.stats.failed.Add(1)
			a.replyClient(out, m.due)
		}
		putMsg(m)
	case transport.KindReply:
		a.writeClient(m, m.due)
	default:
		a.stats.badMessages.Add(1)
		putMsg(m)
	}
}

func instanceName(as *appState, i uint32) string {
	if as == nil || int(i) >= len(as.route.App.Instances()) {
		return "?"
	}
	return as.route.App.Instances()[i].ID
}

// admit gives a fresh client request a slot at this (the ingress) node,
// the initial completion weight, and a request id of this node.
func (a *Agent) admit(m *msg) {
	s := slot{app: m.h.App, instance: m.h.Instance, clientID: m.h.Request, admitted: a.coarseNow()}
	switch m.src {
	case fromBare:
		s.kind, s.addr = sinkBare, m.addr
	case fromSubmit:
		s.kind, s.sink, s.token = sinkSubmit, m.sink, m.token
	default:
		s.kind, s.edge, s.conn = sinkClient, topology.NodeID(m.h.OriginNode), m.h.OriginSlot
	}
	id := a.ing.admit(s)
	a.stats.admitted.Add(1)
	m.h.OriginNode, m.h.OriginSlot = uint32(a.self), uint32(id)
	m.h.Request = id
	m.h.Weight = transport.InitialWeight
	m.setHeader()
}

// reject answers a message that cannot be served: a fresh client request
// gets an error reply; a message of an admitted request fails it at its
// ingress.
func (a *Agent) reject(m *msg, reason string) {
	a.stats.rejected.Add(1)
	if m.h.Kind == transport.KindRequest && m.h.Weight == 0 {
		out := getOutcome()
		defer putOutcome(out)
		out.err = reason
		out.s = slot{app: m.h.App, instance: m.h.Instance, clientID: m.h.Request}
		switch m.src {
		case fromBare:
			out.s.kind, out.s.addr = sinkBare, m.addr
		case fromSubmit:
			out.s.kind, out.s.sink, out.s.token = sinkSubmit, m.sink, m.token
		default:
			out.s.kind, out.s.edge, out.s.conn = sinkClient, topology.NodeID(m.h.OriginNode), m.h.OriginSlot
		}
		a.replyClient(out, m.due)
		putMsg(m)
		return
	}
	if m.h.Kind == transport.KindRequest {
		a.sendError(m.h, reason, m.due)
	}
	putMsg(m)
}

// schedule hands a request for a local instance to a worker. In emulation
// the earliest-free emulated core takes it (a shared FIFO, which is what a
// work-conserving engine that steers round-robin and switches cores when
// needed achieves); its start and finish times are fixed here, in due
// order, so the emulated figures do not depend on when the real handler
// gets to run.
func (a *Agent) schedule(m *msg) {
	if a.pace == nil {
		k := int(a.rr.Add(1)) % len(a.workers)
		a.workers[k].in.push(m)
		return
	}
	a.pace.occupy(m, m.inst.demand)
	a.workers[m.core].in.push(m)
}

// forward sends a message on toward node dst. On a SmartNIC this is the
// traffic manager: packets between the network and the host cost SmartNIC
// core time, on the same cores the microservices use.
func (a *Agent) forward(m *msg, dst topology.NodeID) {
	a.stats.forwarded.Add(1)
	due := m.due
	if a.isNIC && a.pace != nil {
		a.pace.occupyTM(m)
		due = m.finish
	}
	a.send(m.h, m.payload(), dst, due)
	putMsg(m)
}

// nextHop returns the node a message for dst leaves this node toward, and
// whether it goes over a host link (else a channel, unless it is this
// node). flow spreads flows over a server's SmartNICs as ECMP does.
func (a *Agent) nextHop(dst topology.NodeID, flow uint64) (topology.NodeID, bool) {
	if dst == a.self {
		return dst, false
	}
	if a.topo.ServerOf(dst) == a.node.Server {
		if a.isNIC && dst != a.host {
			// Two SmartNICs of one server talk through the ToR (§3.1).
			return dst, false
		}
		return dst, true
	}
	if a.behindNICs {
		// Out through one of the server's SmartNICs: NIC teaming hashes
		// the flow, and that SmartNIC's traffic manager sends it on.
		return a.ownNICs[int(mix64(flow^saltPort)%uint64(len(a.ownNICs)))], true
	}
	return a.wireEnd(dst, flow), false
}

// wireEnd is where the ToR delivers a message for dst: dst itself, or for
// a host behind SmartNICs one of its SmartNICs, chosen by hashing the
// flow over the host's ECMP group (its SmartNICs' ports). This is the
// software ToR: senders apply it, so no forwarding process is needed.
func (a *Agent) wireEnd(dst topology.NodeID, flow uint64) topology.NodeID {
	return WireEnd(a.topo, dst, flow)
}

// saltPort makes the ECMP hash independent of the other uses of a flow's
// hash.
const saltPort = 0x51af3c5d2b8e4f17

// WireEnd returns the node that receives, from the network, a message
// addressed to node dst: dst itself, unless dst is a host whose traffic
// enters through its SmartNICs, in which case the ToR's ECMP hashing of the
// flow over topology.HostPorts picks the SmartNIC (whose traffic manager
// forwards the message to the host over PCIe). Clients and agents use it
// alike, so the choice is the same everywhere.
func WireEnd(t *topology.Topology, dst topology.NodeID, flow uint64) topology.NodeID {
	nd := t.Node(dst)
	if nd.Kind == topology.SmartNIC || nd.Ports > 0 {
		return dst
	}
	srv := t.Server(nd.Server)
	if srv.SmartNICs == 0 {
		return dst
	}
	ports := t.HostPorts(nd.Server)
	return ports[int(mix64(flow^saltPort)%uint64(len(ports)))].Node
}

// FlowOf is the flow hash of a request: its origin and id, as if every
// client request were its own connection (clients open many). Every
// message of a request between the same two nodes takes the same path.
func FlowOf(originNode uint32, request uint64) uint64 {
	return mix64(uint64(originNode)<<40 ^ request)
}

// send transmits header h with payload to node dst, leaving this node at
// emulated time at (the header's Timestamp becomes the due time at the next
// hop). It blocks while the next hop pushes back.
func (a *Agent) send(h transport.Header, payload []byte, dst topology.NodeID, at int64) {
	next, viaLink := a.nextHop(dst, FlowOf(h.OriginNode, h.Request))
	bytes := transport.HeaderSize + len(payload)
	if a.emu != nil {
		h.Timestamp = at + int64(a.emu.Latency(a.self, next, bytes))
	}
	h.PayloadLen = uint32(len(payload))
	if next == a.self {
		m := getMsg()
		m.b, _ = h.Append(m.b[:0])
		m.b = append(m.b, payload...)
		m.h = h
		m.src = fromLocal
		a.input(m)
		return
	}
	w := getMsg() // a pooled buffer to encode into
	buf, _ := h.Append(w.b[:0])
	buf = append(buf, payload...)
	w.b = buf
	var err error
	if viaLink {
		p := a.hostLinks[next].Load()
		if p == nil {
			err = errors.New("runtime: no host link to " + a.topo.Name(next))
		} else if err = p.TrySend(buf); err == transport.ErrBackpressure {
			err = p.Send(a.ctx, buf)
		}
	} else {
		var ch *transport.Channel
		ch, err = a.peerChannel(next)
		if err == nil {
			if err = ch.TrySend(buf); err == transport.ErrBackpressure {
				err = ch.Send(a.ctx, buf)
			}
			if err != nil && a.ctx.Err() == nil {
				// A failed channel stays failed: forget it, so that the
				// next message opens a new one (the peer may be back).
				a.peers[next].CompareAndSwap(ch, nil)
			}
		}
	}
	putMsg(w)
	if err != nil {
		a.stats.sendErrors.Add(1)
		if a.ctx.Err() == nil {
			a.log.Warn("send failed", "to", a.topo.Name(next), "err", err)
		}
		// The message is lost: its request fails at its ingress (or by
		// timeout if that is where we could not reach).
		if h.Kind == transport.KindRequest && h.Weight != 0 && topology.NodeID(h.OriginNode) != next {
			a.sendError(h, "runtime: "+err.Error(), at)
		}
		return
	}
	a.stats.bytesOut.Add(uint64(bytes))
}

// sendError tells the ingress of h's request that it failed.
func (a *Agent) sendError(h transport.Header, reason string, at int64) {
	if len(reason) > 512 {
		reason = reason[:512]
	}
	e := transport.Header{Kind: transport.KindError, App: h.App, Instance: h.Instance,
		OriginNode: h.OriginNode, OriginSlot: h.OriginSlot, Request: h.Request}
	origin := topology.NodeID(h.OriginNode)
	if origin < 0 || int(origin) >= a.topo.NumNodes() {
		return
	}
	a.send(e, []byte(reason), origin, at)
}

// replyClient sends the outcome of a finished request to its client, from
// the ingress, at emulated time at.
func (a *Agent) replyClient(out *outcome, at int64) {
	s := out.s
	h := transport.Header{Kind: transport.KindReply, App: s.app, Instance: s.instance, Request: s.clientID}
	payload := s.resp
	if out.err != "" {
		// An error reply travels as a reply with weight 1 (a reply carries
		// no weight otherwise) until the edge node turns it into an error
		// for the client: KindError inside the cluster means "fail this
		// request" to an ingress.
		h.Weight = errorReply
		payload = []byte(out.err)
	}
	switch s.kind {
	case sinkSubmit:
		var err error
		if out.err != "" {
			err = errors.New(out.err)
		}
		if s.sink != nil {
			s.sink.Reply(s.token, payload, err, at)
		}
	case sinkBare:
		if a.emu != nil {
			at += int64(a.emu.ClientLatency(a.self, transport.HeaderSize+len(payload)))
		}
		h.Timestamp = at
		if h.Weight == errorReply {
			h.Kind, h.Weight = transport.KindError, 0
		}
		a.bare.add(h, payload, s.addr)
	case sinkClient:
		h.OriginNode, h.OriginSlot = uint32(s.edge), s.conn
		if s.edge == a.self {
			m := getMsg()
			m.h = h
			m.b, _ = h.Append(m.b[:0])
			m.b = append(m.b, payload...)
			m.setHeader()
			a.writeClient(m, at)
			return
		}
		a.send(h, payload, s.edge, at)
	}
}

// writeClient writes a reply (or error) to the client connection named by
// its origin slot, at emulated time at (plus the path to the client).
func (a *Agent) writeClient(m *msg, at int64) {
	a.cliMu.RLock()
	var ch *transport.Channel
	if int(m.h.OriginSlot) < len(a.clients) {
		ch = a.clients[m.h.OriginSlot]
	}
	a.cliMu.RUnlock()
	if ch == nil {
		a.stats.badMessages.Add(1)
		putMsg(m)
		return
	}
	if a.emu != nil {
		// Host to client through the traffic manager. Not for error
		// replies: the timeout sweeper sends those from its own goroutine,
		// and the pacer's cores belong to the pacer goroutine (a data race
		// the race detector caught when requests timed out under load);
		// a failed request's reply costs no emulated traffic-manager time.
		if m.src != fromLocal && a.isNIC && a.pace != nil && m.h.Weight != errorReply {
			a.pace.occupyTM(m)
			at = m.finish
		}
		m.h.Timestamp = at + int64(a.emu.ClientLatency(a.self, len(m.b)))
	}
	if m.h.Weight == errorReply {
		m.h.Kind, m.h.Weight = transport.KindError, 0
	}
	m.setHeader()
	err := ch.TrySend(m.b)
	if err == transport.ErrBackpressure {
		err = ch.Send(a.ctx, m.b)
	}
	if err == nil {
		a.stats.bytesOut.Add(uint64(len(m.b)))
	}
	putMsg(m)
}

// timeSample: one handler call in timeSample is timed.
const timeSample = 8

// errorReply marks a reply in transit that reports an error.
const errorReply = 1

// worker is one core of the node: it runs handlers to completion.
type worker struct {
	a   *Agent
	id  int
	in  *inbox
	ctx service.Context
	// cur is the message being handled; emits are collected during the
	// call and routed after it, when their number (and so each one's share
	// of the completion weight) is known.
	cur   *msg
	calls uint64
	emits []emitted
	arena []byte
	pay   []byte
}

type emitted struct {
	key      uint64
	off, end int
}

func newWorker(a *Agent, id int) *worker {
	return &worker{a: a, id: id, in: newInbox(), ctx: service.Context{Scratch: make([]byte, 0, 4096)}, arena: make([]byte, 0, 8192)}
}

// Emit implements service.Emitter: it records the message for routing
// after the handler returns.
func (w *worker) Emit(key uint64, payload []byte) {
	off := len(w.arena)
	w.arena = append(w.arena, payload...)
	w.emits = append(w.emits, emitted{key: key, off: off, end: len(w.arena)})
}

func (w *worker) run() {
	defer w.a.wg.Done()
	for {
		batch := w.in.take()
		if len(batch) == 0 {
			w.in.give(batch)
			select {
			case <-w.in.wake:
				continue
			case <-w.a.ctx.Done():
				return
			}
		}
		for _, m := range batch {
			w.handle(m)
		}
		w.in.give(batch)
	}
}

// handle runs the handler of m's instance and routes what it emitted.
func (w *worker) handle(m *msg) {
	a := w.a
	in := m.inst // set when the message entered the instance
	if in.state.Load() == stateStopped {
		in.exit()
		a.sendError(m.h, "runtime: instance "+in.inst.ID+" stopped on "+a.Name(), m.finish)
		putMsg(m)
		return
	}
	now := m.start
	if a.emu != nil {
		now += a.emu.UnixBase
	} else {
		now = a.coarseNow().UnixNano()
	}
	w.ctx.Reset(now, m.h.KeyHash, w)
	w.emits, w.arena = w.emits[:0], w.arena[:0]
	w.cur = m
	// The handler's real time is sampled (one message in timeSample): a
	// clock read costs tens of nanoseconds, a noticeable share of a light
	// handler's path.
	w.calls++
	timed := w.calls%timeSample == 0
	var t0 time.Time
	if timed {
		t0 = time.Now()
	}
	err := in.h.Handle(&w.ctx, m.payload())
	w.cur = nil
	in.msgs.Add(1)
	if timed {
		real := time.Since(t0)
		in.realNs.Add(uint64(real))
		in.timed.Add(1)
		if a.emu == nil {
			emaUpdate(&in.execEMA, float64(real))
		}
	}
	if a.emu != nil {
		emaUpdate(&in.execEMA, float64(in.demand))
		emaUpdate(&in.sojEMA, float64(m.finish-m.due))
	}
	if err == nil && in.store != nil && in.store.LSN() > in.store.DurableLSN() {
		// The barrier: what the handler wrote must be on disk and at the
		// backup before anything it emits leaves or its request is
		// answered. (It waits for every earlier record of the instance,
		// so no reply reveals a write that could still be lost.) The
		// worker does not wait: the message, its emits and its response
		// are set aside and routed when the records are durable, so that
		// the commits of many messages are shared (group commit).
		m.finish += in.replRTT.Load()
		d := newDeferred(in, m, w.emits, w.arena, w.ctx.Response())
		in.store.SyncFunc(d.readyF)
		return
	}
	if err != nil {
		in.errs.Add(1)
		a.sendError(m.h, "runtime: "+in.inst.ID+": "+err.Error(), m.finish)
		in.exit()
		putMsg(m)
		return
	}
	w.route(in, m)
	in.exit()
	putMsg(m)
}

// route sends the emitted messages along the node's out-edges, splitting
// the message's completion weight exactly among them; with nothing to send
// it returns the weight (and the response) to the ingress.
func (w *worker) route(in *instance, m *msg) {
	w.a.route(in, m, w.emits, w.arena, w.ctx.Response())
}

// route sends what a handler emitted (emits, their payloads in arena) and
// its response resp on, for message m of instance in.
func (a *Agent) route(in *instance, m *msg, emits []emitted, arena, resp []byte) {
	nd := in.inst.Node
	n := 0
	for _, e := range emits {
		for _, ed := range nd.Out {
			n += targets(ed, e.key, &m.h)
		}
	}
	if n == 0 {
		c := transport.Header{Kind: transport.KindCompletion, App: m.h.App, Instance: m.h.Instance,
			OriginNode: m.h.OriginNode, OriginSlot: m.h.OriginSlot, Request: m.h.Request, Weight: m.h.Weight}
		if topology.NodeID(m.h.OriginNode) == a.self && a.emu == nil {
			out := getOutcome()
			defer putOutcome(out)
			if a.ing.complete(m.h.Request, m.h.Weight, resp, out) {
				a.stats.completed.Add(1)
				a.replyClient(out, 0)
			}
			return
		}
		a.send(c, resp, topology.NodeID(m.h.OriginNode), m.finish)
		return
	}
	if len(resp) > 0 && topology.NodeID(m.h.OriginNode) == a.self {
		a.ing.noteResponse(m.h.Request, resp)
	}
	first, each := transport.SplitWeight(m.h.Weight, n)
	i := 0
	st := a.state.Load()
	var as *appState
	if int(m.h.App) < len(st.apps) {
		as = st.apps[m.h.App]
	}
	if as == nil {
		a.sendError(m.h, "runtime: app no longer deployed on "+a.Name(), m.finish)
		return
	}
	for _, e := range emits {
		payload := arena[e.off:e.end]
		for ei, ed := range nd.Out {
			if !takes(ed, e.key, &m.h) {
				continue
			}
			h := transport.Header{Kind: transport.KindRequest, App: m.h.App,
				OriginNode: m.h.OriginNode, OriginSlot: m.h.OriginSlot, Request: m.h.Request, KeyHash: e.key}
			sendTo := func(dst *app.Instance) {
				h.Instance = uint32(dst.Index)
				h.Weight = each
				if i == 0 {
					h.Weight = first
				}
				i++
				in.bytesOut.Add(uint64(transport.HeaderSize + len(payload)))
				a.send(h, payload, as.nodeOf(h.Instance), m.finish)
			}
			switch ed.Policy {
			case app.KeyHash:
				sendTo(ed.KeyTarget(e.key))
			case app.RoundRobin:
				k := int(in.rr[ei].Add(1)-1) % ed.To.Shards
				sendTo(ed.To.Primary(k))
			case app.Broadcast:
				for s := range ed.To.Shards {
					sendTo(ed.To.Primary(s))
				}
			}
		}
	}
}

// takes reports whether a message emitted with key goes along edge ed: an
// edge with a share below 1 takes a fraction of them, chosen by hashing the
// request and key, so that every node (and the simulator) agrees.
func takes(ed *app.Edge, key uint64, h *transport.Header) bool {
	if ed.Share >= 1 {
		return true
	}
	x := mix64(h.Request ^ uint64(h.OriginNode)<<48 ^ mix64(key) ^ uint64(ed.Index)*0x9e3779b97f4a7c15)
	return float64(x>>11)/(1<<53) < ed.Share
}

// targets is the number of messages an emit with key sends along ed.
func targets(ed *app.Edge, key uint64, h *transport.Header) int {
	if !takes(ed, key, h) {
		return 0
	}
	if ed.Policy == app.Broadcast {
		return ed.To.Shards
	}
	return 1
}

// pacer holds arriving messages until real time reaches their due time
// times D, then dispatches them in due order; it also keeps the emulated
// cores' busy-until times. One goroutine and one timer per agent, however
// many messages wait.
type pacer struct {
	a     *Agent
	in    *inbox
	q     msgHeap
	seq   uint64
	busy  []int64 // per emulated core: busy until (emulated ns)
	tmQ   []int64 // start times of traffic-manager work not yet started
	timer *time.Timer
}

func newPacer(a *Agent) *pacer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &pacer{a: a, in: newInbox(), busy: make([]int64, len(a.workers)), timer: t}
}

func (p *pacer) push(m *msg) { p.in.push(m) }

// occupy puts m on the emulated core that frees first, for d emulated ns.
func (p *pacer) occupy(m *msg, d int64) {
	k := 0
	for i, b := range p.busy {
		if b < p.busy[k] {
			k = i
		}
	}
	m.core = k
	m.start = max(m.due, p.busy[k])
	m.finish = m.start + d
	p.busy[k] = m.finish
	p.a.stats.busyNs.Add(d)
	p.a.stats.queueNs.Add(m.start - m.due)
}

// occupyTM accounts one traffic-manager forwarding on the SmartNIC cores.
func (p *pacer) occupyTM(m *msg) {
	p.occupy(m, int64(p.a.emu.TMDemand))
	p.a.stats.tmBusyNs.Add(int64(p.a.emu.TMDemand))
	p.a.stats.tmPackets.Add(1)
	p.a.stats.tmWaitNs.Add(m.start - m.due)
	if m.start > m.due {
		p.tmQ = append(p.tmQ, m.start)
	}
}

func (p *pacer) run() {
	a := p.a
	defer a.wg.Done()
	for {
		batch := p.in.take()
		for _, m := range batch {
			p.seq++
			m.seq = p.seq
			heap.Push(&p.q, m)
		}
		p.in.give(batch)
		now := a.emuNow()
		for len(p.q) > 0 && p.q[0].due <= now {
			m := heap.Pop(&p.q).(*msg)
			if late := now - m.due; late > lateTolerance {
				a.stats.late.Add(1)
				a.stats.lateNs.Add(late)
			}
			a.stats.paced.Add(1)
			a.dispatch(m)
		}
		// Traffic-manager queue: forwardings that have arrived and not
		// started on a core by now.
		k := 0
		for k < len(p.tmQ) && p.tmQ[k] <= now {
			k++
		}
		if k > 0 {
			p.tmQ = append(p.tmQ[:0], p.tmQ[k:]...)
		}
		a.stats.tmDepth.Store(int64(len(p.tmQ)))
		if len(p.q) == 0 {
			select {
			case <-p.in.wake:
			case <-a.ctx.Done():
				p.drain()
				return
			}
			continue
		}
		wait := time.Until(a.realAt(p.q[0].due))
		if wait <= 0 {
			continue
		}
		if wait < a.emu.SpinBelow {
			// Go timers fire late by tens of microseconds; a short wait is
			// better spent yielding.
			select {
			case <-a.ctx.Done():
				p.drain()
				return
			default:
			}
			goruntime.Gosched()
			continue
		}
		p.timer.Reset(wait)
		select {
		case <-p.timer.C:
		case <-p.in.wake:
			if !p.timer.Stop() {
				<-p.timer.C
			}
		case <-a.ctx.Done():
			p.timer.Stop()
			p.drain()
			return
		}
	}
}

func (p *pacer) drain() {
	for _, m := range p.q {
		putMsg(m)
	}
	p.q = nil
	for _, m := range p.in.take() {
		putMsg(m)
	}
}

// lateTolerance is the emulated lateness below which a message counts as
// on time: about one PCIe or ToR hop. Pacing cannot be finer than the real
// scheduler's wake-ups (tens to hundreds of microseconds) divided by D, and
// a late message's figures stay exact (they come from its timestamps);
// what lateness can disturb is the order in which an emulated core takes
// messages.
const lateTolerance = 5000 // ns

// msgHeap orders messages by due time, then arrival.
type msgHeap []*msg

func (h msgHeap) Len() int { return len(h) }
func (h msgHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].seq < h[j].seq
}
func (h msgHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *msgHeap) Push(x any)   { *h = append(*h, x.(*msg)) }
func (h *msgHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return m
}
