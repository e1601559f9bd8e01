package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
)

// A frame is one datagram of the lossless channel protocol: a fixed header
// that carries the sender's view of both directions, then zero or more
// messages with consecutive sequence numbers, each prefixed by its length.
//
// Layout, little endian (offsets in bytes):
//
//	 0 magic u8 (0xE3)   1 version u8 (1)   2 flags u8   3 count u8
//	 4 channel id u32
//	 8 seq u64     sequence number of the first message (0 when count is 0)
//	16 ack u64     cumulative: every message of the reverse direction below ack has arrived
//	24 limit u64   the frame's sender accepts reverse-direction messages below limit (credit)
//	32 sack u64    bit i set: reverse-direction message ack+1+i has arrived
//	40 count x (length u16, message bytes)
//
// The magic byte differs from [Version], the first byte of an E3 [Header],
// so a socket that carries both channel frames and bare E3 messages (client
// requests to an ingress) can tell them apart by the first byte.
const (
	frameMagic      = 0xE3
	frameVersion    = 1
	frameHeaderSize = 40
	frameLenSize    = 2   // per-message length prefix
	frameMaxCount   = 255 // count is one byte
)

// Frame flags.
const (
	// flagProbe asks the receiver to answer at once with its ack and limit.
	// A sender that has run out of credit and has nothing in flight sends
	// it on its retransmission timer, so that a lost credit update cannot
	// leave it waiting forever.
	flagProbe  = 1 << 0
	flagsKnown = flagProbe
)

// IsFrame reports whether the datagram b looks like a channel frame rather
// than a bare E3 message (it checks the first byte only).
func IsFrame(b []byte) bool { return len(b) > 0 && b[0] == frameMagic }

// ErrBadFrame is wrapped by every error about a malformed channel frame.
var ErrBadFrame = errors.New("transport: bad channel frame")

// FrameError describes a malformed channel frame: the field, the value
// found, the byte offset where it sits, and what was expected.
type FrameError struct {
	Field  string
	Value  uint64
	Offset int
	Want   string
}

// Error names the field, the value, the offset and what was expected.
func (e *FrameError) Error() string {
	return fmt.Sprintf("transport: bad channel frame: %s %d at offset %d: want %s", e.Field, e.Value, e.Offset, e.Want)
}

// Unwrap makes errors.Is(err, ErrBadFrame) hold.
func (e *FrameError) Unwrap() error { return ErrBadFrame }

// frame is a decoded frame header plus its message area. body aliases the
// datagram.
type frame struct {
	flags  uint8
	count  int
	chanID uint32
	seq    uint64
	ack    uint64
	limit  uint64
	sack   uint64
	body   []byte
}

// decodeFrame parses and fully validates b: after it succeeds, walking the
// body with nextMessage cannot fail.
func decodeFrame(b []byte, f *frame) error {
	if len(b) < frameHeaderSize {
		return &FrameError{Field: "length", Value: uint64(len(b)), Want: "at least " + strconv.Itoa(frameHeaderSize)}
	}
	if b[0] != frameMagic {
		return &FrameError{Field: "magic", Value: uint64(b[0]), Want: "0xe3"}
	}
	if b[1] != frameVersion {
		return &FrameError{Field: "version", Value: uint64(b[1]), Offset: 1, Want: strconv.Itoa(frameVersion)}
	}
	if b[2]&^flagsKnown != 0 {
		return &FrameError{Field: "flags", Value: uint64(b[2]), Offset: 2, Want: "only bit 0 (probe)"}
	}
	le := binary.LittleEndian
	f.flags = b[2]
	f.count = int(b[3])
	f.chanID = le.Uint32(b[4:])
	f.seq = le.Uint64(b[8:])
	f.ack = le.Uint64(b[16:])
	f.limit = le.Uint64(b[24:])
	f.sack = le.Uint64(b[32:])
	if f.count == 0 && f.seq != 0 {
		return &FrameError{Field: "seq", Value: f.seq, Offset: 8, Want: "0 in a frame without messages"}
	}
	if f.count > 0 && (f.seq == 0 || f.seq > math.MaxUint64-uint64(f.count)) {
		return &FrameError{Field: "seq", Value: f.seq, Offset: 8, Want: "1.." + strconv.FormatUint(math.MaxUint64-uint64(f.count), 10)}
	}
	if f.ack == 0 {
		return &FrameError{Field: "ack", Value: 0, Offset: 16, Want: "at least 1 (sequence numbers start at 1)"}
	}
	if f.limit < f.ack {
		return &FrameError{Field: "limit", Value: f.limit, Offset: 24, Want: "at least the ack " + strconv.FormatUint(f.ack, 10)}
	}
	f.body = b[frameHeaderSize:]
	off := frameHeaderSize
	rest := f.body
	for i := 0; i < f.count; i++ {
		if len(rest) < frameLenSize {
			return &FrameError{Field: "message " + strconv.Itoa(i) + " length prefix", Value: uint64(len(rest)), Offset: off, Want: "2 bytes left"}
		}
		n := int(le.Uint16(rest))
		if len(rest)-frameLenSize < n {
			return &FrameError{Field: "message " + strconv.Itoa(i) + " length", Value: uint64(n), Offset: off, Want: "at most the " + strconv.Itoa(len(rest)-frameLenSize) + " bytes left"}
		}
		rest = rest[frameLenSize+n:]
		off += frameLenSize + n
	}
	if len(rest) != 0 {
		return &FrameError{Field: "trailing bytes", Value: uint64(len(rest)), Offset: off, Want: "0 after the last message"}
	}
	return nil
}

// nextMessage splits the first message off a validated body.
func nextMessage(body []byte) (msg, rest []byte) {
	n := int(binary.LittleEndian.Uint16(body))
	return body[frameLenSize : frameLenSize+n], body[frameLenSize+n:]
}

// frameWriter packs frames into datagrams, one frame per datagram, using a
// reusable slice of Messages. When every datagram slot is used it hands the
// batch to flush and starts over, so a burst of any size goes out in
// batches of len(ms) datagrams.
type frameWriter struct {
	ms    []Message
	n     int      // datagrams finished
	cur   *Message // datagram being filled, nil between frames
	flush func([]Message)
}

func newFrameWriter(batch, maxDatagram int, flush func([]Message)) *frameWriter {
	return &frameWriter{ms: NewMessages(batch, maxDatagram), flush: flush}
}

// begin starts a frame to peer. The caller then adds messages while room
// allows and finishes with end.
func (w *frameWriter) begin(peer netip.AddrPort, chanID uint32, flags uint8, seq, ack, limit, sack uint64) {
	if w.n == len(w.ms) {
		w.flushNow()
	}
	m := &w.ms[w.n]
	b := m.Buf
	le := binary.LittleEndian
	b[0] = frameMagic
	b[1] = frameVersion
	b[2] = flags
	b[3] = 0
	le.PutUint32(b[4:], chanID)
	le.PutUint64(b[8:], seq)
	le.PutUint64(b[16:], ack)
	le.PutUint64(b[24:], limit)
	le.PutUint64(b[32:], sack)
	m.N = frameHeaderSize
	m.Addr = peer
	w.cur = m
}

// fits reports whether a message of n bytes fits in the current frame.
func (w *frameWriter) fits(n int) bool {
	return w.cur.Buf[3] < frameMaxCount && len(w.cur.Buf)-w.cur.N >= frameLenSize+n
}

func (w *frameWriter) add(msg []byte) {
	m := w.cur
	binary.LittleEndian.PutUint16(m.Buf[m.N:], uint16(len(msg)))
	m.N += frameLenSize + copy(m.Buf[m.N+frameLenSize:], msg)
	m.Buf[3]++
}

func (w *frameWriter) end() {
	w.cur = nil
	w.n++
}

func (w *frameWriter) flushNow() {
	if w.n > 0 {
		w.flush(w.ms[:w.n])
	}
	w.n = 0
}
