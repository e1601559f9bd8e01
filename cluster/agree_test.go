package cluster

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/e3-platform/e3/loadgen"
	"github.com/e3-platform/e3/sim"
)

// TestAgreesWithSimulator runs IOT-TS on the emulated 3xType1-SmartNIC and
// in the simulator with the same placement, the same parameters and
// deterministic service times (the emulation's), with 16 closed-loop
// clients, below the knee: mean latency and throughput must agree. This
// is what lets the simulator's large-scale figures stand for the
// emulated cluster's.
func TestAgreesWithSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("emulates and simulates a cluster")
	}
	if raceEnabled {
		t.Skip("the race detector slows messages past the fixed dilation; CI runs this test without -race")
	}
	a := builtin(t, "iot-ts")
	plan, err := PlanApp("3xType1-SmartNIC", a, "hcm", 1)
	if err != nil {
		t.Fatal(err)
	}
	const outstanding = 16
	p := sim.DefaultParams()
	p.ServiceDist = sim.Deterministic
	res, err := sim.Run(sim.Config{
		Topology: plan.Problem.Topology(),
		Apps:     []sim.AppLoad{{App: a, Assignment: plan.Result.Assignment, Clients: sim.Closed(outstanding)}},
		Seed:     1, Warmup: 20 * time.Millisecond, Duration: 200 * time.Millisecond, Params: &p,
	})
	if err != nil {
		t.Fatal(err)
	}
	simLat := res.Apps[0].Mean
	// The simulator models no persistence or replication: state stays in
	// memory here too.
	c, err := Start(Config{Cluster: plan.Cluster, Dilation: 10, State: StateMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	dep, err := c.Deploy(plan, 1)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.NewTarget(dep)
	if err != nil {
		t.Fatal(err)
	}
	wl, _ := loadgen.NewAppWorkload(a, loadgen.AppOptions{Seed: 1})
	run := loadgen.ClosedLoop{Options: loadgen.Options{Target: tg, Workload: wl, Clock: c.Clock(),
		Warmup: 5 * time.Millisecond, Duration: 40 * time.Millisecond, Timeout: time.Second}, Outstanding: outstanding}
	tg.MeasureFrom(c.Now() + int64(run.Warmup))
	s, err := run.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	emuLat := tg.ExactLatency().Mean()
	t.Logf("mean latency: emulated %v, simulated %v; throughput: emulated %.0f/s, simulated %.0f/s",
		emuLat, simLat, s.Throughput, res.Throughput)
	if d := math.Abs(float64(emuLat-simLat)) / float64(simLat); d > 0.1 {
		t.Errorf("mean latency differs by %.0f%%: emulated %v, simulated %v", 100*d, emuLat, simLat)
	}
	// The emulated client sends its next request when the reply arrives in
	// real time, late by the pacing error, so its throughput may trail.
	if r := s.Throughput / res.Throughput; r < 0.8 || r > 1.1 {
		t.Errorf("throughput ratio emulated/simulated %.2f: %.0f against %.0f", r, s.Throughput, res.Throughput)
	}
}
