package hcm_test

import (
	"testing"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/hcm"
	"github.com/e3-platform/e3/services"
)

// TestBuiltinApps places the eight applications of Table 3 on
// 3xType1-SmartNIC, the paper's end-to-end cluster: at a modest load all
// of every application is placed; at a load no cluster of three servers
// carries, HCM leaves instances unplaced rather than overcommit. Either
// way the result satisfies every constraint and SQL stays on hosts.
func TestBuiltinApps(t *testing.T) {
	hc, err := hwmodel.ClusterByName("3xType1-SmartNIC")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := hwmodel.Topology(hc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := placement.NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	apps, err := app.Builtins(services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		for _, load := range []float64{1e4, 1e8} {
			p, err := placement.FromApp(a, placement.NewLoad(c), load)
			if err != nil {
				t.Fatal(err)
			}
			res := place(t, p)
			m, err := placement.Evaluate(p, res.Assignment, load)
			if err != nil {
				t.Fatal(err)
			}
			if load == 1e4 && m.Unplaced != 0 {
				t.Errorf("%s at %.0f rps: %d unplaced, e.g. %s", a.Name, load, m.Unplaced, res.Unplaced[0].Describe(p))
			}
			if load == 1e8 && m.Unplaced == 0 {
				t.Errorf("%s at %.0f rps on three servers: everything placed", a.Name, load)
			}
			for i, n := range res.Assignment {
				if in := p.Instance(placement.InstanceID(i)); in.Service == "sql" && n >= 0 && topo.Node(n).Kind != 0 {
					t.Errorf("%s: %s on %s", a.Name, in.Name, topo.Name(n))
				}
			}
			t.Logf("%-8s %9.0f rps: placed %3d (%2d SmartNIC, %2d host), unplaced %3d, comm %.3g Gb/s*hops, %.0f W, %.1f req/J, max util %.2f, cv %.2f",
				a.Name, load, m.Placed, m.OnSmartNIC, m.OnHost, m.Unplaced, m.CommCost, m.PowerW, m.RequestsPerJoule, m.MaxCPUUtil, m.CVCPUUtil)
			if load != 1e4 {
				continue
			}
			// The variant that treats the ancestor's server as one level.
			vres, err := hcm.New(hcm.Options{ServerAsOneLevel: true}).Place(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if v := placement.Validate(p, vres.Assignment); v != nil {
				t.Fatalf("%s: ServerAsOneLevel broke constraints: %v", a.Name, v)
			}
			vm, _ := placement.Evaluate(p, vres.Assignment, load)
			t.Logf("%-8s %9.0f rps, server as one level: placed %3d (%2d SmartNIC, %2d host), comm %.3g Gb/s*hops, %.0f W, %.1f req/J",
				a.Name, load, vm.Placed, vm.OnSmartNIC, vm.OnHost, vm.CommCost, vm.PowerW, vm.RequestsPerJoule)
		}
	}
}
