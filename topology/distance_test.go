package topology

import (
	"slices"
	"testing"
)

func TestPath(t *testing.T) {
	topo := mixed(t)
	tests := []struct {
		from, to string
		want     Path
	}{
		{"r0/s0/nic0", "r0/s0/nic0", Path{SameNode, ViaQueue, 0, 0}},
		{"r0/s0/host", "r0/s0/host", Path{SameNode, ViaQueue, 0, 0}},
		{"r0/s0/host", "r0/s0/nic2", Path{SameServer, ViaHostLink, 0, 1}},
		{"r0/s0/nic3", "r0/s0/host", Path{SameServer, ViaHostLink, 0, 1}},
		{"r0/s0/nic0", "r0/s0/nic1", Path{SameServer, ViaToR, 1, 0}},
		{"r1/s1/host", "r1/s1/nic2", Path{SameServer, ViaHostLink, 0, 1}},
		{"r0/s0/nic0", "r0/s2/nic0", Path{RackSmartNIC, ViaToR, 1, 0}},
		{"r0/s1/host", "r0/s2/nic0", Path{RackSmartNIC, ViaToR, 1, 0}},
		{"r0/s0/host", "r0/s2/nic0", Path{RackSmartNIC, ViaToR, 1, 1}},
		{"r0/s0/nic0", "r0/s1/host", Path{RackHost, ViaToR, 1, 0}},
		{"r0/s0/host", "r0/s2/host", Path{RackHost, ViaToR, 1, 2}},
		{"r0/s1/host", "r0/s2/host", Path{RackHost, ViaToR, 1, 1}},
		{"r0/s1/host", "r1/s0/nic3", Path{PodSmartNIC, ViaAggregation, 3, 0}},
		{"r0/s0/host", "r1/s1/nic0", Path{PodSmartNIC, ViaAggregation, 3, 1}},
		{"r0/s1/host", "r1/s0/host", Path{PodHost, ViaAggregation, 3, 1}},
		// x7 reaches its host through the plain NIC: no PCIe crossing.
		{"r0/s1/host", "r1/s1/host", Path{PodHost, ViaAggregation, 3, 0}},
		{"r0/s0/nic0", "r2/s0/nic1", Path{ClusterSmartNIC, ViaCore, 5, 0}},
		{"r2/s1/host", "r0/s2/nic0", Path{ClusterSmartNIC, ViaCore, 5, 0}},
		{"r0/s0/nic0", "r2/s1/host", Path{ClusterHost, ViaCore, 5, 0}},
		{"r0/s0/host", "r2/s0/host", Path{ClusterHost, ViaCore, 5, 2}},
		{"r0/s1/host", "r2/s1/host", Path{ClusterHost, ViaCore, 5, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.from+"->"+tt.to, func(t *testing.T) {
			a, b := lookup(t, topo, tt.from), lookup(t, topo, tt.to)
			if got := topo.Path(a, b); got != tt.want {
				t.Errorf("Path = %+v, want %+v", got, tt.want)
			}
			if got := topo.Distance(a, b); got != tt.want.Level {
				t.Errorf("Distance = %v, want %v", got, tt.want.Level)
			}
			if got := topo.Hops(a, b); got != tt.want.SwitchHops {
				t.Errorf("Hops = %d, want %d", got, tt.want.SwitchHops)
			}
			// The route back crosses the same switches and links; only
			// the level, which names the kind of the far end, may differ.
			back := topo.Path(b, a)
			if back.Via != tt.want.Via || back.SwitchHops != tt.want.SwitchHops || back.HostLinks != tt.want.HostLinks {
				t.Errorf("Path back = %+v, want same route as %+v", back, tt.want)
			}
		})
	}
}

func TestLevelNodesMixed(t *testing.T) {
	topo := mixed(t)
	names := func(from string, l Level) []string {
		var out []string
		for n := range topo.LevelNodes(lookup(t, topo, from), l) {
			out = append(out, topo.Name(n))
		}
		return out
	}
	tests := []struct {
		from  string
		level Level
		want  []string
	}{
		{"r0/s1/host", SameNode, []string{"r0/s1/host"}},
		{"r0/s1/host", SameServer, nil},
		{"r0/s0/nic1", SameServer, []string{"r0/s0/host", "r0/s0/nic0", "r0/s0/nic2", "r0/s0/nic3"}},
		{"r0/s1/host", RackSmartNIC, []string{"r0/s0/nic0", "r0/s0/nic1", "r0/s0/nic2", "r0/s0/nic3", "r0/s2/nic0"}},
		{"r0/s1/host", RackHost, []string{"r0/s0/host", "r0/s2/host"}},
		{"r1/s0/nic0", RackSmartNIC, []string{"r1/s1/nic0", "r1/s1/nic1", "r1/s1/nic2"}},
		{"r1/s0/nic0", PodSmartNIC, []string{"r0/s0/nic0", "r0/s0/nic1", "r0/s0/nic2", "r0/s0/nic3", "r0/s2/nic0"}},
		{"r1/s0/nic0", PodHost, []string{"r0/s0/host", "r0/s1/host", "r0/s2/host"}},
		{"r2/s1/host", PodSmartNIC, nil},
		{"r2/s1/host", ClusterHost, []string{"r0/s0/host", "r0/s1/host", "r0/s2/host", "r1/s0/host", "r1/s1/host"}},
		{"r0/s0/host", ClusterSmartNIC, []string{"r2/s0/nic0", "r2/s0/nic1", "r2/s0/nic2", "r2/s0/nic3"}},
		{"r0/s0/host", NumLevels, nil},
	}
	for _, tt := range tests {
		t.Run(tt.from+"@"+tt.level.String(), func(t *testing.T) {
			got := names(tt.from, tt.level)
			if !slices.Equal(got, tt.want) {
				t.Errorf("LevelNodes = %q, want %q", got, tt.want)
			}
			if n := topo.LevelSize(lookup(t, topo, tt.from), tt.level); n != len(tt.want) {
				t.Errorf("LevelSize = %d, want %d", n, len(tt.want))
			}
		})
	}
}

// TestLevelWalksStayNear counts the servers the level walks look at and
// checks that the near levels look only inside the own rack or pod, and
// exactly at the servers they must.
func TestLevelWalksStayNear(t *testing.T) {
	topo, err := FatTree(FatTreeOptions{Servers: 2000, Server: type2, ServersPerRack: 40, RacksPerPod: 10})
	if err != nil {
		t.Fatal(err)
	}
	var visited []ServerID
	visitServerHook = func(s ServerID) { visited = append(visited, s) }
	defer func() { visitServerHook = nil }()

	for _, from := range []NodeID{0, 1, 4, NodeID(topo.NumNodes() / 2), NodeID(topo.NumNodes() - 1)} {
		nd := topo.Node(from)
		rack := topo.Rack(nd.Rack)
		podLo, podHi := topo.podServers(nd.Pod)
		want := [NumLevels]int{
			RackSmartNIC: rack.Servers - 1, RackHost: rack.Servers - 1,
			PodSmartNIC: int(podHi-podLo) - rack.Servers, PodHost: int(podHi-podLo) - rack.Servers,
			ClusterSmartNIC: topo.NumServers() - int(podHi-podLo), ClusterHost: topo.NumServers() - int(podHi-podLo),
		}
		for l := range NumLevels {
			visited = visited[:0]
			yielded := 0
			for range topo.LevelNodes(from, l) {
				yielded++
			}
			if len(visited) != want[l] {
				t.Errorf("from %s level %v: looked at %d servers, want %d", topo.Name(from), l, len(visited), want[l])
			}
			for _, s := range visited {
				sv := topo.Server(s)
				switch {
				case l <= RackHost && sv.Rack != nd.Rack:
					t.Fatalf("from %s level %v: looked at server %s outside the rack", topo.Name(from), l, topo.ServerName(s))
				case l <= PodHost && sv.Pod != nd.Pod:
					t.Fatalf("from %s level %v: looked at server %s outside the pod", topo.Name(from), l, topo.ServerName(s))
				}
			}
			if yielded != topo.LevelSize(from, l) {
				t.Errorf("from %s level %v: yielded %d nodes, LevelSize says %d", topo.Name(from), l, yielded, topo.LevelSize(from, l))
			}
		}
	}

	// Stopping early stops the walk: taking one node of the farthest level
	// looks at one server, not at the whole cluster.
	visited = visited[:0]
	for range topo.LevelNodes(0, ClusterSmartNIC) {
		break
	}
	if len(visited) != 1 {
		t.Errorf("break after the first node: looked at %d servers, want 1", len(visited))
	}
	visited = visited[:0]
	for l := range topo.Levels(0) {
		if l == RackHost {
			break
		}
	}
	if len(visited) != 39+1 {
		t.Errorf("Levels stopped at the first RackHost node: looked at %d servers, want 40", len(visited))
	}
}

func TestStrings(t *testing.T) {
	for l, want := range map[Level]string{SameNode: "same-node", ClusterHost: "cluster-host", NumLevels: "Level(8)"} {
		if l.String() != want {
			t.Errorf("Level(%d).String() = %q, want %q", uint8(l), l.String(), want)
		}
	}
	for m, want := range map[Mechanism]string{ViaQueue: "queue", ViaHostLink: "host-link", ViaCore: "core", 9: "Mechanism(9)"} {
		if m.String() != want {
			t.Errorf("Mechanism(%d).String() = %q, want %q", uint8(m), m.String(), want)
		}
	}
	if Host.String() != "host" || SmartNIC.String() != "smartnic" || Kind(5).String() != "Kind(5)" {
		t.Errorf("Kind strings: %v %v %v", Host, SmartNIC, Kind(5))
	}
}
