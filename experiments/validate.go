package experiments

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/plot"

	"github.com/e3-platform/e3/cluster"
	"github.com/e3-platform/e3/loadgen"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/sim"
	"github.com/e3-platform/e3/topology"
)

// V1 checks the simulator against the emulated cluster (issue 6, item 5):
// the same application, cluster and placement in both engines, the knee
// found the same way, power modelled the same way.
var _ = registerValidation(&Experiment{
	ID:    "V1",
	Title: "Simulator against the emulated cluster",
	Paper: "validation",
	Workload: "IOT-TS and NFV-FIN, each alone on 3xType1-SmartNIC, placed once by cluster.PlanApp (HCM at the highest load it places) " +
		"and run with that placement by the emulated cluster (`e3 run`) and by the simulator",
	Measure: "peak throughput at the knee and energy efficiency (requests per joule of modelled whole-cluster wall power) in each engine, " +
		"and their ratio, simulated over emulated; they agree when both ratios are within 15 % of 1",
	Derivation: "The placement is cluster.PlanApp's, computed once and given to both engines (the emulated run's per-node instance counts are " +
		"checked against it). The emulated figures are `e3 run`'s, from cluster.Run itself: agents on loopback addresses running the real " +
		"microservices, every message holding an emulated core for its Table 1 service time (deterministic), latencies from sim.DefaultParams, " +
		"time dilated by the factor cluster.ChooseDilation picks, and a closed-loop client whose load loadgen.FindKnee raises from 4 " +
		"outstanding requests (doubling, bisecting, at most 12 measurements) until throughput stops rising or p99 latency triples. The " +
		"aligned simulation runs the same search, loadgen.FindKnee with the same settings, on sim.Run with the same number of closed-loop " +
		"clients per step and deterministic service times, so that the knee means the same in both. Power in both is each server's Table 4 " +
		"envelope at its mean busy host and SmartNIC cores over the measurement (cluster.PowerBetween, sim.Result.PowerW), traffic-manager " +
		"work included; RPJ is throughput over that power. For reference, the last rows give what `e3 sim` itself reports for this " +
		"placement: sim.Knee, open-loop Poisson probes with lognormal service times (CV 0.5), the definition X4 and X9 use. The emulation " +
		"runs in real time: each measurement lasts `e3 run`'s 400 ms, or longer where that would be under 3,000 requests at the " +
		"simulated knee's throughput (a large dilation shortens the emulated window), and a run during which the machine fell behind the dilated clock " +
		"(client efficiency, throughput x mean latency / outstanding, below 0.95 at some measurement: late timers cost an idle machine some of it, a busy one more) is repeated at twice the dilation, up to " +
		"three runs, judged on the emulated run alone. Its figures differ a little from run to run; the second table gives the dilation, step, share of messages " +
		"paced late, client efficiency and attempts. docs/experiments.md explains the differences between the engines that remain.",
	Measured: true,
	Run:      runV1,
})

// v1Cluster and v1Apps are the configuration issue 6 asks about.
var (
	v1Cluster = "3xType1-SmartNIC"
	v1Apps    = []string{"IOT-TS", "NFV-FIN"}
)

// V1Tolerance is the agreement asked for: simulated over emulated within
// 15 % of 1, for peak throughput and for requests per joule.
const V1Tolerance = 0.15

// The knee search of `e3 run` (cluster.Run): from 4 outstanding requests,
// at most 12 measurements, loadgen's defaults otherwise. The aligned
// simulation uses the same settings so that both engines find the knee by
// the same rule.
const (
	v1KneeStart    = 4
	v1KneeMaxSteps = 12
)

func v1KneeConfig() loadgen.KneeConfig {
	return loadgen.KneeConfig{Start: v1KneeStart, Integer: true, MaxSteps: v1KneeMaxSteps}
}

// v1Step returns the wall-clock length of one emulated knee measurement
// at dilation d: `e3 run`'s default (--duration 400 ms), or longer if that
// would be less than v1StepRequests requests at the throughput expected at
// the knee. `e3 run` fixes a step in real time, so its emulated window is
// the step over D, and D grows with how slow this machine is at the moment
// it is chosen (cluster.MeasureCosts): on a busy machine IOT-TS got D = 33
// instead of 8, a window of 12 ms emulated, a few hundred requests per
// measurement, over which the key hashes spread the load over the shards
// unevenly enough to move the knee from 64 to 31-51 outstanding requests
// between runs. The expected throughput is the simulator's knee, the only
// estimate of it there is before the run (placement's capacity estimate
// is twice NFV-FIN's knee); it sets how long the emulation measures,
// nothing that it measures. The same holds whatever Options.Quick says: a
// quick run saves its time in the simulations (Options.requests).
func v1Step(expectRPS, d float64) time.Duration {
	step := v1MinStep
	if expectRPS > 0 {
		step = max(step, time.Duration(v1StepRequests/expectRPS*d*1e9))
	}
	return step
}

const (
	v1MinStep      = 400 * time.Millisecond
	v1StepRequests = 3000
)

// v1Point is one engine's operating point at its knee.
type v1Point struct {
	point
	// Load is the knee's load: outstanding requests (closed loop) or the
	// offered rate (open loop).
	Load float64
}

// v1Node is one compute node's core time per completed request at the
// knee in each engine.
type v1Node struct {
	Name, Kind   string
	EmuUs, SimUs float64
}

// V1App is one application's comparison.
type V1App struct {
	Name          string
	OnNIC, OnHost int

	// Emu is `e3 run`'s knee; EmuCurve its knee search.
	Emu       v1Point
	EmuCurve  []loadgen.Point
	EmuReason string
	Dilation  float64
	Step      time.Duration // wall-clock length of a knee measurement
	Late      float64       // share of messages paced more than 5 µs late at the knee
	ErrorRate float64
	// ClientEff is the lowest client efficiency over the emulated curve:
	// throughput x mean latency / outstanding. Attempts is how many
	// emulated runs it took to get one whose efficiency is at least
	// v1MinClientEff (the best is kept if none is).
	ClientEff float64
	Attempts  int

	// Sim is the aligned simulation's knee; SimCurve its knee search.
	Sim       v1Point
	SimCurve  []loadgen.Point
	SimReason string
	// Open is sim.Knee's (open loop, lognormal): what `e3 sim` reports.
	Open v1Point

	Nodes []v1Node
}

// Ratios returns simulated over emulated throughput and RPJ, aligned and
// open-loop.
func (a *V1App) Ratios() (thr, rpj, openThr, openRPJ float64) {
	return ratio(a.Sim.Throughput, a.Emu.Throughput), ratio(a.Sim.RPJ, a.Emu.RPJ),
		ratio(a.Open.Throughput, a.Emu.Throughput), ratio(a.Open.RPJ, a.Emu.RPJ)
}

// Agree reports whether the aligned ratios are within V1Tolerance.
func (a *V1App) Agree() bool {
	thr, rpj, _, _ := a.Ratios()
	return within(thr) && within(rpj)
}

func within(r float64) bool { return !math.IsNaN(r) && math.Abs(r-1) <= V1Tolerance }

// V1Result is V1's result.
type V1Result struct {
	Apps []V1App
}

func runV1(o Options) (Result, error) {
	res := &V1Result{Apps: make([]V1App, len(v1Apps))}
	plans := make([]*cluster.Plan, len(v1Apps))
	// The simulations first, in parallel: they are cheap and do not care
	// about the machine.
	err := o.parallel(len(v1Apps), func(i int) error {
		name := v1Apps[i]
		a, err := builtin(name)
		if err != nil {
			return err
		}
		o.step("V1 %s: placing and simulating", name)
		plan, err := cluster.PlanApp(v1Cluster, a, "hcm", o.Seed)
		if err != nil {
			return fmt.Errorf("V1 %s: %w", name, err)
		}
		plans[i] = plan
		r := &res.Apps[i]
		r.Name, r.OnNIC, r.OnHost = a.Name, plan.Metrics.OnSmartNIC, plan.Metrics.OnHost
		return v1Simulate(&o, plan, r)
	})
	if err != nil {
		return nil, err
	}
	// The emulations one at a time: each needs the machine to itself.
	for i, plan := range plans {
		if err := v1Emulate(&o, plan, &res.Apps[i]); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// v1Simulate finds plan's knee in the simulator twice: by `e3 run`'s
// closed-loop search with deterministic service times, and by sim.Knee.
func v1Simulate(o *Options, plan *cluster.Plan, r *V1App) error {
	topo := plan.Problem.Topology()
	p := sim.DefaultParams()
	// The emulation holds a core for exactly the Table 1 mean.
	p.ServiceDist = sim.Deterministic
	run := func(n int, dur time.Duration) (*sim.Result, error) {
		return sim.Run(sim.Config{
			Topology: topo, Seed: o.Seed, Params: &p, Warmup: dur / 4, Duration: dur,
			Apps: []sim.AppLoad{{App: plan.App, Assignment: plan.Result.Assignment, Clients: sim.Closed(n)}},
		})
	}
	// A pilot run sizes the windows: each measurement aims at
	// o.requests() requests, its length from the throughput per
	// outstanding request seen so far (Little's law).
	pilot, err := run(v1KneeStart, 10*time.Millisecond)
	if err != nil {
		return fmt.Errorf("V1 %s: %w", r.Name, err)
	}
	if pilot.Throughput <= 0 {
		return fmt.Errorf("V1 %s: nothing completed in the simulator's pilot run", r.Name)
	}
	perClient := pilot.Throughput / v1KneeStart
	runs := map[int]*sim.Result{}
	kr, err := loadgen.FindKnee(v1KneeConfig(), func(load float64) (loadgen.Point, error) {
		n := int(math.Round(load))
		dur := max(time.Duration(float64(o.requests())/(perClient*load)*1e9), 2*time.Millisecond)
		s, err := run(n, dur)
		if err != nil {
			return loadgen.Point{}, err
		}
		runs[n] = s
		if s.Throughput > 0 {
			perClient = s.Throughput / load
		}
		a := s.Apps[0]
		return loadgen.Point{Load: load, Throughput: s.Throughput, Avg: a.Mean, P99: a.P99}, nil
	})
	if err != nil {
		return fmt.Errorf("V1 %s: simulated knee: %w", r.Name, err)
	}
	if kr.Outcome != loadgen.KneeFound {
		return fmt.Errorf("V1 %s: simulated knee %s: %s", r.Name, kr.Outcome, kr.Reason)
	}
	n := int(math.Round(kr.Knee.Load))
	knee := runs[n]
	r.Sim = v1Point{point: pointOf(float64(n), knee), Load: float64(n)}
	r.SimCurve, r.SimReason = kr.Curve, kr.Reason
	for _, nd := range knee.Nodes {
		r.Nodes = append(r.Nodes, v1Node{Name: nd.Name, Kind: nd.Kind, SimUs: nd.BusyCores / knee.Throughput * 1e6, EmuUs: math.NaN()})
	}

	op := sim.DefaultParams()
	k, err := sim.Knee(sim.Config{Topology: topo, Seed: o.Seed, Params: &op,
		Apps: []sim.AppLoad{{App: plan.App, Assignment: plan.Result.Assignment}}}, o.kneeOptions())
	if err != nil {
		return fmt.Errorf("V1 %s: sim.Knee: %w", r.Name, err)
	}
	r.Open = v1Point{point: pointOf(k.Offered, k.Knee), Load: k.Offered}
	return nil
}

// v1Emulate runs `e3 run` (cluster.Run) on the application of plan and
// records its knee. cluster.Run places the application itself, with the
// same function, algorithm and seed; the placement it reports must be
// plan's.
func v1Emulate(o *Options, plan *cluster.Plan, r *V1App) error {
	topo := plan.Problem.Topology()
	var best *cluster.Report
	bestEff := math.Inf(-1)
	for attempt := 1; attempt <= v1Attempts; attempt++ {
		o.step("V1 %s: emulating %s (attempt %d)", r.Name, plan.Cluster, attempt)
		// The dilation as cluster.Run would choose it, chosen here so that
		// the step can be sized for it; doubled at each repeat, so that a
		// machine that fell behind has twice the real time for the same
		// emulated work.
		costs, err := cluster.MeasureCosts(plan.App, 50*time.Millisecond)
		if err != nil {
			return fmt.Errorf("V1 %s: %w", r.Name, err)
		}
		d := cluster.ChooseDilation(plan, costs) * float64(int(1)<<(attempt-1))
		step := v1Step(r.Sim.Throughput, d)
		rep, err := cluster.Run(context.Background(), cluster.RunConfig{
			App: plan.App, Cluster: plan.Cluster, Algo: plan.Algo, Seed: o.Seed,
			Dilation: d, Step: step, MaxSteps: v1KneeMaxSteps,
			Progress: func(what string, _, _ int) { o.step("V1 %s: %s", r.Name, what) },
		})
		if err != nil {
			return fmt.Errorf("V1 %s: e3 run: %w", r.Name, err)
		}
		if err := samePlacement(topo, plan, rep); err != nil {
			return fmt.Errorf("V1 %s: %w", r.Name, err)
		}
		eff := clientEfficiency(rep.Curve)
		if best == nil || eff > bestEff {
			best, bestEff, r.Step = rep, eff, step
		}
		r.Attempts = attempt
		// Judged on the emulated run alone, never on the comparison.
		if eff >= v1MinClientEff {
			break
		}
	}
	rep := best
	r.ClientEff = bestEff
	r.Emu = v1Point{Load: float64(rep.Outstanding), point: point{
		Throughput: rep.ThroughputRPS, PowerW: rep.PowerW, RPJ: rep.RPJ,
		Mean: time.Duration(rep.LatencyAvgUs * 1e3), P99: time.Duration(rep.LatencyP99Us * 1e3),
	}}
	r.EmuCurve, r.EmuReason = rep.Curve, rep.Reason
	r.Dilation, r.Late, r.ErrorRate = rep.Dilation, rep.LateFraction, rep.ErrorRate
	for _, np := range rep.Placement {
		for i := range r.Nodes {
			if r.Nodes[i].Name != np.Node {
				continue
			}
			n, err := topo.Lookup(np.Node)
			if err != nil {
				return fmt.Errorf("V1 %s: %w", r.Name, err)
			}
			if rep.ThroughputRPS > 0 {
				r.Nodes[i].EmuUs = np.Utilization * float64(topo.Node(n).Cores) / rep.ThroughputRPS * 1e6
			}
		}
	}
	return nil
}

// A closed-loop client with no think time keeps its requests in flight all
// the time, so its throughput is outstanding / mean latency (Little's law)
// and their ratio, the client efficiency, is 1. The emulated client sends
// its next request when the reply reaches it in real time; when this
// machine falls behind the dilated clock (other work on it), replies reach
// it late, the efficiency drops, and so does the throughput measured,
// for reasons that have nothing to do with the emulated cluster. Even an
// idle machine costs some: Go timers fire up to about a millisecond late,
// which at NFV-FIN's D of about 340 is 3 µs of emulated time on a 42 µs
// round trip, an efficiency of about 0.92 from the first measurement on
// (seen in V1's curves). The threshold is 0.95 so that such a run is
// repeated at twice the dilation, halving that share. An
// emulated run whose efficiency falls below v1MinClientEff at any
// measurement is repeated at twice the dilation (emulated figures do not
// depend on D; the real time per emulated second does), up to v1Attempts
// runs in all, and the best one kept; the table reports the attempts, the
// dilation and the efficiency.
const (
	v1MinClientEff = 0.95
	v1Attempts     = 3
)

// clientEfficiency returns the lowest throughput x mean latency /
// outstanding over a closed-loop curve (NaN for an empty curve).
func clientEfficiency(curve []loadgen.Point) float64 {
	eff := math.Inf(1)
	for _, pt := range curve {
		if pt.Load > 0 && pt.Avg > 0 {
			eff = min(eff, pt.Throughput*pt.Avg.Seconds()/pt.Load)
		}
	}
	if math.IsInf(eff, 1) {
		return math.NaN()
	}
	return eff
}

// samePlacement checks that the emulated run placed every DAG node's
// instances on the nodes plan puts them on (counts per node and DAG node,
// backups included, which is what the report lists).
func samePlacement(t *topology.Topology, plan *cluster.Plan, rep *cluster.Report) error {
	want := map[string]map[string]int{}
	for i, n := range plan.Result.Assignment {
		if n == placement.Unassigned {
			continue
		}
		name := t.Name(n)
		if want[name] == nil {
			want[name] = map[string]int{}
		}
		want[name][plan.App.Instances()[i].Node.Name]++
	}
	for _, np := range rep.Placement {
		w := want[np.Node]
		for k, v := range np.Instances {
			if w[k] != v {
				return fmt.Errorf("the emulated run placed %d instances of %s on %s, the plan %d", v, k, np.Node, w[k])
			}
		}
		for k, v := range w {
			if np.Instances[k] != v {
				return fmt.Errorf("the emulated run placed %d instances of %s on %s, the plan %d", np.Instances[k], k, np.Node, v)
			}
		}
		delete(want, np.Node)
	}
	for n := range want {
		return fmt.Errorf("the emulated run reports nothing on %s, where the plan puts instances", n)
	}
	return nil
}

func (r *V1Result) Tables() []Table {
	t := Table{Title: "Peak throughput and energy efficiency at the knee, emulated (`e3 run`) and simulated, same placement; ratios simulated over emulated",
		Columns: []string{"app", "engine", "knee load", "K RPS", "power W", "RPJ", "avg µs", "p99 µs", "throughput x", "RPJ x", "within 15 %"}}
	for i := range r.Apps {
		a := &r.Apps[i]
		thr, rpj, othr, orpj := a.Ratios()
		t.add(a.Name, "emulated (e3 run)", fmt.Sprintf("%d outstanding", int(a.Emu.Load)), a.Emu.Throughput/1e3, a.Emu.PowerW, a.Emu.RPJ, us(a.Emu.Mean), us(a.Emu.P99), "", "", "")
		t.add(a.Name, "simulated, aligned", fmt.Sprintf("%d outstanding", int(a.Sim.Load)), a.Sim.Throughput/1e3, a.Sim.PowerW, a.Sim.RPJ, us(a.Sim.Mean), us(a.Sim.P99), thr, rpj, yesNo(a.Agree()))
		t.add(a.Name, "simulated, e3 sim's knee", fmt.Sprintf("%s RPS offered", si(a.Open.Load)), a.Open.Throughput/1e3, a.Open.PowerW, a.Open.RPJ, us(a.Open.Mean), us(a.Open.P99), othr, orpj, yesNo(within(othr) && within(orpj)))
	}
	e := Table{Name: "emulation", Title: "How the emulated runs went",
		Columns: []string{"app", "SmartNIC instances", "host instances", "dilation D", "step s (real)", "knee search", "late messages at the knee", "errors at the knee", "lowest client efficiency", "attempts"}}
	for i := range r.Apps {
		a := &r.Apps[i]
		e.add(a.Name, a.OnNIC, a.OnHost, a.Dilation, a.Step.Seconds(), a.EmuReason, a.Late, a.ErrorRate, a.ClientEff, a.Attempts)
	}
	nt := Table{Name: "nodes", Title: "Core time per completed request at the knee, by compute node (µs; traffic-manager work included)",
		Columns: []string{"app", "node", "kind", "emulated µs", "simulated µs", "emulated / simulated"}}
	for i := range r.Apps {
		a := &r.Apps[i]
		for _, n := range a.Nodes {
			nt.add(a.Name, n.Name, n.Kind, n.EmuUs, n.SimUs, ratio(n.EmuUs, n.SimUs))
		}
	}
	c := Table{Name: "curves", Title: "The knee searches: each measurement of both engines",
		Columns: []string{"app", "engine", "outstanding", "K RPS", "avg µs", "p99 µs"}}
	for i := range r.Apps {
		a := &r.Apps[i]
		for _, p := range a.EmuCurve {
			c.add(a.Name, "emulated", int(p.Load), p.Throughput/1e3, us(p.Avg), us(p.P99))
		}
		for _, p := range a.SimCurve {
			c.add(a.Name, "simulated", int(p.Load), p.Throughput/1e3, us(p.Avg), us(p.P99))
		}
	}
	return []Table{t, e, nt, c}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func v1PointJSON(p v1Point, load string) *obj {
	return newObj().set(load, jnum(p.Load)).
		set("throughput_rps", jnum(p.Throughput)).
		set("power_w", jnum(p.PowerW)).
		set("rpj", jnum(p.RPJ)).
		set("latency_avg_us", jnum(us(p.Mean))).
		set("latency_p99_us", jnum(us(p.P99)))
}

func (r *V1Result) JSON() any {
	apps := newObj()
	for i := range r.Apps {
		a := &r.Apps[i]
		thr, rpj, othr, orpj := a.Ratios()
		emu := v1PointJSON(a.Emu, "outstanding").
			set("dilation", jnum(a.Dilation)).
			set("step_s", jnum(a.Step.Seconds())).
			set("late_fraction", jnum(a.Late)).
			set("error_rate", jnum(a.ErrorRate)).
			set("client_efficiency_min", jnum(a.ClientEff)).
			set("attempts", a.Attempts).
			set("knee_reason", a.EmuReason)
		nodes := newObj()
		for _, n := range a.Nodes {
			nodes.set(n.Name, newObj().set("kind", n.Kind).set("emulated_us_per_request", jnum(n.EmuUs)).set("simulated_us_per_request", jnum(n.SimUs)))
		}
		apps.set(a.Name, newObj().
			set("placement", newObj().set("on_smartnic", a.OnNIC).set("on_host", a.OnHost)).
			set("emulated", emu).
			set("simulated", v1PointJSON(a.Sim, "outstanding").set("service_times", sim.Deterministic.String()).set("knee_reason", a.SimReason)).
			set("simulated_open_loop", v1PointJSON(a.Open, "offered_rps").set("service_times", sim.Lognormal.String())).
			set("throughput_ratio", jnum(thr)).
			set("rpj_ratio", jnum(rpj)).
			set("agree", a.Agree()).
			set("open_loop_throughput_ratio", jnum(othr)).
			set("open_loop_rpj_ratio", jnum(orpj)).
			set("nodes", nodes))
	}
	return newObj().set("cluster", v1Cluster).set("tolerance", V1Tolerance).set("apps", apps)
}

func (r *V1Result) Figures() ([]Figure, error) {
	var panels []*plot.Plot
	for i := range r.Apps {
		a := &r.Apps[i]
		curve := func(name string, pts []loadgen.Point) series {
			s := series{Name: name}
			for _, p := range pts {
				s.X = append(s.X, p.Load)
				s.Y = append(s.Y, p.Throughput/1e3)
			}
			return s
		}
		knee := func(name string, p v1Point) series {
			return series{Name: name, X: []float64{p.Load}, Y: []float64{p.Throughput / 1e3}}
		}
		p, err := lines(fmt.Sprintf("%s on %s", a.Name, v1Cluster), "outstanding requests (closed loop)", "throughput (K requests/s)",
			[]series{curve("emulated (e3 run)", a.EmuCurve), curve("simulated, aligned", a.SimCurve),
				knee("emulated knee", a.Emu), knee("simulated knee", a.Sim)}, true, false)
		if err != nil {
			return nil, err
		}
		p.Legend.Left = true
		p.Y.Min = 0
		panels = append(panels, p)
	}
	return []Figure{{Caption: "The knee searches of both engines on the same placement: throughput against closed-loop clients, " +
		"each measurement of the emulated cluster (`e3 run`) and of the simulator with the same search and deterministic service times; " +
		"the knee each search settled on is marked.", Panels: panels}}, nil
}

func (r *V1Result) Notes() []string {
	var parts, bad []string
	for i := range r.Apps {
		a := &r.Apps[i]
		thr, rpj, othr, orpj := a.Ratios()
		parts = append(parts, fmt.Sprintf("%s throughput %s, RPJ %s (e3 sim's own knee: %s, %s)", a.Name, pct(thr-1), pct(rpj-1), pct(othr-1), pct(orpj-1)))
		if !a.Agree() {
			bad = append(bad, a.Name)
		}
	}
	verdict := "Both applications agree within 15 %."
	if len(bad) > 0 {
		verdict = fmt.Sprintf("%s: outside 15 %%.", joinList(bad))
	}
	notes := []string{"Simulated over emulated, same placement and knee rule: " + joinList(parts) + ". " + verdict}
	// The node whose core time per request differs most between the
	// engines, per application: where the engines' accounting differs.
	for i := range r.Apps {
		a := &r.Apps[i]
		var worst *v1Node
		for k := range a.Nodes {
			n := &a.Nodes[k]
			if math.IsNaN(n.EmuUs) || n.SimUs == 0 {
				continue
			}
			if worst == nil || math.Abs(n.EmuUs/n.SimUs-1) > math.Abs(worst.EmuUs/worst.SimUs-1) {
				worst = n
			}
		}
		if worst != nil {
			notes = append(notes, fmt.Sprintf("%s: core time per request differs most on %s (%s): %.2f µs emulated against %.2f µs simulated (%s).",
				a.Name, worst.Name, worst.Kind, worst.EmuUs, worst.SimUs, pct(worst.EmuUs/worst.SimUs-1)))
		}
		if a.ClientEff < v1MinClientEff {
			notes = append(notes, fmt.Sprintf("%s: in the best of %d emulated runs the client still delivered only %.0f %% of what its latency allows "+
				"at one measurement (throughput x latency / outstanding): the machine fell behind the dilated clock there, which lowers the emulated throughput.", a.Name, a.Attempts, 100*a.ClientEff))
		}
	}
	return notes
}

// validations are the experiments that check one engine against another
// rather than reproduce the paper; `e3 sim all` runs them after X1..X12.
var validations []*Experiment

func registerValidation(e *Experiment) *Experiment {
	validations = append(validations, e)
	return e
}

// Validations returns the validation experiments (V1) in order.
func Validations() []*Experiment { return slices.Clone(validations) }

// Reported returns what `e3 sim all` runs and RESULTS.md reports: X1..X12,
// then the validations.
func Reported() []*Experiment { return append(All(), Validations()...) }
