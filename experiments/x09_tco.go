package experiments

import (
	"fmt"
	"strconv"
	"strings"

	"gonum.org/v1/plot"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
)

var _ = register(&Experiment{
	ID:       "X9",
	Title:    "Energy and cost efficiency across cluster designs",
	Paper:    "Figure 10, Table 5",
	Workload: "NFV-FIN, RTA-SHM and IOT-TS, each alone at peak on 4xBeefy, 4xWimpy, 2xBeefy+2xWimpy, 2xType2-SmartNIC and 1xSuperBeefy (Table 4: the same aggregate network bandwidth, 80 Gb/s)",
	Measure:  "energy efficiency (KRPJ) per cluster and application; cost efficiency over 0 to 5 years of ownership",
	Derivation: "Each application is placed by HCM and its knee found as in X4 on each cluster of Table 4. KRPJ is thousands of requests per " +
		"joule of the cluster's modelled wall power at the knee. Cost efficiency is Throughput x T / (CAPEX + Power x T x 0.0733 USD/kWh) " +
		"(hwmodel.CostEfficiency) with the knee's throughput and power, CAPEX the sum of the machines' prices in Table 4 (for 2xBeefy+2xWimpy " +
		"$13,418, where Table 4 prints $13,018; docs/MODEL.md), and T from 0 to 5 years of 365 days: the cluster is assumed to run at its knee " +
		"all the time. Service demand on the Xeons of Type2 and SuperBeefy is Table 1's scaled by clock, and the Wimpy's cnMIPS cores take the " +
		"SmartNIC's figures (hwmodel.Demand). A cluster whose memory cannot hold an application's instances (placement fails) is reported as such.",
	Run: runX9,
})

// x9Apps and x9Clusters are Figure 10's.
var (
	x9Apps     = []string{"NFV-FIN", "RTA-SHM", "IOT-TS"}
	x9Clusters = []string{"4xBeefy", "4xWimpy", "2xBeefy+2xWimpy", "2xType2-SmartNIC", "1xSuperBeefy"}
	x9Years    = []float64{0, 1, 2, 3, 4, 5}
)

type x9Cell struct {
	Pt      point
	CostUSD float64
	Err     string
	// Assign is the placement the knee was found with (X12 reuses it).
	Assign placement.Assignment
}

type x9Result struct {
	apps, clusters []string
	cells          [][]x9Cell // per app, per cluster
}

// costEff is the cell's requests per dollar after years of ownership.
func (c *x9Cell) costEff(years float64) float64 {
	if c.Err != "" {
		return nanF
	}
	return hwmodel.CostEfficiency(c.Pt.Throughput, c.Pt.PowerW, c.CostUSD, years)
}

// runClusters finds every application's knee on every cluster.
func runClusters(o *Options, id string, apps, clusters []string) ([][]x9Cell, error) {
	cells := make([][]x9Cell, len(apps))
	for i := range cells {
		cells[i] = make([]x9Cell, len(clusters))
	}
	err := o.parallel(len(apps)*len(clusters), func(j int) error {
		i, c := j/len(clusters), j%len(clusters)
		o.step("%s %s on %s", id, apps[i], clusters[c])
		hc, err := hwmodel.ClusterByName(clusters[c])
		if err != nil {
			return err
		}
		a, err := builtin(apps[i])
		if err != nil {
			return err
		}
		cells[i][c].CostUSD = hc.CostUSD()
		k, err := appKnee(o, clusters[c], a, nil)
		if err != nil {
			// A cluster that cannot hold the application is a result.
			cells[i][c].Err = err.Error()
			return nil
		}
		cells[i][c].Pt = pointOf(k.Offered, k.Knee)
		cells[i][c].Assign = k.Knee.Apps[0].Assignment
		return nil
	})
	return cells, err
}

func runX9(o Options) (Result, error) {
	apps, clusters := x9Apps, x9Clusters
	if o.Quick {
		apps, clusters = []string{"NFV-FIN"}, []string{"4xBeefy", "2xType2-SmartNIC"}
	}
	cells, err := runClusters(&o, "X9", apps, clusters)
	if err != nil {
		return nil, err
	}
	return &x9Result{apps: apps, clusters: clusters, cells: cells}, nil
}

func (r *x9Result) Tables() []Table {
	t := Table{Title: "Energy efficiency at the knee per cluster (model)",
		Columns: []string{"app", "cluster", "K RPS", "power W", "KRPJ", "avg µs", "p99 µs", "KRPJ vs 4xBeefy", "note"}}
	for i, a := range r.apps {
		for c, cl := range r.clusters {
			x := r.cells[i][c]
			if x.Err != "" {
				t.add(a, cl, nil, nil, nil, nil, nil, nil, shortErr(x.Err))
				continue
			}
			t.add(a, cl, x.Pt.Throughput/1e3, x.Pt.PowerW, x.Pt.RPJ/1e3, us(x.Pt.Mean), us(x.Pt.P99), ratio(x.Pt.RPJ, r.cells[i][0].Pt.RPJ), "")
		}
	}
	cols := []string{"app", "cluster", "CAPEX $"}
	for _, y := range x9Years[1:] {
		cols = append(cols, fmt.Sprintf("%g y: M requests/$", y))
	}
	ce := Table{Name: "cost", Title: "Cost efficiency (millions of requests per dollar) after 1 to 5 years at the knee (model)", Columns: cols}
	for i, a := range r.apps {
		for c, cl := range r.clusters {
			x := &r.cells[i][c]
			row := []any{a, cl, x.CostUSD}
			for _, y := range x9Years[1:] {
				row = append(row, x.costEff(y)/1e6)
			}
			ce.add(row...)
		}
	}
	return []Table{t, ce}
}

func (r *x9Result) JSON() any {
	out := newObj()
	for i, a := range r.apps {
		s := newObj()
		for c, cl := range r.clusters {
			x := &r.cells[i][c]
			v := newObj()
			if x.Err != "" {
				v.set("krpj", nil).set("error", x.Err)
			} else {
				v.set("krpj", jnum(x.Pt.RPJ/1e3)).set("throughput_rps", jnum(x.Pt.Throughput)).set("power_w", jnum(x.Pt.PowerW))
			}
			v.set("cost_usd", x.CostUSD)
			ce := newObj()
			for _, y := range x9Years {
				ce.set(strconv.FormatFloat(y, 'g', -1, 64), jnum(x.costEff(y)))
			}
			v.set("cost_efficiency_requests_per_usd_by_year", ce)
			s.set(cl, v)
		}
		out.set(a, s)
	}
	return out
}

func (r *x9Result) Figures() ([]Figure, error) {
	ss := make([]series, len(r.clusters))
	for c, cl := range r.clusters {
		ss[c].Name = cl
		for i := range r.apps {
			x := r.cells[i][c]
			ss[c].Y = append(ss[c].Y, orNaN(x.Pt.RPJ/1e3, x.Err != ""))
		}
	}
	p, err := bars("Energy efficiency per cluster design (model)", "KRPJ", r.apps, ss, false, false)
	if err != nil {
		return nil, err
	}
	var panels []*plot.Plot
	for i, a := range r.apps {
		var ls []series
		for c, cl := range r.clusters {
			s := series{Name: cl}
			for y := 0.0; y <= 5+1e-9; y += 0.25 {
				s.X = append(s.X, y)
				s.Y = append(s.Y, r.cells[i][c].costEff(y)/1e6)
			}
			ls = append(ls, s)
		}
		lp, err := lines(a+": cost efficiency (model)", "years of ownership", "M requests per $", ls, false, false)
		if err != nil {
			return nil, err
		}
		lp.Legend.Left = true
		panels = append(panels, lp)
	}
	return []Figure{
		{Caption: "Thousands of requests per joule of cluster wall power at each application's knee, per cluster design of Table 4.", Panels: []*plot.Plot{p}},
		{Name: "cost", Caption: "Requests per dollar of CAPEX and electricity against years of ownership, each cluster at its knee all the time.", Panels: panels, Cols: 1},
	}, nil
}

func (r *x9Result) Notes() []string {
	var notes []string
	for i, a := range r.apps {
		best, bestC := 0.0, ""
		bestCE, bestCEC := 0.0, ""
		var failed []string
		for c, cl := range r.clusters {
			x := &r.cells[i][c]
			if x.Err != "" {
				failed = append(failed, cl)
				continue
			}
			if x.Pt.RPJ > best {
				best, bestC = x.Pt.RPJ, cl
			}
			if v := x.costEff(5); v > bestCE {
				bestCE, bestCEC = v, cl
			}
		}
		s := fmt.Sprintf("%s: most energy-efficient %s (%.2f KRPJ, %.2fx 4xBeefy); most cost-efficient over 5 years %s (%.0f M requests/$).",
			a, bestC, best/1e3, ratio(best, r.cells[i][0].Pt.RPJ), bestCEC, bestCE/1e6)
		if len(failed) > 0 {
			s += " Could not be placed on " + joinList(failed) + " (memory: the Wimpy server has 2 GB)."
		}
		notes = append(notes, s)
	}
	return notes
}

// shortErr shortens a placement failure for a table cell; the JSON keeps
// the whole message.
func shortErr(e string) string {
	if strings.Contains(e, "memory") {
		return "does not fit: memory"
	}
	if len(e) > 80 {
		return e[:77] + "..."
	}
	return e
}
