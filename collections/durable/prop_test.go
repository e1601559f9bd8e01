package durable

import (
	"context"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// machine drives a primary (with a backup) through random mutations of a
// Map and an Array, barriers, compactions, restarts and hand-overs, and
// checks every copy of the state against a plain map and slice.
type machine struct {
	dir     string
	st      *Store
	k       *kv
	b       *Backup
	kb      *kv
	m       map[uint64]uint64
	a       []uint64
	cuts    []cutPoint // live snapshots taken on the way, with the model then
	handovr int
}

type cutPoint struct {
	snap *Snapshot
	m    map[uint64]uint64
	a    []uint64
}

func (mc *machine) init(t *rapid.T) {
	dir, err := os.MkdirTemp("", "durable-prop")
	if err != nil {
		t.Fatal(err)
	}
	mc.dir = dir
	mc.m, mc.a = map[uint64]uint64{}, make([]uint64, 4)
	mc.b, mc.kb = backupKV(t, filepath.Join(dir, "backup.db"), testOpts())
	mc.st, mc.k = startDeterministic(t, filepath.Join(dir, "primary.db"))
	if err := mc.st.AddBackup(context.Background(), LocalReplicator{mc.b}); err != nil {
		t.Fatal(err)
	}
}

func (mc *machine) cleanup() {
	if mc.st != nil {
		mc.st.Close()
	}
	if mc.b != nil {
		mc.b.Close()
	}
	os.RemoveAll(mc.dir)
}

func (mc *machine) actions() map[string]func(*rapid.T) {
	key := rapid.Uint64Range(0, 15)
	return map[string]func(*rapid.T){
		"map.Set": func(t *rapid.T) {
			k, v := key.Draw(t, "key"), rapid.Uint64().Draw(t, "value")
			mc.k.set(k, v)
			mc.m[k] = v
		},
		"map.Delete": func(t *rapid.T) {
			k := key.Draw(t, "key")
			mc.k.mu.Lock()
			mc.k.m.Delete(k)
			mc.k.mu.Unlock()
			delete(mc.m, k)
		},
		"array.Set": func(t *rapid.T) {
			if len(mc.a) == 0 {
				t.Skip("empty array")
			}
			i, v := rapid.IntRange(0, len(mc.a)-1).Draw(t, "index"), rapid.Uint64().Draw(t, "value")
			mc.k.mu.Lock()
			mc.k.arr.Set(i, v)
			mc.k.mu.Unlock()
			mc.a[i] = v
		},
		"array.Append": func(t *rapid.T) {
			v := rapid.Uint64().Draw(t, "value")
			mc.k.mu.Lock()
			mc.k.arr.Append(v)
			mc.k.mu.Unlock()
			mc.a = append(mc.a, v)
		},
		"array.Truncate": func(t *rapid.T) {
			n := rapid.IntRange(0, len(mc.a)).Draw(t, "n")
			mc.k.mu.Lock()
			mc.k.arr.Truncate(n)
			mc.k.mu.Unlock()
			mc.a = mc.a[:min(n, len(mc.a))]
		},
		"Sync": func(t *rapid.T) {
			mustSync(t, mc.st)
		},
		"Snapshot": func(t *rapid.T) {
			mc.k.mu.Lock()
			snap, err := mc.st.Snapshot()
			mc.k.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			mc.cuts = append(mc.cuts, cutPoint{snap, maps.Clone(mc.m), slices.Clone(mc.a)})
			if rapid.Bool().Draw(t, "compact") {
				if err := mc.st.Compact(snap); err != nil {
					t.Fatal(err)
				}
			}
		},
		"restart": func(t *rapid.T) {
			if err := mc.st.Close(); err != nil {
				t.Fatal(err)
			}
			mc.st, mc.k = startDeterministic(t, mc.st.path)
			mc.check(t, "restarted primary", mc.k)
			// A restarted primary seeds a new backup: the old one may hold
			// a batch the primary lost (replicated, not yet on its disk).
			path := mc.b.st.path
			mc.b.Close()
			os.Remove(path)
			mc.b, mc.kb = backupKV(t, path, testOpts())
			if err := mc.st.AddBackup(context.Background(), LocalReplicator{mc.b}); err != nil {
				t.Fatal(err)
			}
		},
		"handover": func(t *rapid.T) {
			mustSync(t, mc.st) // a drained source
			mc.handover(t, rapid.IntRange(0, 2).Draw(t, "kind"))
		},
		"": func(t *rapid.T) {
			mc.check(t, "primary", mc.k)
		},
	}
}

// startDeterministic starts a primary that commits only on Sync, so that
// batch boundaries, and so every run, follow from the drawn actions alone.
func startDeterministic(t tb, path string) (*Store, *kv) {
	st, k := openKV(t, path, testOpts())
	st.syncKicks = true
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	return st, k
}

func (mc *machine) check(t *rapid.T, what string, k *kv) {
	gotM, gotA := k.state()
	if !maps.Equal(gotM, mc.m) || !slices.Equal(gotA, mc.a) {
		t.Fatalf("%s: map %v array %v; want map %v array %v", what, gotM, gotA, mc.m, mc.a)
	}
}

// handover restores copies in fresh stores and compares each with the
// model: stored snapshot + tail (kind 0, what migration ships from disk),
// a live snapshot with an empty tail (kind 1), and an earlier live cut +
// tail (kind 2); kind -1 does all three.
func (mc *machine) handover(t *rapid.T, kind int) {
	mc.handovr++
	restore := func(what string, snap *Snapshot, tail []Batch) {
		path := filepath.Join(mc.dir, "dst.db")
		dst, k := openKV(t, path, testOpts())
		defer func() { dst.Close(); os.Remove(path) }()
		if err := dst.Restore(snap, tail); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		mc.check(t, what, k)
		if dst.LSN() != mc.st.LSN() {
			t.Fatalf("%s: destination at LSN %d, source at %d", what, dst.LSN(), mc.st.LSN())
		}
	}
	if kind == 0 || kind < 0 {
		stored, err := mc.st.StoredSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		tail, err := mc.st.Tail(stored.LSN)
		if err != nil {
			t.Fatal(err)
		}
		restore("stored snapshot + tail", stored, tail)
	}
	if kind == 1 || kind < 0 {
		mc.k.mu.Lock()
		live, err := mc.st.Snapshot()
		mc.k.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		restore("live snapshot", live, nil)
	}
	if (kind == 2 || kind < 0) && len(mc.cuts) > 0 {
		c := mc.cuts[rapid.IntRange(0, len(mc.cuts)-1).Draw(t, "cut")]
		tail, err := mc.st.Tail(c.snap.LSN)
		switch {
		case errors.Is(err, ErrCompacted):
			if st := mc.st.Stats(); c.snap.LSN >= st.SnapshotLSN {
				t.Fatalf("Tail(%d) says compacted, stored snapshot at %d", c.snap.LSN, st.SnapshotLSN)
			}
		case err != nil:
			t.Fatal(err)
		default:
			restore("earlier cut + tail", c.snap, tail)
		}
	}
}

// TestHandOverMatchesReference is the property test: random mutation
// sequences of a Map and an Array, and every copy (primary, restarted
// primary, backup, three kinds of hand-over) equals the reference.
func TestHandOverMatchesReference(t *testing.T) {
	// Every check creates several bbolt files (an fdatasync each); 40
	// checks keep go test fast. go test -run HandOver -args -rapid.checks=1000
	// searches longer.
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		flag.Set("rapid.checks", "40")
		defer flag.Set("rapid.checks", "100")
	}
	rapid.Check(t, func(t *rapid.T) {
		mc := &machine{}
		mc.init(t)
		defer mc.cleanup()
		t.Repeat(mc.actions())
		mustSync(t, mc.st)
		mc.handover(t, -1)
		var gotM map[uint64]uint64
		var gotA []uint64
		mc.b.View(func() { gotM, gotA = mc.kb.state() })
		if !maps.Equal(gotM, mc.m) || !slices.Equal(gotA, mc.a) {
			t.Fatalf("backup: map %v array %v; want map %v array %v", gotM, gotA, mc.m, mc.a)
		}
	})
}
