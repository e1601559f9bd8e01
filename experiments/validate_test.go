package experiments

import (
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/cluster"
)

// TestValidationAgreesWithSimulator runs V1 at the quick scale: IOT-TS
// and NFV-FIN on the emulated 3xType1-SmartNIC (`e3 run`'s cluster.Run)
// and in the simulator with the same placement and the same knee search
// (fewer requests per simulated measurement than the full run). Peak
// throughput and requests per joule must agree within V1Tolerance. V1
// itself repeats an emulated run during which this machine fell behind the
// dilated clock (see v1MinClientEff); a failure on a machine too busy to
// emulate says so.
func TestValidationAgreesWithSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("emulates a cluster for about 20 s")
	}
	if raceEnabled {
		t.Skip("the race detector slows messages past the dilation; CI runs this test without -race")
	}
	e, err := ByID("V1")
	if err != nil {
		t.Fatal(err)
	}
	const seed = 1
	t.Logf("seed %d", seed)
	start := time.Now()
	res, err := e.Run(Options{Seed: seed, Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	r := res.(*V1Result)
	t.Logf("V1 took %.1f s", time.Since(start).Seconds())
	for i := range r.Apps {
		a := &r.Apps[i]
		thr, rpj, othr, orpj := a.Ratios()
		t.Logf("%s: emulated %.0f/s %.1f RPJ at %d outstanding (D=%g, step %v, client efficiency >= %.2f, %d attempts); simulated %.0f/s %.1f RPJ at %d; ratios %.3f %.3f (e3 sim's knee %.3f %.3f)",
			a.Name, a.Emu.Throughput, a.Emu.RPJ, int(a.Emu.Load), a.Dilation, a.Step, a.ClientEff, a.Attempts, a.Sim.Throughput, a.Sim.RPJ, int(a.Sim.Load), thr, rpj, othr, orpj)
		if !a.Agree() && a.ClientEff < v1MinClientEff {
			t.Errorf("%s: this machine fell behind the emulation in all %d attempts (client efficiency %.2f): the comparison below is not a fair one; run it on an idle machine", a.Name, a.Attempts, a.ClientEff)
		}
	}
	if len(r.Apps) != 2 {
		t.Fatalf("%d applications, want IOT-TS and NFV-FIN", len(r.Apps))
	}
	for i := range r.Apps {
		a := &r.Apps[i]
		if a.OnNIC == 0 || a.OnHost == 0 {
			t.Errorf("%s: %d instances on SmartNICs, %d on hosts; want both kinds used", a.Name, a.OnNIC, a.OnHost)
		}
		if a.ErrorRate > 0.01 {
			t.Errorf("%s: %.1f %% of emulated requests failed at the knee", a.Name, 100*a.ErrorRate)
		}
		thr, rpj, _, _ := a.Ratios()
		if !within(thr) {
			t.Errorf("%s: peak throughput simulated %.0f/s, emulated %.0f/s: ratio %.3f, outside 1 ± %.2f", a.Name, a.Sim.Throughput, a.Emu.Throughput, thr, V1Tolerance)
		}
		if !within(rpj) {
			t.Errorf("%s: requests per joule simulated %.1f, emulated %.1f: ratio %.3f, outside 1 ± %.2f", a.Name, a.Sim.RPJ, a.Emu.RPJ, rpj, V1Tolerance)
		}
	}
	// The result renders like every experiment's.
	files, err := Files(e, r)
	if err != nil {
		t.Fatal(err)
	}
	js := string(file(t, files, "V1.json"))
	for _, k := range []string{`"IOT-TS"`, `"NFV-FIN"`, `"throughput_ratio"`, `"rpj_ratio"`, `"agree"`} {
		if !strings.Contains(js, k) {
			t.Errorf("V1.json lacks %s", k)
		}
	}
	file(t, files, "V1.png")
	file(t, files, "V1-nodes.csv")
}

// TestSamePlacement checks that V1 notices an emulated run whose placement
// is not the plan's.
func TestSamePlacement(t *testing.T) {
	a, err := builtin("IOT-TS")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := cluster.PlanApp(v1Cluster, a, "hcm", 1)
	if err != nil {
		t.Fatal(err)
	}
	topo := plan.Problem.Topology()
	rep := &cluster.Report{}
	byNode := map[string]int{}
	for i, n := range plan.Result.Assignment {
		if n < 0 {
			continue
		}
		name := topo.Name(n)
		k, ok := byNode[name]
		if !ok {
			k = len(rep.Placement)
			byNode[name] = k
			rep.Placement = append(rep.Placement, cluster.NodePlacement{Node: name, Instances: map[string]int{}})
		}
		rep.Placement[k].Instances[a.Instances()[i].Node.Name]++
	}
	if err := samePlacement(topo, plan, rep); err != nil {
		t.Fatalf("the plan's own placement: %v", err)
	}
	rep.Placement[0].Instances["sql"]++
	if err := samePlacement(topo, plan, rep); err == nil || !strings.Contains(err.Error(), "sql") {
		t.Errorf("one sql instance too many on %s: error %v, want one naming sql", rep.Placement[0].Node, err)
	}
	rep.Placement[0].Instances["sql"]--
	rep.Placement = rep.Placement[1:]
	if err := samePlacement(topo, plan, rep); err == nil || !strings.Contains(err.Error(), "reports nothing") {
		t.Errorf("a node left out: error %v, want one saying so", err)
	}
}
