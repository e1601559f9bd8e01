package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Version is the wire version this package writes and the only one it
// accepts. A decoder that meets another version refuses the message rather
// than guess at a layout it does not know.
const Version = 1

// HeaderSize is the encoded size of a [Header] in bytes. The header is fixed
// size so that a receiver can find the payload without parsing anything
// variable, and every multi-byte field sits at an offset that is a multiple
// of its size.
const HeaderSize = 56

// InitialWeight is the completion weight an ingress gives a new request.
//
// Every message derived from the request carries a share of it; shares are
// split exactly (see [SplitWeight]) and returned to the ingress by handlers
// that emit nothing, so the ingress knows the request is complete when the
// returned shares add up to InitialWeight again. 2^62 leaves 62 levels of
// binary fan-out before a share can reach zero, far beyond any DAG E3 runs,
// and keeps the sum of all shares well away from uint64 overflow.
const InitialWeight uint64 = 1 << 62

// Kind says what a message is for.
type Kind uint8

// The message kinds. Zero is deliberately not a kind, so that an all-zero
// buffer never decodes as a message.
const (
	// KindRequest carries work for the destination DAG instance: a client
	// request entering at the ingress, or a message a handler emitted.
	KindRequest Kind = iota + 1
	// KindReply is the answer to a client, sent by the ingress once the
	// request has completed.
	KindReply
	// KindCompletion returns completion weight to the ingress named by the
	// origin fields; it has no payload.
	KindCompletion
	// KindError reports that a request failed; the payload is a UTF-8
	// reason. An ingress that receives it answers the client with an error
	// instead of waiting for the rest of the weight.
	KindError
	// KindAck acknowledges a message to a peer that does not run a lossless
	// channel (a client of the ingress, for example).
	KindAck
	// KindCredit grants a peer that does not run a lossless channel a window
	// of further requests; the payload is empty and the window is carried in
	// the Weight field.
	KindCredit
	// KindHeartbeat is the periodic node report to the orchestrator.
	KindHeartbeat
	// KindControl carries control-plane messages (routing tables, instance
	// lifecycle); the payload format belongs to the control plane.
	KindControl

	kindEnd // one past the last valid kind
)

var kindNames = [...]string{
	KindRequest:    "request",
	KindReply:      "reply",
	KindCompletion: "completion",
	KindError:      "error",
	KindAck:        "ack",
	KindCredit:     "credit",
	KindHeartbeat:  "heartbeat",
	KindControl:    "control",
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k > 0 && k < kindEnd }

// String returns the kind's name, or Kind(n) for an undefined one.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Header is the fixed part of every E3 message. A message on the wire is
// the encoded header followed by exactly PayloadLen bytes of payload.
//
// Layout, little endian (offsets in bytes):
//
//	 0 version u8        1 kind u8          2 flags u16 (no flag defined in v1: must be 0)
//	 4 app id u32        8 instance u32    12 origin node u32
//	16 origin slot u32  20 payload len u32  24 request id u64
//	32 weight u64       40 key hash u64     48 timestamp i64 (ns)
type Header struct {
	Kind Kind
	// Flags is reserved; version 1 defines no flag and rejects any set bit,
	// so a later version can give bits a meaning without old readers
	// misreading them.
	Flags uint16
	// App identifies the application the message belongs to.
	App uint32
	// Instance is the destination DAG instance (a deployed microservice
	// instance of App).
	Instance uint32
	// OriginNode and OriginSlot name the ingress that admitted the request
	// and its local slot for it, so that completions, errors and the reply
	// find their way back without a lookup.
	OriginNode uint32
	OriginSlot uint32
	// PayloadLen is the number of payload bytes after the header.
	PayloadLen uint32
	// Request is the request id, unique per origin node.
	Request uint64
	// Weight is the message's share of the request's completion weight
	// (see [InitialWeight]); for KindCredit it is the granted window.
	Weight uint64
	// KeyHash is the hash of the request's key (xxhash of the key bytes),
	// used by sharded edges to pick an instance.
	KeyHash uint64
	// Timestamp is when the request entered the system, in nanoseconds of
	// the ingress clock; latency is measured against it.
	Timestamp int64
}

// ErrBadHeader is wrapped by every error that [Header.Decode] returns, so
// that callers can tell malformed input from other failures with errors.Is.
var ErrBadHeader = errors.New("transport: bad header")

// HeaderError describes a malformed header: which field, the value found,
// and what was expected. It wraps [ErrBadHeader].
type HeaderError struct {
	Field string // field name as in the layout: "version", "kind", ...
	Value uint64 // the offending value
	Want  string // what a valid header has there
}

// Error names the field, the value and what was expected.
func (e *HeaderError) Error() string {
	return fmt.Sprintf("transport: bad header: %s %d: want %s", e.Field, e.Value, e.Want)
}

// Unwrap makes errors.Is(err, ErrBadHeader) hold.
func (e *HeaderError) Unwrap() error { return ErrBadHeader }

// Encode writes h into the first [HeaderSize] bytes of b. It does not write
// the payload. It fails if b is too short or h is not a header Decode would
// accept (unknown kind, flags set), so that nothing we send is refused by
// our own peers.
func (h *Header) Encode(b []byte) error {
	if len(b) < HeaderSize {
		return &HeaderError{Field: "buffer length", Value: uint64(len(b)), Want: "at least " + strconv.Itoa(HeaderSize)}
	}
	if err := h.check(); err != nil {
		return err
	}
	h.put(b)
	return nil
}

// Append appends the encoded header to b and returns the extended slice;
// the caller appends PayloadLen bytes of payload after it. It reports the
// same errors as Encode. It does not allocate when b has HeaderSize bytes of
// spare capacity.
func (h *Header) Append(b []byte) ([]byte, error) {
	if err := h.check(); err != nil {
		return b, err
	}
	n := len(b)
	if cap(b)-n < HeaderSize {
		nb := make([]byte, n, n+HeaderSize+int(h.PayloadLen))
		copy(nb, b)
		b = nb
	}
	b = b[:n+HeaderSize]
	h.put(b[n:])
	return b, nil
}

func (h *Header) check() error {
	if !h.Kind.Valid() {
		return &HeaderError{Field: "kind", Value: uint64(h.Kind), Want: "1.." + strconv.Itoa(int(kindEnd-1))}
	}
	if h.Flags != 0 {
		return &HeaderError{Field: "flags", Value: uint64(h.Flags), Want: "0 (no flag is defined in version 1)"}
	}
	return nil
}

func (h *Header) put(b []byte) {
	_ = b[HeaderSize-1] // one bounds check for all the stores below
	b[0] = Version
	b[1] = byte(h.Kind)
	binary.LittleEndian.PutUint16(b[2:], h.Flags)
	binary.LittleEndian.PutUint32(b[4:], h.App)
	binary.LittleEndian.PutUint32(b[8:], h.Instance)
	binary.LittleEndian.PutUint32(b[12:], h.OriginNode)
	binary.LittleEndian.PutUint32(b[16:], h.OriginSlot)
	binary.LittleEndian.PutUint32(b[20:], h.PayloadLen)
	binary.LittleEndian.PutUint64(b[24:], h.Request)
	binary.LittleEndian.PutUint64(b[32:], h.Weight)
	binary.LittleEndian.PutUint64(b[40:], h.KeyHash)
	binary.LittleEndian.PutUint64(b[48:], uint64(h.Timestamp))
}

// Decode parses the message in b into h. b must hold exactly one message:
// the header and PayloadLen bytes of payload, nothing more, so that a
// truncated or padded datagram is caught here rather than misread later.
// Every error wraps [ErrBadHeader] and names the field and the value found.
// On error h is left unchanged.
func (h *Header) Decode(b []byte) error {
	if len(b) < HeaderSize {
		return &HeaderError{Field: "message length", Value: uint64(len(b)), Want: "at least " + strconv.Itoa(HeaderSize) + " (header size)"}
	}
	if b[0] != Version {
		return &HeaderError{Field: "version", Value: uint64(b[0]), Want: strconv.Itoa(Version)}
	}
	k := Kind(b[1])
	if !k.Valid() {
		return &HeaderError{Field: "kind", Value: uint64(k), Want: "1.." + strconv.Itoa(int(kindEnd-1))}
	}
	flags := binary.LittleEndian.Uint16(b[2:])
	if flags != 0 {
		return &HeaderError{Field: "flags", Value: uint64(flags), Want: "0 (no flag is defined in version 1)"}
	}
	plen := binary.LittleEndian.Uint32(b[20:])
	if uint64(plen) != uint64(len(b)-HeaderSize) {
		return &HeaderError{Field: "payload length", Value: uint64(plen), Want: strconv.Itoa(len(b)-HeaderSize) + " (bytes after the header)"}
	}
	_ = b[HeaderSize-1]
	*h = Header{
		Kind:       k,
		Flags:      flags,
		App:        binary.LittleEndian.Uint32(b[4:]),
		Instance:   binary.LittleEndian.Uint32(b[8:]),
		OriginNode: binary.LittleEndian.Uint32(b[12:]),
		OriginSlot: binary.LittleEndian.Uint32(b[16:]),
		PayloadLen: plen,
		Request:    binary.LittleEndian.Uint64(b[24:]),
		Weight:     binary.LittleEndian.Uint64(b[32:]),
		KeyHash:    binary.LittleEndian.Uint64(b[40:]),
		Timestamp:  int64(binary.LittleEndian.Uint64(b[48:])),
	}
	return nil
}

// Payload returns the payload of a message that [Header.Decode] accepted:
// the bytes after the header. It aliases b.
func Payload(b []byte) []byte {
	if len(b) < HeaderSize {
		return nil
	}
	return b[HeaderSize:]
}

// SplitWeight divides the weight w among n messages exactly: every message
// gets w/n and the first also gets the remainder, so the parts always add up
// to w and no weight is created or lost. It returns the first part and the
// part of each of the others. For n <= 0 it returns (w, 0): a handler that
// emits nothing keeps (and returns) its whole weight.
//
// A part can be zero once w < n; with [InitialWeight] that needs more than
// 60 levels of fan-out, and even then the sum stays exact.
func SplitWeight(w uint64, n int) (first, each uint64) {
	if n <= 1 {
		return w, 0
	}
	each = w / uint64(n)
	return each + w%uint64(n), each
}

// WeightShare returns the part of message i (0-based) when w is split among
// n messages by [SplitWeight]. It is convenient in an emit loop.
func WeightShare(w uint64, n, i int) uint64 {
	first, each := SplitWeight(w, n)
	if i == 0 {
		return first
	}
	return each
}
