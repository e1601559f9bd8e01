package raftbolt

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftbench "github.com/hashicorp/raft/bench"
)

func benchStore(b *testing.B, noSync bool) *Store {
	s, err := Open(filepath.Join(b.TempDir(), "raft.db"), Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// The raftbench suite, shared by every raft store, with fsync on as in
// production.
func BenchmarkFirstIndex(b *testing.B) { raftbench.FirstIndex(b, benchStore(b, false)) }
func BenchmarkLastIndex(b *testing.B)  { raftbench.LastIndex(b, benchStore(b, false)) }
func BenchmarkGetLog(b *testing.B)     { raftbench.GetLog(b, benchStore(b, false)) }
func BenchmarkStoreLog(b *testing.B)   { raftbench.StoreLog(b, benchStore(b, false)) }
func BenchmarkStoreLogs(b *testing.B)  { raftbench.StoreLogs(b, benchStore(b, false)) }
func BenchmarkDeleteRange(b *testing.B) {
	raftbench.DeleteRange(b, benchStore(b, false))
}
func BenchmarkSet(b *testing.B)       { raftbench.Set(b, benchStore(b, false)) }
func BenchmarkGet(b *testing.B)       { raftbench.Get(b, benchStore(b, false)) }
func BenchmarkSetUint64(b *testing.B) { raftbench.SetUint64(b, benchStore(b, false)) }
func BenchmarkGetUint64(b *testing.B) { raftbench.GetUint64(b, benchStore(b, false)) }

// BenchmarkAppend measures entries a second for controller-sized commands
// (512 B) written one per transaction versus in batches, the case that
// StoreLogs's single transaction is for. Each iteration is one entry.
func BenchmarkAppend(b *testing.B) {
	data := make([]byte, 512)
	for _, batch := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := benchStore(b, false)
			logs := make([]*raft.Log, batch)
			for i := range logs {
				logs[i] = &raft.Log{Data: data, Term: 1}
			}
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			idx := uint64(1)
			for n := 0; n < b.N; n += batch {
				for _, l := range logs {
					l.Index = idx
					idx++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
