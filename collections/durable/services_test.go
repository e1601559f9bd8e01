package durable

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
)

// canonical renders a snapshot's records comparably: collection by
// collection, map records sorted (a map's snapshot order is random),
// array records in order (an array's snapshot starts with a truncate
// record, op 5 in package collections).
func canonical(t *testing.T, snap *Snapshot) string {
	t.Helper()
	names := map[uint64]string{}
	recs := map[string][][]byte{}
	err := snap.Range(func(coll uint64, rec []byte) error {
		if coll == metaColl {
			id, name, err := parseDefine(rec)
			names[id] = name
			recs[name] = recs[name][:0:0]
			return err
		}
		recs[names[coll]] = append(recs[names[coll]], append([]byte(nil), rec...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range recs {
			if !yield(n) {
				return
			}
		}
	}) {
		rs := recs[name]
		if len(rs) == 0 || rs[0][0] != 5 {
			slices.SortFunc(rs, bytes.Compare)
		}
		fmt.Fprintf(&out, "%s: %d records\n", name, len(rs))
		for _, r := range rs {
			fmt.Fprintf(&out, "  %x\n", r)
		}
	}
	return out.String()
}

// smallConfig shrinks services whose default seed data makes the test slow.
var smallConfig = map[string]map[string]string{
	"recommend": {"users": "100", "items": "100"},
}

// instance is a service instance on a durable store.
type instance struct {
	st *Store
	h  service.Handler
}

func newInstance(t *testing.T, d *service.Descriptor, path string) *instance {
	t.Helper()
	st, err := Open(path, "test/"+d.Name+".0", testOpts())
	if err != nil {
		t.Fatal(err)
	}
	h, err := d.New(service.Env{Instance: "test/" + d.Name + ".0", Store: st, Seed: 1, Config: smallConfig[d.Name]})
	if err != nil {
		t.Fatal(err)
	}
	return &instance{st, h}
}

// liveState snapshots an instance that is not handling requests.
func (in *instance) liveState(t *testing.T) string {
	snap, err := in.st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return canonical(t, snap)
}

func (in *instance) close() {
	if c, ok := in.h.(service.Closer); ok {
		c.Close()
	}
	in.st.Close()
}

// TestServicesOnDurableStores runs every stateful, migratable service of
// the catalogue on a durable store with a backup, then checks that a
// restart, the backup and a hand-over all hold the same state.
func TestServicesOnDurableStores(t *testing.T) {
	for _, d := range services.Descriptors() {
		if !d.Stateful || !d.Migratable || d.New == nil || d.NewGenerator == nil {
			continue
		}
		t.Run(d.Name, func(t *testing.T) {
			dir := t.TempDir()
			bin := newInstance(t, &d, filepath.Join(dir, "backup.db"))
			b, err := NewBackup(bin.st)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			in := newInstance(t, &d, filepath.Join(dir, "primary.db"))
			if err := in.st.Start(); err != nil {
				t.Fatal(err)
			}
			if err := in.st.AddBackup(context.Background(), LocalReplicator{b}); err != nil {
				t.Fatal(err)
			}
			gen := d.NewGenerator(1, 64)
			var c service.Context
			var req []byte
			handled := 0
			run := func(in *instance, n int) {
				for i := 0; i < n; i++ {
					var key uint64
					req, key = gen.Next(req)
					c.Reset(int64(handled)*1e6, key, nil)
					if err := in.h.Handle(&c, req); err == nil {
						handled++
					}
					mustSync(t, in.st)
				}
			}
			run(in, 200)
			if handled == 0 {
				t.Fatal("no request handled")
			}
			want := in.liveState(t)
			if in.st.LSN() == 0 {
				t.Fatal("no records logged")
			}
			t.Logf("%d requests, %d records", handled, in.st.LSN())

			// The backup.
			bsnap, err := b.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if got := canonical(t, bsnap); got != want {
				t.Fatalf("backup state differs:\n%s\nwant\n%s", got, want)
			}
			// A hand-over from disk.
			stored, err := in.st.StoredSnapshot()
			if err != nil {
				t.Fatal(err)
			}
			tail, err := in.st.Tail(stored.LSN)
			if err != nil {
				t.Fatal(err)
			}
			dst := newInstance(t, &d, filepath.Join(dir, "dst.db"))
			if err := dst.st.Restore(stored, tail); err != nil {
				t.Fatal(err)
			}
			if got := dst.liveState(t); got != want {
				t.Fatalf("destination state differs:\n%s\nwant\n%s", got, want)
			}
			dst.close()
			// A restart, which then goes on serving.
			in.close()
			re := newInstance(t, &d, in.st.path)
			defer re.close()
			if err := re.st.Start(); err != nil {
				t.Fatal(err)
			}
			if got := re.liveState(t); got != want {
				t.Fatalf("restarted state differs:\n%s\nwant\n%s", got, want)
			}
			run(re, 50)
		})
	}
}
