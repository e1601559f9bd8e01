package topology

import "testing"

// Machine shapes in the spirit of the paper's Table 4. They are test
// fixtures only; the real catalogue lives in hwmodel.
var (
	liquidIO = SmartNICSpec{Cores: 12, MemoryMB: 4096, Ports: 2, PortGbps: 10}
	beefy    = ServerSpec{Model: "beefy", Cores: 12, MemoryMB: 64 << 10, NICPorts: 2, NICGbps: 10}
	type1    = ServerSpec{Model: "type1", Cores: 12, MemoryMB: 64 << 10, SmartNICs: []SmartNICSpec{liquidIO}}
	type2    = ServerSpec{Model: "type2", Cores: 16, MemoryMB: 128 << 10,
		SmartNICs: []SmartNICSpec{liquidIO, liquidIO, liquidIO, liquidIO}}
	// x7 is a Type2 chassis with three SmartNICs and a plain NIC that
	// carries the host's traffic, the baseline of the paper's ECMP test.
	x7 = ServerSpec{Model: "x7", Cores: 16, MemoryMB: 128 << 10, NICPorts: 1, NICGbps: 10,
		SmartNICs: []SmartNICSpec{liquidIO, liquidIO, liquidIO}}
)

// lookup resolves a node name or fails the test.
func lookup(t testing.TB, topo *Topology, name string) NodeID {
	t.Helper()
	n, err := topo.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// mixed builds two pods: pod 0 holds rack 0 (type2, beefy, type1) and
// rack 1 (type2, x7); pod 1 holds rack 2 (type2, beefy).
func mixed(t testing.TB) *Topology {
	t.Helper()
	var b Builder
	b.AddServer(type2)
	b.AddServer(beefy)
	b.AddServer(type1)
	b.AddRack()
	b.AddServer(type2)
	b.AddServer(x7)
	b.AddPod()
	b.AddServer(type2)
	b.AddServer(beefy)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}
