package orchestrator

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// ScaleOptions shape the orchestrator's scale experiment (X11, the paper's
// Figure 11): heartbeats from every SmartNIC (and optionally every host)
// of a fat tree of Type2-SmartNIC servers, received, parsed and decided
// on by one orchestrator on one core.
type ScaleOptions struct {
	// Servers is the number of Type2-SmartNIC servers (four SmartNICs
	// each); required.
	Servers int
	// InstancesPerNIC is the microservice instances deployed on each
	// SmartNIC, each reported in every heartbeat of its SmartNIC. Default 2.
	InstancesPerNIC int
	// Hosts makes hosts send heartbeats too, as they do in E3 for failure
	// detection; the paper's figure counts SmartNIC heartbeats only.
	Hosts bool
	// Periods is the number of heartbeat periods timed. Default 20.
	Periods int
	// StarvePerPeriod is the share of SmartNICs that start to report a
	// standing queue in each period; each is relieved by a migration
	// three heartbeats later, which the controller reports done two
	// periods after that. Default 1e-4 (20 SmartNICs a period at 50,000
	// servers).
	StarvePerPeriod float64
	// Seed drives the order heartbeats arrive in and which SmartNICs
	// starve.
	Seed uint64
	// InOrder delivers the heartbeats in node order instead of a random
	// one: the best case for the caches, as a point of reference.
	InOrder bool
	// Unbatched ingests with ObservePayload one heartbeat at a time
	// instead of ObserveBatch, as a point of reference.
	Unbatched bool
	// Clock is read around each phase; the caller passes a monotonic
	// clock or, on a shared machine, the thread's CPU clock. Required:
	// the package reads no clock of its own.
	Clock func() time.Duration
}

// ScaleResult is what one run measured.
type ScaleResult struct {
	Servers, Nodes, Instances int
	// Heartbeats is the heartbeats delivered each period, and PerSecond
	// the rate they represent at one per node every 50 ms.
	Heartbeats int
	PerSecond  float64
	// PayloadBytes is the mean heartbeat payload size.
	PayloadBytes float64
	// IngestNs is the mean time to decode and observe one heartbeat.
	IngestNs float64
	// DecideNs and DecideMaxNs are the mean and worst time of one
	// period's decisions: the controller's migration reports and Decide.
	DecideNs, DecideMaxNs float64
	// PeriodNs is the mean time to ingest a whole period's heartbeats and
	// decide; CoreShare is PeriodNs over the period: the share of one core
	// the orchestrator needs to keep up (below 1 it does).
	PeriodNs, CoreShare float64
	// Migrations is the number ordered in the timed periods.
	Migrations int
}

// scaleServices is the mix of deployed microservices: those of Table 1
// that migrate and fit a SmartNIC.
var scaleServices = []string{"ema", "spike", "count", "flowmon", "ddos", "apigw", "topk", "ipsec", "natv4", "nids", "kvs", "recommend"}

// Scale is a prepared X11 run: a cluster with instances deployed and every
// node's heartbeat encoded, so that a timed period spends its time in the
// orchestrator only.
type Scale struct {
	opts     ScaleOptions
	o        *Orchestrator
	topo     *topology.Topology
	rng      *rand.Rand
	payloads [][]byte // one per sending node, in delivery order
	untimed  [][]byte // hosts' heartbeats when they are not measured
	nodeOf   []topology.NodeID
	nicIdx   []int // payload index of each SmartNIC, by NIC number
	starving map[int]int
	seq      uint16
	now      time.Duration
	bytes    int
}

// NewScale builds the cluster, deploys the instances and encodes the
// heartbeats. At 50,000 servers it takes a few seconds and a few hundred
// megabytes.
func NewScale(o ScaleOptions) (*Scale, error) {
	if o.Servers <= 0 {
		return nil, fmt.Errorf("orchestrator: ScaleOptions.Servers = %d, want > 0", o.Servers)
	}
	if o.Clock == nil {
		return nil, fmt.Errorf("orchestrator: ScaleOptions.Clock is nil; pass a monotonic or thread CPU clock")
	}
	if o.InstancesPerNIC == 0 {
		o.InstancesPerNIC = 2
	}
	if o.InstancesPerNIC < 0 || o.InstancesPerNIC > MaxExecSamples {
		return nil, fmt.Errorf("orchestrator: ScaleOptions.InstancesPerNIC = %d, want 1..%d", o.InstancesPerNIC, MaxExecSamples)
	}
	if o.Periods == 0 {
		o.Periods = 20
	}
	if o.StarvePerPeriod == 0 {
		o.StarvePerPeriod = 1e-4
	}
	if o.Periods < 0 || o.StarvePerPeriod < 0 || o.StarvePerPeriod > 1 {
		return nil, fmt.Errorf("orchestrator: ScaleOptions Periods = %d, StarvePerPeriod = %v: want >= 0 and a share in [0, 1]", o.Periods, o.StarvePerPeriod)
	}
	topo, err := topology.FatTree(topology.FatTreeOptions{Servers: o.Servers, Server: hwmodel.ServerSpec(hwmodel.Type2SmartNIC)})
	if err != nil {
		return nil, err
	}
	cluster, err := placement.NewCluster(topo)
	if err != nil {
		return nil, err
	}
	orch, err := New(Config{Load: placement.NewLoad(cluster)}, 0)
	if err != nil {
		return nil, err
	}
	s := &Scale{opts: o, o: orch, topo: topo, rng: rand.New(rand.NewPCG(o.Seed, 11)), starving: map[int]int{}}

	// Deploy: InstancesPerNIC instances on every SmartNIC, each at a rate
	// that keeps 2 % of a SmartNIC core busy, so that the own host always
	// has room for the one that moves.
	demand := make([]placement.CoreDemand, len(scaleServices))
	for k, svc := range scaleServices {
		if demand[k], err = placement.DemandOf(svc); err != nil {
			return nil, err
		}
	}
	nicKind := hwmodel.Type2SmartNIC.NIC.Core
	p := placement.NewProblem(orch.Load())
	var assign placement.Assignment
	for srv := range topo.Servers() {
		for n := range topo.ServerNodes(srv) {
			if topo.Node(n).Kind != topology.SmartNIC {
				continue
			}
			for j := range o.InstancesPerNIC {
				k := s.rng.IntN(len(scaleServices))
				p.AddInstance(placement.Instance{
					Name: fmt.Sprintf("ms%d.%d", n, j), App: "x11", Service: scaleServices[k],
					RPS: 0.02 / demand[k][nicKind], Demand: demand[k], MemoryMB: 16, Bytes: 512,
				})
				assign = append(assign, n)
			}
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if _, err := orch.Deploy(p, &placement.Result{Assignment: assign}); err != nil {
		return nil, err
	}

	// Heartbeats: one per SmartNIC (and host), delivered each period in
	// one random order, as they would arrive interleaved from the racks.
	// Without Hosts, the hosts' heartbeats are still delivered, untimed,
	// so that failure detection does not fail every server.
	for n := range topo.Nodes() {
		nic := topo.Node(n).Kind == topology.SmartNIC
		if !nic && !o.Hosts {
			b, _ := (&Heartbeat{Node: n}).Append(nil)
			s.untimed = append(s.untimed, b)
			continue
		}
		h := Heartbeat{Node: n, RxBytes: 2 << 20, TxBytes: 2 << 20} // ports 3 % busy
		for _, id := range orch.InstancesOn(n) {
			h.Samples = append(h.Samples, ExecSample{Instance: id, Count: 1000, MeanNs: uint32(8000 + s.rng.IntN(4000))})
		}
		b, err := h.Append(nil)
		if err != nil {
			return nil, err
		}
		s.payloads = append(s.payloads, b)
		s.nodeOf = append(s.nodeOf, n)
		s.bytes += len(b)
	}
	if !o.InOrder {
		s.rng.Shuffle(len(s.payloads), func(a, b int) {
			s.payloads[a], s.payloads[b] = s.payloads[b], s.payloads[a]
			s.nodeOf[a], s.nodeOf[b] = s.nodeOf[b], s.nodeOf[a]
		})
	}
	// A receiver reads datagrams into consecutive buffers (recvmmsg), so
	// the payloads of one period lie one after the other in memory, in
	// the order they arrived.
	arena := make([]byte, 0, s.bytes)
	for k, b := range s.payloads {
		arena = append(arena, b...)
		s.payloads[k] = arena[len(arena)-len(b) : len(arena) : len(arena)]
	}
	for k, n := range s.nodeOf {
		if topo.Node(n).Kind == topology.SmartNIC {
			s.nicIdx = append(s.nicIdx, k)
		}
	}
	// Warm up: the averages need WarmUp samples before they judge.
	for range orch.Config().WarmUp + 1 {
		if _, _, _, err := s.Period(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Orchestrator returns the orchestrator under test.
func (s *Scale) Orchestrator() *Orchestrator { return s.o }

// Heartbeats returns the heartbeats delivered each period.
func (s *Scale) Heartbeats() int { return len(s.payloads) }

// Period runs one heartbeat period: it prepares the heartbeats (untimed),
// delivers them all (timed: ingest), then reports on migrations ordered
// two periods ago and calls Decide (timed: decide).
func (s *Scale) Period() (ingest, decide time.Duration, migrations int, err error) {
	o := s.o
	s.seq++
	s.now += o.cfg.HeartbeatPeriod
	// Untimed: sequence numbers, and which SmartNICs report a queue.
	for _, b := range s.payloads {
		binary.LittleEndian.PutUint16(b[4:], s.seq)
	}
	for _, b := range s.untimed {
		binary.LittleEndian.PutUint16(b[4:], s.seq)
		if err := o.ObservePayload(s.now, b); err != nil {
			return 0, 0, 0, err
		}
	}
	for k, left := range s.starving {
		if left <= 0 {
			binary.LittleEndian.PutUint16(s.payloads[k][6:], 0)
			delete(s.starving, k)
		} else {
			s.starving[k] = left - 1
		}
	}
	if s.seq > uint16(o.cfg.WarmUp) {
		for range int(s.opts.StarvePerPeriod*float64(len(s.nicIdx)) + s.rng.Float64()) {
			k := s.nicIdx[s.rng.IntN(len(s.nicIdx))]
			if _, ok := s.starving[k]; !ok {
				binary.LittleEndian.PutUint16(s.payloads[k][6:], 500)
				s.starving[k] = o.cfg.QueueHeartbeats + 2
			}
		}
	}
	var done []MigrationID
	for _, id := range o.active {
		if m := o.migs[id]; s.now-time.Duration(m.started) >= 2*o.cfg.HeartbeatPeriod {
			done = append(done, id)
		}
	}

	t0 := s.opts.Clock()
	if s.opts.Unbatched {
		for _, b := range s.payloads {
			if err := o.ObservePayload(s.now, b); err != nil {
				return 0, 0, 0, err
			}
		}
	} else {
		for lo := 0; lo < len(s.payloads); lo += scaleBatch {
			if err := o.ObserveBatch(s.now, s.payloads[lo:min(lo+scaleBatch, len(s.payloads))]); err != nil {
				return 0, 0, 0, err
			}
		}
	}
	t1 := s.opts.Clock()
	for _, id := range done {
		if _, err := o.MigrationDone(s.now, id); err != nil {
			return 0, 0, 0, err
		}
	}
	for _, a := range o.Decide(s.now) {
		if a.Kind == Migrate {
			migrations++
		}
	}
	t2 := s.opts.Clock()
	return t1 - t0, t2 - t1, migrations, nil
}

// scaleBatch is the receive batch: heartbeats handed to ObserveBatch at
// once, as one recvmmsg call of a receiver would return them.
const scaleBatch = 256

// Run times opts.Periods periods.
func (s *Scale) Run() (ScaleResult, error) {
	r := ScaleResult{
		Servers: s.opts.Servers, Nodes: s.topo.NumNodes(), Instances: s.o.NumInstances(),
		Heartbeats:   len(s.payloads),
		PerSecond:    float64(len(s.payloads)) / s.o.cfg.HeartbeatPeriod.Seconds(),
		PayloadBytes: float64(s.bytes) / float64(len(s.payloads)),
	}
	var ingest, decide time.Duration
	for range s.opts.Periods {
		in, de, m, err := s.Period()
		if err != nil {
			return r, err
		}
		ingest += in
		decide += de
		r.DecideMaxNs = max(r.DecideMaxNs, float64(de))
		r.Migrations += m
	}
	n := float64(s.opts.Periods)
	r.IngestNs = float64(ingest) / n / float64(len(s.payloads))
	r.DecideNs = float64(decide) / n
	r.PeriodNs = float64(ingest+decide) / n
	r.CoreShare = r.PeriodNs / float64(s.o.cfg.HeartbeatPeriod)
	return r, nil
}

// RunScale prepares and runs the X11 experiment once.
func RunScale(o ScaleOptions) (ScaleResult, error) {
	s, err := NewScale(o)
	if err != nil {
		return ScaleResult{}, err
	}
	return s.Run()
}
