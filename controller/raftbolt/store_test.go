package raftbolt

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func entry(i uint64) *raft.Log {
	return &raft.Log{Index: i, Term: 1 + i/10, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("cmd-%d", i))}
}

func entries(lo, hi uint64) []*raft.Log {
	var out []*raft.Log
	for i := lo; i <= hi; i++ {
		out = append(out, entry(i))
	}
	return out
}

func indexes(t *testing.T, s raft.LogStore) (uint64, uint64) {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return first, last
}

func TestEmpty(t *testing.T) {
	s, _ := openTemp(t)
	if f, l := indexes(t, s); f != 0 || l != 0 {
		t.Fatalf("empty store: first %d last %d, want 0 0", f, l)
	}
	var l raft.Log
	if err := s.GetLog(1, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog on empty store: %v, want raft.ErrLogNotFound", err)
	}
}

func TestStoreAndGet(t *testing.T) {
	s, _ := openTemp(t)
	at := time.Unix(1700000000, 123456789)
	in := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte("conf")},
		{Index: 2, Term: 1, Type: raft.LogNoop},
		{Index: 3, Term: 2, Type: raft.LogCommand, Data: bytes.Repeat([]byte{0xab}, 70000), Extensions: []byte("ext"), AppendedAt: at},
	}
	if err := s.StoreLog(in[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(in[1:]); err != nil {
		t.Fatal(err)
	}
	for _, want := range in {
		var got raft.Log
		if err := s.GetLog(want.Index, &got); err != nil {
			t.Fatal(err)
		}
		if !got.AppendedAt.Equal(want.AppendedAt) {
			t.Errorf("entry %d: AppendedAt %v, want %v", want.Index, got.AppendedAt, want.AppendedAt)
		}
		w := *want
		w.AppendedAt = got.AppendedAt
		if diff := cmp.Diff(&w, &got); diff != "" {
			t.Errorf("entry %d (-want +got):\n%s", w.Index, diff)
		}
	}
	if f, l := indexes(t, s); f != 1 || l != 3 {
		t.Fatalf("first %d last %d, want 1 3", f, l)
	}
	var l raft.Log
	if err := s.GetLog(4, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(4): %v, want raft.ErrLogNotFound", err)
	}
	// A returned entry must not alias bbolt's memory, which is reused.
	var a raft.Log
	if err := s.GetLog(1, &a); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(4, 200)); err != nil {
		t.Fatal(err)
	}
	if string(a.Data) != "conf" {
		t.Fatalf("entry read earlier changed to %q", a.Data)
	}
}

func TestDeleteRange(t *testing.T) {
	for _, tc := range []struct {
		name        string
		min, max    uint64
		first, last uint64
		gone        []uint64
		kept        []uint64
	}{
		{"prefix", 1, 10, 11, 30, []uint64{1, 10}, []uint64{11, 30}},
		{"suffix", 21, 30, 1, 20, []uint64{21, 30}, []uint64{1, 20}},
		{"middle", 5, 7, 1, 30, []uint64{5, 6, 7}, []uint64{4, 8}},
		{"all", 1, 30, 0, 0, []uint64{1, 30}, nil},
		{"beyond both ends", 0, 1000, 0, 0, []uint64{1, 30}, nil},
		{"nothing there", 40, 50, 1, 30, nil, []uint64{1, 30}},
		{"reversed range", 10, 5, 1, 30, nil, []uint64{5, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			if err := s.StoreLogs(entries(1, 30)); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(tc.min, tc.max); err != nil {
				t.Fatal(err)
			}
			if f, l := indexes(t, s); f != tc.first || l != tc.last {
				t.Errorf("first %d last %d, want %d %d", f, l, tc.first, tc.last)
			}
			var l raft.Log
			for _, i := range tc.gone {
				if err := s.GetLog(i, &l); !errors.Is(err, raft.ErrLogNotFound) {
					t.Errorf("GetLog(%d) after delete: %v, want raft.ErrLogNotFound", i, err)
				}
			}
			for _, i := range tc.kept {
				if err := s.GetLog(i, &l); err != nil || l.Index != i {
					t.Errorf("GetLog(%d): index %d, %v", i, l.Index, err)
				}
			}
		})
	}
}

func TestStable(t *testing.T) {
	s, _ := openTemp(t)
	if v, err := s.Get([]byte("missing")); err != nil || len(v) != 0 {
		t.Fatalf("Get(missing) = %q, %v; want empty, nil", v, err)
	}
	if v, err := s.GetUint64([]byte("missing")); err != nil || v != 0 {
		t.Fatalf("GetUint64(missing) = %d, %v; want 0, nil", v, err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 1<<40+7); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get([]byte("LastVoteCand")); string(v) != "node-2" {
		t.Fatalf("Get = %q, want node-2", v)
	}
	if v, _ := s.GetUint64([]byte("CurrentTerm")); v != 1<<40+7 {
		t.Fatalf("GetUint64 = %d, want %d", v, uint64(1<<40+7))
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-3")); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get([]byte("LastVoteCand")); string(v) != "node-3" {
		t.Fatalf("Get after overwrite = %q, want node-3", v)
	}
	// A key holding something other than 8 bytes is not a uint64.
	if _, err := s.GetUint64([]byte("LastVoteCand")); err == nil || !strings.Contains(err.Error(), "LastVoteCand") {
		t.Fatalf("GetUint64 of a 6-byte value: %v, want an error naming the key", err)
	}
}

func TestReopen(t *testing.T) {
	s, path := openTemp(t)
	if err := s.StoreLogs(entries(5, 50)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(5, 9); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 9); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if f, l := indexes(t, s2); f != 10 || l != 50 {
		t.Fatalf("after reopen: first %d last %d, want 10 50", f, l)
	}
	var l raft.Log
	if err := s2.GetLog(33, &l); err != nil || string(l.Data) != "cmd-33" || l.Term != 4 {
		t.Fatalf("after reopen GetLog(33) = %+v, %v", l, err)
	}
	if v, _ := s2.GetUint64([]byte("CurrentTerm")); v != 9 {
		t.Fatalf("after reopen CurrentTerm = %d, want 9", v)
	}
}

func TestLocked(t *testing.T) {
	_, path := openTemp(t)
	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second Open of a held file: %v, want a lock error", err)
	}
}

func TestCorruptRecord(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.StoreLogs(entries(1, 3)); err != nil {
		t.Fatal(err)
	}
	// Truncate entry 2's record behind the store's back.
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLogs)
		v := append([]byte(nil), b.Get(key(2))...)
		return b.Put(key(2), v[:len(v)-3])
	})
	if err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	err = s.GetLog(2, &l)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Index != 2 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetLog of a truncated record: %v, want a *CorruptError for entry 2", err)
	}
	t.Log(err)
}

// TestAgainstInmem runs a seeded random sequence of the operations raft
// performs (appends, prefix compaction, suffix truncation, reads) on the
// Store and on raft's own InmemStore, and requires the same answers.
func TestAgainstInmem(t *testing.T) {
	const seed = 20240611
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	// Without fsync: this test is about answers, not durability, and two
	// thousand fsyncs would cost seconds.
	s, err := Open(filepath.Join(t.TempDir(), "raft.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ref := raft.NewInmemStore()
	next := uint64(1)
	for step := range 2000 {
		switch op := rng.IntN(10); {
		case op < 4: // append a batch
			n := uint64(1 + rng.IntN(8))
			batch := entries(next, next+n-1)
			next += n
			if err := s.StoreLogs(batch); err != nil {
				t.Fatal(err)
			}
			ref.StoreLogs(batch)
		case op < 5: // compact a prefix
			f, _ := ref.FirstIndex()
			l, _ := ref.LastIndex()
			if f == 0 {
				continue
			}
			hi := f + uint64(rng.IntN(int(l-f)+1))
			s.DeleteRange(f, hi)
			ref.DeleteRange(f, hi)
		case op < 6: // a follower drops a conflicting suffix
			f, _ := ref.FirstIndex()
			l, _ := ref.LastIndex()
			if f == 0 {
				continue
			}
			lo := f + uint64(rng.IntN(int(l-f)+1))
			s.DeleteRange(lo, l)
			ref.DeleteRange(lo, l)
			if lo == f { // empty: the inmem store forgets its bounds
				next = l + 1
			} else {
				next = lo
			}
		default: // read
			i := uint64(rng.IntN(int(next) + 2))
			var a, b raft.Log
			ea, eb := s.GetLog(i, &a), ref.GetLog(i, &b)
			if (ea == nil) != (eb == nil) || ea == nil && (a.Index != b.Index || a.Term != b.Term || !bytes.Equal(a.Data, b.Data)) {
				t.Fatalf("step %d: GetLog(%d) = %+v, %v; inmem %+v, %v", step, i, a, ea, b, eb)
			}
		}
		f1, l1 := indexes(t, s)
		f2, l2 := indexes(t, ref)
		if f1 != f2 || l1 != l2 {
			t.Fatalf("step %d: first/last %d/%d, inmem %d/%d", step, f1, l1, f2, l2)
		}
	}
}
