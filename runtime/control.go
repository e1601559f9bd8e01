package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// ControlChannelID is the channel id of the control channel between two
// agents: replication of reliable collections to backups and the state of
// migrating instances. It is a channel of its own so that a large state
// transfer, which fills its window, never delays requests on the data
// channel (PeerChannelID), and so that a backup's disk writes never stall
// the data path's receiver.
const ControlChannelID uint32 = 3

// BulkChannelID is the channel id that carries large streams between two
// agents: backup seeds and migrating instances' state. A seed of several
// megabytes fills its channel's window for a while; on a channel of its
// own it does not hold up the replication of every request's writes.
const BulkChannelID uint32 = 4

// channelFor returns the channel id that carries op.
func channelFor(op uint8) uint32 {
	if op == opReplicate {
		return ControlChannelID
	}
	return BulkChannelID
}

// Control messages. A message on the control channel is a 28-byte header
// and a payload, little endian:
//
//	 0 kind u8     1 op u8      2 reserved u16 (0)
//	 4 app u32     8 instance u32
//	12 stream u64 (chosen by the sender of the stream; unique per sender)
//	20 total u32  24 offset u32
//	28 payload
//
// A stream (one replicated batch, one backup seed, one migrating
// instance's state) can be far larger than a datagram, so it is cut into
// chunks of at most ctlChunk bytes: kind ctlChunk, the stream's total
// length and the chunk's offset. Channels deliver in order and exactly
// once, so the receiver appends chunks and checks each offset. When the
// stream is whole the receiver carries out op on the instance named by
// app and instance, and answers with kind ctlAck (payload: the LSN the
// target holds, u64) or ctlNack (payload: the error text), echoing the
// stream id; total and offset are 0 in answers.
const (
	ctlHeaderSize = 28
	// ctlMaxStream bounds a stream, so a damaged length cannot make the
	// receiver hold without limit (the durable package's frame limit).
	ctlMaxStream = 1 << 30
	// ctlMaxPartial bounds the streams one peer may have half sent, so
	// that a peer that starts streams and never ends them cannot exhaust
	// memory. The stores replicate one batch at a time, so a peer has at
	// most a few per instance it replicates or migrates.
	ctlMaxPartial = 4096
)

// Kinds of control messages.
const (
	ctlChunk uint8 = 1 // a piece of a stream
	ctlAck   uint8 = 2 // the stream was carried out
	ctlNack  uint8 = 3 // the stream failed; payload: why
	// ctlPing keeps a channel busy while its sender waits for an answer:
	// the channel acknowledges it (or fails for want of acknowledgement
	// when the peer is gone), the receiver ignores it. Without it a
	// sender whose stream was wholly delivered would not notice that the
	// peer died before answering.
	ctlPing uint8 = 4
)

// ctlPingEvery is how often a caller waiting for an answer pings.
const ctlPingEvery = 20 * time.Millisecond

// Operations a stream asks for.
const (
	opInstall   uint8 = 1 // seed a backup: a hand-over bundle
	opReplicate uint8 = 2 // one batch for a backup
	opMigrate   uint8 = 3 // a migrating instance's state for its destination
)

var opNames = [...]string{"", "install", "replicate", "migrate"}

// ctlHeader is the decoded header of a control message.
type ctlHeader struct {
	kind, op      uint8
	app, instance uint32
	stream        uint64
	total, offset uint32
}

// errBadControl is wrapped by every error about a malformed control
// message.
var errBadControl = errors.New("runtime: bad control message")

func (h *ctlHeader) append(b []byte) []byte {
	b = append(b, h.kind, h.op, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, h.app)
	b = binary.LittleEndian.AppendUint32(b, h.instance)
	b = binary.LittleEndian.AppendUint64(b, h.stream)
	b = binary.LittleEndian.AppendUint32(b, h.total)
	return binary.LittleEndian.AppendUint32(b, h.offset)
}

// decodeControl parses a control message; the payload aliases b.
func decodeControl(b []byte) (ctlHeader, []byte, error) {
	var h ctlHeader
	if len(b) < ctlHeaderSize {
		return h, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", errBadControl, len(b), ctlHeaderSize)
	}
	h.kind, h.op = b[0], b[1]
	if r := binary.LittleEndian.Uint16(b[2:]); r != 0 {
		return h, nil, fmt.Errorf("%w: reserved field at offset 2 is %d, want 0", errBadControl, r)
	}
	h.app = binary.LittleEndian.Uint32(b[4:])
	h.instance = binary.LittleEndian.Uint32(b[8:])
	h.stream = binary.LittleEndian.Uint64(b[12:])
	h.total = binary.LittleEndian.Uint32(b[20:])
	h.offset = binary.LittleEndian.Uint32(b[24:])
	p := b[ctlHeaderSize:]
	switch h.kind {
	case ctlChunk:
		if h.op < opInstall || h.op > opMigrate {
			return h, nil, fmt.Errorf("%w: op %d at offset 1, want 1 (install), 2 (replicate) or 3 (migrate)", errBadControl, h.op)
		}
		if h.total == 0 || h.total > ctlMaxStream {
			return h, nil, fmt.Errorf("%w: stream length %d at offset 20, want 1..%d", errBadControl, h.total, ctlMaxStream)
		}
		if len(p) == 0 || uint64(h.offset)+uint64(len(p)) > uint64(h.total) {
			return h, nil, fmt.Errorf("%w: chunk of %d bytes at stream offset %d does not fit a stream of %d bytes", errBadControl, len(p), h.offset, h.total)
		}
	case ctlAck:
		if len(p) != 8 {
			return h, nil, fmt.Errorf("%w: ack with a payload of %d bytes, want 8", errBadControl, len(p))
		}
	case ctlNack:
	case ctlPing:
		if len(p) != 0 {
			return h, nil, fmt.Errorf("%w: ping with a payload of %d bytes", errBadControl, len(p))
		}
	default:
		return h, nil, fmt.Errorf("%w: kind %d at offset 0, want 1 (chunk), 2 (ack), 3 (nack) or 4 (ping)", errBadControl, h.kind)
	}
	return h, p, nil
}

// ctlChunkSize is the payload of one chunk: a message must fit one
// datagram of the channel.
const ctlChunkSize = maxMessage - ctlHeaderSize

// ctlResult is the answer to a stream.
type ctlResult struct {
	lsn uint64
	err error
}

// ctlPartial is a stream being received.
type ctlPartial struct {
	h   ctlHeader
	buf []byte
}

// control is an agent's side of the control channels.
type control struct {
	mu      sync.Mutex
	chans   map[chanRef]*transport.Channel
	running map[*transport.Channel]bool // channels with a receiver
	waiters map[uint64]ctlWaiter
	// partial streams, by sender node and stream id.
	partial map[ctlKey]*ctlPartial
	next    uint64
}

// ctlWaiter is a caller waiting for the answer to its stream.
type ctlWaiter struct {
	ch   *transport.Channel
	done chan ctlResult
}

// chanRef names a control channel: its peer and its id.
type chanRef struct {
	n  topology.NodeID
	id uint32
}

// ctlKey names a stream being received: the channel it arrives on (one
// per peer) and the sender's id for it.
type ctlKey struct {
	ch     *transport.Channel
	stream uint64
}

func newControl() *control {
	return &control{chans: map[chanRef]*transport.Channel{}, running: map[*transport.Channel]bool{}, waiters: map[uint64]ctlWaiter{}, partial: map[ctlKey]*ctlPartial{}}
}

// ctlChannel returns control channel id to node n, opening it on first
// use.
func (a *Agent) ctlChannel(n topology.NodeID, id uint32) (*transport.Channel, error) {
	c := a.ctl
	c.mu.Lock()
	defer c.mu.Unlock()
	ref := chanRef{n, id}
	if ch := c.chans[ref]; ch != nil && ch.Err() == nil {
		return ch, nil
	}
	addr := a.state.Load().table.addr(n)
	if !addr.IsValid() {
		return nil, fmt.Errorf("runtime: %s: no address for node %s", a.Name(), a.topo.Name(n))
	}
	// Open returns the channel the peer opened, if it did: one channel
	// per pair, with one receiver.
	ch, err := a.ep.Open(addr, id)
	if err != nil {
		return nil, err
	}
	c.chans[ref] = ch
	a.ctlReceiveLocked(ch)
	return ch, nil
}

// ctlReceiveLocked starts the receiver of ch unless it runs; ctl.mu held.
func (a *Agent) ctlReceiveLocked(ch *transport.Channel) {
	if a.ctl.running[ch] {
		return
	}
	a.ctl.running[ch] = true
	a.wg.Add(1)
	go a.ctlLoop(ch)
}

// acceptControl takes a control channel a peer opened. The peer need not
// be in the table yet (it may have got a newer one than ours): streams
// it sends are answered with an error until we know what they are for.
func (a *Agent) acceptControl(ch *transport.Channel) {
	c := a.ctl
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := a.nodeByAddr(ch.Peer()); n >= 0 {
		ref := chanRef{n, ch.ID()}
		if old := c.chans[ref]; old == nil || old.Err() != nil {
			c.chans[ref] = ch
		}
	}
	a.ctlReceiveLocked(ch)
}

// ctlCall sends a stream to node n and waits for its answer.
func (a *Agent) ctlCall(ctx context.Context, n topology.NodeID, op uint8, appID, instance uint32, data []byte) (uint64, error) {
	if len(data) == 0 || len(data) > ctlMaxStream {
		return 0, fmt.Errorf("runtime: %s stream of %d bytes, want 1..%d", opNames[op], len(data), ctlMaxStream)
	}
	if n == a.self {
		// No channel to oneself: carry it out here.
		return a.ctlExecute(op, appID, instance, data)
	}
	ch, err := a.ctlChannel(n, channelFor(op))
	if err != nil {
		return 0, err
	}
	c := a.ctl
	done := make(chan ctlResult, 1)
	c.mu.Lock()
	c.next++
	id := c.next
	c.waiters[id] = ctlWaiter{ch: ch, done: done}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
	}()
	h := ctlHeader{kind: ctlChunk, op: op, app: appID, instance: instance, stream: id, total: uint32(len(data))}
	buf := make([]byte, 0, maxMessage)
	for off := 0; off < len(data); off += ctlChunkSize {
		end := min(off+ctlChunkSize, len(data))
		h.offset = uint32(off)
		buf = h.append(buf[:0])
		buf = append(buf, data[off:end]...)
		if err := ch.TrySend(buf); err == transport.ErrBackpressure {
			err = ch.Send(ctx, buf)
			if err != nil {
				return 0, a.ctlFailed(n, ch, err)
			}
		} else if err != nil {
			return 0, a.ctlFailed(n, ch, err)
		}
	}
	ping := time.NewTicker(ctlPingEvery)
	defer ping.Stop()
	pb := (&ctlHeader{kind: ctlPing, stream: id}).append(nil)
	for {
		select {
		case r := <-done:
			return r.lsn, r.err
		case <-ping.C:
			if err := ch.TrySend(pb); err != nil && err != transport.ErrBackpressure {
				return 0, a.ctlFailed(n, ch, err)
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-a.ctx.Done():
			return 0, errors.New("runtime: agent stopped")
		}
	}
}

// ctlFailed forgets a failed control channel so that the next call opens
// a new one (the peer may be back).
func (a *Agent) ctlFailed(n topology.NodeID, ch *transport.Channel, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	a.ctl.mu.Lock()
	if ref := (chanRef{n, ch.ID()}); a.ctl.chans[ref] == ch {
		delete(a.ctl.chans, ref)
	}
	a.ctl.mu.Unlock()
	return fmt.Errorf("runtime: control channel to %s: %w", a.topo.Name(n), err)
}

// ctlLoop receives on one control channel: chunks are assembled into
// streams, which are carried out on goroutines of their own (a backup's
// disk write must not hold up the channel); answers wake their callers.
func (a *Agent) ctlLoop(ch *transport.Channel) {
	defer a.wg.Done()
	buf := make([]byte, 0, maxMessage)
	for {
		b, err := ch.Recv(a.ctx, buf[:0])
		if err != nil {
			a.ctlDrop(ch)
			return
		}
		a.ctlInput(ch, b)
	}
}

// ctlDrop forgets a failed channel and fails the calls waiting on it:
// with the channel gone no answer can come.
func (a *Agent) ctlDrop(ch *transport.Channel) {
	c := a.ctl
	c.mu.Lock()
	for ref, x := range c.chans {
		if x == ch {
			delete(c.chans, ref)
		}
	}
	delete(c.running, ch)
	for k := range c.partial {
		if k.ch == ch {
			delete(c.partial, k)
		}
	}
	var fail []chan ctlResult
	for _, w := range c.waiters {
		if w.ch == ch {
			fail = append(fail, w.done)
		}
	}
	c.mu.Unlock()
	// With the channel gone no answer can come: fail the calls at once
	// rather than at their deadlines.
	err := fmt.Errorf("runtime: control channel to %v failed", ch.Peer())
	if e := ch.Err(); e != nil {
		err = fmt.Errorf("%w: %w", err, e)
	}
	for _, d := range fail {
		select {
		case d <- ctlResult{err: err}:
		default:
		}
	}
}

// ctlInput handles one control message that arrived on ch.
func (a *Agent) ctlInput(ch *transport.Channel, b []byte) {
	h, p, err := decodeControl(b)
	if err != nil {
		a.stats.badMessages.Add(1)
		a.log.Warn("bad control message", "peer", chPeer(ch), "err", err)
		return
	}
	c := a.ctl
	switch h.kind {
	case ctlPing:
		return
	case ctlAck, ctlNack:
		r := ctlResult{}
		if h.kind == ctlAck {
			r.lsn = binary.LittleEndian.Uint64(p)
		} else {
			r.err = errors.New(string(p))
		}
		c.mu.Lock()
		w, ok := c.waiters[h.stream]
		c.mu.Unlock()
		if ok && w.ch == ch {
			select {
			case w.done <- r:
			default:
			}
		}
		return
	}
	key := ctlKey{ch, h.stream}
	c.mu.Lock()
	pt := c.partial[key]
	switch {
	case pt == nil && h.offset != 0:
		c.mu.Unlock()
		a.ctlAnswer(ch, h, 0, fmt.Errorf("runtime: %s stream %d: chunk at offset %d before its start", opNames[h.op], h.stream, h.offset))
		return
	case pt == nil:
		if len(c.partial) >= ctlMaxPartial {
			c.mu.Unlock()
			a.ctlAnswer(ch, h, 0, fmt.Errorf("runtime: %s stream %d: %d streams already in progress", opNames[h.op], h.stream, ctlMaxPartial))
			return
		}
		pt = &ctlPartial{h: h}
		c.partial[key] = pt
	case pt.h.op != h.op || pt.h.app != h.app || pt.h.instance != h.instance || pt.h.total != h.total || int(h.offset) != len(pt.buf):
		delete(c.partial, key)
		c.mu.Unlock()
		a.ctlAnswer(ch, h, 0, fmt.Errorf("runtime: %s stream %d: chunk at offset %d of %d bytes does not continue the %d bytes received of %d",
			opNames[h.op], h.stream, h.offset, h.total, len(pt.buf), pt.h.total))
		return
	}
	pt.buf = append(pt.buf, p...)
	if len(pt.buf) < int(pt.h.total) {
		c.mu.Unlock()
		return
	}
	delete(c.partial, key)
	c.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		lsn, err := a.ctlExecute(pt.h.op, pt.h.app, pt.h.instance, pt.buf)
		a.ctlAnswer(ch, pt.h, lsn, err)
	}()
}

func chPeer(ch *transport.Channel) netip.AddrPort {
	if ch == nil {
		return netip.AddrPort{}
	}
	return ch.Peer()
}

// ctlAnswer sends the answer to stream h.
func (a *Agent) ctlAnswer(ch *transport.Channel, h ctlHeader, lsn uint64, err error) {
	if ch == nil {
		return // the fuzz test feeds messages without a channel
	}
	r := ctlHeader{kind: ctlAck, op: h.op, app: h.app, instance: h.instance, stream: h.stream}
	var b []byte
	if err != nil {
		r.kind = ctlNack
		msg := err.Error()
		if len(msg) > ctlChunkSize {
			msg = msg[:ctlChunkSize]
		}
		b = append(r.append(nil), msg...)
	} else {
		b = binary.LittleEndian.AppendUint64(r.append(nil), lsn)
	}
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	if err := ch.Send(ctx, b); err != nil && a.ctx.Err() == nil {
		a.log.Warn("control answer not sent", "peer", ch.Peer(), "err", err)
	}
}

// ctlExecute carries out a whole stream.
func (a *Agent) ctlExecute(op uint8, appID, instance uint32, data []byte) (uint64, error) {
	switch op {
	case opInstall, opReplicate:
		return a.backupStream(op, appID, instance, data)
	case opMigrate:
		return a.migrateIn(appID, instance, data)
	}
	return 0, fmt.Errorf("runtime: unknown control op %d", op)
}
