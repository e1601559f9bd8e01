package placement

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/e3-platform/e3/topology"
)

var mixServices = []string{"kvs", "ema", "topk", "sql", "ipsec", "knn", "bayes", "count"}

// randomLoad fills every node of c with random usage, some nodes full.
func randomLoad(t *rapid.T, c *Cluster) *Load {
	l := NewLoad(c)
	for n := range c.Topology().Nodes() {
		f := rapid.SampledFrom([]float64{0, 0.3, 0.9, 1}).Draw(t, "fill")
		l.Set(n, Usage{Cores: f * c.capCores[n], MemoryMB: rapid.Float64Range(0, 1).Draw(t, "mem") * c.capMem[n]})
	}
	return l
}

func randomInstance(t *rapid.T) Instance {
	return Instance{
		Name:     "x",
		Service:  rapid.SampledFrom(mixServices).Draw(t, "service"),
		RPS:      rapid.Float64Range(0, 2e5).Draw(t, "rps"),
		MemoryMB: rapid.SampledFrom([]float64{0, 64, 1024, 3000}).Draw(t, "memory"),
		Pin:      Pin(rapid.IntRange(0, 2).Draw(t, "pin")),
	}
}

// TestCandidatesMatchTopology checks the index-driven candidate walks
// against a plain walk: with the index, LevelCandidates yields exactly the
// nodes of topology.LevelNodes whose committed capacity can hold the
// instance (leaving out nodes of a kind the instance is pinned away from
// at most), in the same order; ScanCandidates yields every such node of
// the cluster once, server by server, the preferred kind first.
func TestCandidatesMatchTopology(t *testing.T) {
	c := fatTree(t, 14, 3, 2) // 5 racks in 3 pods, the last rack short
	topo := c.Topology()
	rapid.Check(t, func(t *rapid.T) {
		l := randomLoad(t, c)
		p := NewProblem(l)
		i := p.AddInstance(randomInstance(t))
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		s := NewState(p)
		kindOK := func(n topology.NodeID) bool { return PinCheck{}.Check(s, i, n).OK() }
		from := topology.NodeID(rapid.IntRange(0, topo.NumNodes()-1).Draw(t, "from"))
		for lv := range topology.NumLevels {
			var want, got []topology.NodeID
			for n := range topo.LevelNodes(from, lv) {
				if s.mayFit(i, n) && kindOK(n) {
					want = append(want, n)
				}
			}
			for n := range s.LevelCandidates(i, from, lv) {
				if topo.Distance(from, n) != lv {
					t.Fatalf("level %v: candidate %s is at level %v", lv, topo.Name(n), topo.Distance(from, n))
				}
				if kindOK(n) {
					got = append(got, n)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("level %v from %s: candidates %v, want %v", lv, topo.Name(from), got, want)
			}
		}
		var want, got []topology.NodeID
		nicFirst := p.Instance(i).PreferSmartNIC()
		for srv := range topo.Servers() {
			var hosts, nics []topology.NodeID
			for n := range topo.ServerNodes(srv) {
				if !s.mayFit(i, n) || !kindOK(n) {
					continue
				}
				if c.isHost(n) {
					hosts = append(hosts, n)
				} else {
					nics = append(nics, n)
				}
			}
			if nicFirst {
				want = append(append(want, nics...), hosts...)
			} else {
				want = append(append(want, hosts...), nics...)
			}
		}
		for n := range s.ScanCandidates(i) {
			if kindOK(n) {
				got = append(got, n)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("scan: %v, want %v", got, want)
		}
		// Explaining walks every node.
		p.Explain = true
		count := 0
		for range s.ScanCandidates(i) {
			count++
		}
		if count != topo.NumNodes() {
			t.Fatalf("explaining scan yields %d nodes of %d", count, topo.NumNodes())
		}
	})
}
