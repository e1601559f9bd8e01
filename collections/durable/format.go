package durable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// ErrCorrupt is wrapped by every error about bytes that do not decode: a
// damaged file, a truncated frame, a batch whose checksum does not match.
var ErrCorrupt = errors.New("durable: corrupt data")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encodings. All integers are little endian; a record entry is
// uvarint collection id, uvarint length, record bytes.
//
//	batch:    tagBatch, u64 first LSN, u32 count, count entries, u32 CRC-32C
//	snapshot: tagSnapshot, u64 LSN, uvarint len + instance name,
//	          u64 count, count entries, u32 CRC-32C
//
// The CRC covers every byte before it. Collection id 0 is the store's own:
// its records define collections (metaDefine, uvarint id, name).
const (
	tagBatch    byte = 0xB1
	tagSnapshot byte = 0x51

	batchHeader = 1 + 8 + 4
	crcLen      = 4

	metaColl   uint64 = 0
	metaDefine byte   = 1

	// maxNameLen bounds collection and instance names in decoded data.
	maxNameLen = 1 << 10
)

// Batch is a run of records with consecutive LSNs, encoded once: it is the
// value of one bbolt key, the payload sent to the backup and a piece of a
// log tail. A Batch is immutable; its zero value holds no records.
type Batch struct {
	enc   []byte // whole encoding, header to CRC
	first uint64
	n     int
}

// First returns the LSN of the batch's first record.
func (b Batch) First() uint64 { return b.first }

// Last returns the LSN of the batch's last record (First-1 if it is empty).
func (b Batch) Last() uint64 { return b.first + uint64(b.n) - 1 }

// Len returns the number of records.
func (b Batch) Len() int { return b.n }

// Bytes returns the encoding, for sending; the caller must not change it.
func (b Batch) Bytes() []byte { return b.enc }

// Range calls f with each record's LSN, collection id and bytes, in order,
// until f returns an error. rec is only valid during the call.
func (b Batch) Range(f func(lsn, coll uint64, rec []byte) error) error {
	p := b.enc[batchHeader : len(b.enc)-crcLen]
	for i := 0; i < b.n; i++ {
		coll, rec, rest, _ := nextEntry(p, 0)
		p = rest
		if err := f(b.first+uint64(i), coll, rec); err != nil {
			return err
		}
	}
	return nil
}

// ParseBatch checks and decodes an encoded batch. It does not copy data:
// the Batch refers to it.
func ParseBatch(data []byte) (Batch, error) {
	if len(data) < batchHeader+crcLen {
		return Batch{}, fmt.Errorf("%w: batch of %d bytes is shorter than its %d-byte frame", ErrCorrupt, len(data), batchHeader+crcLen)
	}
	if data[0] != tagBatch {
		return Batch{}, fmt.Errorf("%w: batch starts with byte 0x%02x, want 0x%02x", ErrCorrupt, data[0], tagBatch)
	}
	body := len(data) - crcLen
	if got, want := crc32.Checksum(data[:body], castagnoli), binary.LittleEndian.Uint32(data[body:]); got != want {
		return Batch{}, fmt.Errorf("%w: batch checksum 0x%08x, computed 0x%08x over %d bytes", ErrCorrupt, want, got, body)
	}
	first := binary.LittleEndian.Uint64(data[1:])
	n := binary.LittleEndian.Uint32(data[9:])
	if first == 0 {
		return Batch{}, fmt.Errorf("%w: batch starts at LSN 0; LSNs start at 1", ErrCorrupt)
	}
	if uint64(n) > uint64(body-batchHeader)/2 {
		return Batch{}, fmt.Errorf("%w: batch claims %d records in %d bytes", ErrCorrupt, n, body-batchHeader)
	}
	if first+uint64(n) < first {
		return Batch{}, fmt.Errorf("%w: batch LSNs %d+%d overflow", ErrCorrupt, first, n)
	}
	p := data[batchHeader:body]
	for i := 0; i < int(n); i++ {
		var err error
		off := len(data) - crcLen - len(p)
		if _, _, p, err = nextEntry(p, off); err != nil {
			return Batch{}, fmt.Errorf("batch record %d (LSN %d): %w", i, first+uint64(i), err)
		}
	}
	if len(p) != 0 {
		return Batch{}, fmt.Errorf("%w: batch has %d bytes after its %d records", ErrCorrupt, len(p), n)
	}
	return Batch{enc: data, first: first, n: int(n)}, nil
}

// nextEntry splits one record entry off p; off is p's offset in the whole
// encoding, for error messages.
func nextEntry(p []byte, off int) (coll uint64, rec, rest []byte, err error) {
	coll, w := binary.Uvarint(p)
	if w <= 0 {
		return 0, nil, nil, fmt.Errorf("%w: bad collection id at offset %d", ErrCorrupt, off)
	}
	n, w2 := binary.Uvarint(p[w:])
	if w2 <= 0 {
		return 0, nil, nil, fmt.Errorf("%w: bad record length at offset %d", ErrCorrupt, off+w)
	}
	p = p[w+w2:]
	if n > uint64(len(p)) {
		return 0, nil, nil, fmt.Errorf("%w: record of %d bytes at offset %d overruns the %d bytes left", ErrCorrupt, n, off+w+w2, len(p))
	}
	return coll, p[:n], p[n:], nil
}

func appendEntry(dst []byte, coll uint64, rec []byte) []byte {
	dst = binary.AppendUvarint(dst, coll)
	dst = binary.AppendUvarint(dst, uint64(len(rec)))
	return append(dst, rec...)
}

// newBatchBuf returns a buffer with room for a batch header, to append
// entries to.
func newBatchBuf(buf []byte) []byte {
	buf = append(buf[:0], make([]byte, batchHeader)...)
	buf[0] = tagBatch
	return buf
}

// sealBatch fills in the header of buf (from newBatchBuf plus n entries)
// and appends the checksum.
func sealBatch(buf []byte, first uint64, n int) Batch {
	buf[0] = tagBatch
	binary.LittleEndian.PutUint64(buf[1:], first)
	binary.LittleEndian.PutUint32(buf[9:], uint32(n))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	return Batch{enc: buf, first: first, n: n}
}

// trimBatch returns the part of b after LSN after, re-encoded when b
// straddles it.
func trimBatch(b Batch, after uint64) Batch {
	if after < b.first {
		return b
	}
	if after >= b.Last() {
		return Batch{}
	}
	buf := newBatchBuf(nil)
	n := 0
	_ = b.Range(func(lsn, coll uint64, rec []byte) error {
		if lsn > after {
			buf = appendEntry(buf, coll, rec)
			n++
		}
		return nil
	})
	return sealBatch(buf, after+1, n)
}

// defineRecord is the meta record that binds collection id to name.
func defineRecord(id uint64, name string) []byte {
	rec := binary.AppendUvarint([]byte{metaDefine}, id)
	return append(rec, name...)
}

func parseDefine(rec []byte) (id uint64, name string, err error) {
	if len(rec) < 2 || rec[0] != metaDefine {
		return 0, "", fmt.Errorf("%w: store record of %d bytes is not a collection definition", ErrCorrupt, len(rec))
	}
	id, w := binary.Uvarint(rec[1:])
	if w <= 0 || id == metaColl {
		return 0, "", fmt.Errorf("%w: collection definition with a bad id", ErrCorrupt)
	}
	name = string(rec[1+w:])
	if len(name) == 0 || len(name) > maxNameLen {
		return 0, "", fmt.Errorf("%w: collection %d defined with a name of %d bytes", ErrCorrupt, id, len(name))
	}
	return id, name, nil
}

// Snapshot is a consistent cut of one instance's collections: records
// that rebuild every collection from empty, and the LSN of the last record
// whose effect they include. Snapshot plus the log tail after LSN is the
// unit of hand-over. A Snapshot is immutable.
type Snapshot struct {
	// Instance names the service instance the state belongs to.
	Instance string
	// LSN is the last log record the snapshot reflects; 0 for the state
	// the service's constructor makes.
	LSN uint64

	enc     []byte // whole encoding; nil for an empty LSN-0 snapshot
	entries []byte // the entries inside enc
	n       uint64
}

// Len returns the number of records, collection definitions included.
func (s *Snapshot) Len() int { return int(s.n) }

// Size returns the encoded size in bytes.
func (s *Snapshot) Size() int { return len(s.Bytes()) }

// Empty reports whether the snapshot holds no records: restoring it leaves
// collections as their constructors made them.
func (s *Snapshot) Empty() bool { return s.n == 0 }

// Bytes returns the encoding, for sending or storing; the caller must not
// change it.
func (s *Snapshot) Bytes() []byte {
	if s.enc == nil {
		b := newSnapshotBuf(nil, s.Instance, s.LSN)
		s2 := sealSnapshot(b, s.Instance, s.LSN, len(b), 0)
		return s2.enc
	}
	return s.enc
}

// Range calls f with each record's collection id and bytes until f
// returns an error. rec is only valid during the call.
func (s *Snapshot) Range(f func(coll uint64, rec []byte) error) error {
	p := s.entries
	for i := uint64(0); i < s.n; i++ {
		coll, rec, rest, _ := nextEntry(p, 0)
		p = rest
		if err := f(coll, rec); err != nil {
			return err
		}
	}
	return nil
}

// newSnapshotBuf starts a snapshot encoding; entries are appended after
// it and sealSnapshot finishes it.
func newSnapshotBuf(buf []byte, instance string, lsn uint64) []byte {
	buf = append(buf[:0], tagSnapshot)
	buf = binary.LittleEndian.AppendUint64(buf, lsn)
	buf = binary.AppendUvarint(buf, uint64(len(instance)))
	buf = append(buf, instance...)
	return binary.LittleEndian.AppendUint64(buf, 0) // count, filled in by sealSnapshot
}

func sealSnapshot(buf []byte, instance string, lsn uint64, start int, n uint64) *Snapshot {
	binary.LittleEndian.PutUint64(buf[start-8:], n)
	entries := buf[start:]
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	return &Snapshot{Instance: instance, LSN: lsn, enc: buf, entries: buf[start : start+len(entries)], n: n}
}

// ParseSnapshot checks and decodes an encoded snapshot. It does not copy
// data: the Snapshot refers to it.
func ParseSnapshot(data []byte) (*Snapshot, error) {
	const minLen = 1 + 8 + 1 + 8 + crcLen
	if len(data) < minLen {
		return nil, fmt.Errorf("%w: snapshot of %d bytes is shorter than its %d-byte frame", ErrCorrupt, len(data), minLen)
	}
	if data[0] != tagSnapshot {
		return nil, fmt.Errorf("%w: snapshot starts with byte 0x%02x, want 0x%02x", ErrCorrupt, data[0], tagSnapshot)
	}
	body := len(data) - crcLen
	if got, want := crc32.Checksum(data[:body], castagnoli), binary.LittleEndian.Uint32(data[body:]); got != want {
		return nil, fmt.Errorf("%w: snapshot checksum 0x%08x, computed 0x%08x over %d bytes", ErrCorrupt, want, got, body)
	}
	lsn := binary.LittleEndian.Uint64(data[1:])
	nameLen, w := binary.Uvarint(data[9:body])
	if w <= 0 || nameLen > maxNameLen || uint64(body-9-w) < nameLen+8 {
		return nil, fmt.Errorf("%w: snapshot instance name length at offset 9 is bad", ErrCorrupt)
	}
	pos := 9 + w
	instance := string(data[pos : pos+int(nameLen)])
	pos += int(nameLen)
	n := binary.LittleEndian.Uint64(data[pos:])
	pos += 8
	if n > uint64(body-pos)/2 {
		return nil, fmt.Errorf("%w: snapshot claims %d records in %d bytes", ErrCorrupt, n, body-pos)
	}
	p := data[pos:body]
	for i := uint64(0); i < n; i++ {
		var err error
		if _, _, p, err = nextEntry(p, body-len(p)); err != nil {
			return nil, fmt.Errorf("snapshot record %d: %w", i, err)
		}
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: snapshot has %d bytes after its %d records", ErrCorrupt, len(p), n)
	}
	if lsn == 0 && n != 0 {
		return nil, fmt.Errorf("%w: snapshot at LSN 0 holds %d records", ErrCorrupt, n)
	}
	return &Snapshot{Instance: instance, LSN: lsn, enc: data, entries: data[pos:body], n: n}, nil
}
