package raftbolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// logVersion is the first byte of every encoded entry. A future layout
// gets a new version so that old files stay readable.
const logVersion = 1

// maxField bounds a length field of an encoded entry. Raft entries of the
// controller are commands of a few kilobytes (an application spec at
// most); a length beyond this is a damaged record, not a real entry.
const maxField = 1 << 30

// ErrCorrupt is wrapped by every error about a damaged log record.
var ErrCorrupt = errors.New("raftbolt: corrupt log record")

// CorruptError says which field of a log record is damaged, where, and why.
// It wraps ErrCorrupt.
type CorruptError struct {
	Index  uint64 // the entry's index (its key), 0 if unknown
	Field  string
	Offset int
	Reason string
}

// Error names the entry, the field, its byte offset and the problem.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("raftbolt: corrupt log record %d: %s at offset %d: %s", e.Index, e.Field, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) hold.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// AppendLog appends the encoding of l to b. The index is not encoded: it
// is the record's key.
//
// Layout: version u8 | type u8 | term uvarint | appended-at varint (Unix
// ns, 0 for the zero time) | len(data) uvarint | data | len(ext) uvarint |
// ext.
func AppendLog(b []byte, l *raft.Log) []byte {
	b = append(b, logVersion, byte(l.Type))
	b = binary.AppendUvarint(b, l.Term)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = binary.AppendVarint(b, at)
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return b
}

// DecodeLog decodes the record b of entry index into l. Data and
// Extensions are copied, so l does not alias b (bbolt's memory is valid
// only inside its transaction). Every error is a *CorruptError.
func DecodeLog(index uint64, b []byte, l *raft.Log) error {
	off := 0
	bad := func(field, format string, args ...any) error {
		return &CorruptError{Index: index, Field: field, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	if len(b) < 2 {
		return bad("header", "%d bytes, want at least 2 (version and type)", len(b))
	}
	if b[0] != logVersion {
		return bad("version", "%d, want %d", b[0], logVersion)
	}
	typ := raft.LogType(b[1])
	if typ > raft.LogConfiguration {
		off = 1
		return bad("type", "%d, want a raft.LogType 0..%d", b[1], raft.LogConfiguration)
	}
	off = 2
	term, n := uvarint(b[off:])
	if n <= 0 {
		return bad("term", "truncated or overlong varint")
	}
	off += n
	uat, n := uvarint(b[off:])
	at := int64(uat >> 1)
	if uat&1 != 0 {
		at = ^at
	}
	if n <= 0 {
		return bad("appended-at", "truncated or overlong varint")
	}
	off += n
	data, err := field(b, &off, index, "data")
	if err != nil {
		return err
	}
	ext, err := field(b, &off, index, "extensions")
	if err != nil {
		return err
	}
	if off != len(b) {
		return bad("end", "%d trailing bytes", len(b)-off)
	}
	l.Index, l.Term, l.Type = index, term, typ
	l.Data, l.Extensions = data, ext
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	return nil
}

// uvarint is binary.Uvarint restricted to the shortest encoding (no
// trailing zero byte), so that every record has exactly one form.
func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 1 && b[n-1] == 0 {
		return 0, -n
	}
	return v, n
}

// field reads a length-prefixed byte string at *off and copies it; an
// empty one is nil, as raft leaves it.
func field(b []byte, off *int, index uint64, name string) ([]byte, error) {
	n, k := uvarint(b[*off:])
	if k <= 0 {
		return nil, &CorruptError{Index: index, Field: name + " length", Offset: *off, Reason: "truncated or overlong varint"}
	}
	if n > maxField || n > uint64(len(b)-*off-k) {
		return nil, &CorruptError{Index: index, Field: name + " length", Offset: *off,
			Reason: fmt.Sprintf("%d, but %d bytes follow", n, len(b)-*off-k)}
	}
	*off += k
	if n == 0 {
		return nil, nil
	}
	out := make([]byte, n)
	copy(out, b[*off:])
	*off += int(n)
	return out, nil
}
