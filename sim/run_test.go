package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

func builtin(t testing.TB, name string) *app.App {
	t.Helper()
	a, err := app.Builtin(name, services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// moveFirst is an orchestrator that, at its first heartbeat, migrates the
// busiest migratable primary on a SmartNIC to its server's host: a crude
// stand-in for the data-plane orchestrator, enough to exercise the hook.
type moveFirst struct{ done bool }

func (m *moveFirst) Decide(_ time.Duration, obs *Observations) []Action {
	if m.done {
		return nil
	}
	m.done = true
	best := -1
	for i, io := range obs.Instances {
		if io.Primary && io.Migratable && obs.Nodes[io.Node].Kind == topology.SmartNIC &&
			(best < 0 || io.Processed > obs.Instances[best].Processed) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	io := obs.Instances[best]
	host := obs.Topology.Server(obs.Topology.ServerOf(io.Node)).Host
	return []Action{{Kind: Migrate, App: io.App, Instance: io.Instance, To: host}}
}

// TestDeterminism runs two built-in applications together, with skewed
// keys and an orchestrator that migrates, twice with one seed and once
// with another: the first two results must be identical byte for byte in
// JSON, the third must differ.
func TestDeterminism(t *testing.T) {
	topo := tableCluster(t, "3xType1-SmartNIC")
	run := func(seed uint64) []byte {
		res, err := Run(Config{
			Topology: topo, Seed: seed,
			Apps: []AppLoad{
				{App: builtin(t, "iot-ts"), Clients: Clients{Outstanding: 16, Keys: Keys{Zipf: 0.99}}, PlanRPS: 20_000},
				{App: builtin(t, "nfv-fin"), Clients: Clients{Rate: 300_000, Keys: Keys{Zipf: 1.2}}},
			},
			Warmup: 10 * time.Millisecond, Duration: 90 * time.Millisecond,
			Orchestrator: &moveFirst{},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Migrations) != 1 {
			t.Fatalf("seed %d: %d migrations, want 1", seed, len(res.Migrations))
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := run(1), run(1), run(2)
	if !bytes.Equal(a, b) {
		t.Errorf("two runs with seed 1 differ:\n%s\n%s", a[:min(len(a), 400)], b[:min(len(b), 400)])
	}
	if bytes.Equal(a, c) {
		t.Error("seeds 1 and 2 gave the same result")
	}
	t.Logf("%d bytes of JSON", len(a))
}

const storeApp = `name: st
class: RTA
nodes:
  a: {service: echo}
  b: {service: store}
  p: {service: pinned}
edges:
  - {from: a, to: b}
  - {from: a, to: p}
workload: {key_space: 1000}
`

// TestMigration migrates a stateful instance under load and checks the
// cold-migration model: it takes the fixed cost plus its state over the
// path's slowest link, messages for it wait and are delivered afterwards
// (no request is lost), and it then runs on its new node. The
// orchestrator sees the instance's execution time before.
func TestMigration(t *testing.T) {
	topo := cluster(t, "TwoCore", "TwoCore")
	a := loadApp(t, storeApp)
	var seen InstanceObservation
	orch := OrchestratorFunc(func(now time.Duration, obs *Observations) []Action {
		if now != 50*time.Millisecond {
			return nil
		}
		b, _ := a.Instance("b.0")
		seen = obs.Instances[b.Index]
		return []Action{{Kind: Migrate, App: 0, Instance: b.Index, To: 1}} // r0/s1/host
	})
	const n = 4
	res, err := Run(Config{
		Topology: topo, Machines: testMachines, Seed: 9,
		Apps: []AppLoad{{App: a, Clients: Closed(n), Assignment: assign(t, topo, a, map[string]string{
			"a.0": "r0/s0/host", "b.0": "r0/s0/host", "p.0": "r0/s0/host"})}},
		Duration:     300 * time.Millisecond,
		Params:       params(map[string]float64{"echo": 2e-6, "store": 4e-6, "pinned": 1e-6}, Deterministic),
		Orchestrator: orch,
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen.ID != "b.0" || seen.Node != 0 || seen.MeanExec != 4*time.Microsecond || seen.Processed == 0 {
		t.Errorf("observed %+v before the migration", seen)
	}
	if len(res.Migrations) != 1 {
		t.Fatalf("%d migrations, want 1", len(res.Migrations))
	}
	m := res.Migrations[0]
	// 20 ms fixed + 64 MiB over the 10 Gb/s ports.
	want := 20*time.Millisecond + time.Duration(64<<20*8/10) // 53,687,091.2 ns, rounded down by the division
	if m.End-m.Start != want || m.From != "r0/s0/host" || m.To != "r0/s1/host" || m.StateBytes != 64<<20 {
		t.Errorf("migration %+v, want %v from r0/s0/host to r0/s1/host", m, want)
	}
	if m.Held == 0 {
		t.Error("no message waited for the migration")
	}
	ar := res.Apps[0]
	if ar.InFlight != n {
		t.Errorf("%d requests in flight at the end, want all %d clients' (none lost)", ar.InFlight, n)
	}
	if ar.Max < want-5*time.Millisecond {
		t.Errorf("longest latency %v, want about the migration's %v", ar.Max, want)
	}
	b, _ := a.Instance("b.0")
	if ir := ar.Instances[b.Index]; ir.Node != "r0/s1/host" || ar.Assignment[b.Index] != 1 {
		t.Errorf("b.0 ends on %s (assignment %d), want r0/s1/host", ir.Node, ar.Assignment[b.Index])
	}
	// Work continued after the migration: the window is 300 ms and the
	// migration ends at about 124 ms.
	if x := ar.Throughput; x < 0.5*n/(20e-6) {
		t.Logf("throughput %.0f/s", x)
	}
	if ar.Completed < 1000 {
		t.Errorf("%d requests completed", ar.Completed)
	}
}

// TestMigrationErrors checks that an action the simulator cannot carry out
// stops the run with an error naming it.
func TestMigrationErrors(t *testing.T) {
	topo := cluster(t, "TwoCore", "TwoCore")
	a := loadApp(t, storeApp)
	p, _ := a.Instance("p.0")
	b, _ := a.Instance("b.0")
	for _, tc := range []struct {
		act  Action
		want string
	}{
		{Action{Kind: Migrate, App: 0, Instance: p.Index, To: 1}, "cannot migrate"},
		{Action{Kind: Migrate, App: 0, Instance: b.Index, To: 0}, "already on r0/s0/host"},
		{Action{Kind: Migrate, App: 3, Instance: 0, To: 1}, "app 3"},
		{Action{Kind: Migrate, App: 0, Instance: 99, To: 1}, "instance 99"},
		{Action{Kind: Migrate, App: 0, Instance: b.Index, To: 7}, "node 7"},
		{Action{Kind: 9}, "unknown action kind 9"},
	} {
		act := tc.act
		_, err := Run(Config{
			Topology: topo, Machines: testMachines, Seed: 1,
			Apps: []AppLoad{{App: a, Clients: Closed(1), Assignment: assign(t, topo, a, map[string]string{
				"a.0": "r0/s0/host", "b.0": "r0/s0/host", "p.0": "r0/s0/host"})}},
			Duration: 100 * time.Millisecond,
			Params:   params(map[string]float64{"echo": 2e-6, "store": 4e-6, "pinned": 1e-6}, Deterministic),
			Orchestrator: OrchestratorFunc(func(time.Duration, *Observations) []Action {
				return []Action{act}
			}),
		})
		wantErr(t, err, "orchestrator action 0 at 50ms", tc.want)
	}
}

// TestKneeMM1 finds the knee of an M/M/1 queue, where it can be worked
// out: the p99 response time is ln(100)/(mu - lambda), so with the
// default P99Factor of 3 the knee is where mu - lambda is a third of its
// low-load value, about lambda = 0.7 mu (a little lower: the network adds
// a constant to the low-load p99).
func TestKneeMM1(t *testing.T) {
	const mu = 100_000.0
	topo := cluster(t, "OneCore")
	a := loadApp(t, oneStage)
	k, err := Knee(Config{
		Topology: topo, Machines: testMachines, Seed: 4,
		Apps:   []AppLoad{{App: a, Assignment: assign(t, topo, a, map[string]string{"a.0": "r0/s0/host"})}},
		Params: params(map[string]float64{"echo": 1 / mu}, Exponential),
	}, KneeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range k.Probes {
		t.Logf("offered %8.0f  throughput %8.0f  p99 %10v  below knee %v", p.Offered, p.Throughput, p.P99, p.BelowKnee)
	}
	t.Logf("estimate %.0f, knee at %.0f offered, %.0f/s", k.Estimate, k.Offered, k.PeakRPS)
	if math.Abs(k.Estimate-mu) > 1 {
		t.Errorf("capacity estimate %.0f, want mu = %.0f", k.Estimate, mu)
	}
	if k.Offered < 0.6*mu || k.Offered > 0.75*mu {
		t.Errorf("knee at %.0f offered, want 0.6-0.75 mu", k.Offered)
	}
	if math.Abs(k.PeakRPS-k.Offered) > 0.05*k.Offered || k.Knee == nil || k.Knee.Throughput != k.PeakRPS {
		t.Errorf("peak %.0f at %.0f offered", k.PeakRPS, k.Offered)
	}
}

// TestKneeBuiltin runs the knee search on NFV-FIN on three Type1-SmartNIC
// servers, the shape of X4, and checks what must hold: the knee is below
// the analytic bound (up to the measurement's noise, 2 %) and not far
// below it for an application whose stages are all light.
func TestKneeBuiltin(t *testing.T) {
	if testing.Short() {
		t.Skip("a knee search of a built-in application takes seconds")
	}
	topo := tableCluster(t, "3xType1-SmartNIC")
	k, err := Knee(Config{Topology: topo, Seed: 1, Apps: []AppLoad{{App: builtin(t, "nfv-fin")}}}, KneeOptions{Requests: 10000})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range k.Probes {
		t.Logf("offered %9.0f  throughput %9.0f  p99 %10v  %6.1f W  below knee %v", p.Offered, p.Throughput, p.P99, p.PowerW, p.BelowKnee)
	}
	t.Logf("estimate %.0f, knee %.0f/s at %.0f offered, %.0f requests/J", k.Estimate, k.PeakRPS, k.Offered, k.Knee.RequestsPerJoule)
	if k.PeakRPS > 1.02*k.Estimate || k.PeakRPS < 0.5*k.Estimate {
		t.Errorf("knee %.0f against an estimate of %.0f", k.PeakRPS, k.Estimate)
	}
}

// TestRateLimiter checks the closed loop's client-side rate limiter: far
// more clients than needed, capped at 20,000 requests a second.
func TestRateLimiter(t *testing.T) {
	topo := cluster(t, "TwoCore")
	a := loadApp(t, oneStage)
	for _, burst := range []int{0, 50} {
		res, err := Run(Config{
			Topology: topo, Machines: testMachines, Seed: 6,
			Apps: []AppLoad{{App: a, Clients: Clients{Outstanding: 64, Rate: 20_000, Burst: burst},
				Assignment: assign(t, topo, a, map[string]string{"a.0": "r0/s0/host"})}},
			Warmup: 10 * time.Millisecond, Duration: 500 * time.Millisecond,
			Params: params(map[string]float64{"echo": 5e-6}, Lognormal),
		})
		if err != nil {
			t.Fatal(err)
		}
		if x := res.Throughput; math.Abs(x-20_000) > 0.01*20_000 {
			t.Errorf("burst %d: throughput %.0f/s, want the limit 20000", burst, x)
		}
	}
}

// TestZipf compares the key samplers' rank frequencies with the Zipf law:
// the most popular ranks exactly, and the mass of the top tenth of ranks.
func TestZipf(t *testing.T) {
	const n, draws = 1000, 400_000
	for _, s := range []float64{0.5, 0.99, 1, 1.3, 2.5} {
		k, err := newKeySampler(n, s, 0)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 1))
		counts := make([]int, n)
		for range draws {
			counts[k.rank(rng)]++
		}
		h := zeta(n, s)
		top := 0.0
		for r := 1; r <= n/10; r++ {
			top += math.Pow(float64(r), -s) / h
		}
		gotTop := 0
		for r := 0; r < n/10; r++ {
			gotTop += counts[r]
		}
		for r := 1; r <= 3; r++ {
			p := math.Pow(float64(r), -s) / h
			got := float64(counts[r-1]) / draws
			if math.Abs(got-p) > 0.03*p+3*math.Sqrt(p/draws) {
				t.Errorf("s %v: rank %d drawn %.4f of the time, Zipf says %.4f", s, r, got, p)
			}
		}
		if got := float64(gotTop) / draws; math.Abs(got-top) > 0.02*top {
			t.Errorf("s %v: top tenth of ranks drawn %.4f of the time, Zipf says %.4f", s, got, top)
		}
	}
	if _, err := newKeySampler(10, -1, 0); err == nil {
		t.Error("a negative exponent was accepted")
	}
}

// TestUnloadedMatches checks the per-node constants the simulator uses for
// unloaded latencies against the exported functions, on a cluster with
// every kind of server end.
func TestUnloadedMatches(t *testing.T) {
	topo := cluster(t, "Beefy", "Type1-SmartNIC", "Type2-SmartNIC", "SuperBeefy")
	a := loadApp(t, oneStage)
	cfg := Config{Topology: topo, Seed: 1, Duration: time.Millisecond,
		Apps:   []AppLoad{{App: a, Clients: Closed(1), Assignment: assign(t, topo, a, map[string]string{"a.0": "r0/s0/host"})}},
		Params: params(map[string]float64{"echo": 1e-6}, Lognormal)}
	s, err := newSim(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	for x := range topo.Nodes() {
		for y := range topo.Nodes() {
			for _, by := range []int32{0, 512, 1500} {
				if d := s.unloaded(x, y, by) - int64(UnloadedLatency(topo, s.p, x, y, int(by))); d < -2 || d > 2 {
					t.Errorf("%s to %s, %d bytes: %d ns apart", topo.Name(x), topo.Name(y), by, d)
				}
			}
		}
	}
}

// TestClientPath runs one client against a one-stage application on each
// kind of node (a host with plain ports, a host behind one or four
// SmartNICs, a SmartNIC) with deterministic service: the latency must be
// the service time plus ClientLatency both ways, the request through the
// node's port (and PCIe and a traffic manager for a host behind
// SmartNICs) and the reply back the same way.
func TestClientPath(t *testing.T) {
	topo := cluster(t, "Beefy", "Type1-SmartNIC", "Type2-SmartNIC", "SuperBeefy")
	a := loadApp(t, oneStage)
	for n := range topo.Nodes() {
		p := params(map[string]float64{"echo": 7e-6}, Deterministic)
		res, err := Run(Config{Topology: topo, Seed: 1, Duration: 10 * time.Millisecond,
			Apps:   []AppLoad{{App: a, Clients: Closed(1), Assignment: assign(t, topo, a, map[string]string{"a.0": topo.Name(n)})}},
			Params: p})
		if err != nil {
			t.Fatal(err)
		}
		want := 7*time.Microsecond + 2*ClientLatency(topo, *p, n, 512)
		if got := res.Apps[0].Mean; got < want-2 || got > want+2 || res.Apps[0].Max != got {
			t.Errorf("%s: latency mean %v max %v, want %v", topo.Name(n), got, res.Apps[0].Max, want)
		}
	}
}

// TestConfigErrors checks that bad configurations are refused with the
// field and value at fault.
func TestConfigErrors(t *testing.T) {
	topo := cluster(t, "OneCore")
	a := loadApp(t, oneStage)
	ok := func() Config {
		return Config{Topology: topo, Machines: testMachines, Duration: time.Millisecond,
			Apps:   []AppLoad{{App: a, Clients: Open(1000), Assignment: assign(t, topo, a, map[string]string{"a.0": "r0/s0/host"})}},
			Params: params(map[string]float64{"echo": 1e-6}, Lognormal)}
	}
	if _, err := Run(ok()); err != nil {
		t.Fatalf("the base config fails: %v", err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want []string
	}{
		{func(c *Config) { c.Topology = nil }, []string{"Topology is nil"}},
		{func(c *Config) { c.Apps = nil }, []string{"Apps is empty"}},
		{func(c *Config) { c.Duration = 0 }, []string{"Duration = 0s"}},
		{func(c *Config) { c.Warmup = -1 }, []string{"Warmup = -1ns"}},
		{func(c *Config) { c.Apps[0].App = nil }, []string{"Apps[0].App is nil"}},
		{func(c *Config) { c.Apps[0].Clients = Clients{} }, []string{"Apps[0] (one)", "needs Rate > 0"}},
		{func(c *Config) { c.Apps[0].Clients.Rate = math.NaN() }, []string{"Rate = NaN"}},
		{func(c *Config) { c.Apps[0].Clients.Outstanding = -2 }, []string{"Outstanding = -2"}},
		{func(c *Config) { c.Apps[0].Clients.Keys.Zipf = -1 }, []string{"Zipf = -1"}},
		{func(c *Config) { c.Apps[0].Assignment = c.Apps[0].Assignment[:0] }, []string{"Assignment has 0 entries", "1 instances"}},
		{func(c *Config) { c.Apps[0].Assignment[0] = -1 }, []string{"primaries without a node", "a.0"}},
		{func(c *Config) { c.Apps[0].Assignment[0] = 5 }, []string{"node 5"}},
		{func(c *Config) { c.Params.ServiceCV = -1 }, []string{"ServiceCV = -1"}},
		{func(c *Config) { c.Params.PCIeLatency = -1 }, []string{"PCIeLatency = -1ns"}},
		{func(c *Config) { c.Params.Demand = fixedDemand(nil) }, []string{"no test demand"}},
		{func(c *Config) { c.Machines = nil }, []string{"OneCore", "no machine profile"}},
	} {
		c := ok()
		tc.edit(&c)
		_, err := Run(c)
		wantErr(t, err, tc.want...)
	}
}

// zeta returns the generalised harmonic number H(n, s) = sum 1/i^s, the
// Zipf law's normalising constant.
func zeta(n int, s float64) float64 {
	sum := 0.0
	for i := n; i >= 1; i-- { // smallest terms first
		sum += math.Pow(float64(i), -s)
	}
	return sum
}

// TestRoutingMatchesTrafficModel checks the simulator's routing against
// the traffic model of package app, which placement provisions with: for
// every built-in application, the messages each primary processes per
// request must match app.Instance.Rate (key hashing of uniform keys, round
// robin, broadcast, shares), within five standard deviations of the count
// plus 2 % for the key space's uneven split over shards.
func TestRoutingMatchesTrafficModel(t *testing.T) {
	topo := tableCluster(t, "3xType1-SmartNIC")
	for _, name := range app.BuiltinNames() {
		a := builtin(t, name)
		cfg := Config{Topology: topo, Seed: 8, Apps: []AppLoad{{App: a, Clients: Closed(1)}},
			Warmup: 2 * time.Millisecond, Duration: 200 * time.Millisecond}
		as, err := PlaceApps(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Apps[0].Assignment = as[0]
		est, err := Capacity(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		// A light load, so that few requests straddle the window's ends.
		cfg.Apps[0].Clients = Open(0.2 * est)
		cfg.Duration = time.Duration(40_000 / (0.2 * est) * 1e9)
		res, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ar := res.Apps[0]
		reqs := float64(ar.Completed)
		for i, in := range a.Instances() {
			got := float64(ar.Instances[i].Processed)
			want := in.Rate * reqs
			if tol := 5*math.Sqrt(want) + 0.02*want + 5; math.Abs(got-want) > tol {
				t.Errorf("%s: %s processed %.0f messages for %.0f requests, the traffic model says %.0f", name, in.ID, got, reqs, want)
			}
		}
	}
}

// TestOverload drives an open loop at twice a node's capacity with a cap
// on requests in flight: the node serves at its capacity, the excess is
// rejected at the client, and nothing else breaks.
func TestOverload(t *testing.T) {
	topo := cluster(t, "OneCore")
	a := loadApp(t, oneStage)
	res, err := Run(Config{
		Topology: topo, Machines: testMachines, Seed: 12,
		Apps: []AppLoad{{App: a, Clients: Clients{Rate: 200_000, MaxInFlight: 100},
			Assignment: assign(t, topo, a, map[string]string{"a.0": "r0/s0/host"})}},
		Warmup: 10 * time.Millisecond, Duration: 200 * time.Millisecond,
		Params: params(map[string]float64{"echo": 1e-5}, Exponential),
	})
	if err != nil {
		t.Fatal(err)
	}
	ar := res.Apps[0]
	t.Logf("sent %d, completed %d, rejected %d, in flight %d, p99 %v", ar.Sent, ar.Completed, ar.Rejected, ar.InFlight, ar.P99)
	if x := ar.Throughput; math.Abs(x-100_000) > 0.02*100_000 {
		t.Errorf("throughput %.0f/s, want the node's 100000", x)
	}
	if r := float64(ar.Rejected) / 0.2; math.Abs(r-100_000) > 0.03*100_000 {
		t.Errorf("%.0f rejections/s, want the excess 100000", r)
	}
	if ar.InFlight > 100 || res.Nodes[0].Utilisation < 0.99 {
		t.Errorf("%d in flight (cap 100), utilisation %.3f", ar.InFlight, res.Nodes[0].Utilisation)
	}
}
