package loadgen

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// TestKneeClosedLoopFindsCapacity runs the knee search over real client
// runs against simulated servers of known capacity (workers/service) on a
// fake clock. The knee's throughput must be the capacity within 2 % (the
// Plateau), its outstanding count within [0.98, 1.05] of the worker count
// plus one (Plateau below, Resolution above, one for integer rounding), and
// the search must take at most log2(workers) + 7 measurements (growth past
// the capacity, then about four bisection steps).
func TestKneeClosedLoopFindsCapacity(t *testing.T) {
	for _, c := range []struct {
		workers int
		service time.Duration
	}{{1, 10 * time.Microsecond}, {10, 10 * time.Microsecond}, {12, 35 * time.Microsecond}, {48, 50 * time.Microsecond}, {100, 100 * time.Microsecond}} {
		clk := NewFakeClock(0)
		srv := newSim(t, clk, SimConfig{Workers: c.workers, Service: c.service})
		base := ClosedLoop{Options: Options{Target: srv, Workload: echoWorkload(1), Clock: clk,
			Warmup: time.Millisecond, Duration: 10 * time.Millisecond}}
		res, err := FindKnee(KneeConfig{Start: 1, Integer: true}, MeasureOutstanding(context.Background(), base))
		if err != nil {
			t.Fatal(err)
		}
		capacity := srv.Capacity()
		t.Logf("%d workers x %v (capacity %.0f/s): knee %v after %d steps; %s", c.workers, c.service, capacity, res.Knee, res.Steps, res.Reason)
		if res.Outcome != KneeFound {
			t.Errorf("outcome %v", res.Outcome)
		}
		if !within(res.Knee.Throughput, capacity, 0.02) {
			t.Errorf("knee throughput %.0f/s, capacity %.0f/s", res.Knee.Throughput, capacity)
		}
		if n, w := res.Knee.Load, float64(c.workers); n < 0.98*w || n > 1.05*w+1 {
			t.Errorf("knee at %g outstanding, want %.1f to %.1f", n, 0.98*w, 1.05*w+1)
		}
		if limit := int(math.Ceil(math.Log2(float64(c.workers)))) + 7; res.Steps > limit {
			t.Errorf("%d measurements, want at most %d", res.Steps, limit)
		}
		for i := 1; i < len(res.Curve); i++ {
			if res.Curve[i].Load <= res.Curve[i-1].Load {
				t.Fatalf("curve not in load order: %v", res.Curve)
			}
		}
	}
}

// TestKneeOpenLoopPoisson: Poisson arrivals at a rising rate against one
// 10 µs worker (capacity 100 K/s). Queueing delay grows well before
// saturation, so the latency criterion puts the knee below capacity but
// above half of it; at the knee the server delivers what is offered.
func TestKneeOpenLoopPoisson(t *testing.T) {
	clk := NewFakeClock(0)
	srv := newSim(t, clk, SimConfig{Workers: 1, Service: 10 * time.Microsecond})
	base := OpenLoop{Options: Options{Target: srv, Workload: echoWorkload(1), Clock: clk,
		Warmup: 5 * time.Millisecond, Duration: 50 * time.Millisecond, Timeout: 10 * time.Millisecond}, MaxInFlight: 1000}
	res, err := FindKnee(KneeConfig{Start: 5_000, Growth: 2}, MeasurePoisson(context.Background(), base, 7))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Curve {
		t.Logf("  %v", p)
	}
	t.Logf("knee %v after %d steps; %s", res.Knee, res.Steps, res.Reason)
	if res.Outcome != KneeFound {
		t.Fatalf("outcome %v", res.Outcome)
	}
	if res.Knee.Throughput < 50_000 || res.Knee.Throughput > 100_000 {
		t.Errorf("knee throughput %.0f/s, want between half the capacity and the capacity", res.Knee.Throughput)
	}
	if !within(res.Knee.Throughput, res.Knee.Load, 0.03) {
		t.Errorf("at the knee the server delivers %.0f/s of %.0f/s offered", res.Knee.Throughput, res.Knee.Load)
	}
	if res.Knee.P99 > 3*res.Curve[0].P99 {
		t.Errorf("knee p99 %v is over 3x the low-load %v", res.Knee.P99, res.Curve[0].P99)
	}
}

// saturating is a measure function with a closed form: an ideal system of
// the given capacity whose latency grows once the load passes it.
func saturating(capacity float64) func(float64) (Point, error) {
	return func(load float64) (Point, error) {
		x := min(load, capacity)
		lat := time.Duration(1e4 * max(1, load/capacity))
		return Point{Throughput: x, Avg: lat, P99: lat}, nil
	}
}

// TestKneePure checks the search itself against closed-form curves, over
// capacities across seven orders of magnitude from a start of 1 with
// growth 4: the knee's load lies within [1-Plateau, 1+Resolution] of the
// capacity, its throughput within Plateau, and it takes at most
// log4(capacity) + 2 growth steps plus 2*5 bisection steps.
func TestKneePure(t *testing.T) {
	for _, capacity := range []float64{3, 37, 1000, 12345, 1e6, 2.5e7} {
		cfg := KneeConfig{Start: 1, Growth: 4, MaxSteps: 40}
		res, err := FindKnee(cfg, saturating(capacity))
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != KneeFound || res.Knee.Load < capacity*0.98 || res.Knee.Load > capacity*1.05 {
			t.Errorf("capacity %g: knee %v (%v), %s", capacity, res.Knee, res.Outcome, res.Reason)
		}
		if !within(res.Knee.Throughput, capacity, 0.02) {
			t.Errorf("capacity %g: peak throughput %g", capacity, res.Knee.Throughput)
		}
		if maxSteps := int(math.Ceil(math.Log(capacity)/math.Log(4))) + 2 + 10; res.Steps > maxSteps {
			t.Errorf("capacity %g: %d steps, want at most %d", capacity, res.Steps, maxSteps)
		}
		t.Logf("capacity %g: knee at %g after %d steps", capacity, res.Knee.Load, res.Steps)
	}
}

func TestKneeOutcomes(t *testing.T) {
	// Still rising at Max.
	res, err := FindKnee(KneeConfig{Start: 1, Max: 100}, saturating(1e9))
	if err != nil || res.Outcome != KneeNotReached || res.Knee.Load != 100 {
		t.Errorf("at Max: %+v, %v", res, err)
	}
	// Out of steps.
	res, err = FindKnee(KneeConfig{Start: 1, MaxSteps: 4}, saturating(1e9))
	if err != nil || res.Outcome != KneeNotReached || res.Steps != 4 || res.Knee.Load != 8 {
		t.Errorf("out of steps: %+v, %v", res, err)
	}
	// Failing already at Start.
	res, err = FindKnee(KneeConfig{Start: 1}, func(l float64) (Point, error) { return Point{Throughput: l, ErrorRate: 0.5}, nil })
	if err != nil || res.Outcome != KneeBelowStart || res.Steps != 1 {
		t.Errorf("below start: %+v, %v", res, err)
	}
	// Errors past the knee: errors rise above 1 % at load 50.
	res, err = FindKnee(KneeConfig{Start: 1}, func(l float64) (Point, error) {
		p := Point{Throughput: l, P99: time.Microsecond}
		if l > 50 {
			p.ErrorRate = 0.02
		}
		return p, nil
	})
	if err != nil || res.Outcome != KneeFound || res.Knee.Load > 50 || res.Knee.Load < 50/1.05 || !strings.Contains(res.Reason, "failed") {
		t.Errorf("error knee: %+v, %v", res, err)
	}
	// A failing measurement ends the search with its error and the curve so far.
	boom := errors.New("boom")
	res, err = FindKnee(KneeConfig{Start: 1}, func(l float64) (Point, error) {
		if l > 4 {
			return Point{}, boom
		}
		return Point{Throughput: l}, nil
	})
	if !errors.Is(err, boom) || res == nil || len(res.Curve) != 3 || res.Knee.Load != 4 {
		t.Errorf("measure error: %+v, %v", res, err)
	}
	for _, bad := range []KneeConfig{{}, {Start: -1}, {Start: 1, Growth: 1}, {Start: 1, MinGain: 2}, {Start: 10, Max: 5},
		{Start: 1, LatencyFactor: 0.5}, {Start: 1, MaxSteps: 1}, {Start: 0.5, Integer: true}, {Start: math.NaN()}} {
		if _, err := FindKnee(bad, saturating(10)); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestKneeRateLimitedClosedLoop sweeps a client-side rate limit from idle
// up: the knee is the capacity of the server (4 workers x 20 µs, 200 K/s).
func TestKneeRateLimitedClosedLoop(t *testing.T) {
	clk := NewFakeClock(0)
	srv := newSim(t, clk, SimConfig{Workers: 4, Service: 20 * time.Microsecond})
	base := ClosedLoop{Options: Options{Target: srv, Workload: echoWorkload(1), Clock: clk,
		Warmup: time.Millisecond, Duration: 10 * time.Millisecond}, Outstanding: 64}
	res, err := FindKnee(KneeConfig{Start: 10_000, Growth: 2}, MeasureRate(context.Background(), base))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("knee %v after %d steps; %s", res.Knee, res.Steps, res.Reason)
	if res.Outcome != KneeFound || !within(res.Knee.Throughput, 200_000, 0.05) {
		t.Errorf("knee %v, want about 200000/s", res.Knee)
	}
}
