package annealing_test

import (
	"math/rand/v2"
	"testing"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/annealing"
	"github.com/e3-platform/e3/services"
)

// clusterOf builds the named cluster of Table 4.
func clusterOf(t testing.TB, name string) *placement.Cluster {
	t.Helper()
	hc, err := hwmodel.ClusterByName(name)
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
	return c
}

func builtins(t testing.TB) []*app.App {
	t.Helper()
	apps, err := app.Builtins(services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return apps
}

// TestBuiltinApps anneals the eight applications of Table 3 on
// 3xType1-SmartNIC at 10,000 requests/s: everything is placed, every
// constraint holds, the energy falls from the first fit, and Service
// Fabric's exit rule ends every run before the round cap.
func TestBuiltinApps(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	const load = 1e4
	for _, a := range builtins(t) {
		p, err := placement.FromApp(a, placement.NewLoad(c), load)
		if err != nil {
			t.Fatal(err)
		}
		res, st, err := annealing.New(annealing.Options{}).PlaceStats(p, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		if v := placement.Validate(p, res.Assignment); v != nil {
			t.Fatalf("%s: violations %v", a.Name, v)
		}
		m, err := placement.Evaluate(p, res.Assignment, load)
		if err != nil {
			t.Fatal(err)
		}
		if m.Unplaced != 0 {
			t.Errorf("%s: %d unplaced", a.Name, m.Unplaced)
		}
		if !(st.Best.Total < st.Initial.Total) {
			t.Errorf("%s: energy %.4f from a first fit of %.4f", a.Name, st.Best.Total, st.Initial.Total)
		}
		if !st.Converged {
			t.Errorf("%s: stopped by the round cap after %d rounds", a.Name, st.Rounds)
		}
		t.Logf("%-8s rounds %3d, T0 %.3g, energy %.4f -> %.4f (bal %.3f int %.3f comm %.3f); SmartNIC %d host %d, comm %.4g, %.1f req/J, cv %.2f",
			a.Name, st.Rounds, st.InitialTemperature, st.Initial.Total, st.Best.Total, st.Best.Balance, st.Best.Interference, st.Best.Communication,
			m.OnSmartNIC, m.OnHost, m.CommCost, m.RequestsPerJoule, m.CVCPUUtil)
	}
}
