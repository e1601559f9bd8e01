package cluster

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/loadgen"
	"github.com/e3-platform/e3/orchestrator"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/sim"
	"github.com/e3-platform/e3/topology"
)

// Experiment X6 (the paper's Figure 7) on the emulated cluster: as many
// microservices on SmartNICs as fit in their memory, then the same open
// load with the data-plane orchestrator off and on. The simulator runs
// the same experiment at scale (`e3 sim X6`); here the orchestrator's
// decisions are carried out by real cold migrations of running instances
// with their state.

// X6Config configures [RunX6].
type X6Config struct {
	// App is the application (a built-in, or a spec).
	App *app.App
	// Cluster defaults to 3xType1-SmartNIC.
	Cluster string
	Seed    uint64
	// OfferedRPS is the open-loop load (emulated requests a second); 0
	// takes the knee of HCM's placement of App on Cluster found by the
	// simulator, the load X6 offers in `e3 sim X6`: one the cluster serves
	// when it is placed for it.
	OfferedRPS float64
	// Dilation overrides the choice when positive.
	Dilation float64
	// Warmup and Window are the emulated time before the measurement and
	// the measurement itself (defaults 1.5 s and 0.5 s, the orchestrator
	// waiting 1 s between migrations off one SmartNIC). MaxReal, if
	// positive, shortens both in proportion so that a run takes at most
	// that much wall-clock time (applications whose dilation is in the
	// hundreds).
	Warmup, Window, MaxReal time.Duration
	// State is where stateful instances keep their state (default disk:
	// migrations move durable stores).
	State StateMode
	// Progress, if set, hears what is happening.
	Progress func(string)
	// onOnly skips the run without the orchestrator (tests).
	onOnly bool
}

// X6Report is the outcome of [RunX6].
type X6Report struct {
	App     string `json:"app"`
	Cluster string `json:"cluster"`
	State   string `json:"state"`
	// OfferedRPS is the load offered in both runs; OnSmartNIC of
	// Primaries are the primaries the packing put on SmartNICs.
	OfferedRPS float64 `json:"offered_rps"`
	OnSmartNIC int     `json:"primaries_on_smartnic"`
	Primaries  int     `json:"primaries"`
	Dilation   float64 `json:"dilation"`
	// WarmupMs and WindowMs are the emulated warm-up and measurement.
	WarmupMs float64 `json:"warmup_ms"`
	WindowMs float64 `json:"window_ms"`
	// Off and On are the runs without and with the orchestrator.
	Off, On X6Run   `json:"-"`
	Runs    []X6Run `json:"runs"`
}

// X6Run is one run of X6.
type X6Run struct {
	Orchestrator  bool    `json:"orchestrator"`
	ThroughputRPS float64 `json:"throughput_rps"`
	PowerW        float64 `json:"power_w"`
	RPJ           float64 `json:"rpj"`
	AvgUs         float64 `json:"latency_avg_us"`
	P99Us         float64 `json:"latency_p99_us"`
	// Completed counts requests answered without error in the whole run;
	// ErrorRate is the share of the run's requests that failed, timed
	// out or were shed.
	Completed int64   `json:"completed"`
	ErrorRate float64 `json:"error_rate"`
	// Moves are the migrations the orchestrator ordered, with outcome.
	Moves        []X6Move `json:"migrations"`
	LateFraction float64  `json:"late_fraction"`
	RealSeconds  float64  `json:"real_seconds"`
}

// X6Move is one migration of an X6 run.
type X6Move struct {
	AtMs      float64 `json:"at_ms"`
	Instance  string  `json:"instance"`
	Service   string  `json:"service"`
	From      string  `json:"from"`
	To        string  `json:"to"`
	Cause     string  `json:"cause"`
	Committed bool    `json:"committed"`
	// DurationMs and PauseMs are emulated: the whole migration, and how
	// long its source held new messages; DrainMs and ShipMs split the
	// source's work before the destination's acknowledgement. Held is
	// the number of messages held.
	DurationMs float64 `json:"duration_ms"`
	PauseMs    float64 `json:"pause_ms"`
	DrainMs    float64 `json:"drain_ms"`
	ShipMs     float64 `json:"ship_ms"`
	Held       int     `json:"held"`
	Bytes      int     `json:"state_bytes"`
	// Reason says why a migration was called off.
	Reason string `json:"reason,omitempty"`
}

// RunX6 runs experiment X6 for one application: the packed placement at
// the offered load, without and then with the orchestrator.
func RunX6(ctx context.Context, cfg X6Config) (*X6Report, error) {
	if cfg.App == nil {
		return nil, fmt.Errorf("cluster: X6: no application")
	}
	if cfg.Cluster == "" {
		cfg.Cluster = "3xType1-SmartNIC"
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 1500 * time.Millisecond
	}
	if cfg.Window == 0 {
		cfg.Window = 500 * time.Millisecond
	}
	say := func(f string, args ...any) {
		if cfg.Progress != nil {
			cfg.Progress(fmt.Sprintf(f, args...))
		}
	}
	a := cfg.App
	spec, err := hwmodel.ClusterByName(cfg.Cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	topo, err := hwmodel.Topology(spec)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	offered := cfg.OfferedRPS
	if offered <= 0 {
		say("%s: the simulator's knee of HCM's placement", a.Name)
		k, err := sim.Knee(sim.Config{Topology: topo, Apps: []sim.AppLoad{{App: a}}, Seed: cfg.Seed}, sim.KneeOptions{Requests: 5000})
		if err != nil {
			return nil, fmt.Errorf("cluster: X6 %s: %w", a.Name, err)
		}
		offered = k.PeakRPS
	}
	pc, err := placement.NewCluster(topo)
	if err != nil {
		return nil, err
	}
	p, err := placement.FromApp(a, placement.NewLoad(pc), offered)
	if err != nil {
		return nil, fmt.Errorf("cluster: X6 %s: %w", a.Name, err)
	}
	assign := placement.PackByMemory(p)
	for i, n := range assign {
		if n < 0 {
			return nil, fmt.Errorf("cluster: X6 %s: %s fits nowhere", a.Name, a.Instances()[i].ID)
		}
	}
	plan, err := NewPlan(spec.Name, a, offered, assign)
	if err != nil {
		return nil, err
	}
	rep := &X6Report{App: a.Name, Cluster: spec.Name, State: cfg.State.String(), OfferedRPS: offered}
	for _, in := range a.Instances() {
		if in.IsPrimary() {
			rep.Primaries++
			if topo.Node(assign[in.Index]).Kind == topology.SmartNIC {
				rep.OnSmartNIC++
			}
		}
	}
	d := cfg.Dilation
	if d <= 0 {
		costs, err := MeasureCostsWith(a, 50*time.Millisecond, cfg.State)
		if err != nil {
			return nil, err
		}
		// The real work follows the offered load, whatever the packed
		// placement can serve.
		need := offered * costs.RequestCost(a).Seconds()
		d = math.Max(1, math.Ceil(need/(utilTarget*float64(numCPU()))))
	}
	rep.Dilation = d
	warm, win := cfg.Warmup, cfg.Window
	if cfg.MaxReal > 0 {
		if real := time.Duration(float64(warm+win) * d); real > cfg.MaxReal {
			f := float64(cfg.MaxReal) / float64(real)
			warm, win = time.Duration(float64(warm)*f), time.Duration(float64(win)*f)
		}
	}
	rep.WarmupMs, rep.WindowMs = float64(warm)/1e6, float64(win)/1e6
	for _, on := range []bool{false, true} {
		if cfg.onOnly && !on {
			continue
		}
		say("%s: packed by memory, orchestrator %v, D=%g, %v + %v emulated", a.Name, onOff(on), d, warm, win)
		r, err := runX6Once(ctx, plan, cfg, d, on, warm, win)
		if err != nil {
			return nil, err
		}
		rep.Runs = append(rep.Runs, r)
		if on {
			rep.On = r
		} else {
			rep.Off = r
		}
	}
	return rep, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// runX6Once runs plan at its offered load for warm + win of emulated
// time, with or without the orchestrator, and measures the window.
func runX6Once(ctx context.Context, plan *Plan, cfg X6Config, d float64, orch bool, warm, win time.Duration) (X6Run, error) {
	started := time.Now()
	run := X6Run{Orchestrator: orch}
	// A request may wait long on an overloaded SmartNIC; its timeout is
	// emulated time, 2 s, so that it fails only when it is truly stuck.
	ccfg := Config{Cluster: plan.Cluster, Dilation: d, State: cfg.State, RequestTimeout: time.Duration(2 * float64(time.Second) * d)}
	if orch {
		ccfg.Orchestrator = &OrchestratorConfig{Config: orchestrator.Config{}}
	}
	c, err := Start(ccfg)
	if err != nil {
		return run, err
	}
	defer c.Stop()
	dep, err := c.Deploy(plan, int64(cfg.Seed))
	if err != nil {
		return run, err
	}
	tg, err := c.NewTarget(dep)
	if err != nil {
		return run, err
	}
	wl, err := loadgen.NewAppWorkload(plan.App, loadgen.AppOptions{Seed: int64(cfg.Seed)})
	if err != nil {
		return run, err
	}
	arr, err := loadgen.Poisson(plan.PlanningRPS, int64(cfg.Seed))
	if err != nil {
		return run, err
	}
	lg := loadgen.OpenLoop{Options: loadgen.Options{Target: tg, Workload: wl, Clock: c.Clock(), Warmup: warm, Duration: win,
		Timeout: 2 * time.Second}, Arrivals: arr}
	t0 := c.Now()
	tg.MeasureFrom(t0 + int64(warm))
	x, err := lg.Start()
	if err != nil {
		return run, err
	}
	// Busy time and lateness over the window, read when the emulated
	// clock passes its ends.
	var b [2]Busy
	var late, paced [2]uint64
	for k, at := range []int64{t0 + int64(warm), t0 + int64(warm+win)} {
		for c.Now() < at {
			select {
			case <-ctx.Done():
				x.Stop()
				return run, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
		b[k] = c.BusySnapshot()
		late[k], paced[k], _ = c.lateness()
	}
	s, err := x.Wait(ctx)
	if err != nil {
		return run, err
	}
	run.ThroughputRPS = s.Throughput
	run.Completed = s.Completed
	run.ErrorRate = s.ErrorRate()
	if run.PowerW, err = c.PowerBetween(b[0], b[1]); err != nil {
		return run, err
	}
	if run.PowerW > 0 {
		run.RPJ = run.ThroughputRPS / run.PowerW
	}
	if ex := tg.ExactLatency(); ex.Count() > 0 {
		run.AvgUs, run.P99Us = us(ex.Mean()), us(ex.P99())
	}
	if paced[1] > paced[0] {
		run.LateFraction = float64(late[1]-late[0]) / float64(paced[1]-paced[0])
	}
	// Let migrations in progress end before the cluster stops.
	for _, dc := range c.Decisions() {
		if dc.Kind != orchestrator.Migrate {
			continue
		}
		m := X6Move{AtMs: float64(dc.At) / 1e6, Instance: dc.Instance, Service: dc.Service, From: dc.From, To: dc.To, Cause: dc.Cause}
		if r := dc.Result; r != nil {
			m.Committed = r.Committed
			m.DurationMs = float64(r.Emulated) / 1e6
			m.PauseMs = float64(r.PauseEmulated) / 1e6
			m.Bytes = r.Source.Bytes
			m.DrainMs = float64(r.DrainEmulated) / 1e6
			m.ShipMs = float64(c.emulated(r.Source.Ship)) / 1e6
			m.Held = r.Source.Held
			m.Reason = r.Reason
		}
		run.Moves = append(run.Moves, m)
	}
	run.RealSeconds = time.Since(started).Seconds()
	return run, nil
}
