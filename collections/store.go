package collections

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
)

// Store owns the collections of one service instance and decides what
// becomes of their mutation records.
type Store interface {
	// Attach registers c under its name. It returns the [Log] mutation
	// records go to, or nil when the store wants none (then collections
	// skip encoding them altogether).
	Attach(c Collection) (Log, error)
}

// Log receives mutation records of one collection.
type Log interface {
	// Append records one mutation. rec is only valid during the call.
	Append(rec []byte)
}

// Collection is the side of a Map or Array a Store sees: enough to ship its
// state somewhere and rebuild it there.
type Collection interface {
	// Name is unique within the instance.
	Name() string
	// Apply replays one mutation record.
	Apply(rec []byte) error
	// Snapshot calls emit with records that rebuild the current state from
	// empty.
	Snapshot(emit func(rec []byte) error) error
	// Clear empties the collection without logging.
	Clear()
}

// Record operations. A record is op, then for map ops a uvarint key length,
// key and value; for array ops a uvarint index and value.
const (
	opMapSet byte = iota + 1
	opMapDelete
	opArraySet
	opArrayAppend
	opArrayTruncate
)

func appendKV(dst []byte, op byte, k, v []byte) []byte {
	dst = append(dst, op)
	dst = binary.AppendUvarint(dst, uint64(len(k)))
	dst = append(dst, k...)
	return append(dst, v...)
}

func splitKV(rec []byte) (op byte, k, v []byte, err error) {
	if len(rec) < 1 {
		return 0, nil, nil, fmt.Errorf("collections: empty record")
	}
	n, w := binary.Uvarint(rec[1:])
	if w <= 0 || uint64(len(rec)-1-w) < n {
		return 0, nil, nil, fmt.Errorf("collections: record key length %d does not fit %d bytes", n, len(rec))
	}
	k = rec[1+w : 1+w+int(n)]
	return rec[0], k, rec[1+w+int(n):], nil
}

// MemStore keeps collections in memory only: nothing is logged, persisted or
// replicated. It is what services run on in tests, benchmarks and the
// simulator, and until an instance is given a reliable store.
type MemStore struct {
	mu    sync.Mutex
	colls map[string]Collection
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{colls: map[string]Collection{}} }

// Attach registers c and asks for no records.
func (s *MemStore) Attach(c Collection) (Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.colls[c.Name()]; dup {
		return nil, fmt.Errorf("collections: %q attached twice", c.Name())
	}
	s.colls[c.Name()] = c
	return nil, nil
}

// Collections returns the attached collections sorted by name.
func (s *MemStore) Collections() []Collection {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Collection, 0, len(s.colls))
	for _, c := range s.colls {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}
