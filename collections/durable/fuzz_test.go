package durable

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// seedBatches returns encoded batches for the fuzzers' corpus.
func seedBatches() [][]byte {
	b1 := newBatchBuf(nil)
	b1 = appendEntry(b1, 1, []byte{1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9})
	b1 = appendEntry(b1, metaColl, defineRecord(1, "kv.map"))
	b2 := appendEntry(newBatchBuf(nil), 300, nil)
	return [][]byte{
		sealBatch(b1, 1, 2).Bytes(),
		sealBatch(b2, 1<<40, 1).Bytes(),
		sealBatch(newBatchBuf(nil), 7, 0).Bytes(),
	}
}

// FuzzParseBatch: any input either fails with ErrCorrupt or decodes to
// records that encode back to exactly the input.
func FuzzParseBatch(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
	}
	f.Add([]byte{tagBatch, 1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBatch(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		re := newBatchBuf(nil)
		n := 0
		if err := b.Range(func(lsn, coll uint64, rec []byte) error {
			if lsn != b.First()+uint64(n) {
				t.Fatalf("record %d has LSN %d", n, lsn)
			}
			re = appendEntry(re, coll, rec)
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != b.Len() {
			t.Fatalf("Range gave %d records, Len %d", n, b.Len())
		}
		// Uvarints have more than one encoding, so compare decoded forms.
		b2, err := ParseBatch(sealBatch(re, b.First(), n).Bytes())
		if err != nil || b2.Len() != b.Len() || b2.First() != b.First() {
			t.Fatalf("re-encoding does not parse back: %v", err)
		}
		if after := b.First() + uint64(n)/2; n > 0 {
			tb := trimBatch(b, after)
			if tb.Len() > 0 && (tb.First() != after+1 || tb.Last() != b.Last()) {
				t.Fatalf("trim after %d of %d-%d gave %d-%d", after, b.First(), b.Last(), tb.First(), tb.Last())
			}
		}
	})
}

// FuzzParseSnapshot: any input either fails with ErrCorrupt or decodes to
// records that encode back to an equal snapshot.
func FuzzParseSnapshot(f *testing.F) {
	buf := newSnapshotBuf(nil, "app/kvs.0", 42)
	start := len(buf)
	buf = appendEntry(buf, metaColl, defineRecord(1, "kv.map"))
	buf = appendEntry(buf, 1, []byte{1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Add(sealSnapshot(buf, "app/kvs.0", 42, start, 2).Bytes())
	f.Add((&Snapshot{Instance: "x"}).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSnapshot(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		re := newSnapshotBuf(nil, s.Instance, s.LSN)
		start := len(re)
		n := uint64(0)
		_ = s.Range(func(coll uint64, rec []byte) error {
			re = appendEntry(re, coll, rec)
			n++
			return nil
		})
		s2, err := ParseSnapshot(sealSnapshot(re, s.Instance, s.LSN, start, n).Bytes())
		if err != nil || s2.Len() != s.Len() || s2.Instance != s.Instance || s2.LSN != s.LSN {
			t.Fatalf("re-encoding does not parse back: %v", err)
		}
	})
}

// FuzzFrames feeds a byte stream to the backup's frame reader and decoder:
// whatever arrives on the wire, the result is an error, never a panic or
// an allocation beyond the frame limit.
func FuzzFrames(f *testing.F) {
	var seed bytes.Buffer
	for _, b := range seedBatches() {
		writeFrame(&seed, frameBatch, b)
	}
	writeFrame(&seed, frameSnapshot, (&Snapshot{Instance: "x"}).Bytes())
	f.Add(seed.Bytes())
	f.Add([]byte{255, 255, 255, 255, 'B'})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var buf []byte
		for {
			typ, payload, nb, err := readFrame(r, buf)
			buf = nb
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if _, _, err := decodeFrame(typ, payload); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		}
	})
}
