package transport

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"time"
)

// session is the protocol state of one channel, both directions, with no
// I/O, locks or goroutines: frames come in through onFrame, frames go out
// through emit into a frameWriter, time comes in as a parameter. Endpoint
// wraps it with sockets and timers; the tests drive it directly over a
// simulated lossy link, one step at a time, so a failing seed replays
// exactly.
//
// Sequence numbers start at 1 and are 64 bits wide, so they never wrap.
//
// Send side. Messages the application pushed occupy a ring of window slots:
//
//	sndUna <= sndNxt <= sndEnd <= sndLimit
//	[sndUna, sndNxt)  sent at least once, not yet acknowledged
//	[sndNxt, sndEnd)  accepted from the application, not yet sent
//	sndLimit          the receiver's credit: it accepts seq < sndLimit
//
// push refuses a message (backpressure) when sndEnd reaches sndLimit or the
// ring is full; nothing is ever accepted that the receiver has no room for.
//
// Receive side. Messages that arrived occupy a ring of window slots:
//
//	readNext <= rcvNext <= readNext+window
//	[readNext, rcvNext)  arrived in order, waiting for the application
//	rcvNext              the first missing message (the cumulative ack)
//	readNext+window      the credit limit we advertise
//
// Credit therefore grows only when the application consumes a message: a
// receiver that stops reading stops granting credit and its sender stops.
type session struct {
	peer netip.AddrPort
	id   uint32
	cfg  *sessionConfig
	st   *endpointCounters

	// send side
	snd         []sendSlot
	sndUna      uint64
	sndNxt      uint64
	sndEnd      uint64
	sndLimit    uint64
	retxPending int // slots with want set
	srtt        time.Duration
	rttvar      time.Duration
	rto         time.Duration
	rtoDeadline time.Time // zero: no timer needed
	retries     int       // consecutive timeouts without news from the peer
	wantCredit  bool      // push was refused for lack of credit
	probeOwed   bool

	// receive side
	rcv        []recvSlot
	readNext   uint64
	rcvNext    uint64
	rcvMax     uint64 // highest seq stored, for the sack bitmap
	advertised uint64 // limit we last told the peer
	ackOwed    bool

	err error // non-nil once the channel has failed
}

type sendSlot struct {
	buf    []byte
	sentAt time.Time // last transmission; zero if never sent
	retx   uint32    // retransmissions so far
	sacked bool      // the receiver has it (selective ack)
	fast   bool      // fast-retransmitted already (done once per message)
	want   bool      // queued for retransmission
}

type recvSlot struct {
	buf     []byte
	present bool
}

// sessionConfig holds the validated protocol parameters shared by all
// channels of an endpoint.
type sessionConfig struct {
	window      int
	maxMessage  int
	minRTO      time.Duration
	maxRTO      time.Duration
	initialRTO  time.Duration
	maxRetries  int
	creditBatch uint64 // consumed messages that make a credit update worth a frame
}

// dupThreshold is how many later messages the receiver must hold before a
// missing one is retransmitted without waiting for the timer (as TCP's three
// duplicate acks).
const dupThreshold = 3

// errBackpressure is push's refusal; Channel turns it into waiting or into
// ErrBackpressure.
var errBackpressure = errors.New("transport: backpressure")

func newSession(peer netip.AddrPort, id uint32, cfg *sessionConfig, st *endpointCounters) *session {
	w := uint64(cfg.window)
	return &session{
		peer: peer, id: id, cfg: cfg, st: st,
		snd:    make([]sendSlot, cfg.window),
		sndUna: 1, sndNxt: 1, sndEnd: 1,
		// Until the peer speaks we assume it runs the same window; if it
		// is smaller, what it cannot hold is dropped there and resent here
		// once its real limit arrives, so a mismatch costs time, not data.
		sndLimit: 1 + w,
		rto:      cfg.initialRTO,
		rcv:      make([]recvSlot, cfg.window),
		readNext: 1, rcvNext: 1, rcvMax: 0,
		advertised: 1 + w,
	}
}

// canPush reports whether push would accept a message now.
func (s *session) canPush() bool {
	return s.err == nil && s.sndEnd < s.sndLimit && s.sndEnd-s.sndUna < uint64(len(s.snd))
}

// push copies msg into the send ring.
func (s *session) push(msg []byte) error {
	if s.err != nil {
		return s.err
	}
	if len(msg) > s.cfg.maxMessage {
		return fmt.Errorf("%w: %d bytes, at most %d fit one datagram", ErrMessageTooLarge, len(msg), s.cfg.maxMessage)
	}
	if !s.canPush() {
		s.wantCredit = true
		return errBackpressure
	}
	sl := &s.snd[s.sndEnd%uint64(len(s.snd))]
	sl.buf = append(sl.buf[:0], msg...)
	sl.sentAt = time.Time{}
	sl.retx, sl.sacked, sl.fast, sl.want = 0, false, false, false
	s.sndEnd++
	return nil
}

// pop appends the next in-order message to dst. It reports false when the
// next message has not arrived.
func (s *session) pop(dst []byte) ([]byte, bool) {
	if s.readNext >= s.rcvNext {
		return dst, false
	}
	sl := &s.rcv[s.readNext%uint64(len(s.rcv))]
	dst = append(dst, sl.buf...)
	sl.present = false
	s.readNext++
	// Tell the sender about the new room once enough has built up; a
	// frame per consumed message would double the traffic for nothing.
	if s.readNext+uint64(len(s.rcv))-s.advertised >= s.cfg.creditBatch {
		s.ackOwed = true
	}
	return dst, true
}

// readable reports whether pop would return a message.
func (s *session) readable() bool { return s.readNext < s.rcvNext }

// unacked reports how many pushed messages the peer has not acknowledged.
func (s *session) unacked() uint64 { return s.sndEnd - s.sndUna }

// frameEvents says what a frame changed, so the caller wakes the right
// waiters.
type frameEvents struct {
	readable bool // new in-order messages for the application
	space    bool // credit or ring space grew: blocked senders may go on
	acked    bool // the cumulative ack moved
}

// onFrame applies a validated frame from the peer.
func (s *session) onFrame(f *frame, now time.Time) (ev frameEvents) {
	if s.err != nil {
		return ev
	}
	s.retries = 0 // the peer is alive
	s.onAck(f, now, &ev)
	if f.flags&flagProbe != 0 {
		s.ackOwed = true
	}
	if f.count > 0 {
		s.onData(f, &ev)
	}
	return ev
}

func (s *session) onAck(f *frame, now time.Time, ev *frameEvents) {
	if f.ack > s.sndNxt {
		// The peer acknowledges messages we never sent: a confused or
		// forged frame. Its ack, credit and sack cannot be trusted.
		s.st.badAcks.Add(1)
		return
	}
	w := uint64(len(s.snd))
	if f.ack > s.sndUna {
		// Karn: only a message sent exactly once gives an RTT sample; the
		// newest acknowledged one is the freshest.
		if sl := &s.snd[(f.ack-1)%w]; sl.retx == 0 && !sl.sentAt.IsZero() {
			s.sampleRTT(now.Sub(sl.sentAt))
		}
		for seq := s.sndUna; seq < f.ack; seq++ {
			sl := &s.snd[seq%w]
			if sl.want {
				sl.want = false
				s.retxPending--
			}
		}
		s.sndUna = f.ack
		s.rtoDeadline = time.Time{}
		if s.sndUna < s.sndNxt {
			s.rtoDeadline = now.Add(s.rto)
		}
		ev.acked, ev.space = true, true
	}
	if f.limit > s.sndLimit {
		s.sndLimit = f.limit
		ev.space = true
	}
	if ev.space && s.canPush() {
		s.wantCredit = false
		if s.sndUna == s.sndNxt {
			s.rtoDeadline = time.Time{} // no probe needed any more
		}
	}
	if f.sack != 0 && f.ack == s.sndUna {
		s.onSack(f.sack)
	}
}

// onSack marks selectively acknowledged messages and queues a fast
// retransmission for each hole that at least dupThreshold later messages
// have overtaken.
func (s *session) onSack(sack uint64) {
	if s.sndNxt <= s.sndUna {
		return // nothing in flight: the bits describe nothing of ours
	}
	w := uint64(len(s.snd))
	// Ignore bits for messages we have not sent.
	if inFlight := s.sndNxt - s.sndUna - 1; inFlight < 64 {
		sack &= 1<<inFlight - 1
	}
	if sack == 0 {
		return
	}
	// Walk from the highest sacked message down, counting how many later
	// messages have arrived; bit i is seq sndUna+1+i, the hole at sndUna is
	// implied (it is the cumulative ack).
	above := 0
	for i := 63 - bits.LeadingZeros64(sack); i >= -1; i-- {
		seq := s.sndUna + 1 + uint64(i)
		sl := &s.snd[seq%w]
		if i >= 0 && sack&(1<<i) != 0 {
			sl.sacked = true
			above++
			continue
		}
		if above >= dupThreshold && !sl.fast && !sl.sacked && !sl.sentAt.IsZero() {
			sl.fast = true
			if !sl.want {
				sl.want = true
				s.retxPending++
			}
			s.st.fastRetransmits.Add(1)
		}
	}
}

func (s *session) onData(f *frame, ev *frameEvents) {
	s.ackOwed = true // every data frame is answered, duplicates included: their ack may have been lost
	w := uint64(len(s.rcv))
	body := f.body
	for i := 0; i < f.count; i++ {
		var msg []byte
		msg, body = nextMessage(body)
		seq := f.seq + uint64(i)
		switch {
		case seq < s.rcvNext:
			s.st.duplicates.Add(1)
		case seq >= s.readNext+w:
			s.st.outOfWindow.Add(1) // beyond the credit we gave: the sender will resend
		default:
			sl := &s.rcv[seq%w]
			if sl.present {
				s.st.duplicates.Add(1)
				continue
			}
			sl.buf = append(sl.buf[:0], msg...)
			sl.present = true
			if seq > s.rcvMax {
				s.rcvMax = seq
			}
		}
	}
	before := s.rcvNext
	for s.rcvNext < s.readNext+w && s.rcv[s.rcvNext%w].present {
		s.rcvNext++
	}
	if s.rcvNext > before {
		ev.readable = true
	}
}

// sampleRTT updates the smoothed RTT and the timeout as in RFC 6298.
func (s *session) sampleRTT(r time.Duration) {
	if r <= 0 {
		r = time.Microsecond
	}
	if s.srtt == 0 {
		s.srtt, s.rttvar = r, r/2
	} else {
		d := s.srtt - r
		if d < 0 {
			d = -d
		}
		s.rttvar = (3*s.rttvar + d) / 4
		s.srtt = (7*s.srtt + r) / 8
	}
	s.rto = s.clampRTO(s.srtt + 4*s.rttvar)
}

func (s *session) clampRTO(d time.Duration) time.Duration {
	return min(max(d, s.cfg.minRTO), s.cfg.maxRTO)
}

// deadline is when emit next has timer work to do; zero means none.
func (s *session) deadline() time.Time {
	if s.err != nil {
		return time.Time{}
	}
	return s.rtoDeadline
}

// pending reports whether emit has something to send right now.
func (s *session) pending() bool {
	return s.err == nil && (s.ackOwed || s.probeOwed || s.retxPending > 0 || s.sndNxt < s.sndEnd)
}

// onTimer handles the retransmission timer if it is due: every message in
// flight that the receiver has not selectively acknowledged is queued again
// (as TCP goes back to its first unacknowledged segment),
// the timeout doubles, and after cfg.maxRetries timeouts in a row without a
// word from the peer the session fails. With nothing in flight but a sender
// waiting for credit, the timer sends a probe instead.
func (s *session) onTimer(now time.Time) {
	if s.err != nil || s.rtoDeadline.IsZero() || now.Before(s.rtoDeadline) {
		return
	}
	s.rtoDeadline = time.Time{}
	stalled := s.wantCredit && !s.canPush()
	if s.sndUna == s.sndNxt && !stalled {
		return
	}
	s.retries++
	if s.retries > s.cfg.maxRetries {
		s.err = fmt.Errorf("%w: %v channel %d: no answer after %d timeouts", ErrPeerUnreachable, s.peer, s.id, s.cfg.maxRetries)
		return
	}
	s.st.timeouts.Add(1)
	w := uint64(len(s.snd))
	for seq := s.sndUna; seq < s.sndNxt; seq++ {
		sl := &s.snd[seq%w]
		if !sl.sacked && !sl.want {
			sl.want = true
			s.retxPending++
		}
	}
	if s.sndUna == s.sndNxt {
		s.probeOwed = true
		s.st.probes.Add(1)
	}
	s.rto = s.clampRTO(2 * s.rto)
	s.rtoDeadline = now.Add(s.rto)
}

// sack returns the selective-ack bitmap for the receive side.
func (s *session) sack() uint64 {
	if s.rcvMax <= s.rcvNext {
		return 0
	}
	var b uint64
	w := uint64(len(s.rcv))
	for i := uint64(0); i < 64; i++ {
		seq := s.rcvNext + 1 + i
		if seq > s.rcvMax {
			break
		}
		if s.rcv[seq%w].present {
			b |= 1 << i
		}
	}
	return b
}

// emit writes every frame the session owes: retransmissions, new messages
// within the credit, and an ack/credit update or probe if no data frame
// carries it already. Each frame carries the receive side's ack, limit and
// sack, so acks ride on data whenever there is data.
func (s *session) emit(now time.Time, w *frameWriter) {
	s.onTimer(now)
	if s.err != nil {
		return
	}
	sent := false
	if s.retxPending > 0 {
		sent = s.emitRange(now, w, s.sndUna, s.sndNxt, true)
	}
	if s.sndNxt < s.sndEnd {
		s.emitRange(now, w, s.sndNxt, s.sndEnd, false)
		s.sndNxt = s.sndEnd
		sent = true
	}
	if sent {
		s.probeOwed = false
	}
	if s.ackOwed || s.probeOwed {
		var flags uint8
		if s.probeOwed {
			flags = flagProbe
		}
		s.beginFrame(w, flags, 0)
		w.end()
		s.probeOwed = false
	}
	if s.rtoDeadline.IsZero() && (s.sndUna < s.sndNxt || (s.wantCredit && !s.canPush())) {
		s.rtoDeadline = now.Add(s.rto)
	}
}

func (s *session) beginFrame(w *frameWriter, flags uint8, seq uint64) {
	limit := s.readNext + uint64(len(s.rcv))
	w.begin(s.peer, s.id, flags, seq, s.rcvNext, limit, s.sack())
	s.advertised = limit
	s.ackOwed = false
}

// emitRange sends the messages of [lo, hi) that need sending (all of them,
// or with retx only those queued for retransmission), packing runs of
// consecutive sequence numbers into as few frames as fit. It reports
// whether it sent anything.
func (s *session) emitRange(now time.Time, w *frameWriter, lo, hi uint64, retx bool) bool {
	ring := uint64(len(s.snd))
	open := false // a frame is being filled
	next := uint64(0)
	sent := false
	for seq := lo; seq < hi; seq++ {
		sl := &s.snd[seq%ring]
		if retx {
			if !sl.want {
				if open {
					w.end()
					open = false
				}
				continue
			}
			sl.want = false
			s.retxPending--
			sl.retx++
			s.st.retransmits.Add(1)
		} else {
			s.st.messagesSent.Add(1)
		}
		if open && (seq != next || !w.fits(len(sl.buf))) {
			w.end()
			open = false
		}
		if !open {
			s.beginFrame(w, 0, seq)
			open = true
		}
		w.add(sl.buf)
		sl.sentAt = now
		next = seq + 1
		sent = true
	}
	if open {
		w.end()
	}
	return sent
}
