package topology

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkFatTree builds clusters of Type2-like servers (1 host + 4
// SmartNICs) and reports the bytes allocated per server.
func BenchmarkFatTree(b *testing.B) {
	for _, servers := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprintf("servers=%d", servers), func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := FatTree(FatTreeOptions{Servers: servers, Server: type2}); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(servers), "B/server")
		})
	}
}

// BenchmarkBuilder adds 50,000 servers one by one through the public
// Builder, the path hwmodel takes for heterogeneous clusters.
func BenchmarkBuilder(b *testing.B) {
	const servers = 50000
	b.ReportAllocs()
	for b.Loop() {
		var bl Builder
		for s := range servers {
			if s%40 == 0 {
				bl.AddRack()
			}
			bl.AddServer(type2)
		}
		if _, err := bl.Build(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRackLevels walks levels 2 and 3 (the rest of the rack) from a
// node in the middle of a 50,000-server cluster: 156 SmartNICs and 39
// hosts, whatever the cluster size.
func BenchmarkRackLevels(b *testing.B) {
	topo, err := FatTree(FatTreeOptions{Servers: 50000, Server: type2})
	if err != nil {
		b.Fatal(err)
	}
	from := NodeID(topo.NumNodes() / 2)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		for range topo.LevelNodes(from, RackSmartNIC) {
			n++
		}
		for range topo.LevelNodes(from, RackHost) {
			n++
		}
	}
	if n != 156+39 {
		b.Fatalf("visited %d nodes, want 195", n)
	}
	b.ReportMetric(float64(n), "nodes/op")
}

// BenchmarkDistance classifies pairs of nodes spread over a 50,000-server
// cluster, so that most lookups miss the CPU cache as they would in a
// placement search.
func BenchmarkDistance(b *testing.B) {
	topo, err := FatTree(FatTreeOptions{Servers: 50000, Server: type2})
	if err != nil {
		b.Fatal(err)
	}
	nodes := NodeID(topo.NumNodes())
	var a, c NodeID = 0, nodes / 3
	var sink Level
	for b.Loop() {
		sink += topo.Distance(a, c)
		a = (a + 7919) % nodes
		c = (c + 104729) % nodes
	}
	_ = sink
}
