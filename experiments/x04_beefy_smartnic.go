package experiments

import (
	"fmt"

	"gonum.org/v1/plot"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/sim"
)

var _ = register(&Experiment{
	ID:       "X4",
	Title:    "Energy efficiency and latency: 3 x Beefy against 3 x Type1-SmartNIC",
	Paper:    "Figure 5",
	Workload: "each of the 8 applications alone on 3xBeefy and on 3xType1-SmartNIC, at peak utilisation",
	Measure:  "energy efficiency (RPJ on whole-cluster wall power), average and p99 latency at the knee, per application and per class (NFV, RTA, IOT)",
	Derivation: "Each application is placed by HCM (the paper's Algorithm 1, package placement/hcm) for the largest load it can place on the " +
		"cluster (sim.PlaceableRPS), then sim.Knee finds the knee of that placement's latency-throughput curve with open-loop Poisson probes: " +
		"the highest offered load whose goodput stays above 95 % and whose p99 latency stays below 3x its value at 5 % of the capacity bound. " +
		"Energy efficiency is requests per joule of the whole cluster's modelled wall power at the knee (Table 4 envelope, power linear in " +
		"busy cores); latencies are client-observed at the knee. Ratios are Type1-SmartNIC over Beefy; a class's ratio is the geometric mean " +
		"over its applications. On Beefy every instance runs on a host; on Type1 HCM chooses between host and SmartNIC by Table 1's demand and " +
		"the topology, and host traffic crosses the SmartNIC's traffic manager.",
	Run: runX4,
})

// appKnee places a on cluster with the simulator's default placer (HCM)
// unless mod changes the Config, and finds the knee.
func appKnee(o *Options, cluster string, a *app.App, mod func(*sim.Config)) (*sim.KneeResult, error) {
	_, topo, err := clusterTopology(cluster)
	if err != nil {
		return nil, err
	}
	cfg := sim.Config{Topology: topo, Apps: []sim.AppLoad{{App: a}}, Seed: o.Seed}
	if mod != nil {
		mod(&cfg)
	}
	return sim.Knee(cfg, o.kneeOptions())
}

// appNames are the applications an experiment runs: all eight of Table
// 3, or quick's two.
func (o *Options) appNames(quick ...string) []string {
	if o.Quick {
		return quick
	}
	return app.BuiltinNames()
}

type x4Result struct {
	apps     []string
	classes  []string
	clusters [2]string
	pts      [][2]point
}

func runX4(o Options) (Result, error) {
	names := o.appNames("NFV-FIN", "IOT-TS")
	res := &x4Result{apps: names, clusters: [2]string{"3xBeefy", "3xType1-SmartNIC"}, pts: make([][2]point, len(names))}
	res.classes = make([]string, len(names))
	err := o.parallel(len(names)*2, func(i int) error {
		name, c := names[i/2], i%2
		o.step("X4 %s on %s", name, res.clusters[c])
		a, err := builtin(name)
		if err != nil {
			return err
		}
		if c == 0 {
			res.classes[i/2] = string(a.Class)
		}
		k, err := appKnee(&o, res.clusters[c], a, nil)
		if err != nil {
			return fmt.Errorf("X4 %s on %s: %w", name, res.clusters[c], err)
		}
		res.pts[i/2][c] = pointOf(k.Offered, k.Knee)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *x4Result) ratios(i int) (rpj, avg, p99 float64) {
	b, s := r.pts[i][0], r.pts[i][1]
	return ratio(s.RPJ, b.RPJ), ratio(float64(s.Mean), float64(b.Mean)), ratio(float64(s.P99), float64(b.P99))
}

// classRatios returns the geometric means of the ratios per class, in the
// order NFV, RTA, IOT (classes without applications are left out).
func (r *x4Result) classRatios() (classes []string, rpj, avg, p99 []float64) {
	for _, c := range []string{"NFV", "RTA", "IOT"} {
		var a, b, d []float64
		for i := range r.apps {
			if r.classes[i] != c {
				continue
			}
			x, y, z := r.ratios(i)
			a, b, d = append(a, x), append(b, y), append(d, z)
		}
		if len(a) == 0 {
			continue
		}
		classes = append(classes, c)
		rpj, avg, p99 = append(rpj, geomean(a)), append(avg, geomean(b)), append(p99, geomean(d))
	}
	return
}

func (r *x4Result) Tables() []Table {
	t := Table{Title: "Each application at its knee on 3xBeefy and 3xType1-SmartNIC (model)",
		Columns: []string{"app", "class", "Beefy K RPS", "Beefy W", "Beefy RPJ", "Beefy avg µs", "Beefy p99 µs",
			"Type1 K RPS", "Type1 W", "Type1 RPJ", "Type1 avg µs", "Type1 p99 µs", "RPJ x", "avg latency x", "p99 latency x"}}
	for i, name := range r.apps {
		b, s := r.pts[i][0], r.pts[i][1]
		x, y, z := r.ratios(i)
		t.add(name, r.classes[i], b.Throughput/1e3, b.PowerW, b.RPJ, us(b.Mean), us(b.P99),
			s.Throughput/1e3, s.PowerW, s.RPJ, us(s.Mean), us(s.P99), x, y, z)
	}
	c := Table{Name: "classes", Title: "Per class: geometric mean of the Type1-SmartNIC / Beefy ratios",
		Columns: []string{"class", "RPJ x", "avg latency x", "p99 latency x"}}
	classes, a, b, d := r.classRatios()
	for k, cl := range classes {
		c.add(cl, a[k], b[k], d[k])
	}
	return []Table{t, c}
}

func pointJSON(p point) *obj {
	return newObj().
		set("throughput_rps", jnum(p.Throughput)).
		set("power_w", jnum(p.PowerW)).
		set("rpj", jnum(p.RPJ)).
		set("latency_avg_us", jnum(us(p.Mean))).
		set("latency_p99_us", jnum(us(p.P99)))
}

func (r *x4Result) JSON() any {
	out := newObj()
	for i, name := range r.apps {
		x, y, z := r.ratios(i)
		out.set(name, newObj().
			set("class", r.classes[i]).
			set("rpj_ratio", jnum(x)).
			set("latency_avg_ratio", jnum(y)).
			set("latency_p99_ratio", jnum(z)).
			set(r.clusters[0], pointJSON(r.pts[i][0])).
			set(r.clusters[1], pointJSON(r.pts[i][1])))
	}
	return out
}

func (r *x4Result) Figures() ([]Figure, error) {
	var rpj, avg, p99 [2]series
	for c := range 2 {
		rpj[c].Name, avg[c].Name, p99[c].Name = r.clusters[c], r.clusters[c], r.clusters[c]
		for i := range r.apps {
			p := r.pts[i][c]
			rpj[c].Y = append(rpj[c].Y, p.RPJ)
			avg[c].Y = append(avg[c].Y, us(p.Mean))
			p99[c].Y = append(p99[c].Y, us(p.P99))
		}
	}
	p1, err := bars("Energy efficiency at peak (model)", "requests per joule (log)", r.apps, rpj[:], true, false)
	if err != nil {
		return nil, err
	}
	p2, err := bars("Average latency at peak", "µs (log)", r.apps, avg[:], true, false)
	if err != nil {
		return nil, err
	}
	p3, err := bars("99th percentile latency at peak", "µs (log)", r.apps, p99[:], true, false)
	if err != nil {
		return nil, err
	}
	return []Figure{{Caption: "Requests per joule of cluster wall power, average and p99 latency at each application's knee, 3xBeefy against 3xType1-SmartNIC (log scales).",
		Panels: []*plot.Plot{p1, p2, p3}, Cols: 1}}, nil
}

func (r *x4Result) Notes() []string {
	classes, a, b, d := r.classRatios()
	var parts []string
	for k, c := range classes {
		parts = append(parts, fmt.Sprintf("%s %.2fx RPJ, %.2fx average and %.2fx p99 latency", c, a[k], b[k], d[k]))
	}
	var all, lat []float64
	worse := []string{}
	for i, name := range r.apps {
		x, y, _ := r.ratios(i)
		all, lat = append(all, x), append(lat, y)
		if x < 1 {
			worse = append(worse, name)
		}
	}
	notes := []string{fmt.Sprintf("Type1-SmartNIC over Beefy, per class (geometric means): %s. Over all applications: %.2fx RPJ at %.2fx the average latency.",
		joinList(parts), geomean(all), geomean(lat))}
	if len(worse) > 0 {
		notes = append(notes, fmt.Sprintf("Less efficient on Type1-SmartNIC than on Beefy in the model: %s. The Type1 server idles 15 W higher than Beefy (Table 4), "+
			"and its host traffic costs SmartNIC cores in the traffic manager.", joinList(worse)))
	}
	return notes
}
