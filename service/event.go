package service

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// Op says what an event asks of a service that distinguishes operations
// (the KVS: get, set, delete; the recommender: rate or query). Services that
// only observe a stream ignore it.
type Op uint8

const (
	OpObserve Op = iota // record the event (the default for streams)
	OpGet               // read the value under Key
	OpSet               // write Text under Key
	OpDelete            // remove Key
	OpQuery             // ask for a derived answer (top-N, search)
	opMax
)

var opNames = [...]string{"observe", "get", "set", "delete", "query"}

// String returns the op's name ("get").
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// EventVersion is the version byte every encoded event starts with.
const EventVersion = 1

// EventHeaderLen is the fixed part of an encoded event.
const EventHeaderLen = 48

// Event is the record analytics and IoT services exchange. Fields a service
// does not use are left zero. Token, Text and Features alias the buffer the
// event was decoded from.
//
// Wire format, little endian, 48-byte header then the variable parts in
// order; bytes after the last part are padding and are ignored (generators
// use it to reach a requested size):
//
//	0  version (1)       1  op
//	2  flags             3  reserved (0)
//	4  token length u16  6  text length u16
//	8  key u64          16  item u64
//	24 value f64        32  time i64 (ns)
//	40 feature count u16 (float32s)  42 reserved (6 bytes)
//	48 token, text, features
type Event struct {
	Op       Op
	Flags    uint8
	Key      uint64  // stream, device, user or client id
	Item     uint64  // item, hashtag, metric or sensor id
	Value    float64 // reading, rating or score
	Time     int64   // event time in nanoseconds
	Token    []byte  // credentials (API gateway)
	Text     []byte  // tokens, document text, or a KVS value
	Features []byte  // little-endian float32s; use Feature(i)
}

// NumFeatures returns the number of float32 features.
func (e *Event) NumFeatures() int { return len(e.Features) / 4 }

// Feature returns feature i.
func (e *Event) Feature(i int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(e.Features[4*i:]))
}

// EncodedLen returns the length of e encoded without padding.
func (e *Event) EncodedLen() int {
	return EventHeaderLen + len(e.Token) + len(e.Text) + len(e.Features)
}

// AppendEvent appends the encoding of e to dst and pads it with zeros to at
// least size bytes.
func AppendEvent(dst []byte, e *Event, size int) ([]byte, error) {
	if len(e.Token) > math.MaxUint16 || len(e.Text) > math.MaxUint16 || len(e.Features)/4 > math.MaxUint16 {
		return dst, fmt.Errorf("service: event part too long (token %d, text %d, features %d bytes)", len(e.Token), len(e.Text), len(e.Features))
	}
	if len(e.Features)%4 != 0 {
		return dst, fmt.Errorf("service: event features are %d bytes, not a whole number of float32s", len(e.Features))
	}
	start := len(dst)
	var h [EventHeaderLen]byte
	h[0] = EventVersion
	h[1] = byte(e.Op)
	h[2] = e.Flags
	binary.LittleEndian.PutUint16(h[4:], uint16(len(e.Token)))
	binary.LittleEndian.PutUint16(h[6:], uint16(len(e.Text)))
	binary.LittleEndian.PutUint64(h[8:], e.Key)
	binary.LittleEndian.PutUint64(h[16:], e.Item)
	binary.LittleEndian.PutUint64(h[24:], math.Float64bits(e.Value))
	binary.LittleEndian.PutUint64(h[32:], uint64(e.Time))
	binary.LittleEndian.PutUint16(h[40:], uint16(len(e.Features)/4))
	dst = append(dst, h[:]...)
	dst = append(dst, e.Token...)
	dst = append(dst, e.Text...)
	dst = append(dst, e.Features...)
	if pad := size - (len(dst) - start); pad > 0 {
		dst = append(dst, make([]byte, pad)...) // the compiler appends zeros without allocating
	}
	return dst, nil
}

// DecodeEvent decodes b into e without copying: e's slices alias b.
func DecodeEvent(b []byte, e *Event) error {
	if len(b) < EventHeaderLen {
		return fmt.Errorf("%w: event is %d bytes, shorter than its %d-byte header", ErrMalformed, len(b), EventHeaderLen)
	}
	if b[0] != EventVersion {
		return fmt.Errorf("%w: event version %d, want %d", ErrMalformed, b[0], EventVersion)
	}
	if Op(b[1]) >= opMax {
		return fmt.Errorf("%w: event op %d unknown", ErrMalformed, b[1])
	}
	tok := int(binary.LittleEndian.Uint16(b[4:]))
	txt := int(binary.LittleEndian.Uint16(b[6:]))
	nf := int(binary.LittleEndian.Uint16(b[40:]))
	need := EventHeaderLen + tok + txt + 4*nf
	if need > len(b) {
		return fmt.Errorf("%w: event declares %d bytes of parts, has %d", ErrMalformed, need-EventHeaderLen, len(b)-EventHeaderLen)
	}
	e.Op = Op(b[1])
	e.Flags = b[2]
	e.Key = binary.LittleEndian.Uint64(b[8:])
	e.Item = binary.LittleEndian.Uint64(b[16:])
	e.Value = math.Float64frombits(binary.LittleEndian.Uint64(b[24:]))
	e.Time = int64(binary.LittleEndian.Uint64(b[32:]))
	p := EventHeaderLen
	e.Token = b[p : p+tok : p+tok]
	p += tok
	e.Text = b[p : p+txt : p+txt]
	p += txt
	e.Features = b[p : p+4*nf : p+4*nf]
	return nil
}
