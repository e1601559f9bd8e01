package experiments

import (
	"fmt"
	"math"
	"strconv"

	"gonum.org/v1/plot"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/sim"
)

var _ = register(&Experiment{
	ID:       "X5",
	Title:    "Cluster power against offered load",
	Paper:    "Figure 8",
	Workload: "NFV-FIN, RTA-SHM and IOT-TS, each alone on 3xType1-SmartNIC, offered load from idle to peak by a client-side rate limiter",
	Measure:  "cluster wall power normalised to idle power, per load level",
	Derivation: "Each application is placed by HCM and its knee found as in X4; the placement is then kept and closed-loop clients send through " +
		"a client-side rate limiter (a token bucket in the simulator's client model) capped at 10 %, 20 %, ..., 100 % of the knee throughput. " +
		"The clients are numerous enough never to be the limit (twice the knee throughput times the knee's mean latency, by Little's law, plus " +
		"eight). Power is the cluster's modelled wall power over the measured window, divided by its idle power (Table 4: 3 x 98 W); the 0 % point " +
		"is idle by definition, not a run. In the model a server's power is linear in its busy cores, so the curve shows how busy cores follow " +
		"load, including the SmartNIC traffic manager's forwarding for the hosts.",
	Run: runX5,
})

// x5Apps are the applications of Figure 8.
var x5Apps = []string{"NFV-FIN", "RTA-SHM", "IOT-TS"}

// x5Levels are the load levels, as fractions of the knee throughput.
var x5Levels = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1}

type x5Result struct {
	apps   []string
	levels []float64
	knee   []float64
	idleW  []float64
	pts    [][]point // per app, per level
}

func runX5(o Options) (Result, error) {
	apps, levels := x5Apps, x5Levels
	if o.Quick {
		apps, levels = []string{"NFV-FIN"}, []float64{0.5, 1}
	}
	const cluster = "3xType1-SmartNIC"
	_, topo, err := clusterTopology(cluster)
	if err != nil {
		return nil, err
	}
	res := &x5Result{apps: apps, levels: levels, knee: make([]float64, len(apps)), idleW: make([]float64, len(apps)), pts: make([][]point, len(apps))}
	kr := make([]*sim.KneeResult, len(apps))
	err = o.parallel(len(apps), func(i int) error {
		o.step("X5 %s knee", apps[i])
		a, err := builtin(apps[i])
		if err != nil {
			return err
		}
		k, err := appKnee(&o, cluster, a, nil)
		if err != nil {
			return fmt.Errorf("X5 %s: %w", apps[i], err)
		}
		kr[i] = k
		res.knee[i] = k.PeakRPS
		res.idleW[i] = k.Knee.IdleW
		res.pts[i] = make([]point, len(levels))
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = o.parallel(len(apps)*len(levels), func(j int) error {
		i, l := j/len(levels), j%len(levels)
		o.step("X5 %s at %.0f %%", apps[i], levels[l]*100)
		a, err := builtin(apps[i])
		if err != nil {
			return err
		}
		rate := levels[l] * res.knee[i]
		n := int(math.Ceil(2*res.knee[i]*kr[i].Knee.Apps[0].Mean.Seconds())) + 8
		warm, dur := o.window(rate)
		r, err := sim.Run(sim.Config{Topology: topo, Seed: o.Seed, Warmup: warm, Duration: dur,
			Apps: []sim.AppLoad{{App: a, Assignment: kr[i].Knee.Apps[0].Assignment, Clients: sim.Clients{Outstanding: n, Rate: rate}}}})
		if err != nil {
			return fmt.Errorf("X5 %s at %.0f %%: %w", apps[i], levels[l]*100, err)
		}
		res.pts[i][l] = pointOf(rate, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *x5Result) norm(i, l int) float64 { return r.pts[i][l].PowerW / r.idleW[i] }

func (r *x5Result) Tables() []Table {
	t := Table{Title: "Cluster power against offered load on 3xType1-SmartNIC (model)",
		Columns: []string{"app", "load % of knee", "offered K RPS", "throughput K RPS", "power W", "power / idle", "avg µs", "p99 µs"}}
	for i, name := range r.apps {
		t.add(name, 0, 0.0, 0.0, r.idleW[i], 1.0, "", "")
		for l, f := range r.levels {
			p := r.pts[i][l]
			t.add(name, f*100, p.Offered/1e3, p.Throughput/1e3, p.PowerW, r.norm(i, l), us(p.Mean), us(p.P99))
		}
	}
	return []Table{t}
}

func (r *x5Result) JSON() any {
	out := newObj()
	for i, name := range r.apps {
		lv := newObj().set("0", newObj().set("offered_rps", 0.0).set("throughput_rps", 0.0).set("power_w", jnum(r.idleW[i])).set("power_over_idle", 1.0))
		for l, f := range r.levels {
			p := r.pts[i][l]
			lv.set(strconv.Itoa(int(math.Round(f*100))), newObj().
				set("offered_rps", jnum(p.Offered)).
				set("throughput_rps", jnum(p.Throughput)).
				set("power_w", jnum(p.PowerW)).
				set("power_over_idle", jnum(r.norm(i, l))))
		}
		out.set(name, newObj().set("knee_rps", jnum(r.knee[i])).set("idle_w", jnum(r.idleW[i])).set("levels", lv))
	}
	return out
}

func (r *x5Result) Figures() ([]Figure, error) {
	var ss []series
	for i, name := range r.apps {
		s := series{Name: name, X: []float64{0}, Y: []float64{1}}
		for l, f := range r.levels {
			s.X = append(s.X, f*100)
			s.Y = append(s.Y, r.norm(i, l))
		}
		ss = append(ss, s)
	}
	p, err := lines("Cluster power against load, 3xType1-SmartNIC (model)", "offered load (% of the knee throughput)", "wall power / idle power", ss, false, false)
	if err != nil {
		return nil, err
	}
	p.Legend.Left = true
	p.Y.Min = 1
	return []Figure{{Caption: "Whole-cluster wall power, normalised to idle, as the client-side rate limiter raises the load from idle to the knee.", Panels: []*plot.Plot{p}}}, nil
}

func (r *x5Result) Notes() []string {
	var parts []string
	for i, name := range r.apps {
		last := len(r.levels) - 1
		dyn := r.norm(i, last) - 1
		// How far from proportional: the share of the dynamic range drawn
		// at the lowest level, against that level's share of the load.
		low := (r.norm(i, 0) - 1) / dyn
		parts = append(parts, fmt.Sprintf("%s %.2fx idle at the knee (%.0f %% of its dynamic range drawn at %.0f %% load)", name, r.norm(i, last), low*100, r.levels[0]*100))
	}
	return []string{"Power at the knee over idle power: " + joinList(parts) + ".",
		fmt.Sprintf("Above idle, power rises linearly with load except at the lowest level, where each Xeon host's uncore (%.1f W on a Type1 server in hwmodel, "+
			"waking with its first busy core) is drawn almost in full; busy cores themselves follow the requests served. Idle power (3 x %.0f W) is what keeps the cluster "+
			"far from energy-proportional.", hwmodel.Type1SmartNIC.HostUncoreW(), hwmodel.Type1SmartNIC.IdleW)}
}
