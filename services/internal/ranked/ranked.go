package ranked

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Sizes of the wire format: a reply is HeaderLen + n*EntryLen bytes.
const (
	HeaderLen = 6  // count u32, entry count u16
	EntryLen  = 16 // id u64, score f64
)

// Format is one service's ranked reply. A service declares it once, as a
// package-level variable, so that its request path passes no closures
// and allocates nothing.
type Format[E any] struct {
	// Service prefixes the decoder's errors ("bm25"), so that a client
	// reading several services' replies knows whose reply was bad.
	Service string
	// Noun is what the entries are, in the plural ("hits"), for the
	// length error.
	Noun string
	// Split returns an entry's id and score, for the encoder.
	Split func(E) (id uint64, score float64)
	// Join builds an entry from its id and score, for the decoder.
	Join func(id uint64, score float64) E
}

// Append encodes a reply of count and entries, best first, onto dst. The
// entry count is sent as a u16, which is ample: the services rank at
// most 1000 entries (their top_k, top_n and k are capped there).
func (f *Format[E]) Append(dst []byte, count uint32, entries []E) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, count)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(entries)))
	for _, e := range entries {
		id, score := f.Split(e)
		dst = binary.LittleEndian.AppendUint64(dst, id)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(score))
	}
	return dst
}

// Parse decodes reply b, appending its entries to dst[:0], and returns
// its count and entries. A reply shorter than its header, or whose length
// is not what its entry count declares, is an error naming f.Service,
// with count 0 and no entries.
func (f *Format[E]) Parse(b []byte, dst []E) (count uint32, entries []E, err error) {
	if len(b) < HeaderLen {
		return 0, dst[:0], fmt.Errorf("%s: reply is %d bytes, shorter than its %d-byte header", f.Service, len(b), HeaderLen)
	}
	count = binary.LittleEndian.Uint32(b)
	n := int(binary.LittleEndian.Uint16(b[4:]))
	if want := HeaderLen + n*EntryLen; len(b) != want {
		return 0, dst[:0], fmt.Errorf("%s: reply declares %d %s (%d bytes) but is %d bytes", f.Service, n, f.Noun, want, len(b))
	}
	entries = dst[:0]
	for p := HeaderLen; p < len(b); p += EntryLen {
		entries = append(entries, f.Join(
			binary.LittleEndian.Uint64(b[p:]),
			math.Float64frombits(binary.LittleEndian.Uint64(b[p+8:])),
		))
	}
	return count, entries, nil
}
