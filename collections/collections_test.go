package collections

import (
	"testing"
)

// recStore is a Store that keeps every record, to check that replaying the
// log rebuilds the state.
type recStore struct {
	colls map[string]Collection
	recs  map[string][][]byte
}

func newRecStore() *recStore {
	return &recStore{colls: map[string]Collection{}, recs: map[string][][]byte{}}
}

type recLog struct {
	s    *recStore
	name string
}

func (l recLog) Append(rec []byte) {
	l.s.recs[l.name] = append(l.s.recs[l.name], append([]byte(nil), rec...))
}

func (s *recStore) Attach(c Collection) (Log, error) {
	s.colls[c.Name()] = c
	return recLog{s, c.Name()}, nil
}

func TestMapLogReplay(t *testing.T) {
	src := newRecStore()
	m, err := NewMap(src, "m", String, Float64)
	if err != nil {
		t.Fatal(err)
	}
	m.Set("a", 1.5)
	m.Set("b", 2)
	m.Set("a", 3)
	m.Delete("b")
	m.Delete("missing")
	m.Set("c", -4)

	dst, _ := NewMap(NewMemStore(), "m", String, Float64)
	for _, r := range src.recs["m"] {
		if err := dst.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]float64{"a": 3, "c": -4}
	if dst.Len() != len(want) {
		t.Fatalf("replayed map has %d entries, want %d", dst.Len(), len(want))
	}
	for k, v := range want {
		if got, ok := dst.Get(k); !ok || got != v {
			t.Errorf("replayed %q = %v,%v want %v", k, got, ok, v)
		}
	}
	if n := len(src.recs["m"]); n != 5 {
		t.Errorf("%d records, want 5 (a delete of a missing key records nothing)", n)
	}

	// A snapshot applied to an empty map gives the same state.
	snap, _ := NewMap(NewMemStore(), "m", String, Float64)
	if err := m.Snapshot(func(r []byte) error { return snap.Apply(append([]byte(nil), r...)) }); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got, _ := snap.Get(k); got != v {
			t.Errorf("snapshot %q = %v want %v", k, got, v)
		}
	}
}

func TestArrayLogReplay(t *testing.T) {
	src := newRecStore()
	a, err := NewArray(src, "a", 3, Uint64)
	if err != nil {
		t.Fatal(err)
	}
	a.Set(1, 7)
	a.Append(9)
	a.Append(10)
	a.Truncate(4)
	a.Set(0, 1)

	dst, _ := NewArray(NewMemStore(), "a", 3, Uint64)
	for _, r := range src.recs["a"] {
		if err := dst.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	want := []uint64{1, 7, 0, 9}
	if dst.Len() != len(want) {
		t.Fatalf("len %d want %d", dst.Len(), len(want))
	}
	for i, w := range want {
		if dst.Get(i) != w {
			t.Errorf("[%d] = %d want %d", i, dst.Get(i), w)
		}
	}
	fresh, _ := NewArray(NewMemStore(), "a", 3, Uint64)
	if err := a.Snapshot(fresh.Apply); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if fresh.Get(i) != w {
			t.Errorf("snapshot [%d] = %d want %d", i, fresh.Get(i), w)
		}
	}
}

func TestMemStoreLogsNothingAndRejectsDuplicates(t *testing.T) {
	s := NewMemStore()
	m, _ := NewMap(s, "x", Uint64, Uint64)
	if m.log != nil {
		t.Fatal("MemStore handed out a log")
	}
	if _, err := NewMap(s, "x", Uint64, Uint64); err == nil {
		t.Fatal("second collection named x accepted")
	}
	m.Set(1, 2)
	if allocs := testing.AllocsPerRun(100, func() { m.Set(1, 3) }); allocs != 0 {
		t.Errorf("Set on a MemStore map allocates %v times", allocs)
	}
}

func FuzzApply(f *testing.F) {
	f.Add([]byte{opMapSet, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{opArraySet, 200, 1, 1})
	f.Fuzz(func(t *testing.T, rec []byte) {
		m, _ := NewMap(NewMemStore(), "m", Uint64, Uint64)
		_ = m.Apply(rec)
		a, _ := NewArray(NewMemStore(), "a", 2, Uint64)
		_ = a.Apply(rec)
	})
}
