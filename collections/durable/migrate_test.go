package durable

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// migrating stands in for the runtime around one instance: requests run
// under gate's read lock (Handle, then the barrier), a migration drains
// the instance by taking the write lock, and then moves the instance.
type migrating struct {
	gate sync.RWMutex
	st   *Store
	k    *kv
}

// TestMigrationUnderLoad moves an instance twice while 4 writers keep
// writing: once cold (drain, live snapshot, Restore on the destination)
// and once by attaching the destination as the backup first (no pause)
// and promoting it after the drain. Every acknowledged write must be at
// the final destination; the pause each way is logged.
func TestMigrationUnderLoad(t *testing.T) {
	dir := t.TempDir()
	src, k := startKV(t, dir+"/src.db", testOpts())
	in := &migrating{st: src, k: k}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked [4]atomic.Uint64 // writer -> highest acknowledged i
	var writes atomic.Uint64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				in.gate.RLock()
				in.k.set(uint64(w)<<32|i, i)
				err := in.st.Sync(context.Background())
				in.gate.RUnlock()
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				acked[w].Store(i)
				writes.Add(1)
			}
		}()
	}
	waitWrites := func(n uint64) {
		for target := writes.Load() + n; writes.Load() < target; {
			time.Sleep(time.Millisecond)
		}
	}
	waitWrites(300)

	// Cold: drain, cut, restore.
	dst1, k1 := openKV(t, dir+"/dst1.db", testOpts())
	t0 := time.Now()
	in.gate.Lock()
	snap, err := in.st.Snapshot()
	if err == nil {
		err = dst1.Restore(snap, nil)
	}
	if err != nil {
		in.gate.Unlock()
		t.Fatal(err)
	}
	old := in.st
	in.st, in.k = dst1, k1
	in.gate.Unlock()
	cold := time.Since(t0)
	old.Close()
	waitWrites(300)

	// Warm: the destination is seeded as a backup while writes go on,
	// then promoted after the drain.
	bst, k2 := openKV(t, dir+"/dst2.db", testOpts())
	b, err := NewBackup(bst)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.st.AddBackup(context.Background(), LocalReplicator{b}); err != nil {
		t.Fatal(err)
	}
	waitWrites(300)
	t0 = time.Now()
	in.gate.Lock()
	in.st.DetachBackup()
	dst2, err := b.Promote()
	if err != nil {
		in.gate.Unlock()
		t.Fatal(err)
	}
	old = in.st
	in.st, in.k = dst2, k2
	in.gate.Unlock()
	warm := time.Since(t0)
	old.Close()
	waitWrites(300)
	close(stop)
	wg.Wait()

	final, _ := in.k.state()
	for w := range acked {
		for i := uint64(1); i <= acked[w].Load(); i++ {
			if v, ok := final[uint64(w)<<32|i]; !ok || v != i {
				t.Fatalf("acknowledged write %d of writer %d missing after two migrations", i, w)
			}
		}
	}
	t.Logf("%d writes; pause of the cold move %v (%d records in the snapshot), of the warm move %v",
		writes.Load(), cold, snap.Len(), warm)
	in.st.Close()
}
