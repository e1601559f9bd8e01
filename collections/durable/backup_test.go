package durable

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// primaryWithBackup starts a primary and a backup replicated through a
// LocalReplicator.
func primaryWithBackup(t *testing.T, opts Options) (*Store, *kv, *Backup, *kv) {
	t.Helper()
	b, kb := backupKV(t, tmp(t, "backup.db"), opts)
	st, k := startKV(t, tmp(t, "primary.db"), opts)
	if err := st.AddBackup(context.Background(), LocalReplicator{b}); err != nil {
		t.Fatal(err)
	}
	return st, k, b, kb
}

func TestEveryAcknowledgedWriteIsAtTheBackup(t *testing.T) {
	st, k, b, kb := primaryWithBackup(t, testOpts())
	// Start's collection definitions may be committed before the backup
	// is attached; AddBackup ships them, but they count as unreplicated.
	unrepl := st.Stats().Unreplicated
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := uint64(0); w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); i <= 50; i++ {
				key := w<<32 | i
				k.set(key, i)
				if err := st.Sync(context.Background()); err != nil {
					errs <- err
					return
				}
				// Acknowledged: the backup must have it now.
				var v uint64
				var ok bool
				b.View(func() { v, ok = kb.m.Get(key) })
				if !ok || v != i {
					errs <- fmt.Errorf("acknowledged write %d of writer %d not at the backup (%d,%v)", i, w, v, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantM, wantA := k.state()
	var gotM map[uint64]uint64
	var gotA []uint64
	b.View(func() { gotM, gotA = kb.state() })
	sameState(t, "backup", gotM, gotA, wantM, wantA)
	if b.LSN() != st.LSN() {
		t.Errorf("backup at LSN %d, primary at %d", b.LSN(), st.LSN())
	}
	if s := st.Stats(); s.Unreplicated != unrepl {
		t.Errorf("%d records unreplicated", s.Unreplicated-unrepl)
	}
	st.Close()
	// A restarted backup comes back from its own file.
	path := b.st.path
	b.Close()
	b2, kb2 := backupKV(t, path, testOpts())
	defer b2.Close()
	gotM, gotA = kb2.state()
	sameState(t, "restarted backup", gotM, gotA, wantM, wantA)
}

func TestPromoteAfterPrimaryCrash(t *testing.T) {
	st, k, b, kb := primaryWithBackup(t, testOpts())
	for i := uint64(0); i < 300; i++ {
		k.set(i%37, i)
		if i%5 == 0 {
			k.mu.Lock()
			k.arr.Append(i)
			k.mu.Unlock()
		}
		mustSync(t, st)
	}
	wantM, wantA := k.state()
	st.crash()

	p, err := b.Promote()
	if err != nil {
		t.Fatal(err)
	}
	gotM, gotA := kb.state()
	sameState(t, "promoted backup", gotM, gotA, wantM, wantA)
	if err := b.Apply(Batch{}); err == nil {
		t.Error("Apply on a promoted backup succeeded")
	}
	kb.set(77777, 1)
	mustSync(t, p)
	wantM[77777] = 1
	if p.LSN() != st.LSN()+1 {
		t.Errorf("promoted store's first record got LSN %d, want %d", p.LSN(), st.LSN()+1)
	}
	b.Close() // leaves the promoted store alone
	p.Close()
	p2, k2 := startKV(t, p.path, testOpts())
	defer p2.Close()
	gotM, gotA = k2.state()
	sameState(t, "promoted store restarted", gotM, gotA, wantM, wantA)
}

func TestAddBackupWhileWriting(t *testing.T) {
	st, k := startKV(t, tmp(t, "primary.db"), testOpts())
	defer st.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Uint64
	for w := uint64(0); w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k.set(w<<32|i%500, i)
				if err := st.Sync(context.Background()); err != nil {
					t.Error(err)
					return
				}
				writes.Add(1)
			}
		}()
	}
	waitFor := func(n uint64) {
		for writes.Load() < n {
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(500)
	// A compaction, so the seed is a stored snapshot plus a tail.
	k.mu.Lock()
	snap, err := st.Snapshot()
	k.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Compact(snap); err != nil {
		t.Fatal(err)
	}
	waitFor(1000)
	b, kb := backupKV(t, tmp(t, "backup.db"), testOpts())
	defer b.Close()
	if err := st.AddBackup(context.Background(), LocalReplicator{b}); err != nil {
		t.Fatal(err)
	}
	waitFor(writes.Load() + 500)
	close(stop)
	wg.Wait()
	mustSync(t, st)
	wantM, wantA := k.state()
	var gotM map[uint64]uint64
	var gotA []uint64
	b.View(func() { gotM, gotA = kb.state() })
	sameState(t, "backup added while writing", gotM, gotA, wantM, wantA)
	if b.LSN() != st.LSN() {
		t.Errorf("backup at LSN %d, primary at %d", b.LSN(), st.LSN())
	}
}

// flaky replicates through a LocalReplicator until fail is set.
type flaky struct {
	LocalReplicator
	fail atomic.Bool
}

func (f *flaky) Replicate(ctx context.Context, b Batch) error {
	if f.fail.Load() {
		return errors.New("backup unreachable")
	}
	return f.LocalReplicator.Replicate(ctx, b)
}

func TestBackupLost(t *testing.T) {
	for _, require := range []bool{false, true} {
		t.Run(fmt.Sprintf("RequireBackup=%v", require), func(t *testing.T) {
			opts := testOpts()
			opts.RequireBackup = require
			lost := make(chan error, 1)
			opts.OnBackupLost = func(err error) { lost <- err }
			b, _ := backupKV(t, tmp(t, "b1.db"), opts)
			defer b.Close()
			st, k := startKV(t, tmp(t, "p.db"), opts)
			defer st.Close()
			rep := &flaky{LocalReplicator: LocalReplicator{b}}
			if err := st.AddBackup(context.Background(), rep); err != nil {
				t.Fatal(err)
			}
			k.set(1, 1)
			mustSync(t, st)
			rep.fail.Store(true)
			k.set(2, 2)
			err := st.Sync(context.Background())
			if require != errors.Is(err, ErrNoBackup) || (!require && err != nil) {
				t.Fatalf("Sync with the backup gone: %v", err)
			}
			if e := <-lost; !strings.Contains(e.Error(), "backup unreachable") {
				t.Fatalf("OnBackupLost got %v", e)
			}
			if s := st.Stats(); s.BackupsLost != 1 || s.Unreplicated == 0 {
				t.Fatalf("stats %+v", s)
			}
			// A new backup seeded from the primary brings the guarantee back.
			b2, kb2 := backupKV(t, tmp(t, "b2.db"), opts)
			defer b2.Close()
			if err := st.AddBackup(context.Background(), LocalReplicator{b2}); err != nil {
				t.Fatal(err)
			}
			k.set(3, 3)
			mustSync(t, st)
			var got map[uint64]uint64
			b2.View(func() { got, _ = kb2.state() })
			if len(got) != 3 || got[2] != 2 {
				t.Fatalf("new backup holds %v", got)
			}
		})
	}
}

func TestBackupApplyOrder(t *testing.T) {
	src, k := startKV(t, tmp(t, "p.db"), testOpts())
	defer src.Close()
	for i := uint64(0); i < 10; i++ {
		k.set(i, i)
		mustSync(t, src)
	}
	tail, err := src.Tail(0)
	if err != nil {
		t.Fatal(err)
	}
	b, kb := backupKV(t, tmp(t, "b.db"), testOpts())
	defer b.Close()
	if err := b.Apply(tail[2]); !errors.Is(err, ErrGap) {
		t.Fatalf("Apply out of order: %v, want ErrGap", err)
	}
	for _, bt := range tail {
		if err := b.Apply(bt); err != nil {
			t.Fatal(err)
		}
	}
	for _, bt := range tail[:3] { // retries are harmless
		if err := b.Apply(bt); err != nil {
			t.Fatal(err)
		}
	}
	if b.LSN() != src.LSN() {
		t.Fatalf("backup at %d, primary at %d", b.LSN(), src.LSN())
	}
	gotM, gotA := kb.state()
	wantM, wantA := k.state()
	sameState(t, "backup", gotM, gotA, wantM, wantA)
	if err := b.Install(&Snapshot{Instance: "test/kv.0"}, nil); err == nil {
		t.Error("Install on a backup holding state succeeded")
	}
}

func TestBackupCompactsItself(t *testing.T) {
	opts := testOpts()
	opts.CompactBytes = 2 << 10
	st, k, b, kb := primaryWithBackup(t, opts)
	for i := uint64(0); i < 1000; i++ {
		k.set(i%64, i)
		mustSync(t, st)
	}
	st.Close()
	wantM, wantA := k.state()
	path := b.st.path
	b.Close()
	if s := b.st.Stats(); s.SnapshotLSN == 0 {
		t.Fatalf("backup never compacted: %+v", s)
	}
	_ = kb
	b2, kb2 := backupKV(t, path, opts)
	defer b2.Close()
	gotM, gotA := kb2.state()
	sameState(t, "backup restarted after compacting", gotM, gotA, wantM, wantA)
}

func TestConnReplicatorOverTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, kb := backupKV(t, tmp(t, "b.db"), testOpts())
	defer b.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		served <- ServeBackup(c, b)
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	st, k := startKV(t, tmp(t, "p.db"), testOpts())
	for i := uint64(0); i < 50; i++ { // some state before the backup exists
		k.set(i, i)
	}
	mustSync(t, st)
	if err := st.AddBackup(context.Background(), NewConnReplicator(conn)); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 200; i++ {
		k.set(i%80, 2*i)
		mustSync(t, st)
	}
	wantM, wantA := k.state()
	var gotM map[uint64]uint64
	var gotA []uint64
	b.View(func() { gotM, gotA = kb.state() })
	sameState(t, "backup over TCP", gotM, gotA, wantM, wantA)
	st.Close()
	conn.Close()
	if err := <-served; err != nil {
		t.Fatalf("ServeBackup: %v", err)
	}
}

func TestConnReplicatorTimesOut(t *testing.T) {
	a, z := net.Pipe()
	defer a.Close()
	defer z.Close()
	go func() { // a backup that reads and never answers
		buf := make([]byte, 1<<16)
		for {
			if _, err := z.Read(buf); err != nil {
				return
			}
		}
	}()
	r := NewConnReplicator(a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := r.Replicate(ctx, sealBatch(newBatchBuf(nil), 1, 0))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Replicate to a silent backup: %v", err)
	}
	if err := r.Replicate(context.Background(), Batch{}); err == nil {
		t.Fatal("a broken replicator accepted another call")
	}
}
