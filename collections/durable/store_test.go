package durable

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRestartRecoversState(t *testing.T) {
	path := tmp(t, "kv.db")
	st, k := startKV(t, path, Options{}) // fsync on: the default
	for i := uint64(0); i < 100; i++ {
		k.set(i, i*i)
		if i%10 == 0 {
			k.mu.Lock()
			k.m.Delete(i)
			k.arr.Append(i)
			k.arr.Set(1, i)
			k.mu.Unlock()
		}
		mustSync(t, st)
	}
	wantM, wantA := k.state()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, k2 := startKV(t, path, Options{})
	defer st2.Close()
	gotM, gotA := k2.state()
	sameState(t, "after restart", gotM, gotA, wantM, wantA)
	if st2.LSN() != st.LSN() {
		t.Errorf("restarted at LSN %d, closed at %d", st2.LSN(), st.LSN())
	}
	// It goes on from where it was.
	k2.set(1000, 1)
	mustSync(t, st2)
	if st2.DurableLSN() != st.LSN()+1 {
		t.Errorf("next record got LSN %d, want %d", st2.DurableLSN(), st.LSN()+1)
	}
}

func TestCrashKeepsEveryAcknowledgedWrite(t *testing.T) {
	path := tmp(t, "kv.db")
	st, k := startKV(t, path, testOpts())
	for i := uint64(0); i < 50; i++ {
		k.set(i, i+1)
		mustSync(t, st)
	}
	// Writes after the last barrier may or may not survive; hold the
	// committer off so that they certainly do not, and crash.
	st.commitMu.Lock()
	k.set(7, 999)
	k.set(1000, 1)
	st.mu.Lock()
	st.pendN, st.pend = 0, newBatchBuf(st.pend) // what the crash drops
	st.mu.Unlock()
	st.commitMu.Unlock()
	st.crash()
	if err := st.Sync(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after crash = %v, want ErrClosed", err)
	}

	st2, k2 := startKV(t, path, testOpts())
	defer st2.Close()
	for i := uint64(0); i < 50; i++ {
		if v, ok := k2.get(i); !ok || v != i+1 {
			t.Fatalf("acknowledged write %d lost: got %d,%v", i, v, ok)
		}
	}
	if _, ok := k2.get(1000); ok {
		t.Error("a write dropped by the crash came back")
	}
}

func TestMisuseIsReported(t *testing.T) {
	t.Run("constructor state", func(t *testing.T) {
		// What a constructor writes is the initial state: kept on a new
		// file, replaced by the stored state on restart.
		path := tmp(t, "a.db")
		st, k := openKV(t, path, testOpts())
		k.set(1, 1)
		k.mu.Lock()
		k.arr.Append(5)
		k.mu.Unlock()
		if err := st.Start(); err != nil {
			t.Fatal(err)
		}
		k.set(2, 2)
		mustSync(t, st)
		wantM, wantA := k.state()
		st.Close()
		st2, k2 := openKV(t, path, testOpts())
		defer st2.Close()
		k2.set(1, 100) // the constructor runs again
		k2.set(3, 3)
		if err := st2.Start(); err != nil {
			t.Fatal(err)
		}
		gotM, gotA := k2.state()
		sameState(t, "restart", gotM, gotA, wantM, wantA)
	})
	t.Run("attach after Start", func(t *testing.T) {
		st, _ := startKV(t, tmp(t, "a.db"), testOpts())
		defer st.Close()
		if _, err := newKV(st); err == nil || !strings.Contains(err.Error(), "attached after the store started") {
			t.Fatalf("late attach: %v", err)
		}
	})
	t.Run("attach twice", func(t *testing.T) {
		st, _ := openKV(t, tmp(t, "a.db"), testOpts())
		defer st.Close()
		if _, err := newKV(st); err == nil || !strings.Contains(err.Error(), "attached twice") {
			t.Fatalf("second attach: %v", err)
		}
	})
	t.Run("other instance's file", func(t *testing.T) {
		path := tmp(t, "a.db")
		st, _ := startKV(t, path, testOpts())
		st.Close()
		_, err := Open(path, "test/other.1", testOpts())
		if err == nil || !strings.Contains(err.Error(), `holds the state of instance "test/kv.0", not "test/other.1"`) {
			t.Fatalf("Open of another instance's file: %v", err)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := Open(tmp(t, "a.db"), "x", Options{MaxDelay: -1}); err == nil || !strings.Contains(err.Error(), "MaxDelay") {
			t.Fatalf("negative MaxDelay: %v", err)
		}
	})
	t.Run("collection not attached on restart", func(t *testing.T) {
		path := tmp(t, "a.db")
		st, k := startKV(t, path, testOpts())
		k.set(1, 2)
		mustSync(t, st)
		st.Close()
		st2, err := Open(path, "test/kv.0", testOpts())
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		err = st2.Start() // nothing attached
		if err == nil || !strings.Contains(err.Error(), `record for collection "kv.`) || !strings.Contains(err.Error(), `which the service did not attach`) {
			t.Fatalf("Start without the collections: %v", err)
		}
	})
}

func TestSyncFuncAndConcurrentBarriers(t *testing.T) {
	st, k := startKV(t, tmp(t, "kv.db"), testOpts())
	defer st.Close()
	var wg sync.WaitGroup
	const writers, each = 8, 200
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := uint64(w*each + i)
				k.set(key, key)
				lsn := st.LSN()
				done := make(chan struct{})
				st.SyncFunc(func(err error) {
					if err == nil && st.DurableLSN() < lsn {
						err = errors.New("callback before its record was durable")
					}
					if err != nil {
						errs <- err
					}
					close(done)
				})
				<-done
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s := st.Stats()
	if s.Records < writers*each || s.Batches == 0 {
		t.Fatalf("stats %+v", s)
	}
	t.Logf("%d records in %d batches", s.Records, s.Batches)
}

func TestCloseFailsLaterWrites(t *testing.T) {
	st, k := startKV(t, tmp(t, "kv.db"), testOpts())
	k.set(1, 1)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(context.Background()); err != nil {
		t.Fatalf("Sync of a write committed by Close: %v", err)
	}
	k.set(2, 2)
	if err := st.Sync(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync of a write after Close: %v, want ErrClosed", err)
	}
	var got error
	st.SyncFunc(func(err error) { got = err })
	if !errors.Is(got, ErrClosed) {
		t.Fatalf("SyncFunc after Close: %v", got)
	}
}

func TestMaxBatchBytesEndsTheDelay(t *testing.T) {
	// The committer waits MaxDelay after a batch's first record unless
	// MaxBatchBytes are pending first. Size the limit to the two
	// collection definitions Start logs plus 16 map records, so that the
	// sixteenth write, and not the 10 s timer, ends the wait: one batch.
	opts := testOpts()
	opts.MaxDelay = 10 * time.Second
	const define, set = 2 + 1 + 1 + 6, 2 + 1 + 1 + 8 + 8 // entry: id, length, record
	opts.MaxBatchBytes = batchHeader + 2*define + 16*set
	st, k := startKV(t, tmp(t, "kv.db"), opts)
	defer st.Close()
	start := time.Now()
	var wg sync.WaitGroup
	for i := uint64(0); i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.set(i, i)
			mustSync(t, st)
		}()
	}
	wg.Wait()
	if d := time.Since(start); d >= opts.MaxDelay {
		t.Fatalf("the batch waited %v: the size limit did not end the delay", d)
	}
	if s := st.Stats(); s.Batches != 1 || s.Records != 18 {
		t.Errorf("%d records in %d batches, want 18 in 1", s.Records, s.Batches)
	}
}

func TestCompactionAndRecovery(t *testing.T) {
	path := tmp(t, "kv.db")
	st, k := startKV(t, path, testOpts())
	for i := uint64(0); i < 200; i++ {
		k.set(i%50, i)
		mustSync(t, st)
	}
	k.mu.Lock()
	snap, err := st.Snapshot()
	k.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	before := st.Stats().LogBytes
	if err := st.Compact(snap); err != nil {
		t.Fatal(err)
	}
	after := st.Stats()
	if after.SnapshotLSN != snap.LSN || after.LogBytes >= before {
		t.Fatalf("after compaction: %+v (log was %d bytes)", after, before)
	}
	if _, err := st.Tail(snap.LSN - 10); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Tail before the snapshot: %v, want ErrCompacted", err)
	}
	// A tail after the snapshot, then a restart across the compaction.
	for i := uint64(0); i < 30; i++ {
		k.set(1000+i, i)
		k.mu.Lock()
		k.arr.Append(i)
		k.mu.Unlock()
	}
	mustSync(t, st)
	tail, err := st.Tail(snap.LSN)
	if err != nil || len(tail) == 0 || tail[0].First() != snap.LSN+1 {
		t.Fatalf("Tail(%d) = %d batches, %v", snap.LSN, len(tail), err)
	}
	wantM, wantA := k.state()
	st.Close()
	st2, k2 := startKV(t, path, testOpts())
	gotM, gotA := k2.state()
	sameState(t, "restart after compaction", gotM, gotA, wantM, wantA)
	st2.Close()
}

func TestAutomaticCompaction(t *testing.T) {
	path := tmp(t, "kv.db")
	opts := testOpts()
	opts.CompactBytes = 4 << 10
	var k *kv
	opts.Quiesce = func(fn func()) error {
		k.mu.Lock() // the service's own lock stands in for pausing the instance
		defer k.mu.Unlock()
		fn()
		return nil
	}
	st, k0 := openKV(t, path, opts)
	k = k0
	if err := st.Start(); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 2000; i++ {
		k.set(i%100, i)
		mustSync(t, st)
	}
	wantM, wantA := k.state()
	st.Close() // waits for a compaction in progress
	s := st.Stats()
	if s.SnapshotLSN == 0 || uint64(s.LogBytes) > s.Bytes/2 {
		t.Fatalf("no compaction kept the log short: %+v", s)
	}
	opts.Quiesce = nil
	st2, k2 := startKV(t, path, opts)
	defer st2.Close()
	gotM, gotA := k2.state()
	sameState(t, "restart after automatic compaction", gotM, gotA, wantM, wantA)
}

func TestRestoreHandOver(t *testing.T) {
	src, k := startKV(t, tmp(t, "src.db"), testOpts())
	defer src.Close()
	for i := uint64(0); i < 100; i++ {
		k.set(i, 3*i)
	}
	mustSync(t, src)
	k.mu.Lock()
	mid, _ := src.Snapshot()
	k.mu.Unlock()
	if err := src.Compact(mid); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 40; i++ {
		k.set(i, 7*i)
		k.mu.Lock()
		k.arr.Append(i)
		k.m.Delete(90 + i%10)
		k.mu.Unlock()
	}
	mustSync(t, src)
	wantM, wantA := k.state()

	// Hand-over from disk: stored snapshot plus the durable tail.
	snap, err := src.StoredSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	tail, err := src.Tail(snap.LSN)
	if err != nil {
		t.Fatal(err)
	}
	dst, kd := openKV(t, tmp(t, "dst.db"), testOpts())
	if err := dst.Restore(snap, tail); err != nil {
		t.Fatal(err)
	}
	gotM, gotA := kd.state()
	sameState(t, "destination", gotM, gotA, wantM, wantA)
	if dst.LSN() != src.LSN() {
		t.Errorf("destination at LSN %d, source at %d", dst.LSN(), src.LSN())
	}
	// The destination carries on and restarts from its own file.
	kd.set(5000, 1)
	mustSync(t, dst)
	wantM[5000] = 1
	dst.Close()
	dst2, kd2 := startKV(t, dst.path, testOpts())
	gotM, gotA = kd2.state()
	sameState(t, "destination restarted", gotM, gotA, wantM, wantA)
	dst2.Close()

	// Restore refuses a file that holds state.
	again, _ := openKV(t, dst.path, testOpts())
	defer again.Close()
	if err := again.Restore(snap, tail); err == nil || !strings.Contains(err.Error(), "restore needs a new file") {
		t.Fatalf("Restore over state: %v", err)
	}
	// And a hand-over with a hole in it.
	other, _ := openKV(t, tmp(t, "hole.db"), testOpts())
	defer other.Close()
	if len(tail) > 0 {
		if err := other.Restore(&Snapshot{Instance: snap.Instance}, tail); !errors.Is(err, ErrGap) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Restore of a tail without its snapshot: %v", err)
		}
	}
}
