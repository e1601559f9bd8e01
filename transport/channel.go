package transport

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of the channel layer.
var (
	// ErrBackpressure is returned by non-blocking sends when the receiver
	// has granted no room for another message. The message was not taken;
	// the caller may retry later, wait (Send), or shed load upstream.
	ErrBackpressure = errors.New("transport: backpressure: the receiver has granted no room")
	// ErrNoMessage is returned by TryRecv when no message is ready.
	ErrNoMessage = errors.New("transport: no message ready")
	// ErrMessageTooLarge is returned (wrapped, with the sizes) for a message
	// that does not fit one datagram.
	ErrMessageTooLarge = errors.New("transport: message too large")
	// ErrPeerUnreachable is returned (wrapped, naming the peer) once a
	// channel has retransmitted MaxRetries times in a row without hearing
	// from its peer. Messages still unacknowledged are not delivered; the
	// caller owns the consequence (the runtime fails their requests).
	ErrPeerUnreachable = errors.New("transport: peer unreachable")
)

// EndpointConfig configures an [Endpoint]. Zero fields take the defaults
// given; both ends of a channel should use the same Window and MaxDatagram.
type EndpointConfig struct {
	// Clock drives retransmission timers; nil means [RealClock].
	Clock Clock
	// Window is the number of messages a receiver buffers per channel and
	// so the most a sender may have outstanding (default 256). It bounds
	// memory: each slot keeps a copy of up to one message.
	Window int
	// MaxDatagram is the largest datagram sent or accepted (default 1472,
	// an Ethernet MTU less IPv4 and UDP headers). A message may be up to
	// MaxDatagram-42 bytes.
	MaxDatagram int
	// Batch is the number of datagrams per ReadBatch and WriteBatch call
	// (default 64).
	Batch int
	// InitialRTO, MinRTO and MaxRTO bound the retransmission timeout, which
	// otherwise follows the measured round-trip time (RFC 6298). Defaults:
	// 20 ms, 2 ms, 1 s. MinRTO sits well above a loopback or in-rack RTT so
	// that a scheduling hiccup does not cause a spurious resend; a resend
	// is harmless anyway (duplicates are suppressed).
	InitialRTO, MinRTO, MaxRTO time.Duration
	// MaxRetries is how many timeouts in a row without any frame from the
	// peer make a channel fail with ErrPeerUnreachable (default 10; with the
	// default timeouts that is about 2 to 5 s of silence).
	MaxRetries int
	// AcceptQueue is how many channels opened by peers may wait for Accept
	// (default 64; -1 turns accepting off). Frames for a channel that is
	// neither open here nor has room in the queue are dropped, and the peer
	// resends them, so an endpoint whose user opens every channel itself
	// (both ends call Open with agreed ids) can set -1 and lose nothing.
	AcceptQueue int
	// Unhandled, if set, receives every datagram that is not a channel
	// frame (see [IsFrame]), for example bare E3 requests from clients, so
	// that one socket can serve both. It runs on the endpoint's reader
	// goroutine and must not keep b after returning.
	Unhandled func(b []byte, from netip.AddrPort)
}

func (c *EndpointConfig) fill() (*sessionConfig, error) {
	if c.Clock == nil {
		c.Clock = RealClock{}
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Window, 256)
	def(&c.MaxDatagram, 1472)
	def(&c.Batch, 64)
	def(&c.MaxRetries, 10)
	def(&c.AcceptQueue, 64)
	defD(&c.InitialRTO, 20*time.Millisecond)
	defD(&c.MinRTO, 2*time.Millisecond)
	defD(&c.MaxRTO, time.Second)
	switch {
	case c.Window < 1:
		return nil, fmt.Errorf("transport: endpoint config: Window %d: want at least 1", c.Window)
	case c.MaxDatagram < frameHeaderSize+frameLenSize+1 || c.MaxDatagram > 65507:
		return nil, fmt.Errorf("transport: endpoint config: MaxDatagram %d: want %d..65507", c.MaxDatagram, frameHeaderSize+frameLenSize+1)
	case c.Batch < 1:
		return nil, fmt.Errorf("transport: endpoint config: Batch %d: want at least 1", c.Batch)
	case c.MinRTO <= 0 || c.MaxRTO < c.MinRTO || c.InitialRTO <= 0:
		return nil, fmt.Errorf("transport: endpoint config: RTO bounds min %v, initial %v, max %v: want 0 < min <= max and initial > 0", c.MinRTO, c.InitialRTO, c.MaxRTO)
	case c.MaxRetries < 1:
		return nil, fmt.Errorf("transport: endpoint config: MaxRetries %d: want at least 1", c.MaxRetries)
	case c.AcceptQueue < -1:
		return nil, fmt.Errorf("transport: endpoint config: AcceptQueue %d: want -1 (off) or more", c.AcceptQueue)
	}
	maxMsg := c.MaxDatagram - frameHeaderSize - frameLenSize
	if maxMsg > 0xffff {
		maxMsg = 0xffff
	}
	return &sessionConfig{
		window:      c.Window,
		maxMessage:  maxMsg,
		minRTO:      c.MinRTO,
		maxRTO:      c.MaxRTO,
		initialRTO:  c.InitialRTO,
		maxRetries:  c.MaxRetries,
		creditBatch: uint64(max(1, c.Window/4)),
	}, nil
}

// EndpointStats counts what an endpoint's channels did.
type EndpointStats struct {
	DatagramsIn     uint64 // datagrams read from the socket
	DatagramsOut    uint64 // datagrams written
	WriteErrors     uint64 // failed writes (the data is resent by the timer)
	BadFrames       uint64 // undecodable frames (dropped)
	UnknownChannel  uint64 // frames for a channel nobody opened and the accept queue could not take
	MessagesSent    uint64 // first transmissions
	Retransmits     uint64 // retransmissions, timer or fast
	FastRetransmits uint64 // retransmissions triggered by selective acks
	Timeouts        uint64 // retransmission timer expiries
	Probes          uint64 // credit probes sent
	Duplicates      uint64 // messages received again (suppressed)
	OutOfWindow     uint64 // messages received beyond the granted credit (dropped, resent)
	BadAcks         uint64 // frames acknowledging messages never sent (ignored)
}

type endpointCounters struct {
	datagramsIn, datagramsOut, writeErrors, badFrames, unknownChannel atomic.Uint64
	messagesSent, retransmits, fastRetransmits, timeouts, probes      atomic.Uint64
	duplicates, outOfWindow, badAcks                                  atomic.Uint64
}

type chanKey struct {
	peer netip.AddrPort
	id   uint32
}

// Endpoint runs lossless, flow-controlled channels over one [BatchConn].
// It owns two goroutines: a reader that feeds arriving frames to their
// channels, and a writer that turns what channels owe (new messages,
// retransmissions, acks, credit) into batches of datagrams. Close stops
// both and closes the connection.
type Endpoint struct {
	conn BatchConn
	cfg  EndpointConfig
	scfg *sessionConfig
	st   endpointCounters

	mu     sync.Mutex
	chans  map[chanKey]*Channel
	closed bool

	accept chan *Channel

	dirtyMu sync.Mutex
	dirty   []*Channel // channels with frames to emit; each at most once
	spare   []*Channel // the other half of the double buffer
	kick    chan struct{}

	done chan struct{}
	wg   sync.WaitGroup
}

// NewEndpoint starts an endpoint on conn. The endpoint owns conn from now
// on: it reads every datagram (passing those that are not channel frames
// to EndpointConfig.Unhandled) and closes conn on Close. The caller may
// still write datagrams of its own with conn.WriteBatch (an ingress
// answering clients on the socket its channels use, say).
func NewEndpoint(conn BatchConn, cfg EndpointConfig) (*Endpoint, error) {
	scfg, err := cfg.fill()
	if err != nil {
		return nil, err
	}
	e := &Endpoint{
		conn:   conn,
		cfg:    cfg,
		scfg:   scfg,
		chans:  make(map[chanKey]*Channel),
		accept: make(chan *Channel, max(cfg.AcceptQueue, 0)),
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	e.wg.Add(2)
	go e.readLoop()
	go e.writeLoop()
	return e, nil
}

// LocalAddr is the address peers open channels to.
func (e *Endpoint) LocalAddr() netip.AddrPort { return e.conn.LocalAddr() }

// MaxMessage is the largest message a channel of this endpoint carries.
func (e *Endpoint) MaxMessage() int { return e.scfg.maxMessage }

// Open returns the channel with the given id to peer, creating it if
// needed. Both ends open (or one opens and the other accepts) the same id;
// ids need only be unique per pair of endpoints.
func (e *Endpoint) Open(peer netip.AddrPort, id uint32) (*Channel, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("transport: open channel %d to %v: endpoint %w", id, peer, ErrClosed)
	}
	if !peer.IsValid() {
		return nil, fmt.Errorf("transport: open channel %d: invalid peer address %v", id, peer)
	}
	k := chanKey{peer, id}
	if c := e.chans[k]; c != nil {
		return c, nil
	}
	return e.newChannel(k), nil
}

// newChannel registers a channel; e.mu must be held.
func (e *Endpoint) newChannel(k chanKey) *Channel {
	c := &Channel{
		ep:       e,
		key:      k,
		s:        newSession(k.peer, k.id, e.scfg, &e.st),
		sendWake: make(chan struct{}, 1),
		recvWake: make(chan struct{}, 1),
		ackWake:  make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	c.timer = e.cfg.Clock.AfterFunc(time.Hour, c.onTimer)
	c.timer.Stop()
	e.chans[k] = c
	return c
}

// Accept returns the next channel that a peer opened to this endpoint and
// that was not opened here first.
func (e *Endpoint) Accept(ctx context.Context) (*Channel, error) {
	select {
	case c := <-e.accept:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.done:
		return nil, fmt.Errorf("transport: accept on %v: endpoint %w", e.LocalAddr(), ErrClosed)
	}
}

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() EndpointStats {
	s := &e.st
	return EndpointStats{
		DatagramsIn: s.datagramsIn.Load(), DatagramsOut: s.datagramsOut.Load(),
		WriteErrors: s.writeErrors.Load(), BadFrames: s.badFrames.Load(),
		UnknownChannel: s.unknownChannel.Load(), MessagesSent: s.messagesSent.Load(),
		Retransmits: s.retransmits.Load(), FastRetransmits: s.fastRetransmits.Load(),
		Timeouts: s.timeouts.Load(), Probes: s.probes.Load(),
		Duplicates: s.duplicates.Load(), OutOfWindow: s.outOfWindow.Load(),
		BadAcks: s.badAcks.Load(),
	}
}

// Close closes every channel, stops the endpoint's goroutines and closes
// the connection. Messages not yet acknowledged are abandoned: call
// [Channel.Flush] first for a graceful stop.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	chans := make([]*Channel, 0, len(e.chans))
	for _, c := range e.chans {
		chans = append(chans, c)
	}
	e.mu.Unlock()
	for _, c := range chans {
		c.Close()
	}
	close(e.done)
	err := e.conn.Close()
	e.wg.Wait()
	return err
}

// markDirty queues c for the writer. Safe to call with c.mu held.
func (e *Endpoint) markDirty(c *Channel) {
	e.dirtyMu.Lock()
	if !c.queued {
		c.queued = true
		e.dirty = append(e.dirty, c)
	}
	e.dirtyMu.Unlock()
}

func (e *Endpoint) wakeWriter() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *Endpoint) readLoop() {
	defer e.wg.Done()
	ms := NewMessages(e.cfg.Batch, e.cfg.MaxDatagram)
	var f frame
	for {
		n, err := e.conn.ReadBatch(ms)
		if err != nil {
			select {
			case <-e.done:
				return
			default:
			}
			if errors.Is(err, ErrClosed) {
				return
			}
			// A transient socket error (an ICMP report surfacing, say):
			// count it as a bad read and go on; lost data is resent.
			e.st.badFrames.Add(1)
			continue
		}
		e.st.datagramsIn.Add(uint64(n))
		now := e.cfg.Clock.Now()
		woke := false
		for i := 0; i < n; i++ {
			b := ms[i].Payload()
			if !IsFrame(b) {
				if e.cfg.Unhandled != nil {
					e.cfg.Unhandled(b, ms[i].Addr)
				}
				continue
			}
			if err := decodeFrame(b, &f); err != nil {
				e.st.badFrames.Add(1)
				continue
			}
			c := e.lookup(chanKey{ms[i].Addr, f.chanID})
			if c == nil {
				e.st.unknownChannel.Add(1)
				continue
			}
			if c.deliver(&f, now) {
				woke = true
			}
		}
		if woke {
			e.wakeWriter()
		}
	}
}

// lookup finds the channel a frame belongs to, creating it for Accept if
// it is new and the accept queue has room.
func (e *Endpoint) lookup(k chanKey) *Channel {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.chans[k]; c != nil || e.closed {
		return c
	}
	if len(e.accept) == cap(e.accept) { // full, or accepting is off
		return nil
	}
	c := e.newChannel(k)
	e.accept <- c // cannot block: checked for room under e.mu, only we send
	return c
}

func (e *Endpoint) writeLoop() {
	defer e.wg.Done()
	w := newFrameWriter(e.cfg.Batch, e.cfg.MaxDatagram, e.write)
	for {
		select {
		case <-e.kick:
		case <-e.done:
			return
		}
		e.dirtyMu.Lock()
		list := e.dirty
		e.dirty = e.spare[:0]
		for _, c := range list {
			c.queued = false
		}
		e.dirtyMu.Unlock()
		now := e.cfg.Clock.Now()
		for i, c := range list {
			c.emit(now, w)
			list[i] = nil
		}
		w.flushNow()
		e.dirtyMu.Lock()
		e.spare = list[:0]
		e.dirtyMu.Unlock()
	}
}

func (e *Endpoint) write(ms []Message) {
	n, err := e.conn.WriteBatch(ms)
	e.st.datagramsOut.Add(uint64(n))
	if err != nil {
		// Whatever was not sent counts as lost and is resent on timeout.
		e.st.writeErrors.Add(1)
	}
}

// Channel is one lossless, in-order, flow-controlled channel between two
// endpoints, carrying messages both ways. Messages are byte strings of up
// to [Endpoint.MaxMessage] bytes, typically an encoded [Header] and its
// payload. Send and Recv copy, so the caller keeps its buffers.
//
// Any number of goroutines may send and receive on a channel at once;
// messages from one sender keep their order.
type Channel struct {
	ep  *Endpoint
	key chanKey

	mu      sync.Mutex
	s       *session
	closed  bool
	timer   Timer
	timerAt time.Time // deadline the timer is armed for; zero if idle
	queued  bool      // in ep.dirty; guarded by ep.dirtyMu

	sendWake chan struct{} // credit or ring space appeared
	recvWake chan struct{} // a message became readable
	ackWake  chan struct{} // the cumulative ack moved (Flush)
	done     chan struct{} // closed on Close or failure
}

// Peer is the remote endpoint's address.
func (c *Channel) Peer() netip.AddrPort { return c.key.peer }

// ID is the channel id.
func (c *Channel) ID() uint32 { return c.key.id }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// TrySend queues msg without waiting. It returns ErrBackpressure when the
// receiver has granted no room, and the channel's error once it has
// failed or been closed.
func (c *Channel) TrySend(msg []byte) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.closedErr()
	}
	err := c.s.push(msg)
	more := c.s.canPush()
	c.mu.Unlock()
	switch {
	case err == nil:
		c.ep.markDirty(c)
		c.ep.wakeWriter()
		if more {
			signal(c.sendWake) // pass the turn to another blocked sender
		}
		return nil
	case err == errBackpressure:
		return ErrBackpressure
	}
	return err
}

// Send queues msg, waiting while the receiver has granted no room. It
// returns nil once the message is queued (not yet delivered: see Flush),
// ctx's error if ctx ends first, or the channel's error.
func (c *Channel) Send(ctx context.Context, msg []byte) error {
	for {
		err := c.TrySend(msg)
		if err != ErrBackpressure {
			return err
		}
		select {
		case <-c.sendWake:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return c.closedErr()
		}
	}
}

// TryRecv appends the next message to dst without waiting; it returns
// ErrNoMessage when none is ready.
func (c *Channel) TryRecv(dst []byte) ([]byte, error) {
	c.mu.Lock()
	out, ok := c.s.pop(dst)
	owe := c.s.ackOwed
	closed, err := c.closed, c.s.err
	c.mu.Unlock()
	if ok {
		if owe {
			c.ep.markDirty(c)
			c.ep.wakeWriter()
		}
		return out, nil
	}
	if closed || err != nil {
		return dst, c.closedErr()
	}
	return dst, ErrNoMessage
}

// Recv appends the next message to dst, waiting until one arrives. Taking
// a message is what grants the sender credit for another. Messages that
// arrived before the channel failed are still returned; then the error.
func (c *Channel) Recv(ctx context.Context, dst []byte) ([]byte, error) {
	for {
		out, err := c.TryRecv(dst)
		if err != ErrNoMessage {
			return out, err
		}
		select {
		case <-c.recvWake:
		case <-ctx.Done():
			return dst, ctx.Err()
		case <-c.done:
			// Recheck: messages that arrived before the end are delivered.
		}
	}
}

// Flush waits until the peer has acknowledged every message sent so far.
func (c *Channel) Flush(ctx context.Context) error {
	for {
		c.mu.Lock()
		left, closed, err := c.s.unacked(), c.closed, c.s.err
		c.mu.Unlock()
		if left == 0 {
			return nil
		}
		if closed || err != nil {
			return fmt.Errorf("transport: flush channel %d to %v: %d messages unacknowledged: %w", c.key.id, c.key.peer, left, c.closedErr())
		}
		select {
		case <-c.ackWake:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
		}
	}
}

// Err returns the error that ended the channel, or nil while it works.
func (c *Channel) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.err != nil {
		return c.s.err
	}
	if c.closed {
		return c.closedErr()
	}
	return nil
}

func (c *Channel) closedErr() error {
	if err := c.s.err; err != nil {
		return err
	}
	return fmt.Errorf("transport: channel %d to %v: %w", c.key.id, c.key.peer, ErrClosed)
}

// Close ends the channel at this end: waiting calls return, unacknowledged
// messages are abandoned. A peer that keeps sending gets no answers and
// eventually fails with ErrPeerUnreachable. Use Flush first to be sure
// everything sent has arrived.
func (c *Channel) Close() error {
	c.ep.mu.Lock()
	if c.ep.chans[c.key] == c {
		delete(c.ep.chans, c.key)
	}
	c.ep.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shutdown()
	return nil
}

// shutdown marks the channel closed and releases waiters; c.mu held.
func (c *Channel) shutdown() {
	if c.closed {
		return
	}
	c.closed = true
	c.timer.Stop()
	close(c.done)
}

// deliver applies an incoming frame; it reports whether the writer has
// something to send for this channel.
func (c *Channel) deliver(f *frame, now time.Time) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	ev := c.s.onFrame(f, now)
	pending := c.s.pending()
	c.mu.Unlock()
	if ev.readable {
		signal(c.recvWake)
	}
	if ev.space {
		signal(c.sendWake)
	}
	if ev.acked {
		signal(c.ackWake)
	}
	if pending {
		c.ep.markDirty(c)
	}
	return pending
}

// emit writes what the channel owes and re-arms its timer.
func (c *Channel) emit(now time.Time, w *frameWriter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.s.emit(now, w)
	if c.s.err != nil {
		c.shutdown() // failed: waiters see the error
		c.ep.mu.Lock()
		if c.ep.chans[c.key] == c {
			delete(c.ep.chans, c.key)
		}
		c.ep.mu.Unlock()
		return
	}
	if dl := c.s.deadline(); !dl.IsZero() && (c.timerAt.IsZero() || dl.Before(c.timerAt)) {
		// Arm only when the deadline moves earlier; a later deadline is
		// picked up when the earlier timer fires, so the common case (an
		// ack pushing the deadline back) costs no timer operation.
		c.timerAt = dl
		c.timer.Reset(max(dl.Sub(now), 0))
	}
}

func (c *Channel) onTimer() {
	c.mu.Lock()
	c.timerAt = time.Time{}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	c.ep.markDirty(c)
	c.ep.wakeWriter()
}
