package loadgen

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"
)

// Point is one measurement of a latency-throughput curve.
type Point struct {
	// Load is the offered load the point was measured at: outstanding
	// requests for a closed loop, requests per second for a rate.
	Load float64
	// Throughput is completed requests per second.
	Throughput float64
	// Avg and P99 are client-observed latencies.
	Avg, P99 time.Duration
	// ErrorRate is the fraction of requests that failed, timed out or were
	// shed.
	ErrorRate float64
}

// String formats the point for logs and reports.
func (p Point) String() string {
	return fmt.Sprintf("load=%g throughput=%.0f/s avg=%v p99=%v errors=%.2f%%", p.Load, p.Throughput, p.Avg, p.P99, 100*p.ErrorRate)
}

// KneeConfig parameterises [FindKnee]. Zero fields take the defaults shown.
type KneeConfig struct {
	// Start is the first, lowest load; it must be positive and light
	// enough that its p99 is the target's unloaded latency.
	Start float64
	// Max caps the load; 0 leaves only MaxSteps as the bound.
	Max float64
	// Growth multiplies the load at each step of the first phase
	// (default 2).
	Growth float64
	// Integer rounds loads to whole numbers (outstanding-request counts).
	Integer bool
	// MinGain is the fraction of added load that must come out as added
	// throughput for a step to count as still rising (default 0.5): from
	// load L to L' the throughput must grow by at least
	// MinGain*(L'/L - 1) relative to its value at L.
	MinGain float64
	// LatencyFactor: a load whose p99 exceeds LatencyFactor times the p99 at
	// Start is past the knee (default 3).
	LatencyFactor float64
	// MaxErrorRate: a load at which a larger fraction of requests fails,
	// times out or is shed is past the knee (default 0.01).
	MaxErrorRate float64
	// Plateau: throughputs within this fraction of each other count as
	// equal (default 0.02). The knee is the lowest load whose throughput is
	// within Plateau of the best found.
	Plateau float64
	// Resolution ends a bisection once the bracket's upper load is within
	// this fraction of its lower one (default 0.05).
	Resolution float64
	// MaxSteps bounds the number of measurements (default 16).
	MaxSteps int
}

// Knee-search defaults; the package comment says why.
const (
	DefaultGrowth        = 2
	DefaultMinGain       = 0.5
	DefaultLatencyFactor = 3
	DefaultMaxErrorRate  = 0.01
	DefaultPlateau       = 0.02
	DefaultResolution    = 0.05
	DefaultMaxSteps      = 16
)

func (c *KneeConfig) fill() error {
	if !(c.Start > 0) || math.IsInf(c.Start, 0) {
		return fmt.Errorf("loadgen: knee search: Start %v is not a positive load", c.Start)
	}
	if c.Integer && c.Start < 1 {
		return fmt.Errorf("loadgen: knee search: Start %v is below 1 with integer loads", c.Start)
	}
	if c.Max != 0 && !(c.Max >= c.Start) {
		return fmt.Errorf("loadgen: knee search: Max %v is below Start %v", c.Max, c.Start)
	}
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Growth, DefaultGrowth)
	def(&c.MinGain, DefaultMinGain)
	def(&c.LatencyFactor, DefaultLatencyFactor)
	def(&c.MaxErrorRate, DefaultMaxErrorRate)
	def(&c.Plateau, DefaultPlateau)
	def(&c.Resolution, DefaultResolution)
	if c.MaxSteps == 0 {
		c.MaxSteps = DefaultMaxSteps
	}
	switch {
	case !(c.Growth > 1) || c.Growth > 1e6:
		return fmt.Errorf("loadgen: knee search: Growth %v; need a factor above 1", c.Growth)
	case !(c.MinGain > 0 && c.MinGain <= 1):
		return fmt.Errorf("loadgen: knee search: MinGain %v; need 0 < MinGain <= 1", c.MinGain)
	case !(c.LatencyFactor > 1) || math.IsInf(c.LatencyFactor, 0):
		return fmt.Errorf("loadgen: knee search: LatencyFactor %v; need a factor above 1", c.LatencyFactor)
	case !(c.MaxErrorRate > 0 && c.MaxErrorRate < 1):
		return fmt.Errorf("loadgen: knee search: MaxErrorRate %v; need 0 < rate < 1", c.MaxErrorRate)
	case !(c.Plateau > 0 && c.Plateau < 0.5):
		return fmt.Errorf("loadgen: knee search: Plateau %v; need 0 < Plateau < 0.5", c.Plateau)
	case !(c.Resolution > 0) || math.IsInf(c.Resolution, 0):
		return fmt.Errorf("loadgen: knee search: Resolution %v; need a positive fraction", c.Resolution)
	case c.MaxSteps < 2 || c.MaxSteps > 1000:
		return fmt.Errorf("loadgen: knee search: MaxSteps %d; need 2 to 1000", c.MaxSteps)
	}
	return nil
}

// KneeOutcome says how a knee search ended.
type KneeOutcome int

const (
	// KneeFound: the knee was bracketed between a load that still rose
	// and one past it, and narrowed down.
	KneeFound KneeOutcome = iota
	// KneeNotReached: throughput was still rising at Max or when the step
	// budget ran out; Knee is the highest load measured, a lower bound.
	KneeNotReached
	// KneeBelowStart: even Start failed too many requests or delivered
	// nothing; lower Start.
	KneeBelowStart
)

// String names the outcome.
func (o KneeOutcome) String() string {
	switch o {
	case KneeFound:
		return "found"
	case KneeNotReached:
		return "not reached"
	case KneeBelowStart:
		return "below start"
	}
	return fmt.Sprintf("KneeOutcome(%d)", int(o))
}

// KneeResult is the outcome of [FindKnee].
type KneeResult struct {
	// Knee is the highest load found within the knee; its Throughput is
	// the peak throughput at the knee.
	Knee    Point
	Outcome KneeOutcome
	// Reason says why the search stopped where it did, for reports.
	Reason string
	// Curve is every measurement, in increasing load order.
	Curve []Point
	// Steps is the number of measurements taken.
	Steps int
}

// FindKnee finds the knee of a latency-throughput curve: the load at which
// the system is as busy as it gets before queueing delay takes over, and the
// peak throughput there (the paper's "throughput at peak utilisation, the
// knee of the latency-throughput curve, where queueing delay is minimal").
//
// A load L is within the knee, judged against the highest load L0 known to
// be within it and against the first point measured, when all three hold:
// its error rate is at most MaxErrorRate; its p99 is at most LatencyFactor
// times the first point's; and its throughput rose from L0's by at least
// MinGain of the relative load increase (throughput is still rising).
//
// The search runs in three phases, every judgement made on measurements:
//
//  1. Growth: measure Start, Start*Growth, Start*Growth^2, ... until a load
//     falls outside the knee.
//  2. Upper bisection, in the geometric middle, between the last load
//     within and the first outside, until they are within Resolution; it is
//     skipped when the first load outside gained no throughput (within
//     Plateau), since the plateau has then been reached already.
//  3. Plateau start: a coarse step can land past the point where
//     throughput stops rising and still count as rising on average. So the
//     knee is taken as the lowest load whose throughput is within Plateau of
//     the best found, located by bisecting down from it.
//
// The function is pure apart from calling measure, so the emulated cluster
// (measure runs a client) and the simulator (measure evaluates a model)
// share it, and it takes at most MaxSteps measurements, typically
// log_Growth(knee/Start) + 2 + 2*log2(log(Growth)/Resolution).
//
// An error from measure ends the search; the result so far is returned with
// it.
func FindKnee(cfg KneeConfig, measure func(load float64) (Point, error)) (*KneeResult, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	res := &KneeResult{}
	take := func(load float64) (Point, error) {
		p, err := measure(load)
		res.Steps++
		if err != nil {
			return p, fmt.Errorf("loadgen: knee search: measuring load %g: %w", load, err)
		}
		p.Load = load
		res.Curve = append(res.Curve, p)
		return p, nil
	}
	done := func(err error) (*KneeResult, error) {
		sort.SliceStable(res.Curve, func(i, j int) bool { return res.Curve[i].Load < res.Curve[j].Load })
		return res, err
	}
	// mid returns the geometric middle of a bracket, or false when the
	// bracket is as narrow as the search resolves.
	mid := func(a, b float64) (float64, bool) {
		if b <= a*(1+cfg.Resolution) || (cfg.Integer && b-a <= 1) {
			return 0, false
		}
		m := math.Sqrt(a * b)
		if cfg.Integer {
			m = min(max(math.Round(m), a+1), b-1)
		}
		return m, true
	}
	base, err := take(cfg.Start)
	if err != nil {
		return done(err)
	}
	res.Knee = base
	if base.ErrorRate > cfg.MaxErrorRate || !(base.Throughput > 0) {
		res.Outcome = KneeBelowStart
		res.Reason = fmt.Sprintf("the lowest load %g is already past the knee (throughput %.0f/s, %.2f%% errors)", base.Load, base.Throughput, 100*base.ErrorRate)
		return done(nil)
	}
	lo := base
	var hi Point
	var why string
	// Phase 1: geometric growth until a load falls outside the knee.
	for {
		if res.Steps >= cfg.MaxSteps {
			res.Outcome, res.Knee = KneeNotReached, lo
			res.Reason = fmt.Sprintf("still rising at load %g after %d measurements (MaxSteps)", lo.Load, res.Steps)
			return done(nil)
		}
		next := lo.Load * cfg.Growth
		if cfg.Integer {
			next = max(math.Round(next), lo.Load+1)
		}
		if cfg.Max > 0 && next > cfg.Max {
			if lo.Load >= cfg.Max {
				res.Outcome, res.Knee = KneeNotReached, lo
				res.Reason = fmt.Sprintf("still rising at the maximum load %g", cfg.Max)
				return done(nil)
			}
			next = cfg.Max
		}
		p, err := take(next)
		if err != nil {
			res.Knee = lo
			return done(err)
		}
		if why = cfg.judge(p, lo, base); why == "" {
			lo = p
			continue
		}
		hi = p
		break
	}
	// Phase 2: bisection between lo (within) and hi (outside), unless hi
	// shows that lo is on the plateau already.
	if hi.Throughput > (1+cfg.Plateau)*lo.Throughput {
		for res.Steps < cfg.MaxSteps {
			m, ok := mid(lo.Load, hi.Load)
			if !ok {
				break
			}
			p, err := take(m)
			if err != nil {
				res.Knee = lo
				return done(err)
			}
			if w := cfg.judge(p, lo, base); w == "" {
				lo = p
			} else {
				hi, why = p, w
			}
		}
	}
	res.Outcome, res.Knee = KneeFound, lo
	res.Reason = fmt.Sprintf("load %g is past the knee: %s", hi.Load, why)
	// Phase 3: the lowest load whose throughput is on lo's plateau. below
	// is the highest measured load under lo that is not.
	floor := (1 - cfg.Plateau) * lo.Throughput
	var below *Point
	for i := range res.Curve {
		p := &res.Curve[i]
		if p.Load < lo.Load && p.Throughput < floor && (below == nil || p.Load > below.Load) {
			below = p
		}
	}
	if below != nil {
		a := below.Load
		for res.Steps < cfg.MaxSteps {
			m, ok := mid(a, lo.Load)
			if !ok {
				break
			}
			p, err := take(m)
			if err != nil {
				res.Knee = lo
				return done(err)
			}
			if p.Throughput >= floor && cfg.acceptable(p, base) == "" {
				lo = p
			} else {
				a = m
			}
		}
	}
	if lo.Load < res.Knee.Load {
		res.Reason += fmt.Sprintf("; throughput is on its plateau from load %g", lo.Load)
	}
	res.Knee = lo
	return done(nil)
}

// judge returns why p is outside the knee, or "" if it is within.
func (c *KneeConfig) judge(p, lo, base Point) string {
	if why := c.acceptable(p, base); why != "" {
		return why
	}
	gain := p.Throughput/lo.Throughput - 1
	need := c.MinGain * (p.Load/lo.Load - 1)
	if !(gain >= need) {
		return fmt.Sprintf("throughput %+.1f%% for %+.1f%% load from %g (need %+.1f%%)", 100*gain, 100*(p.Load/lo.Load-1), lo.Load, 100*need)
	}
	return ""
}

// acceptable returns why p's errors or latency put it past the knee, or "".
func (c *KneeConfig) acceptable(p, base Point) string {
	if p.ErrorRate > c.MaxErrorRate {
		return fmt.Sprintf("%.2f%% of requests failed (limit %.2f%%)", 100*p.ErrorRate, 100*c.MaxErrorRate)
	}
	// A zero low-load p99 (an instantaneous fake) gives no scale to compare
	// against; the throughput test still applies.
	if base.P99 > 0 && float64(p.P99) > c.LatencyFactor*float64(base.P99) {
		return fmt.Sprintf("p99 %v is over %g times the low-load p99 %v", p.P99, c.LatencyFactor, base.P99)
	}
	return ""
}

// MeasureOutstanding returns a measure function for [FindKnee] whose load is
// the number of outstanding requests of base (rounded; use
// KneeConfig.Integer).
func MeasureOutstanding(ctx context.Context, base ClosedLoop) func(load float64) (Point, error) {
	return func(load float64) (Point, error) {
		c := base
		c.Outstanding = int(math.Round(load))
		s, err := c.Run(ctx)
		if err != nil {
			return Point{}, err
		}
		return s.Point(load), nil
	}
}

// MeasureRate returns a measure function whose load is the rate limit, in
// requests per second, of the closed loop base: a client-side rate limiter
// sweeping from idle to peak. base.Outstanding must be large enough to carry
// the highest rate (Little's law: rate times latency).
func MeasureRate(ctx context.Context, base ClosedLoop) func(load float64) (Point, error) {
	return func(load float64) (Point, error) {
		c := base
		c.Rate = load
		s, err := c.Run(ctx)
		if err != nil {
			return Point{}, err
		}
		return s.Point(load), nil
	}
}

// MeasurePoisson returns a measure function whose load is the rate of
// Poisson arrivals of the open loop base. Every measurement uses the same
// seed, so that loads are compared on the same random stream.
func MeasurePoisson(ctx context.Context, base OpenLoop, seed int64) func(load float64) (Point, error) {
	return func(load float64) (Point, error) {
		a, err := Poisson(load, seed)
		if err != nil {
			return Point{}, err
		}
		o := base
		o.Arrivals = a
		s, err := o.Run(ctx)
		if err != nil {
			return Point{}, err
		}
		return s.Point(load), nil
	}
}
