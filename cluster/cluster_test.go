package cluster

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/loadgen"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/sim"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

func builtin(t *testing.T, name string) *app.App {
	t.Helper()
	a, err := app.Builtin(name, services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestEmulatedRunAndStop deploys IOT-TS on an emulated 3xType1-SmartNIC
// over loopback UDP, drives it with a closed loop for a moment, checks
// that every request completed, that the heartbeats and the power model
// report, and that Stop leaves no goroutine behind.
func TestEmulatedRunAndStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a := builtin(t, "iot-ts")
	plan, err := PlanApp("3xType1-SmartNIC", a, "hcm", 1)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Metrics.Unplaced != 0 || plan.PlanningRPS <= 0 {
		t.Fatalf("plan %+v", plan.Metrics)
	}
	c, err := Start(Config{Cluster: plan.Cluster, Dilation: 10})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := c.Deploy(plan, 1)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.NewTarget(dep)
	if err != nil {
		t.Fatal(err)
	}
	wl, err := loadgen.NewAppWorkload(a, loadgen.AppOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	b0 := c.BusySnapshot()
	run := loadgen.ClosedLoop{Options: loadgen.Options{Target: tg, Workload: wl, Clock: c.Clock(),
		Duration: 10 * time.Millisecond, Timeout: time.Second}, Outstanding: 8}
	s, err := run.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.Completed == 0 || s.Failed+s.TimedOut != 0 {
		t.Fatalf("summary %v", s)
	}
	w, err := c.PowerBetween(b0, c.BusySnapshot())
	if err != nil {
		t.Fatal(err)
	}
	idle := 3 * 98.0 // Table 4: Type1-SmartNIC idles at 98 W
	if w <= idle || w > 3*222 {
		t.Errorf("modelled power %.1f W, want above idle %.0f W and below peak", w, idle)
	}
	// Heartbeats: every 50 ms of emulated time, 0.5 s real at D=10.
	deadline := time.Now().Add(5 * time.Second)
	for {
		hb, _ := c.Controller().LastHeartbeat(0)
		if hb != nil && len(hb.Instances) > 0 && hb.BusyNs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat with instance figures from the first host")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestLossyClusterExactlyOnce runs IOT-TS on a cluster whose agents talk
// over an in-memory network that loses, duplicates and reorders 10 % of
// datagrams: every request still completes exactly once.
func TestLossyClusterExactlyOnce(t *testing.T) {
	seed := uint64(5)
	t.Logf("seed %d", seed)
	nw := transport.NewNetwork(nil, rand.New(rand.NewPCG(seed, 1)))
	defer nw.Close()
	nw.SetDefaultLink(transport.LinkConfig{Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, ReorderDelay: 300 * time.Microsecond})
	a := builtin(t, "iot-ts")
	plan, err := PlanApp("3xType1-SmartNIC", a, "hcm", 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(Config{Cluster: plan.Cluster, Dilation: -1, Network: nw, RequestTimeout: 30 * time.Second, State: StateMemory,
		Endpoint: transport.EndpointConfig{MinRTO: time.Millisecond, InitialRTO: 2 * time.Millisecond}})
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
	wl, _ := loadgen.NewAppWorkload(a, loadgen.AppOptions{Seed: 2})
	const n = 300
	run := loadgen.ClosedLoop{Options: loadgen.Options{Target: tg, Workload: wl, MaxRequests: n, Timeout: 60 * time.Second}, Outstanding: 16}
	s, err := run.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.Completed != n || s.Late != 0 || s.Duplicate != 0 {
		t.Fatalf("%d of %d completed, %d late, %d duplicate replies: %v", s.Completed, n, s.Late, s.Duplicate, s)
	}
	st := nw.Stats()
	t.Logf("network %+v", st)
	if st.Lost == 0 || st.Duplicated == 0 || st.Reordered == 0 {
		t.Errorf("the network did not misbehave: %+v", st)
	}
}

// TestLatencyModelMatchesSim: the emulated hop latencies compose to the
// simulator's unloaded latencies (sim.UnloadedLatency): a direct hop
// between two SmartNICs, or host and SmartNIC, equals it; a path to a host
// behind its SmartNIC equals the two hops plus the traffic manager's work.
func TestLatencyModelMatchesSim(t *testing.T) {
	plan, err := PlanApp("3xType1-SmartNIC", builtin(t, "nfv-fin"), "hcm", 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(Config{Cluster: plan.Cluster, Dilation: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	p := sim.DefaultParams()
	topo := c.Topology()
	hop, _ := LatencyModel(topo, p)
	const payload = 456
	bytes := transport.HeaderSize + payload
	host0, nic0 := topology.NodeID(0), topology.NodeID(1)
	host1, nic1 := topology.NodeID(2), topology.NodeID(3)
	for _, pair := range [][2]topology.NodeID{{nic0, nic1}, {host0, nic0}, {nic1, host1}} {
		want := sim.UnloadedLatency(topo, p, pair[0], pair[1], payload)
		if got := hop(pair[0], pair[1], bytes); got != want {
			t.Errorf("%s -> %s: %v, sim %v", topo.Name(pair[0]), topo.Name(pair[1]), got, want)
		}
	}
	// host0 -> host1 leaves through nic0 and enters through nic1.
	got := hop(host0, nic0, bytes) + p.TMDemand + hop(nic0, nic1, bytes) + p.TMDemand + hop(nic1, host1, bytes)
	want := sim.UnloadedLatency(topo, p, host0, host1, payload)
	if d := got - want; d < -2 || d > 2 { // rounding of serialisation times
		t.Errorf("host -> host through both SmartNICs: %v, sim %v", got, want)
	}
}
