package durable

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	bolt "go.etcd.io/bbolt"

	"github.com/e3-platform/e3/collections"
)

// BenchmarkCommit measures requests that each write one map entry and wait
// for the barrier, from 1, 8 and 64 concurrent writers, with fsync on and
// off, without and with a backup (in-process, with its own file). One op
// is one request. Reported: req/s, the barrier's latency percentiles, and
// records per batch (how much group commit shares each fsync).
func BenchmarkCommit(b *testing.B) {
	for _, backup := range []bool{false, true} {
		for _, sync := range []bool{true, false} {
			for _, writers := range []int{1, 8, 64} {
				name := fmt.Sprintf("backup=%v/fsync=%v/writers=%d", backup, sync, writers)
				b.Run(name, func(b *testing.B) {
					benchCommit(b, writers, Options{NoSync: !sync, CompactBytes: -1}, backup)
				})
			}
		}
	}
}

// BenchmarkCommitMaxDelay shows what Options.MaxDelay does to group
// commit with fsync on: bigger batches, at the price of the delay.
func BenchmarkCommitMaxDelay(b *testing.B) {
	for _, d := range []time.Duration{0, 500 * time.Microsecond, 2 * time.Millisecond} {
		for _, writers := range []int{8, 64} {
			b.Run(fmt.Sprintf("delay=%v/writers=%d", d, writers), func(b *testing.B) {
				benchCommit(b, writers, Options{MaxDelay: d, CompactBytes: -1}, false)
			})
		}
	}
}

func benchCommit(b *testing.B, writers int, opts Options, backup bool) {
	dir := b.TempDir()
	st, k := startKV(b, filepath.Join(dir, "p.db"), opts)
	defer st.Close()
	if backup {
		bk, _ := backupKV(b, filepath.Join(dir, "b.db"), opts)
		defer bk.Close()
		if err := st.AddBackup(context.Background(), LocalReplicator{bk}); err != nil {
			b.Fatal(err)
		}
	}
	mustSync(b, st)
	before := st.Stats()
	hists := make([]*hdrhistogram.Histogram, writers)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < writers; w++ {
		h := hdrhistogram.New(1, int64(10*time.Second), 3)
		hists[w] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				k.set(uint64(i)%100_000, uint64(i))
				if err := st.Sync(ctx); err != nil {
					b.Error(err)
					return
				}
				h.RecordValue(int64(time.Since(t0)))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := hists[0]
	for _, h := range hists[1:] {
		all.Merge(h)
	}
	after := st.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(all.ValueAtQuantile(50))/1e3, "p50-µs")
	b.ReportMetric(float64(all.ValueAtQuantile(99))/1e3, "p99-µs")
	if n := after.Batches - before.Batches; n > 0 {
		b.ReportMetric(float64(after.Records-before.Records)/float64(n), "rec/batch")
	}
}

// BenchmarkAppend is the cost a durable store adds to a mutation under the
// service's lock (encoding and copying the record), beside the same Set on
// the in-memory store. Commits run in the background.
func BenchmarkAppend(b *testing.B) {
	b.Run("store=mem", func(b *testing.B) {
		m, _ := collections.NewMap(collections.NewMemStore(), "m", collections.Uint64, collections.Uint64)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m.Set(uint64(i)&0xffff, uint64(i))
		}
	})
	b.Run("store=durable", func(b *testing.B) {
		st, k := startKV(b, filepath.Join(b.TempDir(), "p.db"), Options{NoSync: true, CompactBytes: -1})
		defer st.Close()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k.m.Set(uint64(i)&0xffff, uint64(i))
		}
	})
}

// BenchmarkHandOver times moving a state of n map entries: the source's
// live snapshot (taken while the instance is paused) and the
// destination's Restore (write to its file, fsync, replay), the two steps
// that bound a cold migration's pause. Also the restart of an instance
// whose file holds the same state as a log (no snapshot).
func BenchmarkHandOver(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		dir := b.TempDir()
		src, k := startKV(b, filepath.Join(dir, "src.db"), Options{NoSync: true, CompactBytes: -1})
		for i := 0; i < n; i++ {
			k.m.Set(uint64(i), uint64(i)*3)
		}
		mustSync(b, src)
		b.Run(fmt.Sprintf("entries=%d/snapshot", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := src.Snapshot(); err != nil {
					b.Fatal(err)
				}
			}
		})
		snap, _ := src.Snapshot()
		b.Run(fmt.Sprintf("entries=%d/restore", n), func(b *testing.B) {
			b.SetBytes(int64(snap.Size()))
			i := 0
			for b.Loop() {
				i++
				dst, _ := openKV(b, filepath.Join(dir, fmt.Sprintf("dst%d.db", i)), Options{})
				if err := dst.Restore(snap, nil); err != nil {
					b.Fatal(err)
				}
				dst.Close()
			}
		})
		src.Close()
		b.Run(fmt.Sprintf("entries=%d/restart-from-log", n), func(b *testing.B) {
			for b.Loop() {
				st, _ := startKV(b, src.path, Options{CompactBytes: -1})
				st.Close()
			}
		})
	}
}

// BenchmarkPeerBoltBatch is the peer for BenchmarkCommit: the same
// requests written straight into bbolt with its own group commit
// (DB.Batch, default 10 ms MaxBatchDelay, 1000 MaxBatchSize), one Put per
// request, fsync on. It shows what our committer's zero-delay batching
// buys over a timer-driven one.
func BenchmarkPeerBoltBatch(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "peer.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("m")); return err }); err != nil {
				b.Fatal(err)
			}
			hists := make([]*hdrhistogram.Histogram, writers)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				h := hdrhistogram.New(1, int64(10*time.Second), 3)
				hists[w] = h
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						t0 := time.Now()
						err := db.Batch(func(tx *bolt.Tx) error {
							return tx.Bucket([]byte("m")).Put(u64Key(uint64(i)%100_000), u64Key(uint64(i)))
						})
						if err != nil {
							b.Error(err)
							return
						}
						h.RecordValue(int64(time.Since(t0)))
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			all := hists[0]
			for _, h := range hists[1:] {
				all.Merge(h)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(float64(all.ValueAtQuantile(50))/1e3, "p50-µs")
			b.ReportMetric(float64(all.ValueAtQuantile(99))/1e3, "p99-µs")
		})
	}
}
