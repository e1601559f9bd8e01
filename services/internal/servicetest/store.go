package servicetest

import (
	"sync"
	"testing"

	"github.com/e3-platform/e3/collections"
)

// RecordingStore is a [collections.Store] that keeps every mutation record
// of every collection attached to it, in order, as a replicating store
// ships them to a backup. It is safe for concurrent use.
type RecordingStore struct {
	mu   sync.Mutex
	recs map[string][][]byte
}

// NewRecordingStore returns an empty RecordingStore.
func NewRecordingStore() *RecordingStore {
	return &RecordingStore{recs: map[string][][]byte{}}
}

// Attach implements [collections.Store].
func (s *RecordingStore) Attach(c collections.Collection) (collections.Log, error) {
	return recordingLog{s, c.Name()}, nil
}

type recordingLog struct {
	s    *RecordingStore
	name string
}

func (l recordingLog) Append(rec []byte) {
	l.s.mu.Lock()
	l.s.recs[l.name] = append(l.s.recs[l.name], append([]byte(nil), rec...))
	l.s.mu.Unlock()
}

// Records returns the records of the collection called name so far.
func (s *RecordingStore) Records(name string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs[name]
}

// Replay applies to each of colls, in order, every record s holds for the
// collection of its name, failing t at the first record that does not
// apply.
func (s *RecordingStore) Replay(t testing.TB, colls []collections.Collection) {
	t.Helper()
	for _, c := range colls {
		for _, rec := range s.Records(c.Name()) {
			if err := c.Apply(rec); err != nil {
				t.Fatalf("replaying %s: %v", c.Name(), err)
			}
		}
	}
}

// CopySnapshots empties every collection of dst and rebuilds it from the
// snapshot of the collection of src in the same place, as a migration
// ships state. The two lists must name the same collections in the same
// order, as two instances of one service on a MemStore do.
func CopySnapshots(t testing.TB, src, dst []collections.Collection) {
	t.Helper()
	if len(src) != len(dst) {
		t.Fatalf("%d collections against %d", len(src), len(dst))
	}
	for k, c := range dst {
		if src[k].Name() != c.Name() {
			t.Fatalf("collection %q against %q", src[k].Name(), c.Name())
		}
		c.Clear()
		if err := src[k].Snapshot(func(rec []byte) error { return c.Apply(append([]byte(nil), rec...)) }); err != nil {
			t.Fatalf("%s: %v", c.Name(), err)
		}
	}
}
