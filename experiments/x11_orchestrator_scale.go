package experiments

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/orchestrator"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

var _ = register(&Experiment{
	ID:       "X11",
	Title:    "Data-plane orchestrator at scale: heartbeat parsing and decisions",
	Paper:    "Figure 11",
	Workload: "fat trees of 1,000 to 50,000 Type2-SmartNIC servers (40 per rack), every compute node sending one heartbeat every 50 ms with its traffic-manager queue, bytes and per-microservice execution times; 8 microservices per server, and at 10,000 servers 2 to 32",
	Measure:  "time to parse every heartbeat of one period and decide on migrations, against servers and against deployed microservices",
	Measured: true,
	Derivation: "The orchestrator is package orchestrator, the controller's own. Microservices (Table 2's sixteen in turn, 0.05 of a SmartNIC " +
		"core each, 64 MB) are deployed on the SmartNICs, spread evenly, with Deploy; every node (the hosts too: heartbeats are also the " +
		"orchestrator's failure detector) sends its heartbeat each 50 ms period in the wire format agents use: 16 bytes plus 12 per microservice " +
		"on the node, with execution-time samples near each service's Table 1 SmartNIC demand (±5 %, seeded). From the 20th period on, one " +
		"SmartNIC in a thousand reports a standing traffic-manager queue with idle ports, so the host-starvation detector fires and migrations " +
		"are decided; the controller's completion reports follow one period later. After 22 untimed periods (the execution-time averages need 20 " +
		"samples), 16 periods are timed: ObservePayload for every heartbeat (decode and ingest) and one Decide. Receiving the datagrams is not " +
		"included (that is the transport's work). Encoding the heartbeats is outside the timed part. The time is wall time (median over the timed periods) on the machine " +
		"that ran the experiment, and the budget it is measured against is the 50 ms period.",
	Run: runX11,
})

var (
	x11Servers    = []int{1000, 5000, 10000, 20000, 30000, 40000, 50000}
	x11PerServer  = []int{2, 4, 8, 16, 32}
	x11Default    = 8
	x11FixedSizes = 10000
)

const (
	x11Untimed = 22
	x11Timed   = 16
)

type x11Point struct {
	Servers, Nodes, Microservices int
	Heartbeats, Bytes             int // per period
	// Median and Max over the timed periods: the median, because other
	// work on a shared machine lands in a few periods.
	Median, Max time.Duration
	Migrations  int // ordered in the timed periods
	Observed    uint64
}

type x11Result struct {
	byServers []x11Point
	byMS      []x11Point
}

func runX11(o Options) (Result, error) {
	servers, per, fixed := x11Servers, x11PerServer, x11FixedSizes
	if o.Quick {
		servers, per, fixed = []int{200, 400}, []int{2, 8}, 200
	}
	res := &x11Result{}
	for _, s := range servers {
		o.step("X11 %d servers", s)
		p, err := x11Run(o.Seed, s, x11Default)
		if err != nil {
			return nil, err
		}
		res.byServers = append(res.byServers, p)
	}
	for _, d := range per {
		o.step("X11 %d servers, %d microservices each", fixed, d)
		p, err := x11Run(o.Seed, fixed, d)
		if err != nil {
			return nil, err
		}
		res.byMS = append(res.byMS, p)
	}
	return res, nil
}

// x11Run builds a cluster of n servers with per microservices each and
// times the orchestrator over x11Timed periods.
func x11Run(seed uint64, n, per int) (x11Point, error) {
	pt := x11Point{Servers: n}
	topo, err := topology.FatTree(topology.FatTreeOptions{Servers: n, Server: hwmodel.ServerSpec(hwmodel.Type2SmartNIC)})
	if err != nil {
		return pt, err
	}
	cl, err := placement.NewCluster(topo)
	if err != nil {
		return pt, err
	}
	period := orchestrator.DefaultHeartbeatPeriod
	orch, err := orchestrator.New(orchestrator.Config{Load: placement.NewLoad(cl)}, 0)
	if err != nil {
		return pt, err
	}
	descs := services.Descriptors()
	type msInfo struct {
		node   topology.NodeID
		count  uint32
		meanNs float64
	}
	var ms []msInfo
	nics := topo.Server(0).SmartNICs
	// Deploy a rack at a time: one problem per 40 servers.
	const chunk = 40
	for s0 := 0; s0 < n; s0 += chunk {
		p := placement.NewProblem(orch.Load())
		var assign placement.Assignment
		for s := s0; s < min(s0+chunk, n); s++ {
			host := topo.Server(topology.ServerID(s)).Host
			for k := range per {
				d := descs[len(ms)%len(descs)]
				dem, err := placement.DemandOf(d.Name)
				if err != nil {
					return pt, err
				}
				nicDemand := dem[hwmodel.CnMIPS64]
				rps := 0.05 / nicDemand
				p.AddInstance(placement.Instance{Name: "ms" + strconv.Itoa(len(ms)), App: "x11", Service: d.Name,
					NonMigratable: !d.Migratable, RPS: rps, MemoryMB: 64, Demand: dem, Bytes: 512})
				node := host + 1 + topology.NodeID(k%nics)
				assign = append(assign, node)
				ms = append(ms, msInfo{node: node, count: max(1, uint32(rps*period.Seconds()+0.5)), meanNs: nicDemand * 1e9})
			}
		}
		if err := p.Err(); err != nil {
			return pt, err
		}
		if _, err := orch.Deploy(p, &placement.Result{Assignment: assign}); err != nil {
			return pt, err
		}
	}
	// Each node's instances, in ID order (IDs are dense, in deploy order).
	onNode := make([][]int32, topo.NumNodes())
	for i, m := range ms {
		onNode[m.node] = append(onNode[m.node], int32(i))
	}
	pt.Nodes, pt.Microservices = topo.NumNodes(), len(ms)

	rng := rand.New(rand.NewPCG(seed, 0x11))
	starved := make([]bool, topo.NumNodes())
	for nd := range topo.Nodes() {
		if topo.Node(nd).Kind == topology.SmartNIC && rng.IntN(1000) == 0 {
			starved[nd] = true
		}
	}
	portBytes := uint32(10e9 / 8 * period.Seconds() * 0.3) // 30 % of a 10 GbE port
	payloads := make([][]byte, topo.NumNodes())
	seq := make([]uint16, topo.NumNodes())
	var hb orchestrator.Heartbeat
	var times []time.Duration
	var pending []orchestrator.MigrationID
	runtime.GC()
	for k := range x11Untimed + x11Timed {
		now := time.Duration(k+1) * period
		// Encode this period's heartbeats (not timed).
		pt.Bytes = 0
		for nd := range topo.Nodes() {
			seq[nd]++
			hb = orchestrator.Heartbeat{Node: nd, Seq: seq[nd], RxBytes: portBytes, TxBytes: portBytes, Samples: hb.Samples[:0]}
			if topo.Node(nd).Kind == topology.SmartNIC {
				hb.Queue = uint16(rng.IntN(4))
				if starved[nd] && k >= 20 {
					hb.Queue, hb.RxBytes, hb.TxBytes = 100, portBytes/10, portBytes/10
				}
			}
			for _, i := range onNode[nd] {
				m := ms[i]
				jit := 1 + (rng.Float64()-0.5)*0.1
				hb.Samples = append(hb.Samples, orchestrator.ExecSample{Instance: orchestrator.InstanceID(i), Count: m.count,
					MeanNs: uint32(m.meanNs*jit + 0.5)})
			}
			payloads[nd], err = hb.Append(payloads[nd][:0])
			if err != nil {
				return pt, err
			}
			pt.Bytes += len(payloads[nd])
		}
		// The controller reports last period's migrations done (not timed).
		for _, id := range pending {
			if _, err := orch.MigrationDone(now-period/2, id); err != nil {
				return pt, err
			}
		}
		pending = pending[:0]

		t0 := time.Now()
		for nd := range payloads {
			if err := orch.ObservePayload(now, payloads[nd]); err != nil {
				return pt, err
			}
		}
		acts := orch.Decide(now)
		d := time.Since(t0)

		for _, a := range acts {
			if a.Kind == orchestrator.Migrate {
				pending = append(pending, a.Migration)
				if k >= x11Untimed {
					pt.Migrations++
				}
			}
		}
		if k >= x11Untimed {
			times = append(times, d)
		}
	}
	pt.Heartbeats = topo.NumNodes()
	pt.Observed = orch.Stats().Heartbeats
	slices.Sort(times)
	pt.Median, pt.Max = times[len(times)/2], times[len(times)-1]
	return pt, nil
}

func x11Row(t *Table, p x11Point) {
	t.add(p.Servers, p.Nodes, p.Microservices, p.Heartbeats, float64(p.Bytes)/1e6, ms(p.Median), ms(p.Max),
		float64(p.Median)/float64(p.Heartbeats), 100*float64(p.Median)/float64(orchestrator.DefaultHeartbeatPeriod), p.Migrations)
}

func (r *x11Result) Tables() []Table {
	cols := []string{"servers", "nodes", "microservices", "heartbeats / period", "MB / period", "median ms / period", "max ms / period", "ns / heartbeat", "% of 50 ms", "migrations decided"}
	t := Table{Title: "Parse every heartbeat of a period and decide, against servers (measured wall time)", Columns: cols}
	for _, p := range r.byServers {
		x11Row(&t, p)
	}
	m := Table{Name: "microservices", Title: "The same against deployed microservices", Columns: cols}
	for _, p := range r.byMS {
		x11Row(&m, p)
	}
	return []Table{t, m}
}

func x11JSON(ps []x11Point) []any {
	var out []any
	for _, p := range ps {
		out = append(out, newObj().set("servers", p.Servers).set("nodes", p.Nodes).set("microservices", p.Microservices).
			set("heartbeats_per_period", p.Heartbeats).set("bytes_per_period", p.Bytes).
			set("median_ms_per_period", jnum(ms(p.Median))).set("max_ms_per_period", jnum(ms(p.Max))).
			set("ns_per_heartbeat", jnum(float64(p.Median)/float64(p.Heartbeats))).set("migrations", p.Migrations))
	}
	return out
}

func (r *x11Result) JSON() any {
	return newObj().set("period_ms", ms(orchestrator.DefaultHeartbeatPeriod)).
		set("by_servers", x11JSON(r.byServers)).set("by_microservices", x11JSON(r.byMS))
}

func (r *x11Result) Figures() ([]Figure, error) {
	line := func(ps []x11Point, x func(x11Point) float64) []series {
		s := series{Name: "decode + decide"}
		for _, p := range ps {
			s.X = append(s.X, x(p))
			s.Y = append(s.Y, ms(p.Median))
		}
		return []series{s}
	}
	p1, err := lines("Orchestrator time per 50 ms period (measured)", "servers", "ms per period", line(r.byServers, func(p x11Point) float64 { return float64(p.Servers) }), false, false)
	if err != nil {
		return nil, err
	}
	fixed := 0
	if len(r.byMS) > 0 {
		fixed = r.byMS[0].Servers
	}
	p2, err := lines(fmt.Sprintf("Against deployed microservices, %d servers", fixed), "microservices", "ms per period", line(r.byMS, func(p x11Point) float64 { return float64(p.Microservices) }), false, false)
	if err != nil {
		return nil, err
	}
	return []Figure{{Caption: "Median wall time to decode and ingest every heartbeat of one 50 ms period and decide, against the number of servers (8 microservices each) and, at a fixed cluster size, against the microservices deployed.",
		Panels: []*plot.Plot{p1, p2}}}, nil
}

func (r *x11Result) Notes() []string {
	if len(r.byServers) == 0 {
		return nil
	}
	p := r.byServers[len(r.byServers)-1]
	return []string{fmt.Sprintf("At %d servers (%d heartbeats, %.1f MB a period, %d microservices) one period's heartbeats are parsed and decided on in %.1f ms (median over 16 periods; %.0f ns a heartbeat), %.0f %% of the 50 ms period, on one core; %d migrations were decided in the timed periods.",
		p.Servers, p.Heartbeats, float64(p.Bytes)/1e6, p.Microservices, ms(p.Median), float64(p.Median)/float64(p.Heartbeats), 100*float64(p.Median)/float64(orchestrator.DefaultHeartbeatPeriod), p.Migrations)}
}
