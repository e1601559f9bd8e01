package experiments

import (
	"fmt"
	"strings"
	"time"

	"gonum.org/v1/plot"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/sim"
	"github.com/e3-platform/e3/topology"
)

var _ = register(&Experiment{
	ID:       "X6",
	Title:    "SmartNIC overload and host starvation, with and without the data-plane orchestrator",
	Paper:    "Figure 7",
	Workload: "each of the 8 applications alone on 3xType1-SmartNIC with as many microservices on SmartNICs as fit in their memory, open-loop load at the knee of HCM's placement; without and with the data-plane orchestrator",
	Measure:  "which microservices are migrated, throughput, energy efficiency and latency per application",
	Derivation: "For each application the knee of its HCM placement on 3xType1-SmartNIC is found as in X4, and that load is offered " +
		"(open-loop Poisson): a load the cluster serves when placed by HCM. The instances are then placed by memory alone: primaries " +
		"first, then backups, each on the next SmartNIC whose 4 GB still hold it (pinning and fault domains respected), else on a host. " +
		"The run lasts 3.5 s of virtual time and is measured over its last 0.5 s. Without the orchestrator the placement stays; with it, " +
		"package orchestrator (the controller's own code, default settings: 50 ms heartbeats; host starvation when a SmartNIC's traffic-manager " +
		"queue stands above 32 packets for 3 heartbeats while its ports carry less than half their rate; microservice overload when an " +
		"execution time exceeds its moving average by 20 % for 3 heartbeats; 1 s between migrations off one node) receives every node's " +
		"heartbeat in its wire format, and the simulator carries out its Migrate actions as cold migrations (20 ms plus the state over the " +
		"path's slowest link). Heartbeats carry each instance's mean execution time on a core; the simulator models no co-execution " +
		"interference, so that time does not rise with load and only the starvation detector can fire (docs/MODEL.md, \"Experiments\"). " +
		"Where the orchestrator orders nothing its run only observed, and it stands for the run without it. HCM's own placement at the same " +
		"load, measured like a knee probe, is shown for reference.",
	Run: runX6,
})

// x6LoadFraction is X6's offered load as a fraction of the knee of the
// HCM placement: a load the cluster serves when placed for it, so that
// what goes wrong is the memory-only placement.
const x6LoadFraction = 1.0

// x6Warmup and x6Window: the orchestrator acts from the start; the result
// is measured over the window after the warm-up, by when it has had time
// for a few migrations per SmartNIC (each waits 1 s after the last off
// the same node).
const (
	x6Warmup = 3 * time.Second
	x6Window = 500 * time.Millisecond
)

type x6Result struct {
	apps      []string
	offered   []float64
	onNIC     []int // primaries the packing put on SmartNICs
	primaries []int
	// pts: HCM placement, packed without orchestrator, packed with.
	pts       [][3]point
	decisions [][]orchDecision
	moved     [][]sim.Migration
	// same marks the applications for which the orchestrator ordered no
	// migration, whose run without it is the run with it.
	same []bool
}

var x6Runs = [3]string{"HCM placement", "packed, no orchestrator", "packed, orchestrator"}

func runX6(o Options) (Result, error) {
	// Quick: IOT-TS alone, whose packed SmartNICs starve their hosts, so
	// the orchestrator acts within a short run.
	names := o.appNames("IOT-TS")
	warm, win := x6Warmup, x6Window
	if o.Quick {
		warm, win = 1500*time.Millisecond, 200*time.Millisecond
	}
	const cluster = "3xType1-SmartNIC"
	_, topo, err := clusterTopology(cluster)
	if err != nil {
		return nil, err
	}
	n := len(names)
	res := &x6Result{apps: names, offered: make([]float64, n), onNIC: make([]int, n), primaries: make([]int, n),
		pts: make([][3]point, n), decisions: make([][]orchDecision, n), moved: make([][]sim.Migration, n), same: make([]bool, n)}
	knees := make([]*sim.KneeResult, n)
	err = o.parallel(n, func(i int) error {
		o.step("X6 %s knee", names[i])
		a, err := builtin(names[i])
		if err != nil {
			return err
		}
		k, err := appKnee(&o, cluster, a, nil)
		if err != nil {
			return fmt.Errorf("X6 %s: %w", names[i], err)
		}
		knees[i] = k
		res.offered[i] = x6LoadFraction * k.PeakRPS
		return nil
	})
	if err != nil {
		return nil, err
	}
	// run measures application i with placement run (0: HCM, 1: packed,
	// 2: packed with the orchestrator).
	run := func(i, run int) error {
		o.step("X6 %s: %s", names[i], x6Runs[run])
		a, err := builtin(names[i])
		if err != nil {
			return err
		}
		rate := res.offered[i]
		assign := knees[i].Knee.Apps[0].Assignment
		if run > 0 {
			assign, err = packedAssignment(topo, a, rate)
			if err != nil {
				return fmt.Errorf("X6 %s: %w", names[i], err)
			}
			res.onNIC[i], res.primaries[i] = countOnNIC(a, assign, topo)
		}
		cfg := sim.Config{Topology: topo, Seed: o.Seed, Warmup: warm, Duration: win,
			Apps: []sim.AppLoad{{App: a, Assignment: assign, Clients: sim.Open(rate)}}}
		if run == 0 {
			// HCM's placement is static and below its knee: a short run
			// measures it, as a knee probe would.
			cfg.Warmup, cfg.Duration = o.window(rate)
		}
		var ad *orchAdapter
		if run == 2 {
			ad, err = newOrchAdapter(topo, []*app.App{a}, []placement.Assignment{assign}, []float64{rate})
			if err != nil {
				return fmt.Errorf("X6 %s: orchestrator: %w", names[i], err)
			}
			cfg.Orchestrator = ad
		}
		r, err := sim.Run(cfg)
		if err != nil {
			return fmt.Errorf("X6 %s, %s: %w", names[i], x6Runs[run], err)
		}
		if ad != nil && ad.err != nil {
			return fmt.Errorf("X6 %s: orchestrator adapter: %w", names[i], ad.err)
		}
		res.pts[i][run] = pointOf(rate, r)
		if run == 2 {
			res.decisions[i] = ad.Decisions
			res.moved[i] = r.Migrations
		}
		return nil
	}
	err = o.parallel(n*2, func(j int) error { return run(j/2, 2*(j%2)) })
	if err != nil {
		return nil, err
	}
	// Without the orchestrator. Where it ordered nothing, the run with it
	// only observed and is the run without it: it is not repeated.
	err = o.parallel(n, func(i int) error {
		if len(res.moved[i]) == 0 {
			res.pts[i][1] = res.pts[i][2]
			res.same[i] = true
			return nil
		}
		return run(i, 1)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// packedAssignment places a by memory alone (placement.PackByMemory) for rate
// requests a second on an empty cluster.
func packedAssignment(topo *topology.Topology, a *app.App, rate float64) (placement.Assignment, error) {
	cl, err := placement.NewCluster(topo)
	if err != nil {
		return nil, err
	}
	p, err := placement.FromApp(a, placement.NewLoad(cl), rate)
	if err != nil {
		return nil, err
	}
	return placement.PackByMemory(p), nil
}

// countOnNIC counts a's primaries and those assign puts on SmartNICs.
func countOnNIC(a *app.App, assign placement.Assignment, topo *topology.Topology) (nic, primaries int) {
	for k, in := range a.Instances() {
		if !in.IsPrimary() {
			continue
		}
		primaries++
		if n := assign[k]; n >= 0 && topo.Node(n).Kind == topology.SmartNIC {
			nic++
		}
	}
	return nic, primaries
}

func (r *x6Result) Tables() []Table {
	t := Table{Title: "Memory-packed SmartNICs with and without the orchestrator, 3xType1-SmartNIC at HCM's knee, last 0.5 s of 3.5 (model)",
		Columns: []string{"app", "offered K RPS", "primaries on SmartNICs", "run", "throughput K RPS", "power W", "RPJ", "avg µs", "p99 µs", "migrations"}}
	for i, name := range r.apps {
		for run := range 3 {
			p := r.pts[i][run]
			mig, label := "", x6Runs[run]
			if run == 2 {
				mig = fmt.Sprint(len(r.moved[i]))
			}
			if run == 1 && r.same[i] {
				label += " (= with: none ordered)"
			}
			t.add(name, r.offered[i]/1e3, fmt.Sprintf("%d of %d", r.onNIC[i], r.primaries[i]), label,
				p.Throughput/1e3, p.PowerW, p.RPJ, us(p.Mean), us(p.P99), mig)
		}
	}
	m := Table{Name: "migrations", Title: "Migrations the orchestrator ordered",
		Columns: []string{"app", "at ms", "instance", "service", "from", "to", "cause"}}
	for i, name := range r.apps {
		for _, d := range r.decisions[i] {
			m.add(name, float64(d.At)/1e6, d.Instance, d.Service, d.From, d.To, d.Why)
		}
	}
	return []Table{t, m}
}

func (r *x6Result) JSON() any {
	out := newObj()
	keys := [3]string{"hcm", "packed", "packed_orchestrator"}
	for i, name := range r.apps {
		s := newObj().set("offered_rps", jnum(r.offered[i])).set("primaries_on_smartnics", r.onNIC[i]).set("primaries", r.primaries[i])
		for run := range 3 {
			s.set(keys[run], pointJSON(r.pts[i][run]))
		}
		var mig []any
		for _, d := range r.decisions[i] {
			mig = append(mig, newObj().set("at_ms", jnum(float64(d.At)/1e6)).set("instance", d.Instance).set("service", d.Service).
				set("from", d.From).set("to", d.To).set("cause", d.Why))
		}
		if mig == nil {
			mig = []any{}
		}
		s.set("migrations", mig)
		out.set(name, s)
	}
	return out
}

func (r *x6Result) Figures() ([]Figure, error) {
	var rpj, p99 [3]series
	for run := range 3 {
		rpj[run].Name, p99[run].Name = x6Runs[run], x6Runs[run]
		for i := range r.apps {
			rpj[run].Y = append(rpj[run].Y, r.pts[i][run].RPJ)
			p99[run].Y = append(p99[run].Y, us(r.pts[i][run].P99))
		}
	}
	p1, err := bars("Energy efficiency (model)", "requests per joule (log)", r.apps, rpj[:], true, false)
	if err != nil {
		return nil, err
	}
	p2, err := bars("99th percentile latency", "µs (log)", r.apps, p99[:], true, false)
	if err != nil {
		return nil, err
	}
	return []Figure{{Caption: "Requests per joule and p99 latency with SmartNICs packed by memory, without and with the data-plane orchestrator, beside HCM's placement; 3xType1-SmartNIC at HCM's knee.",
		Panels: []*plot.Plot{p1, p2}, Cols: 1}}, nil
}

func (r *x6Result) Notes() []string {
	var notes []string
	var inert []string
	for i, name := range r.apps {
		h, p, w := r.pts[i][0], r.pts[i][1], r.pts[i][2]
		done := func(q point) float64 { return 100 * q.Throughput / r.offered[i] }
		if len(r.moved[i]) == 0 {
			if done(p) >= 99 {
				notes = append(notes, fmt.Sprintf("%s: SmartNICs packed by memory (%d of %d primaries) carry the load without help: %.0f %% completes, p99 %s, %.0f RPJ against %.0f with HCM's placement.",
					name, r.onNIC[i], r.primaries[i], done(p), lat(p.P99), p.RPJ, h.RPJ))
			} else {
				inert = append(inert, name)
				notes = append(notes, fmt.Sprintf("%s: the packed SmartNICs are overloaded (%.0f %% of the offered load completes, p99 %s) and the orchestrator orders nothing (see below).",
					name, done(p), lat(p.P99)))
			}
			continue
		}
		svc := map[string]int{}
		var order []string
		for _, d := range r.decisions[i] {
			if svc[d.Service] == 0 {
				order = append(order, d.Service)
			}
			svc[d.Service]++
		}
		var moved []string
		for _, s := range order {
			moved = append(moved, fmt.Sprintf("%d %s", svc[s], s))
		}
		drain := ""
		if done(w) > 100.5 {
			drain = " (above 100 %: requests queued before the migrations drain in the window)"
		}
		notes = append(notes, fmt.Sprintf("%s: packed, %.0f %% of the offered load completes (p99 %s, %.0f RPJ); the orchestrator migrates %s to hosts, after which %.0f %% completes%s (p99 %s, %.0f RPJ; HCM's placement %.0f RPJ, p99 %s).",
			name, done(p), lat(p.P99), p.RPJ, strings.Join(moved, ", "), done(w), drain, lat(w.P99), w.RPJ, h.RPJ, lat(h.P99)))
	}
	if len(inert) > 0 {
		notes = append(notes, fmt.Sprintf("Why the orchestrator does nothing for %s: their packed SmartNICs hold every instance that takes traffic, so no packet for a host queues at a "+
			"traffic manager and host starvation cannot be seen; and the overload detector compares execution times with their moving average, "+
			"while the simulator models no co-execution interference, so an instance's execution time does not rise with load. On real SmartNICs "+
			"contention would raise it. This is a limit of the simulation, reported rather than patched.", joinList(inert)))
	}
	return notes
}
