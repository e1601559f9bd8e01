package sim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/topology"
)

// testCatalog resolves the services of the tests' hand-made applications.
// "echo" is stateless, "store" stateful with 64 MB of state, "pinned" can
// not migrate.
type testCatalog map[string]*service.Descriptor

func (c testCatalog) Lookup(name string) (*service.Descriptor, bool) {
	d, ok := c[name]
	return d, ok
}

var catalog = testCatalog{
	"echo":   {Name: "echo", Family: service.FamilyEvent, Migratable: true, MemoryMB: 16},
	"slow":   {Name: "slow", Family: service.FamilyEvent, Migratable: true, MemoryMB: 16},
	"store":  {Name: "store", Family: service.FamilyEvent, Stateful: true, Migratable: true, MemoryMB: 64},
	"pinned": {Name: "pinned", Family: service.FamilyEvent, Stateful: true, Migratable: false, MemoryMB: 16},
}

// loadApp loads a spec written for the tests.
func loadApp(t testing.TB, spec string) *app.App {
	t.Helper()
	a, err := app.Load("test.yaml", []byte(spec), catalog)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fixedDemand returns a DemandFunc giving each named service a fixed
// demand in seconds, on every core kind.
func fixedDemand(d map[string]float64) DemandFunc {
	return func(svc string, _ hwmodel.CoreKind, _ int) (float64, error) {
		v, ok := d[svc]
		if !ok {
			return 0, fmt.Errorf("no test demand for %q", svc)
		}
		return v, nil
	}
}

// Test machines: a one-core and a two-core host with one 10 GbE port, and
// a host behind one dual-port SmartNIC.
var (
	oneCore = hwmodel.Machine{Name: "OneCore", HostCore: hwmodel.XeonE5v3, HostCores: 1, HostMemoryGB: 4,
		PlainPorts: 1, PlainPortGbps: 10, IdleW: 50, PeakW: 100}
	twoCore = hwmodel.Machine{Name: "TwoCore", HostCore: hwmodel.XeonE5v3, HostCores: 2, HostMemoryGB: 4,
		PlainPorts: 1, PlainPortGbps: 10, IdleW: 50, PeakW: 100}
)

func testMachines(name string) (hwmodel.Machine, bool) {
	for _, m := range []hwmodel.Machine{oneCore, twoCore} {
		if m.Name == name {
			return m, true
		}
	}
	return hwmodel.MachineByName(name)
}

// cluster builds a one-rack topology of the named machines.
func cluster(t testing.TB, machines ...string) *topology.Topology {
	t.Helper()
	var specs []topology.ServerSpec
	for _, name := range machines {
		m, ok := testMachines(name)
		if !ok {
			t.Fatalf("no machine %q", name)
		}
		specs = append(specs, hwmodel.ServerSpec(m))
	}
	topo, err := topology.New(specs...)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// tableCluster builds a Table 4 cluster by name.
func tableCluster(t testing.TB, name string) *topology.Topology {
	t.Helper()
	c, err := hwmodel.ClusterByName(name)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := hwmodel.Topology(c)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// assign maps instance IDs of a to node names of topo; instances not named
// stay unassigned.
func assign(t testing.TB, topo *topology.Topology, a *app.App, where map[string]string) placement.Assignment {
	t.Helper()
	out := make(placement.Assignment, len(a.Instances()))
	for i := range out {
		out[i] = placement.Unassigned
	}
	for id, node := range where {
		in, ok := a.Instance(id)
		if !ok {
			t.Fatalf("no instance %q", id)
		}
		n, err := topo.Lookup(node)
		if err != nil {
			t.Fatal(err)
		}
		out[in.Index] = n
	}
	return out
}

// params returns the default parameters with a demand override.
func params(d map[string]float64, dist Dist) *Params {
	p := DefaultParams()
	p.Demand = fixedDemand(d)
	p.ServiceDist = dist
	return &p
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}
