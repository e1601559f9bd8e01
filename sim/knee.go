package sim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/e3-platform/e3/topology"
)

// KneeOptions tune [Knee]. Zero fields take the defaults given.
type KneeOptions struct {
	// Mix is the share of the offered load each application of the
	// Config gets (relative weights, one per application); nil shares
	// equally.
	Mix []float64
	// P99Factor: a load is past the knee when its p99 latency exceeds
	// P99Factor times the p99 at a low load (default 3).
	P99Factor float64
	// MinGoodput: a load is past the knee when less than this fraction of
	// it completes in the window (default 0.95): throughput has stopped
	// following the offered load.
	MinGoodput float64
	// Requests is the number of requests each probe aims to measure; its
	// window lasts Requests / offered rate, at least MinDuration (defaults
	// 20,000 and 2 ms). Each probe warms up for a quarter of its window
	// first.
	Requests    int
	MinDuration time.Duration
	// Resolution ends the search when the last load below the knee and
	// the first above it are within this fraction (default 0.03).
	Resolution float64
	// MaxProbes bounds the runs (default 24).
	MaxProbes int
}

func (o *KneeOptions) fill(apps int) error {
	if o.Mix != nil && len(o.Mix) != apps {
		return fmt.Errorf("sim: KneeOptions.Mix has %d weights for %d applications", len(o.Mix), apps)
	}
	for i, w := range o.Mix {
		if !(w > 0) || math.IsInf(w, 0) {
			return fmt.Errorf("sim: KneeOptions.Mix[%d] = %v, want a finite weight > 0", i, w)
		}
	}
	def := func(v *float64, d float64, name string, lo, hi float64) error {
		if *v == 0 {
			*v = d
		}
		if !(*v > lo && *v <= hi) {
			return fmt.Errorf("sim: KneeOptions.%s = %v, want %v < value <= %v", name, *v, lo, hi)
		}
		return nil
	}
	if err := def(&o.P99Factor, 3, "P99Factor", 1, 1e6); err != nil {
		return err
	}
	if err := def(&o.MinGoodput, 0.95, "MinGoodput", 0, 1); err != nil {
		return err
	}
	if err := def(&o.Resolution, 0.03, "Resolution", 0, 1); err != nil {
		return err
	}
	if o.Requests == 0 {
		o.Requests = 20000
	}
	if o.MinDuration == 0 {
		o.MinDuration = 2 * time.Millisecond
	}
	if o.MaxProbes == 0 {
		o.MaxProbes = 24
	}
	switch {
	case o.Requests < 100:
		return fmt.Errorf("sim: KneeOptions.Requests = %d, want at least 100", o.Requests)
	case o.MinDuration < 0:
		return fmt.Errorf("sim: KneeOptions.MinDuration = %v, want >= 0", o.MinDuration)
	case o.MaxProbes < 3:
		return fmt.Errorf("sim: KneeOptions.MaxProbes = %d, want at least 3", o.MaxProbes)
	}
	return nil
}

// Probe is one load level a knee search ran.
type Probe struct {
	// Offered is the total offered load, requests a second; Throughput
	// what completed.
	Offered    float64       `json:"offered_rps"`
	Throughput float64       `json:"throughput_rps"`
	Mean       time.Duration `json:"mean_ns"`
	P99        time.Duration `json:"p99_ns"`
	PowerW     float64       `json:"power_w"`
	// RequestsPerJoule is Throughput over PowerW.
	RequestsPerJoule float64 `json:"requests_per_joule"`
	// BelowKnee says the level passed both tests of the knee.
	BelowKnee bool `json:"below_knee"`
}

// KneeResult is the outcome of a knee search.
type KneeResult struct {
	// PeakRPS is the throughput at the knee: the paper's "throughput at
	// peak utilisation". Offered is the load that produced it.
	PeakRPS float64 `json:"peak_rps"`
	Offered float64 `json:"offered_rps"`
	// Estimate is the analytic bound the search started from
	// ([Capacity]).
	Estimate float64 `json:"estimate_rps"`
	// Base is the low-load probe whose p99 is the reference.
	Base Probe `json:"base"`
	// Knee is the full result of the run at the knee.
	Knee *Result `json:"knee"`
	// Probes lists every level run, in the order run (Base first).
	Probes []Probe `json:"probes"`
}

// Knee finds the throughput at the knee of cfg's latency-throughput curve:
// the highest offered load that still completes (MinGoodput) without its
// p99 latency departing from its low-load value (P99Factor). The paper
// reports peak throughput and energy efficiency there (§2.3, §5).
//
// Applications are placed once, as Run would place them (at PlanRPS, or
// at the largest placeable load), and keep that placement at every level.
// Each level offers open-loop Poisson load split over the applications by
// Mix, with each application's key distribution from cfg; cfg's Clients
// are otherwise ignored, as are Warmup and Duration (see Requests). The
// search probes a low load for the reference p99, climbs from a quarter
// of [Capacity]'s estimate until a level fails, then bisects between the
// last level that passed and the first that failed.
//
// Open-loop probes replace the paper's closed-loop clients: the two trace
// the same curve up to the knee, and an open-loop level names its offered
// load directly, where a closed loop would need its population tuned to
// reach each level. Every probe is a separate Run with cfg.Orchestrator as
// given, so an orchestrator that keeps state between calls carries it
// from one probe to the next; run such comparisons with Run at a fixed
// load instead.
func Knee(cfg Config, opt KneeOptions) (*KneeResult, error) {
	for i := range cfg.Apps {
		if cfg.Apps[i].Clients.Outstanding == 0 && cfg.Apps[i].Clients.Rate == 0 {
			cfg.Apps[i].Clients.Rate = 1 // placeholder for validation; replaced below
		}
	}
	if cfg.Duration == 0 {
		cfg.Duration = time.Millisecond // replaced per probe
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := opt.fill(len(cfg.Apps)); err != nil {
		return nil, err
	}
	// Place once, for the provisioned load rather than for each level.
	apps := append([]AppLoad(nil), cfg.Apps...)
	cfg.Apps = apps
	for i := range apps {
		if apps[i].Assignment == nil {
			apps[i].Clients = Clients{Outstanding: 1, Keys: apps[i].Clients.Keys}
		}
	}
	assign, err := PlaceApps(&cfg)
	if err != nil {
		return nil, err
	}
	mix := make([]float64, len(apps))
	total := 0.0
	for i := range apps {
		apps[i].Assignment = assign[i]
		mix[i] = 1
		if opt.Mix != nil {
			mix[i] = opt.Mix[i]
		}
		total += mix[i]
	}
	for i := range mix {
		mix[i] /= total
	}
	est, err := Capacity(cfg, mix)
	if err != nil {
		return nil, err
	}
	if !(est > 0) || math.IsInf(est, 0) {
		return nil, fmt.Errorf("sim: Knee: capacity estimate %v requests/s; nothing bounds the load", est)
	}

	out := &KneeResult{Estimate: est}
	var best *Result
	run := func(rate float64) (Probe, *Result, error) {
		if len(out.Probes) >= opt.MaxProbes {
			return Probe{}, nil, errMaxProbes
		}
		c := cfg
		c.Apps = append([]AppLoad(nil), apps...)
		for i := range c.Apps {
			c.Apps[i].Clients = Clients{Rate: rate * mix[i], Keys: cfg.Apps[i].Clients.Keys}
		}
		d := time.Duration(float64(opt.Requests) / rate * 1e9)
		c.Duration = max(d, opt.MinDuration)
		c.Warmup = c.Duration / 4
		res, err := Run(c)
		if err != nil {
			return Probe{}, nil, err
		}
		p := Probe{Offered: rate, Throughput: res.Throughput, PowerW: res.PowerW}
		if res.PowerW > 0 {
			p.RequestsPerJoule = res.Throughput / res.PowerW
		}
		var lat float64
		for _, a := range res.Apps {
			lat += float64(a.Mean) * float64(a.Completed)
			p.P99 = max(p.P99, a.P99)
		}
		if res.Completed > 0 {
			p.Mean = time.Duration(lat / float64(res.Completed))
		}
		return p, res, nil
	}
	judge := func(p *Probe) {
		p.BelowKnee = p.Throughput >= opt.MinGoodput*p.Offered &&
			float64(p.P99) <= opt.P99Factor*float64(out.Base.P99) && p.Throughput > 0
	}

	base, _, err := run(est * 0.05)
	if err != nil {
		return nil, err
	}
	out.Base = base
	judge(&out.Base)
	out.Probes = append(out.Probes, out.Base)
	if out.Base.Throughput == 0 {
		return nil, errors.New("sim: Knee: nothing completed even at 5 % of the estimated capacity")
	}

	var lo, hi float64 // last level below the knee, first above it
	try := func(rate float64) (bool, error) {
		p, res, err := run(rate)
		if err != nil {
			return false, err
		}
		judge(&p)
		out.Probes = append(out.Probes, p)
		if p.BelowKnee && rate > out.Offered {
			out.Offered, out.PeakRPS, best = rate, p.Throughput, res
		}
		return p.BelowKnee, nil
	}
	// Climb.
	for _, f := range []float64{0.25, 0.5, 0.7, 0.85, 1, 1.15, 1.3, 1.6, 2, 3, 5, 10} {
		ok, err := try(est * f)
		if err != nil {
			return nil, err
		}
		if !ok {
			hi = est * f
			break
		}
		lo = est * f
	}
	if hi == 0 {
		return nil, fmt.Errorf("sim: Knee: still below the knee at 10x the estimated capacity (%.0f requests/s); the estimate is wrong", est)
	}
	if lo == 0 {
		// Even a quarter of the estimate fails; come down from it.
		for r := hi / 2; r >= est*0.05; r /= 2 {
			ok, err := try(r)
			if err != nil {
				return nil, err
			}
			if ok {
				lo = r
				break
			}
			hi = r
		}
		if lo == 0 {
			lo = est * 0.05 // the base level passed by definition
			out.Offered, out.PeakRPS = out.Base.Offered, out.Base.Throughput
		}
	}
	// Bisect.
	for hi-lo > opt.Resolution*lo {
		mid := (lo + hi) / 2
		ok, err := try(mid)
		if errors.Is(err, errMaxProbes) {
			break
		}
		if err != nil {
			return nil, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	if best == nil {
		// Only the base level passed: rerun it for its full result.
		_, res, err := run(out.Base.Offered)
		if err != nil && !errors.Is(err, errMaxProbes) {
			return nil, err
		}
		best = res
	}
	out.Knee = best
	return out, nil
}

var errMaxProbes = errors.New("sim: Knee: out of probes")

// Capacity returns an analytic upper bound on the total request rate cfg's
// cluster can serve with the applications' assignments (placed as Run
// would place them if absent), the load split over the applications by
// mix (fractions, one per application; nil shares equally). It is the
// smallest, over every node and NIC port, of capacity over the mean demand
// one request puts on it: core time of the instances' messages (Table 1
// demand at each instance's node) and of the traffic managers' forwarding,
// and wire bytes on ports, with ECMP spreading a host's traffic evenly
// over its ports. It bounds the long-run throughput; queueing makes the
// real knee lower, and a short run of slow services can measure a few per
// cent above it by chance. [Knee] starts its search from this bound.
func Capacity(cfg Config, mix []float64) (float64, error) {
	if err := cfg.validate(); err != nil {
		return 0, err
	}
	if mix != nil && len(mix) != len(cfg.Apps) {
		return 0, fmt.Errorf("sim: Capacity: %d mix weights for %d applications", len(mix), len(cfg.Apps))
	}
	s, err := newSim(&cfg)
	if err != nil {
		return 0, err
	}
	return s.capacity(mix), nil
}

func (s *sim) capacity(mix []float64) float64 {
	cpu := make([]float64, len(s.nodes))  // core-ns per request
	wire := make([]float64, len(s.ports)) // bits per request, rx + tx counted apart
	rx := make([]float64, len(s.ports))
	wireOH := float64(s.p.WireOverhead)
	// netEnd charges one end of a network crossing of rate messages of
	// bytes at node n: its ports (tx or rx), and the traffic managers of
	// a host behind SmartNICs.
	netEnd := func(n topology.NodeID, rate, bytes float64, in bool) {
		nd := &s.nodes[n]
		var ports []int32
		if nd.behindNICs {
			ports = s.hostPorts[nd.server]
		} else {
			for p := nd.portLo; p < nd.portHi; p++ {
				ports = append(ports, p)
			}
		}
		share := rate / float64(len(ports))
		for _, p := range ports {
			if in {
				rx[p] += share * (bytes + wireOH) * 8
			} else {
				wire[p] += share * (bytes + wireOH) * 8
			}
			if nd.behindNICs {
				cpu[s.ports[p].node] += share * float64(s.tmDemand)
			}
		}
	}
	for ai := range s.apps {
		ar := &s.apps[ai]
		w := 1 / float64(len(s.apps))
		if mix != nil {
			w = mix[ai]
		}
		bytes := float64(ar.bytes)
		for _, in := range ar.a.Instances() {
			if !in.IsPrimary() {
				continue
			}
			st := &s.insts[int(ar.instBase)+in.Index]
			cpu[st.node] += w * in.Rate * st.meanNs[s.nodes[st.node].kind]
			if in.Node.IsSource() {
				r := w * in.Node.Ingress / float64(in.Node.Shards)
				netEnd(st.node, r, bytes, true)
				netEnd(st.node, r, bytes, false) // the reply
			}
		}
		for _, l := range ar.a.Links() {
			a := s.insts[int(ar.instBase)+l.From.Index].node
			b := s.insts[int(ar.instBase)+l.To.Index].node
			if a == b || s.topo.Path(a, b).Via == topology.ViaHostLink {
				continue
			}
			netEnd(a, w*l.Rate, bytes, false)
			netEnd(b, w*l.Rate, bytes, true)
		}
	}
	best := math.Inf(1)
	for n := range s.nodes {
		if cpu[n] > 0 {
			best = min(best, float64(s.nodes[n].cores)*1e9/cpu[n])
		}
	}
	for p := range s.ports {
		g := s.ports[p].gbps * 1e9
		if wire[p] > 0 {
			best = min(best, g/wire[p])
		}
		if rx[p] > 0 {
			best = min(best, g/rx[p])
		}
	}
	return best
}
