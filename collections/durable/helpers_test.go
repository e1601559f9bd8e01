package durable

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/e3-platform/e3/collections"
)

func TestMain(m *testing.M) {
	if runChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

// kv is a minimal stateful service: a map and an array behind one lock,
// as real services hold them.
type kv struct {
	mu  sync.Mutex
	m   *collections.Map[uint64, uint64]
	arr *collections.Array[uint64]
}

func newKV(s collections.Store) (*kv, error) {
	m, err := collections.NewMap(s, "kv.map", collections.Uint64, collections.Uint64)
	if err != nil {
		return nil, err
	}
	a, err := collections.NewArray(s, "kv.arr", 4, collections.Uint64)
	if err != nil {
		return nil, err
	}
	return &kv{m: m, arr: a}, nil
}

func (k *kv) set(key, v uint64) {
	k.mu.Lock()
	k.m.Set(key, v)
	k.mu.Unlock()
}

func (k *kv) get(key uint64) (uint64, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m.Get(key)
}

// state returns a copy of the map and the array.
func (k *kv) state() (map[uint64]uint64, []uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := map[uint64]uint64{}
	k.m.Range(func(a, b uint64) bool { m[a] = b; return true })
	a := make([]uint64, k.arr.Len())
	for i := range a {
		a[i] = k.arr.Get(i)
	}
	return m, a
}

// tb is the part of testing.TB the helpers use; *rapid.T has it too.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func testOpts() Options { return Options{NoSync: true, CompactBytes: -1} }

// openKV opens the store at path with a kv attached, not started.
func openKV(t tb, path string, opts Options) (*Store, *kv) {
	t.Helper()
	st, err := Open(path, "test/kv.0", opts)
	if err != nil {
		t.Fatal(err)
	}
	k, err := newKV(st)
	if err != nil {
		t.Fatal(err)
	}
	return st, k
}

// startKV opens and starts a primary.
func startKV(t tb, path string, opts Options) (*Store, *kv) {
	t.Helper()
	st, k := openKV(t, path, opts)
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	return st, k
}

// backupKV opens a backup with a kv attached.
func backupKV(t tb, path string, opts Options) (*Backup, *kv) {
	t.Helper()
	st, k := openKV(t, path, opts)
	b, err := NewBackup(st)
	if err != nil {
		t.Fatal(err)
	}
	return b, k
}

func tmp(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }

func mustSync(t tb, st *Store) {
	t.Helper()
	if err := st.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func sameState(t tb, what string, gotM map[uint64]uint64, gotA []uint64, wantM map[uint64]uint64, wantA []uint64) {
	t.Helper()
	if !maps.Equal(gotM, wantM) {
		t.Fatalf("%s: map has %d entries, want %d; first difference: %s", what, len(gotM), len(wantM), firstDiff(gotM, wantM))
	}
	if !slices.Equal(gotA, wantA) {
		t.Fatalf("%s: array %v, want %v", what, gotA, wantA)
	}
}

func firstDiff(got, want map[uint64]uint64) string {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return fmt.Sprintf("key %d = %d,%v want %d", k, g, ok, v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("extra key %d = %d", k, v)
		}
	}
	return "none"
}
