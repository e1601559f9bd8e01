package experiments

import (
	"fmt"

	"gonum.org/v1/plot"

	"github.com/e3-platform/e3/sim"
)

var _ = register(&Experiment{
	ID:       "X12",
	Title:    "Equal power budget and equal throughput across cluster designs",
	Paper:    "§5.6",
	Workload: "NFV-FIN, RTA-SHM and IOT-TS on X9's five cluster designs: as many clusters of each design as a 10 kW power budget holds, and one cluster of each serving the same throughput",
	Measure:  "throughput under an equal power budget, and power (and power saved against 4xBeefy) at equal throughput",
	Derivation: "Each application's knee and HCM placement on each cluster come from the same runs as X9 (same seed, same code). Equal " +
		"power budget: a 10 kW budget (about one rack's; docs/MODEL.md, \"Experiments\") is filled with clusters of one design running at " +
		"their knee, as many as fit, and the remainder with one more cluster loaded as far as the remainder allows: its open-loop load is " +
		"bisected, eight halvings between zero and the knee, for the highest load whose modelled wall power stays within it (none if the " +
		"remainder is below the cluster's idle power). Equal throughput: the smallest knee throughput among the designs that hold the " +
		"application, so that one cluster of every design can serve it; each is run at that open-loop load with its knee placement and its " +
		"wall power measured, idle power included. Power saved is 1 - power / 4xBeefy's power at the same throughput.",
	Run: runX12,
})

type x12Cell struct {
	Err string
	// Budget: clusters at their knee within the budget, the throughput of
	// the one more cluster the remainder powers, and the total.
	Full                 int
	PartialRPS, PartialW float64
	BudgetRPS, BudgetW   float64
	// Equal throughput: the power drawn serving it.
	EqualW float64
}

type x12Result struct {
	apps, clusters []string
	equal          []float64 // per app, requests a second
	cells          [][]x12Cell
	knees          [][]x9Cell
}

// x12BudgetW is the equal power budget: about what one datacenter rack
// is provisioned for (5 to 15 kW is common); large against one cluster's
// few hundred watts, so that the design, not rounding, decides.
const x12BudgetW = 10000

// x12BisectSteps is the number of halvings of the load range when fitting
// a cluster into the power budget: 2^-8 of the knee load, a resolution
// finer than the knee search's own 3 %.
const x12BisectSteps = 8

func runX12(o Options) (Result, error) {
	apps, clusters := x9Apps, x9Clusters
	if o.Quick {
		apps, clusters = []string{"NFV-FIN"}, []string{"4xBeefy", "2xType2-SmartNIC"}
	}
	knees, err := runClusters(&o, "X12", apps, clusters)
	if err != nil {
		return nil, err
	}
	res := &x12Result{apps: apps, clusters: clusters, equal: make([]float64, len(apps)),
		cells: make([][]x12Cell, len(apps)), knees: knees}
	for i := range apps {
		res.cells[i] = make([]x12Cell, len(clusters))
		res.equal[i] = nanF
		for c := range clusters {
			if k := knees[i][c]; k.Err == "" && !(k.Pt.Throughput >= res.equal[i]) {
				res.equal[i] = k.Pt.Throughput
			}
		}
	}
	err = o.parallel(len(apps)*len(clusters), func(j int) error {
		i, c := j/len(clusters), j%len(clusters)
		k := &knees[i][c]
		cell := &res.cells[i][c]
		if k.Err != "" {
			cell.Err = k.Err
			return nil
		}
		o.step("X12 %s on %s", apps[i], clusters[c])
		a, err := builtin(apps[i])
		if err != nil {
			return err
		}
		_, topo, err := clusterTopology(clusters[c])
		if err != nil {
			return err
		}
		measure := func(rate float64) (point, error) {
			warm, dur := o.window(rate)
			r, err := sim.Run(sim.Config{Topology: topo, Seed: o.Seed, Warmup: warm, Duration: dur,
				Apps: []sim.AppLoad{{App: a, Assignment: k.Assign, Clients: sim.Open(rate)}}})
			if err != nil {
				return point{}, fmt.Errorf("X12 %s on %s at %.0f requests/s: %w", apps[i], clusters[c], rate, err)
			}
			return pointOf(rate, r), nil
		}
		eq, err := measure(res.equal[i])
		if err != nil {
			return err
		}
		cell.EqualW = eq.PowerW
		cell.Full = int(x12BudgetW / k.Pt.PowerW)
		rem := x12BudgetW - float64(cell.Full)*k.Pt.PowerW
		if rem > k.Pt.IdleW {
			lo, hi := 0.0, k.Pt.Offered
			for range x12BisectSteps {
				mid := (lo + hi) / 2
				p, err := measure(mid)
				if err != nil {
					return err
				}
				if p.PowerW <= rem {
					lo = mid
					cell.PartialRPS, cell.PartialW = p.Throughput, p.PowerW
				} else {
					hi = mid
				}
			}
		}
		cell.BudgetRPS = float64(cell.Full)*k.Pt.Throughput + cell.PartialRPS
		cell.BudgetW = float64(cell.Full)*k.Pt.PowerW + cell.PartialW
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// saved is the power saved at equal throughput against the first cluster.
func (r *x12Result) saved(i, c int) float64 {
	if r.cells[i][c].Err != "" {
		return nanF
	}
	return 1 - r.cells[i][c].EqualW/r.cells[i][0].EqualW
}

func (r *x12Result) Tables() []Table {
	t := Table{Title: fmt.Sprintf("Throughput within a %.0f kW budget, and power at equal throughput (model)", x12BudgetW/1e3),
		Columns: []string{"app", "cluster", "clusters at knee", "partial cluster K RPS", "K RPS within budget", "W drawn", "x 4xBeefy", "equal K RPS", "W at equal", "power saved"}}
	for i, a := range r.apps {
		for c, cl := range r.clusters {
			x := r.cells[i][c]
			if x.Err != "" {
				t.add(a, cl, shortErr(x.Err), nil, nil, nil, nil, r.equal[i]/1e3, nil, nil)
				continue
			}
			t.add(a, cl, x.Full, x.PartialRPS/1e3, x.BudgetRPS/1e3, x.BudgetW, ratio(x.BudgetRPS, r.cells[i][0].BudgetRPS),
				r.equal[i]/1e3, x.EqualW, pct(r.saved(i, c)))
		}
	}
	return []Table{t}
}

func (r *x12Result) JSON() any {
	out := newObj()
	for i, a := range r.apps {
		s := newObj().set("budget_w", jnum(x12BudgetW)).set("equal_throughput_rps", jnum(r.equal[i]))
		cs := newObj()
		for c, cl := range r.clusters {
			x := r.cells[i][c]
			v := newObj()
			if x.Err != "" {
				v.set("error", x.Err)
			} else {
				v.set("clusters_at_knee", x.Full).set("partial_cluster_rps", jnum(x.PartialRPS)).
					set("throughput_within_budget_rps", jnum(x.BudgetRPS)).set("power_within_budget_w", jnum(x.BudgetW)).
					set("throughput_ratio_to_4xbeefy", jnum(ratio(x.BudgetRPS, r.cells[i][0].BudgetRPS))).
					set("power_at_equal_throughput_w", jnum(x.EqualW)).set("power_saved_vs_4xbeefy", jnum(r.saved(i, c)))
			}
			cs.set(cl, v)
		}
		s.set("clusters", cs)
		out.set(a, s)
	}
	return out
}

func (r *x12Result) Figures() ([]Figure, error) {
	tp := make([]series, len(r.clusters))
	pw := make([]series, len(r.clusters))
	for c, cl := range r.clusters {
		tp[c].Name, pw[c].Name = cl, cl
		for i := range r.apps {
			x := r.cells[i][c]
			tp[c].Y = append(tp[c].Y, orNaN(ratio(x.BudgetRPS, r.cells[i][0].BudgetRPS), x.Err != ""))
			pw[c].Y = append(pw[c].Y, orNaN(x.EqualW, x.Err != ""))
		}
	}
	p1, err := bars(fmt.Sprintf("Throughput within %.0f kW (model)", x12BudgetW/1e3), "throughput / 4xBeefy's", r.apps, tp, false, false)
	if err != nil {
		return nil, err
	}
	p2, err := bars("Power at equal throughput", "wall power (W)", r.apps, pw, false, false)
	if err != nil {
		return nil, err
	}
	return []Figure{{Caption: "Left: throughput each design serves within a 10 kW budget (clusters at their knee, the remainder partly loaded), relative to 4xBeefy. Right: wall power each design draws serving the same throughput (the smallest knee among the designs).",
		Panels: []*plot.Plot{p1, p2}}}, nil
}

func (r *x12Result) Notes() []string {
	var notes []string
	for i, a := range r.apps {
		best, bestC := 0.0, ""
		save, saveC := 0.0, ""
		for c, cl := range r.clusters {
			x := r.cells[i][c]
			if x.Err != "" {
				continue
			}
			if v := ratio(x.BudgetRPS, r.cells[i][0].BudgetRPS); v > best {
				best, bestC = v, cl
			}
			if v := r.saved(i, c); v > save {
				save, saveC = v, cl
			}
		}
		s := fmt.Sprintf("%s: within %.0f kW, %s serves the most, %.2fx 4xBeefy", a, x12BudgetW/1e3, bestC, best)
		if saveC != "" {
			s += fmt.Sprintf("; at %.0f K requests/s %s saves the most power, %.0f %% of 4xBeefy's %.0f W", r.equal[i]/1e3, saveC, save*100, r.cells[i][0].EqualW)
		}
		notes = append(notes, s+".")
	}
	return notes
}
