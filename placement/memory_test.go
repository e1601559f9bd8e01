package placement

import (
	"runtime"
	"testing"
)

// TestMemoryLinear checks that a cluster with its load and free-capacity
// index costs a bounded number of bytes per server, the same at 1,000 and
// at 10,000 servers, so memory is linear in servers.
func TestMemoryLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a 10,000-server cluster")
	}
	perServer := func(servers int) float64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := fatTree(t, servers, 40, 40)
		l := NewLoad(c)
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(l)
		return float64(after.TotalAlloc-before.TotalAlloc) / float64(servers)
	}
	small, large := perServer(1000), perServer(10000)
	t.Logf("topology + cluster + load + index of Type2 servers: %.0f B/server at 1,000 servers, %.0f at 10,000", small, large)
	// Five nodes a server: 32 B of usage and 25 B of capacities each, a
	// few bytes per server of topology and cluster, and 64 to 128 B of
	// index (a power-of-two tree); the builders' growth adds some more.
	if large > 1000 || small > 1000 {
		t.Errorf("more than 1,000 B per server")
	}
	if large > 1.5*small || small > 1.5*large {
		t.Errorf("bytes per server differ by more than half between 1,000 and 10,000 servers")
	}
}
