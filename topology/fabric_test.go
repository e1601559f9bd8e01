package topology

import (
	"slices"
	"testing"
)

func TestHostPorts(t *testing.T) {
	topo := mixed(t)
	tests := []struct {
		server string
		want   []Port
	}{
		// type2: the host is reached over all 8 ports of its 4 SmartNICs.
		{"r0/s0/host", []Port{{1, 0}, {1, 1}, {2, 0}, {2, 1}, {3, 0}, {3, 1}, {4, 0}, {4, 1}}},
		// beefy: its own two plain ports.
		{"r0/s1/host", []Port{{5, 0}, {5, 1}}},
		// x7: the plain port only, though it also has SmartNICs.
		{"r1/s1/host", []Port{{13, 0}}},
	}
	for _, tt := range tests {
		host := lookup(t, topo, tt.server)
		got := topo.HostPorts(topo.ServerOf(host))
		if !slices.Equal(got, tt.want) {
			t.Errorf("HostPorts(%s) = %v, want %v", tt.server, got, tt.want)
		}
		for _, p := range got {
			if p.Index >= topo.Node(p.Node).Ports || topo.ServerOf(p.Node) != topo.ServerOf(host) {
				t.Errorf("HostPorts(%s): port %v is not a port of the server", tt.server, p)
			}
		}
	}
}

func TestSwitches(t *testing.T) {
	topo, err := FatTree(FatTreeOptions{Servers: 10, Server: beefy, ServersPerRack: 3, RacksPerPod: 2,
		Fabric: Fabric{AggregationPerPod: 2, CoreUplinks: 3}})
	if err != nil {
		t.Fatal(err)
	}
	// 4 ToRs, 2 pods x 2 aggregation switches, 2 x 3 core switches.
	var names []string
	for id := range SwitchID(topo.NumSwitches()) {
		names = append(names, topo.SwitchName(id))
	}
	want := []string{"r0/tor", "r1/tor", "r2/tor", "r3/tor", "p0/agg0", "p0/agg1", "p1/agg0", "p1/agg1",
		"core0", "core1", "core2", "core3", "core4", "core5"}
	if !slices.Equal(names, want) {
		t.Errorf("switches = %q, want %q", names, want)
	}
	if sw := topo.Switch(topo.ToR(3)); sw != (Switch{ID: 3, Tier: TierToR, Pod: 1, Rack: 3, Index: 3}) {
		t.Errorf("Switch(ToR(3)) = %+v", sw)
	}
	if sw := topo.Switch(7); sw != (Switch{ID: 7, Tier: TierAggregation, Pod: 1, Rack: -1, Index: 1}) {
		t.Errorf("Switch(7) = %+v", sw)
	}
	if f := topo.Fabric(); f != (Fabric{AggregationPerPod: 2, CoreUplinks: 3, UplinkGbps: DefaultUplinkGbps}) {
		t.Errorf("Fabric() = %+v", f)
	}
	if TierCore.String() != "core" || AggCoreLink.String() != "agg-core" || Tier(7).String() != "Tier(7)" || LinkKind(9).String() != "LinkKind(9)" {
		t.Error("tier and link kind names")
	}
	defer func() {
		if recover() == nil {
			t.Error("Switch(out of range) did not panic")
		}
	}()
	topo.Switch(SwitchID(topo.NumSwitches()))
}

// TestLinks checks every link of a mixed cluster against the structure:
// kinds, ends, bandwidths, and the k-ary wiring of the upper tiers.
func TestLinks(t *testing.T) {
	var b Builder
	b.Fabric = Fabric{AggregationPerPod: 2, CoreUplinks: 2, UplinkGbps: 40}
	b.AddServer(type2)
	b.AddServer(x7)
	b.AddPod()
	b.AddServer(beefy)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	count := map[LinkKind]int{}
	seen := map[[2]End]bool{}
	for l := range topo.Links() {
		count[l.Kind]++
		if seen[[2]End{l.A, l.B}] {
			t.Errorf("link %+v twice", l)
		}
		seen[[2]End{l.A, l.B}] = true
		switch l.Kind {
		case PCIeLink:
			a, c := topo.Node(l.A.Node), topo.Node(l.B.Node)
			if a.Kind != Host || c.Kind != SmartNIC || a.Server != c.Server || l.Gbps != DefaultHostLinkGbps || l.A.Switch != -1 {
				t.Errorf("bad PCIe link %+v", l)
			}
		case AccessLink:
			nd := topo.Node(l.A.Node)
			sw := topo.Switch(l.B.Switch)
			if sw.Tier != TierToR || sw.Rack != nd.Rack || l.A.Port < 0 || l.A.Port >= nd.Ports || l.Gbps != nd.PortGbps {
				t.Errorf("bad access link %+v", l)
			}
		case ToRAggLink:
			lo, hi := topo.Switch(l.A.Switch), topo.Switch(l.B.Switch)
			if lo.Tier != TierToR || hi.Tier != TierAggregation || lo.Pod != hi.Pod || l.Gbps != 40 {
				t.Errorf("bad ToR-aggregation link %+v", l)
			}
		case AggCoreLink:
			lo, hi := topo.Switch(l.A.Switch), topo.Switch(l.B.Switch)
			if lo.Tier != TierAggregation || hi.Tier != TierCore || hi.Index/2 != lo.Index || l.Gbps != 40 {
				t.Errorf("bad aggregation-core link %+v", l)
			}
		}
	}
	// type2: 4 PCIe + 8 access; x7: 3 PCIe + 1 + 6 access; beefy: 2 access.
	// 2 racks x 2 aggregation links; 2 pods x 2 aggregation x 2 core links.
	want := map[LinkKind]int{PCIeLink: 7, AccessLink: 17, ToRAggLink: 4, AggCoreLink: 8}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d %v links, want %d", count[k], k, n)
		}
	}
	n := 0
	for range topo.ServerLinks(0) {
		n++
	}
	if n != 12 {
		t.Errorf("ServerLinks(type2) yielded %d links, want 12", n)
	}
	for range topo.Links() {
		break // early stop must not panic
	}
	for range topo.ServerLinks(1) {
		break
	}
}
