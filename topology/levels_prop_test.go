package topology

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// refNode is the test's own record of where a node is, kept while the
// cluster is generated and independent of the package's storage.
type refNode struct {
	kind             Kind
	server, rack, pd int
	name             string
}

// refCluster generates a small random cluster, half of the time with
// FatTree and half with a Builder of random shape and mixed machines, and
// returns it with the reference list of its nodes in the ID order the
// package promises (pods, racks, servers in order; host, then SmartNICs).
func refCluster(t *rapid.T) (*Topology, []refNode) {
	nicSpec := SmartNICSpec{Cores: 2, MemoryMB: 512, Ports: 1, PortGbps: 10}
	specOf := func(nics int) ServerSpec {
		s := ServerSpec{Model: fmt.Sprint("m", nics), Cores: 4, MemoryMB: 1024, SmartNICs: make([]SmartNICSpec, nics)}
		for i := range s.SmartNICs {
			s.SmartNICs[i] = nicSpec
		}
		if nics == 0 {
			s.NICPorts, s.NICGbps = 1, 10
		}
		return s
	}
	var ref []refNode
	add := func(nics, server, rack, pod, index int) {
		base := fmt.Sprintf("r%d/s%d/", rack, index)
		ref = append(ref, refNode{Host, server, rack, pod, base + "host"})
		for k := range nics {
			ref = append(ref, refNode{SmartNIC, server, rack, pod, fmt.Sprintf("%snic%d", base, k)})
		}
	}

	if rapid.Bool().Draw(t, "fattree") {
		o := FatTreeOptions{
			Servers:        rapid.IntRange(1, 60).Draw(t, "servers"),
			ServersPerRack: rapid.IntRange(1, 6).Draw(t, "serversPerRack"),
			RacksPerPod:    rapid.IntRange(1, 4).Draw(t, "racksPerPod"),
			Server:         specOf(rapid.IntRange(0, 4).Draw(t, "nics")),
		}
		topo, err := FatTree(o)
		if err != nil {
			t.Fatal(err)
		}
		for s := range o.Servers {
			r := s / o.ServersPerRack
			add(len(o.Server.SmartNICs), s, r, r/o.RacksPerPod, s%o.ServersPerRack)
		}
		return topo, ref
	}

	var b Builder
	server, rack := 0, 0
	for pod := range rapid.IntRange(1, 3).Draw(t, "pods") {
		b.AddPod()
		for range rapid.IntRange(1, 3).Draw(t, "racks") {
			b.AddRack()
			for i := range rapid.IntRange(1, 4).Draw(t, "servers") {
				nics := rapid.IntRange(0, 3).Draw(t, "nics")
				if got := b.AddServer(specOf(nics)); got != ServerID(server) {
					t.Fatalf("AddServer = %d, want %d", got, server)
				}
				add(nics, server, rack, pod, i)
				server++
			}
			rack++
		}
	}
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo, ref
}

// refLevel classifies b as seen from a by the definition of the levels.
func refLevel(a, b refNode, sameNode bool) Level {
	var l Level
	switch {
	case sameNode:
		return SameNode
	case a.server == b.server:
		return SameServer
	case a.rack == b.rack:
		l = RackSmartNIC
	case a.pd == b.pd:
		l = PodSmartNIC
	default:
		l = ClusterSmartNIC
	}
	if b.kind == Host {
		l++
	}
	return l
}

// TestLevelsMatchBruteForce checks, on random small clusters and from every
// node, that LevelNodes yields exactly the nodes a brute-force
// classification of the whole cluster puts at each level, in ID order, and
// that Distance, Hops, LevelSize, Levels, Node and names agree with it.
func TestLevelsMatchBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		topo, ref := refCluster(t)
		if topo.NumNodes() != len(ref) {
			t.Fatalf("NumNodes = %d, want %d", topo.NumNodes(), len(ref))
		}
		for id, r := range ref {
			n := NodeID(id)
			nd := topo.Node(n)
			if nd.Kind != r.kind || int(nd.Server) != r.server || int(nd.Rack) != r.rack || int(nd.Pod) != r.pd {
				t.Fatalf("Node(%d) = %+v, want %+v", n, nd, r)
			}
			if got := topo.Name(n); got != r.name {
				t.Fatalf("Name(%d) = %q, want %q", n, got, r.name)
			}
			if got, err := topo.Lookup(r.name); err != nil || got != n {
				t.Fatalf("Lookup(%q) = %d, %v, want %d", r.name, got, err, n)
			}
		}
		for a := range ref {
			from := NodeID(a)
			var want [NumLevels][]NodeID
			for b := range ref {
				l := refLevel(ref[a], ref[b], a == b)
				want[l] = append(want[l], NodeID(b))
				if got := topo.Distance(from, NodeID(b)); got != l {
					t.Fatalf("Distance(%s, %s) = %v, want %v", ref[a].name, ref[b].name, got, l)
				}
				wantHops := [NumLevels]int{0, 0, 1, 1, 3, 3, 5, 5}[l]
				if l == SameServer && ref[a].kind == SmartNIC && ref[b].kind == SmartNIC {
					wantHops = 1 // SmartNIC to SmartNIC goes through the ToR
				}
				if got := topo.Hops(from, NodeID(b)); got != wantHops {
					t.Fatalf("Hops(%s, %s) = %d, want %d", ref[a].name, ref[b].name, got, wantHops)
				}
			}
			var all []NodeID
			prev := SameNode
			for l, n := range topo.Levels(from) {
				if l < prev {
					t.Fatalf("Levels(%s): level %v after %v", ref[a].name, l, prev)
				}
				prev = l
				all = append(all, n)
			}
			var wantAll []NodeID
			for l := range NumLevels {
				got := slices.Collect(topo.LevelNodes(from, l))
				if !slices.Equal(got, want[l]) {
					t.Fatalf("LevelNodes(%s, %v) = %v, want %v", ref[a].name, l, got, want[l])
				}
				if n := topo.LevelSize(from, l); n != len(want[l]) {
					t.Fatalf("LevelSize(%s, %v) = %d, want %d", ref[a].name, l, n, len(want[l]))
				}
				wantAll = append(wantAll, want[l]...)
			}
			if !slices.Equal(all, wantAll) {
				t.Fatalf("Levels(%s) = %v, want %v", ref[a].name, all, wantAll)
			}
		}
	})
}
