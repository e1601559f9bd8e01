package runtime

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkMigrate moves a KVS primary holding a state of the given size
// (1 KB values) between a SmartNIC and its host, back and forth, on an
// in-memory network with durable stores (fsync off) and a backup on the
// other server: hold, drain, cut, ship over the bulk channel, restore,
// seed the backup anew, acknowledge, commit. ns/op is one migration;
// MB/s is the state moved per second.
func BenchmarkMigrate(b *testing.B) {
	for _, kb := range []int{100, 1000, 4000} {
		b.Run(fmt.Sprintf("state=%dKB", kb), func(b *testing.B) {
			tc := newTestCluster(b, clusterOpts{dataDir: b.TempDir(), cores: 2})
			a := loadApp(b, kvsBackupSpec)
			id := tc.deploy(a, kvsPlace)
			v := strings.Repeat("x", 1000)
			for i := range kb {
				if err := tc.kvsSet(id, fmt.Sprint("k", i), v); err != nil {
					b.Fatal(err)
				}
			}
			nodes := []string{"r0/s0/host", "r0/s0/nic0"}
			b.ResetTimer()
			var bytes int
			for i := 0; i < b.N; i++ {
				n, _ := tc.topo.Lookup(nodes[i%2])
				st := tc.migrate(id, 0, n)
				if st.Phase != PhaseReady {
					b.Fatalf("migration %v: %s", st.Phase, st.Err)
				}
				bytes = st.Bytes
			}
			b.SetBytes(int64(bytes))
		})
	}
}
