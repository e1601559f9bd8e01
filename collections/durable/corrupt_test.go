package durable

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// writeSome leaves a closed store at path with a snapshot and a log tail,
// and returns its state.
func writeSome(t *testing.T, path string) (map[uint64]uint64, []uint64) {
	t.Helper()
	st, k := startKV(t, path, testOpts())
	for i := uint64(0); i < 300; i++ {
		k.set(i, i*7)
		if i%3 == 0 {
			mustSync(t, st)
		}
		if i == 150 {
			k.mu.Lock()
			snap, err := st.Snapshot()
			k.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Compact(snap); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustSync(t, st)
	m, a := k.state()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return m, a
}

// editDB changes the closed store's file through bbolt.
func editDB(t *testing.T, path string, f func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(f); err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// reopen opens and starts the store at path, returning the first error.
func reopen(path string) (*Store, *kv, error) {
	st, err := Open(path, "test/kv.0", testOpts())
	if err != nil {
		return nil, nil, err
	}
	k, err := newKV(st)
	if err == nil {
		err = st.Start()
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, k, nil
}

func TestDamagedFilesGiveClearErrors(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"not a database", func(t *testing.T, path string) {
			junk := make([]byte, 16<<10)
			for i := range junk {
				junk[i] = byte(i * 31)
			}
			os.WriteFile(path, junk, 0o600)
		}, "invalid database"},
		{"truncated", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			os.Truncate(path, fi.Size()/2)
		}, "the file was truncated"},
		{"flipped bit in a log record", func(t *testing.T, path string) {
			editDB(t, path, func(tx *bolt.Tx) error {
				k, v := tx.Bucket(bucketLog).Cursor().Last()
				v = append([]byte(nil), v...)
				v[len(v)/2] ^= 0x10
				return tx.Bucket(bucketLog).Put(k, v)
			})
		}, "batch checksum"},
		{"batch under the wrong key", func(t *testing.T, path string) {
			editDB(t, path, func(tx *bolt.Tx) error {
				lb := tx.Bucket(bucketLog)
				k, v := lb.Cursor().Last()
				v = append([]byte(nil), v...)
				lb.Delete(k)
				return lb.Put(u64Key(binary.BigEndian.Uint64(k)+1000), v)
			})
		}, "holds the batch starting at LSN"},
		{"batch missing from the log", func(t *testing.T, path string) {
			editDB(t, path, func(tx *bolt.Tx) error {
				c := tx.Bucket(bucketLog).Cursor()
				c.First()
				k, _ := c.Next()
				return tx.Bucket(bucketLog).Delete(k)
			})
		}, "log jumps from LSN"},
		{"damaged snapshot", func(t *testing.T, path string) {
			editDB(t, path, func(tx *bolt.Tx) error {
				sb := tx.Bucket(bucketSnap)
				v := append([]byte(nil), sb.Get(u64Key(0))...)
				v[len(v)-10] ^= 1
				return sb.Put(u64Key(0), v)
			})
		}, "stored snapshot: durable: corrupt data: snapshot checksum"},
		{"snapshot missing", func(t *testing.T, path string) {
			editDB(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(bucketSnap).Delete(u64Key(0))
			})
		}, "snapshot at LSN"},
		{"unknown format", func(t *testing.T, path string) {
			editDB(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keyFormat, u64Key(99))
			})
		}, "format version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tmp(t, "kv.db")
			writeSome(t, path)
			tc.damage(t, path)
			st, _, err := reopen(path)
			if err == nil {
				st.Close()
				t.Fatal("damaged file opened without error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "test/kv.0") {
				t.Fatalf("error %q does not say %q and name the file", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// TestRandomDamage flips random bytes of a store's file (past bbolt's two
// meta pages, whose checksum makes bbolt fall back to the previous
// transaction by design) and reopens it: the result is an error or
// exactly the state written, never a crash and never wrong data.
func TestRandomDamage(t *testing.T) {
	const seed = 7
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("seed %d", seed)
	good := tmp(t, "good.db")
	wantM, wantA := writeSome(t, good)
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	var errs, ok int
	for i := 0; i < 40; i++ {
		data := append([]byte(nil), orig...)
		for j := 0; j < 1+rng.IntN(4); j++ {
			off := 8192 + rng.IntN(len(data)-8192)
			data[off] ^= byte(1 + rng.IntN(255))
		}
		path := tmp(t, "bad.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, k, err := reopen(path)
		if err != nil {
			errs++
			continue
		}
		gotM, gotA := k.state()
		st.Close()
		if !mapsEqual(gotM, wantM) || !slices.Equal(gotA, wantA) {
			t.Fatalf("damage %d: store opened with different state (map %d entries, want %d)", i, len(gotM), len(wantM))
		}
		ok++
	}
	t.Logf("%d damaged files refused, %d opened with the right state (damage in unused pages)", errs, ok)
	if errs == 0 {
		t.Error("no damage was detected")
	}
}

func mapsEqual(a, b map[uint64]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestErrorsAreTyped(t *testing.T) {
	path := tmp(t, "kv.db")
	writeSome(t, path)
	editDB(t, path, func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketLog).Cursor().First()
		v = append([]byte(nil), v...)
		v[0] = 0
		return tx.Bucket(bucketLog).Put(k, v)
	})
	_, _, err := reopen(path)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%v does not wrap ErrCorrupt", err)
	}
}
