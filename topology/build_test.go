package topology

import (
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

func TestNewSingleRack(t *testing.T) {
	topo, err := New(type1, type1, type1)
	if err != nil {
		t.Fatal(err)
	}
	if topo.NumServers() != 3 || topo.NumRacks() != 1 || topo.NumPods() != 1 || topo.NumNodes() != 6 {
		t.Fatalf("3 x type1 = %v", topo)
	}
	// One rack: a ToR and nothing above it.
	if topo.NumSwitches() != 1 {
		t.Errorf("NumSwitches = %d, want 1", topo.NumSwitches())
	}
	sv := topo.Server(2)
	if sv.Host != 4 || sv.SmartNICs != 1 || sv.Index != 2 || sv.Model != "type1" || sv.Rack != 0 {
		t.Errorf("Server(2) = %+v", sv)
	}
	nic := topo.Node(5)
	want := Node{ID: 5, Kind: SmartNIC, Server: 2, NIC: 0, Cores: 12, MemoryMB: 4096, Ports: 2, PortGbps: 10, HostLinkGbps: DefaultHostLinkGbps}
	if nic != want {
		t.Errorf("Node(5) = %+v, want %+v", nic, want)
	}
	host := topo.Node(4)
	if host.Kind != Host || host.NIC != -1 || host.Cores != 12 || host.MemoryMB != 64<<10 || host.Ports != 0 || host.HostLinkGbps != 0 {
		t.Errorf("Node(4) = %+v", host)
	}
	if got := topo.ServerOf(5); got != 2 {
		t.Errorf("ServerOf(5) = %d, want 2", got)
	}
}

func TestIterators(t *testing.T) {
	topo := mixed(t)
	var nodes, servers, racks int
	for range topo.Nodes() {
		nodes++
	}
	for range topo.Servers() {
		servers++
	}
	for range topo.Racks() {
		racks++
	}
	if nodes != topo.NumNodes() || servers != topo.NumServers() || racks != topo.NumRacks() {
		t.Errorf("iterated %d nodes, %d servers, %d racks; want %v", nodes, servers, racks, topo)
	}
	var got []NodeID
	for n := range topo.ServerNodes(4) { // r1/s1, an x7 with three SmartNICs
		got = append(got, n)
	}
	if len(got) != 4 || topo.Name(got[0]) != "r1/s1/host" || topo.Name(got[3]) != "r1/s1/nic2" {
		t.Errorf("ServerNodes(4) = %v", got)
	}
	var ss []ServerID
	for s := range topo.RackServers(1) {
		ss = append(ss, s)
	}
	if len(ss) != 2 || ss[0] != 3 || ss[1] != 4 {
		t.Errorf("RackServers(1) = %v, want [3 4]", ss)
	}
	var rs []RackID
	for r := range topo.PodRacks(0) {
		rs = append(rs, r)
	}
	if len(rs) != 2 || rs[0] != 0 || rs[1] != 1 {
		t.Errorf("PodRacks(0) = %v, want [0 1]", rs)
	}
	if r := topo.Rack(2); r != (Rack{ID: 2, Pod: 1, FirstServer: 5, Servers: 2}) {
		t.Errorf("Rack(2) = %+v", r)
	}
	// Every iterator honours an early stop.
	for range topo.Nodes() {
		break
	}
	for range topo.ServerNodes(0) {
		break
	}
	for range topo.RackServers(0) {
		break
	}
	for range topo.PodRacks(0) {
		break
	}
}

func TestBuilderErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *Builder)
		want  string // substring of the error
		empty bool   // the error wraps ErrEmpty
	}{
		{"no servers", func(b *Builder) {}, "no servers", true},
		{"empty rack", func(b *Builder) { b.AddRack(); b.AddRack(); b.AddServer(beefy) }, "rack r0 has no servers", true},
		{"empty pod", func(b *Builder) { b.AddServer(beefy); b.AddPod(); b.AddPod(); b.AddServer(beefy) }, "pod p1 has no racks", true},
		{"trailing empty rack", func(b *Builder) { b.AddServer(beefy); b.AddRack() }, "rack r1 has no servers", true},
		{"host cores", func(b *Builder) { b.AddServer(beefy); s := beefy; s.Cores = 0; b.AddServer(s) },
			`server r0/s1 (model "beefy"): host Cores = 0`, false},
		{"memory", func(b *Builder) { s := beefy; s.MemoryMB = -1; b.AddServer(s) }, "host MemoryMB = -1", false},
		{"no ports", func(b *Builder) { s := beefy; s.NICPorts = 0; b.AddServer(s) }, "no network port", false},
		{"negative ports", func(b *Builder) { s := beefy; s.NICPorts = -2; b.AddServer(s) }, "NICPorts = -2", false},
		{"port speed", func(b *Builder) { s := beefy; s.NICGbps = 0; b.AddServer(s) }, "NICGbps = 0, want > 0", false},
		{"NaN port speed", func(b *Builder) { s := beefy; s.NICGbps = math.NaN(); b.AddServer(s) }, "NICGbps = NaN", false},
		{"nic cores", func(b *Builder) {
			s := type2
			s.SmartNICs = []SmartNICSpec{liquidIO, {MemoryMB: 1, Ports: 1, PortGbps: 1}}
			b.AddRack()
			b.AddServer(beefy)
			b.AddRack()
			b.AddServer(s)
		}, `server r1/s0 (model "type2"): SmartNICs[1].Cores = 0`, false},
		{"nic ports", func(b *Builder) {
			s := type1
			s.SmartNICs = []SmartNICSpec{{Cores: 1, MemoryMB: 1, PortGbps: 1}}
			b.AddServer(s)
		}, "SmartNICs[0].Ports = 0", false},
		{"nic memory", func(b *Builder) {
			s := type1
			s.SmartNICs = []SmartNICSpec{{Cores: 1, Ports: 1, PortGbps: 1}}
			b.AddServer(s)
		}, "SmartNICs[0].MemoryMB = 0", false},
		{"nic speed", func(b *Builder) {
			s := type1
			s.SmartNICs = []SmartNICSpec{{Cores: 1, MemoryMB: 1, Ports: 1, PortGbps: math.Inf(1)}}
			b.AddServer(s)
		}, "SmartNICs[0].PortGbps = +Inf", false},
		{"pcie speed", func(b *Builder) {
			s := type1
			s.SmartNICs = []SmartNICSpec{{Cores: 1, MemoryMB: 1, Ports: 1, PortGbps: 1, HostLinkGbps: -1}}
			b.AddServer(s)
		}, "SmartNICs[0].HostLinkGbps = -1", false},
		{"too many nics", func(b *Builder) { s := type1; s.SmartNICs = make([]SmartNICSpec, MaxSmartNICs+1); b.AddServer(s) }, "65 SmartNICs, want at most 64", false},
		{"fabric", func(b *Builder) { b.Fabric.AggregationPerPod = -1; b.AddServer(beefy) }, "Fabric.AggregationPerPod = -1", false},
		{"fabric uplinks", func(b *Builder) { b.Fabric.CoreUplinks = -1; b.AddServer(beefy) }, "Fabric.CoreUplinks = -1", false},
		{"fabric speed", func(b *Builder) { b.Fabric.UplinkGbps = math.NaN(); b.AddServer(beefy) }, "Fabric.UplinkGbps = NaN", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Builder
			tt.build(&b)
			topo, err := b.Build()
			if err == nil {
				t.Fatalf("Build = %v, want an error containing %q", topo, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build error = %q, want it to contain %q", err, tt.want)
			}
			if errors.Is(err, ErrEmpty) != tt.empty {
				t.Errorf("errors.Is(%q, ErrEmpty) = %v, want %v", err, !tt.empty, tt.empty)
			}
		})
	}
}

func TestBuilderReuseAndIsolation(t *testing.T) {
	var b Builder
	spec := type2
	spec.SmartNICs = append([]SmartNICSpec(nil), type2.SmartNICs...)
	if id := b.AddServer(spec); id != 0 {
		t.Fatalf("AddServer = %d, want 0", id)
	}
	spec.SmartNICs[0].Cores = 99 // the caller edits its spec afterwards
	b.AddServer(beefy)
	b.AddServer(type2)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if c := topo.Node(1).Cores; c != 12 {
		t.Errorf("the caller's later edit reached the topology: Node(1).Cores = %d", c)
	}
	if len(topo.specs) != 2 {
		t.Errorf("%d specs stored, want 2 (type2 once, beefy once)", len(topo.specs))
	}
	// A failed server is reported and the builder can be used again.
	b.AddServer(ServerSpec{})
	if id := b.AddServer(beefy); id != -1 {
		t.Errorf("AddServer after an error = %d, want -1", id)
	}
	if _, err := b.Build(); err == nil {
		t.Error("Build after a bad server: no error")
	}
	b.AddServer(beefy)
	if topo, err := b.Build(); err != nil || topo.NumServers() != 1 {
		t.Errorf("reused Builder: %v, %v; want one server", topo, err)
	}
}

func TestFatTreeShape(t *testing.T) {
	tests := []struct {
		opts                         FatTreeOptions
		racks, pods, switches, links int
		lastRack                     int // servers in the last rack
	}{
		// 100 servers: racks of 40, 40, 20 in one pod of k/2 = 40
		// aggregation switches and no core.
		{FatTreeOptions{Servers: 100, Server: type2}, 3, 1, 3 + 40, 100*12 + 3*40, 20},
		{FatTreeOptions{Servers: 1, Server: beefy}, 1, 1, 1, 2, 1},
		// 50,000: 1,250 racks in 31 full pods and one of 10 racks; 32*40
		// aggregation and 40*40 core switches.
		{FatTreeOptions{Servers: 50000, Server: type2}, 1250, 32, 1250 + 32*40 + 1600,
			50000*12 + 1250*40 + 32*40*40, 40},
		{FatTreeOptions{Servers: 10, Server: beefy, ServersPerRack: 3, RacksPerPod: 2,
			Fabric: Fabric{AggregationPerPod: 2, CoreUplinks: 3, UplinkGbps: 40}},
			4, 2, 4 + 2*2 + 6, 10*2 + 4*2 + 2*2*3, 1},
	}
	for _, tt := range tests {
		topo, err := FatTree(tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		if topo.NumServers() != tt.opts.Servers || topo.NumRacks() != tt.racks || topo.NumPods() != tt.pods {
			t.Errorf("FatTree(%d servers) = %v, want %d racks, %d pods", tt.opts.Servers, topo, tt.racks, tt.pods)
		}
		if n := topo.NumSwitches(); n != tt.switches {
			t.Errorf("FatTree(%d servers): %d switches, want %d", tt.opts.Servers, n, tt.switches)
		}
		links := 0
		for range topo.Links() {
			links++
		}
		if links != tt.links {
			t.Errorf("FatTree(%d servers): %d links, want %d", tt.opts.Servers, links, tt.links)
		}
		if r := topo.Rack(RackID(tt.racks - 1)); r.Servers != tt.lastRack {
			t.Errorf("FatTree(%d servers): last rack has %d servers, want %d", tt.opts.Servers, r.Servers, tt.lastRack)
		}
	}
}

func TestFatTreeOptionErrors(t *testing.T) {
	tests := []struct {
		opts FatTreeOptions
		want string
	}{
		{FatTreeOptions{Server: beefy}, "FatTreeOptions.Servers = 0"},
		{FatTreeOptions{Servers: -5, Server: beefy}, "FatTreeOptions.Servers = -5"},
		{FatTreeOptions{Servers: MaxServers + 1, Server: beefy}, "FatTreeOptions.Servers = 16777217"},
		{FatTreeOptions{Servers: 10, Server: beefy, ServersPerRack: -1}, "FatTreeOptions.ServersPerRack = -1"},
		{FatTreeOptions{Servers: 10, Server: beefy, RacksPerPod: -2}, "FatTreeOptions.RacksPerPod = -2"},
		{FatTreeOptions{Servers: 10, Server: beefy, Fabric: Fabric{UplinkGbps: -1}}, "Fabric.UplinkGbps = -1"},
		{FatTreeOptions{Servers: 10, Server: beefy, Fabric: Fabric{AggregationPerPod: 1 << 20}}, "Fabric.AggregationPerPod = 1048576"},
		{FatTreeOptions{Servers: 10}, `FatTreeOptions.Server (model ""): host Cores = 0`},
	}
	for _, tt := range tests {
		topo, err := FatTree(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("FatTree(%+v) = %v, %v; want an error containing %q", tt.opts, topo, err, tt.want)
		}
	}
}

// TestFatTreeMemory checks that a 50,000-server cluster of Type2-like
// servers (1 host + 4 SmartNICs) costs what the layout promises: 4 bytes
// per node plus 12 per server and a little slack, nothing that grows
// faster.
func TestFatTreeMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector inflates allocations; run without -race")
	}
	const servers = 50000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	topo, err := FatTree(FatTreeOptions{Servers: servers, Server: type2})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	perServer := float64(after.TotalAlloc-before.TotalAlloc) / servers
	t.Logf("FatTree(%d type2): %.1f bytes allocated per server", servers, perServer)
	if perServer > 40 {
		t.Errorf("FatTree(%d type2) allocated %.1f bytes per server, want <= 40 (4 per node, 12 per server, slack)", servers, perServer)
	}
	runtime.KeepAlive(topo)
}
