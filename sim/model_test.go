package sim

import (
	"math"
	"strconv"
	"testing"
	"time"
)

const oneStage = `name: one
class: RTA
nodes:
  a: {service: echo}
workload: {key_space: 1000}
`

// TestMM1 checks the compute model against queueing theory: one core,
// Poisson arrivals, exponential service is an M/M/1 queue, whose mean
// response time is 1/(mu - lambda) and whose response time is exponential,
// so its 99th percentile is ln(100)/(mu - lambda).
//
// Tolerance: with mu = 100,000/s, lambda = 50,000/s (rho = 0.5) and a
// 2 s window (about 100,000 requests), the measured mean over 20 seeds
// (100..119) had a relative standard deviation of 0.9 % (successive
// response times are correlated, so the spread is several times that of
// independent samples), and the p99 one of 1.9 %; the tolerances, 3 % and
// 6 %, are over three of those. The seed is fixed, so the test is
// deterministic; the tolerance says how far the model may be from theory
// before the model rather than the sample is to blame.
func TestMM1(t *testing.T) {
	const (
		seed   = 1
		mu     = 100_000.0
		lambda = 50_000.0
	)
	t.Logf("seed %d", seed)
	topo := cluster(t, "OneCore")
	a := loadApp(t, oneStage)
	cfg := Config{
		Topology: topo, Machines: testMachines, Seed: seed,
		Apps:   []AppLoad{{App: a, Clients: Open(lambda), Assignment: assign(t, topo, a, map[string]string{"a.0": "r0/s0/host"})}},
		Warmup: 100 * time.Millisecond, Duration: 2 * time.Second,
		Params: params(map[string]float64{"echo": 1 / mu}, Exponential),
	}
	res, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := 1 / (mu - lambda) * 1e9 // ns
	ir := res.Apps[0].Instances[0]
	got := float64(ir.MeanSojourn)
	t.Logf("%d messages; mean response %.0f ns, theory %.0f ns; mean service %v", ir.Processed, got, want, ir.MeanExec)
	const tol = 0.03
	if math.Abs(got-want) > tol*want {
		t.Errorf("M/M/1 mean response %.0f ns, theory %.0f ns (tolerance %.0f %%)", got, want, tol*100)
	}
	if ex := float64(ir.MeanExec); math.Abs(ex-1e9/mu) > 0.02*1e9/mu {
		t.Errorf("mean service %.0f ns, want %.0f", ex, 1e9/mu)
	}
	// Utilisation is rho.
	if u := res.Nodes[0].Utilisation; math.Abs(u-lambda/mu) > 0.02 {
		t.Errorf("utilisation %.3f, want %.3f", u, lambda/mu)
	}
	// The client sees the response time plus the network both ways, and
	// the network adds a constant on an almost idle link.
	net := 2 * float64(ClientLatency(topo, *cfg.Params, 0, 512))
	ar := res.Apps[0]
	if d := float64(ar.Mean) - got - net; math.Abs(d) > 50 {
		t.Errorf("client mean %v - response %.0f - network %.0f = %.0f ns, want about 0", ar.Mean, got, net, d)
	}
	p99 := math.Log(100)/(mu-lambda)*1e9 + net
	if math.Abs(float64(ar.P99)-p99) > 2*tol*p99 {
		t.Errorf("p99 %v, theory %.0f ns", ar.P99, p99)
	}
	if want := lambda * cfg.Duration.Seconds(); math.Abs(float64(ar.Completed)-want) > 0.02*want {
		t.Errorf("%d completed, want about %.0f", ar.Completed, want)
	}
}

const threeStage = `name: three
class: RTA
nodes:
  a: {service: echo, shards: 2}
  b: {service: slow, shards: 3}
  c: {service: echo}
edges:
  - {from: a, to: b, policy: round_robin}
  - {from: b, to: c, share: 0.5}
workload: {key_space: 1000}
`

// TestLittle checks Little's law on a closed loop: N clients, each with
// one request outstanding or thinking, so N = X (R + Z) for throughput X,
// response time R and think time Z. It holds whatever the model inside,
// so it checks the clients' and the completion's bookkeeping.
func TestLittle(t *testing.T) {
	const seed = 3
	t.Logf("seed %d", seed)
	topo := cluster(t, "TwoCore", "OneCore")
	a := loadApp(t, threeStage)
	for _, think := range []time.Duration{0, 100 * time.Microsecond} {
		const n = 16
		cfg := Config{
			Topology: topo, Machines: testMachines, Seed: seed,
			Apps: []AppLoad{{App: a, Clients: Clients{Outstanding: n, Think: think},
				Assignment: assign(t, topo, a, map[string]string{
					"a.0": "r0/s0/host", "a.1": "r0/s1/host", "b.0": "r0/s0/host", "b.1": "r0/s1/host", "b.2": "r0/s0/host", "c.0": "r0/s1/host"})}},
			Warmup: 20 * time.Millisecond, Duration: 500 * time.Millisecond,
			Params: params(map[string]float64{"echo": 5e-6, "slow": 15e-6}, Lognormal),
		}
		res, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ar := res.Apps[0]
		got := ar.Throughput * (ar.Mean + think).Seconds()
		t.Logf("think %v: X = %.0f/s, R = %v: X(R+Z) = %.3f, N = %d", think, ar.Throughput, ar.Mean, got, n)
		if math.Abs(got-n) > 0.01*n {
			t.Errorf("think %v: X(R+Z) = %.3f, want N = %d", think, got, n)
		}
		if ar.InFlight > n {
			t.Errorf("%d in flight, more than the %d clients", ar.InFlight, n)
		}
	}
}

// TestIdleEnergy checks energy accounting: a cluster that does nothing
// draws its idle power, and its energy is idle power times the window.
func TestIdleEnergy(t *testing.T) {
	topo := tableCluster(t, "3xType1-SmartNIC")
	a := loadApp(t, oneStage)
	res, err := Run(Config{
		Topology: topo, Seed: 1,
		// One request every thousand seconds: none in a second.
		Apps:     []AppLoad{{App: a, Clients: Open(1e-3), Assignment: assign(t, topo, a, map[string]string{"a.0": "r0/s0/nic0"})}},
		Duration: time.Second,
		Params:   params(map[string]float64{"echo": 1e-5}, Lognormal),
	})
	if err != nil {
		t.Fatal(err)
	}
	idle := 3 * 98.0 // Table 4: Type1-SmartNIC idles at 98 W
	if res.PowerW != idle || res.IdleW != idle || math.Abs(res.EnergyJ-idle) > 1e-9 {
		t.Errorf("power %v W, idle %v W, energy %v J; want %v, %v, %v", res.PowerW, res.IdleW, res.EnergyJ, idle, idle, idle)
	}
	if res.Completed != 0 || res.RequestsPerJoule != 0 {
		t.Errorf("%d completed, %v requests/J; want none", res.Completed, res.RequestsPerJoule)
	}
}

// TestBusyEnergy checks that busy time turns into power as hwmodel says:
// one core busy half the time on a machine whose one core spans 50 to
// 100 W draws 75 W.
func TestBusyEnergy(t *testing.T) {
	const seed = 5
	topo := cluster(t, "OneCore")
	a := loadApp(t, oneStage)
	res, err := Run(Config{
		Topology: topo, Machines: testMachines, Seed: seed,
		Apps:   []AppLoad{{App: a, Clients: Open(50_000), Assignment: assign(t, topo, a, map[string]string{"a.0": "r0/s0/host"})}},
		Warmup: 10 * time.Millisecond, Duration: 400 * time.Millisecond,
		Params: params(map[string]float64{"echo": 1e-5}, Deterministic),
	})
	if err != nil {
		t.Fatal(err)
	}
	busy := res.Nodes[0].BusyCores
	if math.Abs(busy-0.5) > 0.01 {
		t.Errorf("busy cores %.4f, want 0.5", busy)
	}
	if want := 50 + 50*busy; math.Abs(res.PowerW-want) > 1e-9 {
		t.Errorf("power %v W, want 50 + 50 x %.4f = %v", res.PowerW, busy, want)
	}
	if want := res.PowerW * 0.4; math.Abs(res.EnergyJ-want) > 1e-9 {
		t.Errorf("energy %v J, want %v", res.EnergyJ, want)
	}
	if want := float64(res.Completed) / res.EnergyJ; res.RequestsPerJoule != want {
		t.Errorf("requests per joule %v, want %v", res.RequestsPerJoule, want)
	}
}

const twoStage = `name: two
class: RTA
nodes:
  a: {service: echo}
  b: {service: slow, shards: 2}
edges:
  - {from: a, to: b, policy: broadcast}
workload: {key_space: 1000}
`

// TestTwoStageByHand runs one closed-loop client through a -> b with
// deterministic service and compares its latency with the sum worked out
// by hand from the default parameters. a (10 us) runs on the host of
// server 0; it broadcasts to both shards of b (20 us each) on server 1.
// The request completes when both copies are processed and their
// completion weight is back at a.
func TestTwoStageByHand(t *testing.T) {
	a := loadApp(t, twoStage)
	d := map[string]float64{"echo": 10e-6, "slow": 20e-6}
	// Hand computation, default parameters, 512 B requests: a frame is
	// 512 + 122 = 634 bytes, 507 ns on a 10 Gb/s port (0.6 ns rounds away
	// with each serialisation), a bare header 122 bytes, 98 ns.
	const (
		client  = 1000 + 250 + 800 + 507 + 250 // ClientLatency to a plain host: PCIe + ports + ToR + wire
		hop     = 1000 + 507 + 250 + 800 + 507 + 250 + 1000
		weight  = 1000 + 98 + 250 + 800 + 98 + 250 + 1000
		serveA  = 10_000
		serveB  = 20_000
		secondB = 507 // the second copy leaves a's port after the first
	)
	for _, tc := range []struct {
		machine string
		want    int64
	}{
		// Two cores at b: both copies in parallel; the second arrives one
		// serialisation later.
		{"TwoCore", client + serveA + hop + secondB + serveB + weight + client},
		// One core at b: the copies queue; the second finishes 20 us
		// after the first.
		{"OneCore", client + serveA + hop + 2*serveB + weight + client},
	} {
		topo := cluster(t, "OneCore", tc.machine)
		res, err := Run(Config{
			Topology: topo, Machines: testMachines, Seed: 1,
			Apps: []AppLoad{{App: a, Clients: Closed(1), Assignment: assign(t, topo, a, map[string]string{
				"a.0": "r0/s0/host", "b.0": "r0/s1/host", "b.1": "r0/s1/host"})}},
			Warmup: time.Millisecond, Duration: 10 * time.Millisecond,
			Params: params(d, Deterministic),
		})
		if err != nil {
			t.Fatal(err)
		}
		ar := res.Apps[0]
		if ar.Completed == 0 {
			t.Fatalf("%s: nothing completed", tc.machine)
		}
		if int64(ar.Mean) != tc.want {
			t.Errorf("%s at b: latency %d ns, by hand %d ns", tc.machine, int64(ar.Mean), tc.want)
		}
		// One client: throughput is one over the latency.
		if x := float64(ar.Completed) / res.Window.Seconds(); math.Abs(x*float64(tc.want)/1e9-1) > 0.01 {
			t.Errorf("%s at b: %.0f requests/s, want 1/latency = %.0f", tc.machine, x, 1e9/float64(tc.want))
		}
		// Each request is processed once by a and once by each b.
		for _, ir := range ar.Instances {
			if ir.ID != "a.0" && ir.ID != "b.0" && ir.ID != "b.1" {
				continue
			}
			if d := ir.Processed - ar.Completed; d < -1 || d > 1 {
				t.Errorf("%s at b: %s processed %d, %d requests completed", tc.machine, ir.ID, ir.Processed, ar.Completed)
			}
		}
	}
	// The constants above are the exported latency functions' too.
	topo := cluster(t, "OneCore", "OneCore")
	p := DefaultParams()
	if got := ClientLatency(topo, p, 0, 512); got != 2807 {
		t.Errorf("ClientLatency %v, by hand 2807ns", got)
	}
	if got := UnloadedLatency(topo, p, 0, 1, 512); got != 4314 {
		t.Errorf("UnloadedLatency %v, by hand 4314ns", got)
	}
}

const hostApp = `name: hosted
class: RTA
nodes:
  a: {service: echo, pin: host}
workload: {key_space: 1000}
`

// TestECMP sends requests to an application on the host of a
// Type2-SmartNIC server, reached through its four SmartNICs' ports. Each
// request is its own flow, so the ports' shares should be even: with
// about 40,000 requests a port's count has a binomial standard deviation
// of 0.9 % of its mean; 5 % is over five of those. Each SmartNIC's traffic
// manager forwards what its port received to the host, and the replies
// back out through the same port.
func TestECMP(t *testing.T) {
	const seed = 11
	t.Logf("seed %d", seed)
	topo := tableCluster(t, "1xType2-SmartNIC")
	a := loadApp(t, hostApp)
	res, err := Run(Config{
		Topology: topo, Seed: seed,
		Apps:   []AppLoad{{App: a, Clients: Open(200_000), Assignment: assign(t, topo, a, map[string]string{"a.0": "r0/s0/host"})}},
		Warmup: time.Millisecond, Duration: 200 * time.Millisecond,
		Params: params(map[string]float64{"echo": 1e-6}, Lognormal),
	})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range res.Ports {
		total += p.RxPackets
	}
	if len(res.Ports) != 4 || total == 0 {
		t.Fatalf("%d ports, %d packets", len(res.Ports), total)
	}
	mean := float64(total) / 4
	for i, p := range res.Ports {
		if math.Abs(float64(p.RxPackets)-mean) > 0.05*mean {
			t.Errorf("port %s/%d received %d packets, mean %.0f", p.Node, p.Index, p.RxPackets, mean)
		}
		// Each request in, and its reply out by the same port (the flow
		// hashes alike both ways), passes the SmartNIC's traffic manager.
		nic := res.Nodes[i+1] // one port per SmartNIC, in slot order
		if d := nic.TMPackets - 2*p.RxPackets; d < -10 || d > 10 {
			t.Errorf("%s forwarded %d packets, its port received %d requests", nic.Name, nic.TMPackets, p.RxPackets)
		}
		if d := float64(p.TxGbps-p.RxGbps) / p.RxGbps; math.Abs(d) > 0.01 {
			t.Errorf("%s sent %.3f Gb/s of replies for %.3f Gb/s of requests", p.Node, p.TxGbps, p.RxGbps)
		}
		t.Logf("%s: %d packets, %.2f Gb/s, TM queue mean %.3f", p.Node, p.RxPackets, p.RxGbps, nic.TMQueueMean)
	}
}

// TestTrafficManagerQueue shows the host starvation of §3.4: a SmartNIC
// whose cores are saturated by a microservice keeps a standing queue at
// its traffic manager, and the host traffic it forwards waits in it; the
// same host traffic through a calm SmartNIC finds almost no queue.
func TestTrafficManagerQueue(t *testing.T) {
	topo := tableCluster(t, "1xType1-SmartNIC")
	a := loadApp(t, `name: two
class: RTA
nodes:
  h: {service: echo, pin: host}
  n: {service: slow, shards: 12, pin: smartnic}
workload: {key_space: 1000}
`)
	where := map[string]string{"h.0": "r0/s0/host"}
	for i := range 12 {
		where["n."+strconv.Itoa(i)] = "r0/s0/nic0"
	}
	// Both nodes are sources with an even mix: 100,000 requests/s each
	// for the host (through the SmartNIC's traffic manager) and for the
	// SmartNIC's own service, whose demand sets the SmartNIC's load.
	run := func(rho float64) NodeResult {
		res, err := Run(Config{
			Topology: topo, Seed: 2,
			Apps:   []AppLoad{{App: a, Clients: Open(200_000), Assignment: assign(t, topo, a, where)}},
			Warmup: 5 * time.Millisecond, Duration: 50 * time.Millisecond,
			Params: params(map[string]float64{"echo": 1e-6, "slow": rho * 12 / 100_000}, Exponential),
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Nodes[1]
	}
	calm, busy := run(0.1), run(1.05)
	t.Logf("calm: SmartNIC utilisation %.2f, TM queue mean %.2f max %d; saturated: %.2f, mean %.1f max %d",
		calm.Utilisation, calm.TMQueueMean, calm.TMQueueMax, busy.Utilisation, busy.TMQueueMean, busy.TMQueueMax)
	if busy.Utilisation < 0.99 {
		t.Errorf("the saturated SmartNIC is only %.2f utilised", busy.Utilisation)
	}
	// Calm: the traffic manager holds about what it is forwarding, 200,000
	// packets/s (requests in, replies out) x 2.92 us = 0.58 packets.
	if want := 200_000 * DefaultParams().TMDemand.Seconds(); math.Abs(calm.TMQueueMean-want) > 0.1*want {
		t.Errorf("TM queue mean %.2f on a calm SmartNIC, want about %.2f (only the packets in service)", calm.TMQueueMean, want)
	}
	if busy.TMQueueMean < 20*max(calm.TMQueueMean, 0.05) {
		t.Errorf("TM queue mean %.2f on the saturated SmartNIC, %.2f on the calm one: want a standing queue", busy.TMQueueMean, calm.TMQueueMean)
	}
}
