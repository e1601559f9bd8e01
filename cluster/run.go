package cluster

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/collections/durable"
	"github.com/e3-platform/e3/loadgen"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/topology"
)

// Costs are what running an application costs this machine in real CPU
// time, from which [ChooseDilation] sizes the time dilation.
type Costs struct {
	// Handler is the measured real time of one call of each service's
	// handler on requests from its generator.
	Handler map[string]time.Duration
	// PerMessage is the runtime's own real cost of one message between
	// instances (encode, channel or queue, pacer, worker hand-off).
	PerMessage time.Duration
	// PerRequest is the cost of a request besides its messages: the
	// client, admission, completion and the reply.
	PerRequest time.Duration
	// Barrier is, per stateful service, the measured real cost of making
	// one call's writes durable and replicated (the store's commit and
	// its backup's, in the durable modes; none in memory).
	Barrier map[string]time.Duration
}

// Runtime overheads measured on the 2-core development machine (AMD EPYC
// vCPUs): process CPU time per request of echo chains over loopback UDP
// channels in emulation, less the handlers' time. They only size the
// dilation; a machine that is slower is caught by the lateness count.
const (
	defaultPerMessage = 12 * time.Microsecond
	defaultPerRequest = 25 * time.Microsecond
)

// MeasureCosts times each service of a on this machine: one instance per
// service, fed requests from its generator for about budget in all, with
// state in memory.
func MeasureCosts(a *app.App, budget time.Duration) (Costs, error) {
	return MeasureCostsWith(a, budget, StateMemory)
}

// MeasureCostsWith is MeasureCosts for instances whose state is kept as
// mode says: in the durable modes each stateful service is also timed on
// a durable store with a backup in the same process (commit, backup
// commit and apply after every call), and the difference is its barrier
// cost.
func MeasureCostsWith(a *app.App, budget time.Duration, mode StateMode) (Costs, error) {
	k := Costs{Handler: map[string]time.Duration{}, PerMessage: defaultPerMessage, PerRequest: defaultPerRequest, Barrier: map[string]time.Duration{}}
	svcs := a.Services()
	per := budget / time.Duration(max(len(svcs), 1))
	for _, name := range svcs {
		n, _ := a.Node(firstNodeOf(a, name))
		d := n.Descriptor
		h, err := d.New(service.Env{Instance: "calibrate/" + name, Config: n.Config, Store: collections.NewMemStore(), Seed: 1})
		if err != nil {
			return k, fmt.Errorf("cluster: calibrate %s: %w", name, err)
		}
		g := d.NewGenerator(1, a.Workload.RequestSize)
		var c service.Context
		buf := make([]byte, 0, 2048)
		// The fastest of three rounds: on a shared machine a round can lose
		// its core for a while, and the cost wanted is the handler's own.
		best := time.Duration(math.MaxInt64)
		for range 3 {
			calls := 0
			start := time.Now()
			for calls < 10 || time.Since(start) < per/3 {
				req, key := g.Next(buf)
				c.Reset(time.Now().UnixNano(), key, nil)
				h.Handle(&c, req)
				calls++
				if calls >= 100000 {
					break
				}
			}
			best = min(best, time.Since(start)/time.Duration(calls))
		}
		k.Handler[name] = best
		if cl, ok := h.(service.Closer); ok {
			cl.Close()
		}
		if mode != StateMemory && d.Stateful && d.Migratable {
			withBarrier, err := timeDurable(n, d, a.Workload.RequestSize, per, mode == StateDisk)
			if err != nil {
				return k, fmt.Errorf("cluster: calibrate %s on a durable store: %w", name, err)
			}
			k.Barrier[name] = max(withBarrier-best, 0)
		}
	}
	return k, nil
}

// timeDurable times calls of service d that each end with the barrier,
// on a durable store replicating to a backup in the same process; the
// fastest of three rounds, per call.
func timeDurable(n *app.Node, d *service.Descriptor, size int, budget time.Duration, noSync bool) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "e3-calibrate-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	opts := durable.Options{NoSync: noSync}
	name := "calibrate/" + d.Name
	open := func(file string) (*durable.Store, service.Handler, error) {
		st, err := durable.Open(filepath.Join(dir, file), name, opts)
		if err != nil {
			return nil, nil, err
		}
		h, err := d.New(service.Env{Instance: name, Config: n.Config, Store: st, Seed: 1})
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return st, h, nil
	}
	bst, bh, err := open("backup.db")
	if err != nil {
		return 0, err
	}
	defer closeCalibrated(bh)
	b, err := durable.NewBackup(bst)
	if err != nil {
		bst.Close()
		return 0, err
	}
	defer b.Close()
	st, h, err := open("primary.db")
	if err != nil {
		return 0, err
	}
	defer closeCalibrated(h)
	defer st.Close()
	if err := st.Start(); err != nil {
		return 0, err
	}
	ctx := context.Background()
	if err := st.AddBackup(ctx, durable.LocalReplicator{Backup: b}); err != nil {
		return 0, err
	}
	g := d.NewGenerator(1, size)
	var c service.Context
	buf := make([]byte, 0, 2048)
	best := time.Duration(math.MaxInt64)
	for range 3 {
		calls := 0
		start := time.Now()
		for calls < 10 || time.Since(start) < budget/3 {
			req, key := g.Next(buf)
			c.Reset(time.Now().UnixNano(), key, nil)
			h.Handle(&c, req)
			if err := st.Sync(ctx); err != nil {
				return 0, err
			}
			calls++
			if calls >= 20000 {
				break
			}
		}
		best = min(best, time.Since(start)/time.Duration(calls))
	}
	return best, nil
}

func closeCalibrated(h service.Handler) {
	if cl, ok := h.(service.Closer); ok {
		cl.Close()
	}
}

func firstNodeOf(a *app.App, svc string) string {
	for _, n := range a.Nodes() {
		if n.Service == svc {
			return n.Name
		}
	}
	return ""
}

// RequestCost is the real CPU time one request of a costs: its messages
// (Node.Rate per DAG node) with their handlers, one completion per
// message that ends a path, and the fixed part.
func (k Costs) RequestCost(a *app.App) time.Duration {
	total := float64(k.PerRequest)
	for _, n := range a.Nodes() {
		total += n.Rate * float64(k.Handler[n.Service]+2*k.PerMessage)
		if b, ok := k.Barrier[n.Service]; ok && n.Backups > 0 {
			// The write's batch and its acknowledgement cross the control
			// channel too.
			total += n.Rate * float64(b+2*k.PerMessage)
		}
	}
	return time.Duration(total)
}

// utilTarget is the share of this machine's cores the emulated cluster may
// use at its peak: the rest is for the client, the garbage collector and
// the scheduler's slack, without which real processing falls behind
// emulated time (lateness) before the emulated cluster saturates.
const utilTarget = 0.5

// ChooseDilation picks the time-dilation factor for plan on this machine:
// at the cluster's estimated capacity (Plan.CapacityRPS) the real work per
// real second, capacity x RequestCost / D, must stay within utilTarget of
// runtime.NumCPU cores. A cluster of many emulated cores running cheap
// requests at millions a second needs a large D; heavy requests at a few
// thousand a second need little. D is at least 1.
func ChooseDilation(plan *Plan, k Costs) float64 {
	need := plan.CapacityRPS * k.RequestCost(plan.App).Seconds()
	d := need / (utilTarget * float64(numCPU()))
	return math.Max(1, math.Ceil(d))
}

// RunConfig configures [Run].
type RunConfig struct {
	App     *app.App
	Cluster string
	// Algo is the placement algorithm (default "hcm").
	Algo string
	Seed uint64
	// Dilation overrides the automatic choice when positive.
	Dilation float64
	// Step is the real (wall-clock) time of each knee-search measurement
	// (default 400 ms); its emulated length is Step / D.
	Step time.Duration
	// MaxSteps bounds the knee search (default 12).
	MaxSteps int
	// Progress, if set, is told what is happening.
	Progress func(what string, step, steps int)
	// State is where stateful instances keep their state (default
	// StateDisk).
	State StateMode
	// Orchestrator runs the data-plane orchestrator during the run; its
	// decisions are in the report.
	Orchestrator bool
}

// Report is what `e3 run` prints for one cluster. Every time and rate is in
// emulated time; power is modelled.
type Report struct {
	App     string `json:"app"`
	Cluster string `json:"cluster"`
	Algo    string `json:"algo"`
	// OnSmartNIC and OnHost count the instances by node kind, backups
	// included.
	OnSmartNIC int `json:"on_smartnic"`
	OnHost     int `json:"on_host"`
	// Placement lists each node's instances, by DAG node.
	Placement []NodePlacement `json:"placement"`
	// ThroughputRPS is the peak throughput at the knee.
	ThroughputRPS float64 `json:"throughput_rps"`
	// LatencyAvgUs and LatencyP99Us are client latencies at the knee, from
	// the messages' emulated timestamps.
	LatencyAvgUs float64 `json:"latency_avg_us"`
	LatencyP99Us float64 `json:"latency_p99_us"`
	// PowerW is the cluster's modelled wall power at the knee, and RPJ
	// the requests per joule (ThroughputRPS / PowerW).
	PowerW float64 `json:"power_w"`
	RPJ    float64 `json:"rpj"`
	// Outstanding is the closed-loop load at the knee.
	Outstanding int `json:"outstanding"`
	// Client-observed latencies (dilated clock) at the knee.
	ClientAvgUs float64 `json:"client_latency_avg_us"`
	ClientP99Us float64 `json:"client_latency_p99_us"`
	// Dilation is D; PlanningRPS the load placement planned for,
	// CapacityRPS its estimate of the peak.
	Dilation    float64 `json:"dilation"`
	PlanningRPS float64 `json:"planning_rps"`
	CapacityRPS float64 `json:"capacity_rps"`
	// Steps and Reason describe the knee search.
	Steps  int    `json:"knee_steps"`
	Reason string `json:"knee_reason"`
	// LateFraction is the share of messages released more than 5 µs
	// (emulated) after their due time during the knee measurement, and
	// LateMeanUs the mean lateness of those; ErrorRate the share of
	// requests that failed or timed out there.
	LateFraction float64 `json:"late_fraction"`
	LateMeanUs   float64 `json:"late_mean_us"`
	ErrorRate    float64 `json:"error_rate"`
	// FirstError is the first request failure at the knee, if any.
	FirstError string `json:"first_error,omitempty"`
	// Curve is every knee-search measurement (client-observed).
	Curve []loadgen.Point `json:"curve"`
	// RealSeconds is the wall-clock time the run took.
	RealSeconds float64 `json:"real_seconds"`
	// State is where stateful instances kept their state.
	State string `json:"state"`
	// Decisions are the orchestrator's, when it ran.
	Decisions []DecisionJSON `json:"orchestrator_decisions,omitempty"`
}

// DecisionJSON is a Decision in a report.
type DecisionJSON struct {
	AtMs      float64 `json:"at_ms"`
	Kind      string  `json:"kind"`
	Text      string  `json:"text"`
	Committed *bool   `json:"committed,omitempty"`
}

func decisionsJSON(ds []Decision) []DecisionJSON {
	var out []DecisionJSON
	for _, d := range ds {
		j := DecisionJSON{AtMs: float64(d.At) / 1e6, Kind: d.Kind.String(), Text: d.Text}
		if d.Result != nil {
			ok := d.Result.Committed
			j.Committed = &ok
		}
		out = append(out, j)
	}
	return out
}

// NodePlacement is one compute node's share of the application.
type NodePlacement struct {
	Node      string         `json:"node"`
	Kind      string         `json:"kind"`
	Instances map[string]int `json:"instances"` // DAG node -> instances (primaries and backups)
	// Utilization is the node's busy cores over its cores at the knee
	// (emulated; the traffic manager's work included).
	Utilization float64 `json:"utilization"`
}

// stepInfo is what one knee measurement saw besides the client's point.
type stepInfo struct {
	power      float64
	exact      *loadgen.Latency
	late, msgs uint64
	lateNs     int64
	firstErr   error
	busy       [2]Busy
}

// Run is `e3 run`: it places the application on the cluster, chooses the
// dilation, starts the emulated cluster, finds the knee of the
// latency-throughput curve with a closed-loop client, and reports the
// peak throughput, latency, modelled power and energy efficiency there.
func Run(ctx context.Context, cfg RunConfig) (*Report, error) {
	started := time.Now()
	if cfg.Algo == "" {
		cfg.Algo = "hcm"
	}
	if cfg.Step == 0 {
		cfg.Step = 400 * time.Millisecond
	}
	if cfg.MaxSteps == 0 {
		cfg.MaxSteps = 12
	}
	progress := func(what string, step, steps int) {
		if cfg.Progress != nil {
			cfg.Progress(what, step, steps)
		}
	}
	progress("placing "+cfg.App.Name+" on "+cfg.Cluster, 0, cfg.MaxSteps)
	plan, err := PlanApp(cfg.Cluster, cfg.App, cfg.Algo, cfg.Seed)
	if err != nil {
		return nil, err
	}
	d := cfg.Dilation
	if d <= 0 {
		costs, err := MeasureCostsWith(cfg.App, 50*time.Millisecond, cfg.State)
		if err != nil {
			return nil, err
		}
		d = ChooseDilation(plan, costs)
	}
	progress(fmt.Sprintf("starting %s (D=%g)", plan.Cluster, d), 0, cfg.MaxSteps)
	ccfg := Config{Cluster: plan.Cluster, Dilation: d, State: cfg.State}
	if cfg.Orchestrator {
		ccfg.Orchestrator = &OrchestratorConfig{}
	}
	c, err := Start(ccfg)
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	dep, err := c.Deploy(plan, int64(cfg.Seed))
	if err != nil {
		return nil, err
	}
	t, err := c.NewTarget(dep)
	if err != nil {
		return nil, err
	}
	wl, err := loadgen.NewAppWorkload(cfg.App, loadgen.AppOptions{Seed: int64(cfg.Seed)})
	if err != nil {
		return nil, err
	}
	emu := func(real time.Duration) time.Duration { return time.Duration(float64(real) / d) }
	base := loadgen.ClosedLoop{Options: loadgen.Options{
		Target: t, Workload: wl, Clock: c.Clock(),
		Warmup: emu(cfg.Step / 4), Duration: emu(cfg.Step),
		Timeout: emu(runtimeTimeout() + time.Second),
	}}
	steps := map[int]stepInfo{}
	step := 0
	perOutstanding := 0.0 // throughput per outstanding request seen last
	var prevLoad, prevThroughput float64
	var measureOnce func(run loadgen.ClosedLoop, load float64) (loadgen.Point, stepInfo, error)
	measure := func(load float64) (loadgen.Point, error) {
		if err := ctx.Err(); err != nil {
			return loadgen.Point{}, err
		}
		step++
		progress(fmt.Sprintf("%s: %d outstanding", plan.Cluster, int(load)), step, cfg.MaxSteps)
		run := base
		run.Outstanding = int(math.Round(load))
		pt, info, err := measureOnce(run, load)
		if err != nil {
			return pt, err
		}
		// A hiccup of this (shared) machine, the process descheduled for a
		// while, shows as a dip in throughput that the knee search would
		// take for the knee. A step that gained less than the search
		// requires is measured once more and the better run kept.
		if prevLoad > 0 && load > prevLoad && pt.Throughput < prevThroughput*(1+0.5*(load/prevLoad-1)) {
			if again, info2, err := measureOnce(run, load); err == nil && again.Throughput > pt.Throughput {
				pt, info = again, info2
			}
		}
		steps[run.Outstanding] = info
		prevLoad, prevThroughput = load, pt.Throughput
		return pt, nil
	}
	measureOnce = func(run loadgen.ClosedLoop, load float64) (loadgen.Point, stepInfo, error) {
		// At light loads a step of fixed length sees few requests, and the
		// knee search would judge noise; stretch such a step to about
		// minRequests (up to four times its length).
		if perOutstanding > 0 {
			want := time.Duration(minRequests / (perOutstanding * load) * 1e9)
			run.Duration = min(max(run.Duration, want), 4*base.Duration)
		} else {
			run.Duration = 2 * base.Duration
		}
		late0, msgs0, lns0 := c.lateness()
		t.MeasureFrom(c.Now() + int64(run.Warmup))
		b0 := c.BusySnapshot()
		s, err := run.Run(ctx)
		if err != nil {
			return loadgen.Point{}, stepInfo{}, err
		}
		b1 := c.BusySnapshot()
		late1, msgs1, lns1 := c.lateness()
		w, err := c.PowerBetween(b0, b1)
		if err != nil {
			return loadgen.Point{}, stepInfo{}, err
		}
		info := stepInfo{power: w, exact: t.ExactLatency(), late: late1 - late0, msgs: msgs1 - msgs0, lateNs: lns1 - lns0, firstErr: s.FirstError, busy: [2]Busy{b0, b1}}
		if s.Throughput > 0 {
			perOutstanding = s.Throughput / load
		}
		pt := s.Point(load)
		// Judge latency by the messages' timestamps, which the pacing of
		// real time does not blur; keep the client's view in the report.
		if info.exact.Count() > 0 {
			pt.Avg, pt.P99 = info.exact.Mean(), info.exact.P99()
		}
		return pt, info, nil
	}
	// A first, discarded measurement warms the instances (SQLite pages,
	// Go's allocator, the channels), so that the search's first point,
	// against which later latencies are judged, is not a cold one.
	warm := base
	warm.Outstanding = kneeStart
	if _, err := warm.Run(ctx); err != nil {
		return nil, err
	}
	res, err := loadgen.FindKnee(loadgen.KneeConfig{Start: kneeStart, Integer: true, MaxSteps: cfg.MaxSteps}, measure)
	if err != nil {
		return nil, err
	}
	knee := res.Knee
	info := steps[int(math.Round(knee.Load))]
	r := &Report{
		App: cfg.App.Name, Cluster: plan.Cluster, Algo: cfg.Algo,
		OnSmartNIC: plan.Metrics.OnSmartNIC, OnHost: plan.Metrics.OnHost,
		Placement:     placementOf(c.topo, dep),
		ThroughputRPS: knee.Throughput, Outstanding: int(math.Round(knee.Load)),
		ClientAvgUs: us(knee.Avg), ClientP99Us: us(knee.P99),
		PowerW: info.power, Dilation: d, PlanningRPS: plan.PlanningRPS, CapacityRPS: plan.CapacityRPS,
		Steps: res.Steps, Reason: res.Reason, ErrorRate: knee.ErrorRate, Curve: res.Curve,
	}
	if info.exact != nil && info.exact.Count() > 0 {
		r.LatencyAvgUs, r.LatencyP99Us = us(info.exact.Mean()), us(info.exact.P99())
	} else {
		r.LatencyAvgUs, r.LatencyP99Us = r.ClientAvgUs, r.ClientP99Us
	}
	if info.msgs > 0 {
		r.LateFraction = float64(info.late) / float64(info.msgs)
	}
	if b := info.busy; b[1].At > b[0].At {
		for i := range r.Placement {
			n, _ := c.topo.Lookup(r.Placement[i].Node)
			cores, _, _ := c.pc.Capacity(n)
			r.Placement[i].Utilization = float64(b[1].NodeNs[n]-b[0].NodeNs[n]) / float64(b[1].At-b[0].At) / cores
		}
	}
	if info.firstErr != nil {
		r.FirstError = info.firstErr.Error()
	}
	if info.late > 0 {
		r.LateMeanUs = float64(info.lateNs) / float64(info.late) / 1e3
	}
	if r.PowerW > 0 {
		r.RPJ = r.ThroughputRPS / r.PowerW
	}
	r.RealSeconds = time.Since(started).Seconds()
	r.State = cfg.State.String()
	r.Decisions = decisionsJSON(c.Decisions())
	return r, nil
}

// minRequests is about how many requests a knee measurement should see.
const minRequests = 600

// kneeStart is the first load of the knee search: a few requests in
// flight, well below the knee of every built-in application (tens of
// outstanding requests) and enough to average over the clients' paths.
const kneeStart = 4

func runtimeTimeout() time.Duration { return 2 * time.Second }

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// lateness sums the agents' late and paced message counts and lateness.
func (c *Cluster) lateness() (late, paced uint64, lateNs int64) {
	for _, a := range c.Agents() {
		s := a.Stats()
		late += s.Late
		paced += s.Paced
		lateNs += s.LateNs
	}
	return late, paced, lateNs
}

func placementOf(t *topology.Topology, dep *Deployment) []NodePlacement {
	byNode := map[topology.NodeID]map[string]int{}
	for n := range t.Nodes() {
		byNode[n] = map[string]int{}
	}
	for i, n := range dep.Nodes {
		byNode[n][dep.App.Instances()[i].Node.Name]++
	}
	var out []NodePlacement
	for n, m := range byNode {
		out = append(out, NodePlacement{Node: t.Name(n), Kind: t.Node(n).Kind.String(), Instances: m})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// FormatPlacement writes a node's instances as "apigw x6, ema x12".
func (p NodePlacement) FormatPlacement() string {
	names := make([]string, 0, len(p.Instances))
	for k := range p.Instances {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s x%d", k, p.Instances[k])
	}
	return strings.Join(parts, ", ")
}
