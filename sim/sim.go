package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// evKind says what an event does; its arguments a and b are described
// with each kind.
type evKind uint8

const (
	// evArrive: message a reaches node b and joins its core queue (as a
	// job for its instance, or as a traffic-manager job on a SmartNIC).
	evArrive evKind = iota
	// evDone: a core of node b finishes message a's job.
	evDone
	// evPort: message a reaches the switch port in front of its
	// destination's NIC port and queues for that link.
	evPort
	// evSend: a client of application a sends a request; b is the
	// closed-loop client, -1 for the open-loop arrival process.
	evSend
	// evRespond: the last completion weight of request a is back at its
	// ingress instance, which sends the reply.
	evRespond
	// evReply: the reply to request a reaches its closed-loop client.
	evReply
	// evHeartbeat: the orchestrator's period ends.
	evHeartbeat
	// evMigrated: migration a finishes.
	evMigrated
	// evWarm: the warm-up ends and measuring starts.
	evWarm
)

// Message stages: what the job or transfer a message is in stands for.
const (
	stageInstance uint8 = iota // for its instance, or travelling to it
	stageTMIn                  // at a SmartNIC's traffic manager, bound for the host
	stageTMOut                 // at a SmartNIC's traffic manager, from the host to the network
)

// message is one message between instances, or a client's request on its
// way to the ingress instance. It lives in the simulator's message pool
// and is referred to by index.
type message struct {
	key   uint64
	flow  uint64 // ECMP flow hash
	enq   int64  // when it joined its destination's core queue
	start int64  // when its current job started on a core
	req   int32
	inst  int32 // destination instance (global index)
	src   int32 // sending instance, -1 for a client
	from  topology.NodeID
	to    topology.NodeID // node it is travelling to; -1: the client (a reply)
	port  int32           // chosen port (egress for stageTMOut, else ingress)
	bytes int32
	stage uint8
	// completion marks a leaf's completion weight on its way back to the
	// request's origin node (a bare header; bytes 0).
	completion bool
}

// request is one client request in flight.
type request struct {
	flow    uint64 // the client's flow: ECMP and source shard
	sent    int64
	done    int64 // latest return of completion weight at the ingress
	pending int32 // messages emitted and not yet processed
	app     int32
	client  int32 // closed-loop client, -1 for open loop
	ingress int32 // instance the request entered at
	// origin is the node the request entered at (ingress's node then),
	// where completion weight returns and the reply leaves.
	origin topology.NodeID
}

// instState is the run-time state of one instance, primaries and backups
// of all applications in one flat table.
type instState struct {
	app, dag int32 // application and DAG node (global index)
	shard    int32
	node     topology.NodeID // current node; -1 if unassigned
	rrOff    int32           // round-robin counters of its out edges start here
	primary  bool
	// migratable and stateBytes drive migrations.
	migratable bool
	stateBytes int64
	migrating  bool
	held       []int32 // messages waiting for a migration to finish
	// meanNs is the mean service time on each core kind, for this
	// instance's service and its application's request size.
	meanNs [numCoreKinds]float64
	// Measured in the window, and since the last heartbeat.
	win, hb instStats
}

type instStats struct {
	processed        int64
	serviceNs, sojNs int64
}

const numCoreKinds = int(hwmodel.CnMIPS64) + 1

// dagNode is a DAG node of one application at run time.
type dagNode struct {
	primaries []int32 // global instance of each shard's primary
	out       []dagEdge
	mixCum    float64 // cumulative ingress share, for sources
}

type dagEdge struct {
	to      int32 // DAG node
	policy  app.Policy
	sameKey bool
	share   float64
	salt    uint64
}

// nodeState is one compute node at run time.
type nodeState struct {
	cores, busy int32
	kind        hwmodel.CoreKind
	nic         bool
	behindNICs  bool // a host reached through its SmartNICs' ports
	server      int32
	host        topology.NodeID // the server's host
	portLo      int32           // its ports are portLo..portHi-1
	portHi      int32
	q           ring
	// Busy cores integrated over time: area (core-ns) up to last.
	area, last int64
	// Traffic-manager packets in the node (waiting or in service),
	// integrated likewise, and its peak.
	tm, tmMax, hbTMMax int32
	tmArea, tmLast     int64
	tmPackets          int64 // forwarded in the window
	// Snapshots at the start of the window and of the heartbeat period.
	area0, tmArea0, hbArea0, hbTMArea0 int64
	// PCIe link to the host (SmartNICs): when each direction is free.
	upFree, downFree int64
	pcieNsPerByte    float64
	// Constants of the unloaded latency of a network path ending here:
	// what this end adds (endNs plus endNsPerByte per wire byte: PCIe and
	// the traffic manager for hosts) and the serialisation of the port
	// its traffic uses.
	endNs                       int64
	endNsPerByte, portNsPerByte float64
}

// portState is one NIC port; each direction is a FIFO link at the port's
// rate.
type portState struct {
	node               topology.NodeID
	nsPerByte          float64
	gbps               float64
	txFree, rxFree     int64
	txBytes, rxBytes   int64 // in the window
	rxPackets          int64 // in the window
	hbTxBytes, hbRxByt int64 // since the last heartbeat
}

// appRun is one application at run time.
type appRun struct {
	a          *app.App
	clients    Clients
	instBase   int32 // its instances are instBase.. in the flat table
	dagBase    int32
	sources    []int32 // DAG nodes that take requests, with mixCum set
	bytes      int32
	keys       keySampler
	inFlight   int
	maxFlight  int
	interval   float64 // rate limiter: ns between tokens
	tau        float64 // rate limiter: burst tolerance, ns
	tat        float64 // rate limiter: theoretical arrival time
	sent       int64   // requests sent in the window
	rejected   int64   // open-loop arrivals over MaxInFlight, in the window
	completed  int64   // in the window
	latSum     float64 // ns, in the window
	latMax     int64   // ns, in the window
	hist       *hdrhistogram.Histogram
	assignment placement.Assignment
}

// rngs are the run's independent random streams.
type rngs struct {
	arrivals, keys, service, routing *rand.Rand
}

// sim is one simulation run.
type sim struct {
	cfg     *Config
	p       Params
	topo    *topology.Topology
	cluster *placement.Cluster
	r       rngs
	svc     sampler
	q       eventQueue
	now     int64
	w0, w1  int64 // the measured window
	events  uint64

	apps      []appRun
	insts     []instState
	dags      []dagNode
	rr        []uint32
	nodes     []nodeState
	ports     []portState
	hostPorts [][]int32 // per server: the ECMP group of its host

	msgs     []message
	freeMsgs []int32
	reqs     []request
	freeReqs []int32

	// Orchestrator state.
	obs        Observations
	migrations []Migration
	pending    []pendingMigration

	tmDemand int64
}

// ring is a FIFO of message indices.
type ring struct {
	buf        []int32
	head, size int
}

func (r *ring) push(m int32) {
	if r.size == len(r.buf) {
		n := max(16, 2*len(r.buf))
		nb := make([]int32, n)
		k := copy(nb, r.buf[r.head:])
		copy(nb[k:], r.buf[:r.head])
		r.buf, r.head = nb, 0
	}
	i := r.head + r.size
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	r.buf[i] = m
	r.size++
}

func (r *ring) pop() int32 {
	m := r.buf[r.head]
	r.head++
	if r.head == len(r.buf) {
		r.head = 0
	}
	r.size--
	return m
}

// newSim builds the run-time state of cfg. cfg has been validated.
func newSim(cfg *Config) (*sim, error) {
	s := &sim{cfg: cfg, topo: cfg.Topology}
	if cfg.Params != nil {
		s.p = *cfg.Params
	} else {
		s.p = DefaultParams()
	}
	if s.p.Demand == nil {
		s.p.Demand = Table1Demand
	}
	s.svc = newSampler(&s.p)
	s.tmDemand = int64(s.p.TMDemand)
	seed := cfg.Seed
	s.r = rngs{
		arrivals: rand.New(rand.NewPCG(seed, streamArrivals)),
		keys:     rand.New(rand.NewPCG(seed, streamKeys)),
		service:  rand.New(rand.NewPCG(seed, streamService)),
		routing:  rand.New(rand.NewPCG(seed, streamRouting)),
	}
	s.w0 = int64(cfg.Warmup)
	s.w1 = s.w0 + int64(cfg.Duration)

	cl, err := newCluster(cfg)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s.cluster = cl
	assign, err := placeApps(cfg, cl)
	if err != nil {
		return nil, err
	}
	s.buildNodes()
	for i := range cfg.Apps {
		if err := s.buildApp(i, assign[i]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *sim) buildNodes() {
	t := s.topo
	s.nodes = make([]nodeState, t.NumNodes())
	s.hostPorts = make([][]int32, t.NumServers())
	portBase := make([]int32, t.NumNodes())
	for n := range t.Nodes() {
		nd := t.Node(n)
		ns := &s.nodes[n]
		ns.cores = int32(nd.Cores)
		ns.kind = s.cluster.CoreKind(n)
		ns.nic = nd.Kind == topology.SmartNIC
		ns.server = int32(nd.Server)
		ns.host = t.Server(nd.Server).Host
		ns.behindNICs = !ns.nic && nd.Ports == 0
		ns.portLo = int32(len(s.ports))
		portBase[n] = ns.portLo
		for range nd.Ports {
			s.ports = append(s.ports, portState{node: n, gbps: nd.PortGbps, nsPerByte: 8 / nd.PortGbps})
		}
		ns.portHi = int32(len(s.ports))
		if ns.nic {
			ns.pcieNsPerByte = 8 / nd.HostLinkGbps
		}
		if nd.Ports > 0 {
			ns.portNsPerByte = 8 / nd.PortGbps
		}
		if !ns.nic {
			ns.endNs = int64(s.p.PCIeLatency)
		}
		if ns.behindNICs {
			nic := t.Node(n + 1) // a host without ports has a SmartNIC
			ns.portNsPerByte = 8 / nic.PortGbps
			ns.endNsPerByte = 8 / nic.HostLinkGbps
			ns.endNs += s.tmDemand
		}
	}
	for srv := range t.Servers() {
		for _, p := range t.HostPorts(srv) {
			s.hostPorts[srv] = append(s.hostPorts[srv], portBase[p.Node]+int32(p.Index))
		}
	}
}

// buildApp adds application i with its assignment to the run-time tables.
func (s *sim) buildApp(i int, assign placement.Assignment) error {
	al := &s.cfg.Apps[i]
	a := al.App
	ar := appRun{
		a:          a,
		clients:    al.Clients,
		instBase:   int32(len(s.insts)),
		dagBase:    int32(len(s.dags)),
		bytes:      int32(a.Workload.RequestSize),
		assignment: slices.Clone(assign),
		hist:       hdrhistogram.New(1, maxLatency, 3),
	}
	ar.maxFlight = al.Clients.MaxInFlight
	if ar.maxFlight == 0 {
		ar.maxFlight = defaultMaxInFlight
	}
	if c := al.Clients; c.Outstanding > 0 && c.Rate > 0 {
		ar.interval = 1e9 / c.Rate
		ar.tau = float64(c.Burst) * ar.interval
	}
	ks, err := newKeySampler(a.Workload.KeySpace, al.Clients.Keys.Zipf, uint64(i))
	if err != nil {
		return fmt.Errorf("sim: Apps[%d] (%s): %w", i, a.Name, err)
	}
	ar.keys = ks

	// DAG nodes, in the application's topological order.
	dagIdx := make(map[*app.Node]int32, len(a.Nodes()))
	for _, nd := range a.Nodes() {
		dagIdx[nd] = int32(len(s.dags))
		s.dags = append(s.dags, dagNode{})
	}
	cum := 0.0
	for _, nd := range a.Nodes() {
		d := &s.dags[dagIdx[nd]]
		for sh := range nd.Shards {
			d.primaries = append(d.primaries, ar.instBase+int32(nd.Primary(sh).Index))
		}
		for _, e := range nd.Out {
			d.out = append(d.out, dagEdge{
				to: dagIdx[e.To], policy: e.Policy, sameKey: e.SameKey, share: e.Share,
				salt: mix64(uint64(i)<<32 | uint64(e.Index) | 1<<63),
			})
		}
	}
	for _, src := range a.Sources() {
		cum += src.Ingress
		d := &s.dags[dagIdx[src]]
		d.mixCum = cum
		ar.sources = append(ar.sources, dagIdx[src])
	}
	if len(ar.sources) == 0 {
		return fmt.Errorf("sim: Apps[%d] (%s): the application has no source", i, a.Name)
	}
	// The last source takes whatever rounding left.
	s.dags[ar.sources[len(ar.sources)-1]].mixCum = 2

	// Instances.
	var unplaced []string
	nn := topology.NodeID(s.topo.NumNodes())
	for _, in := range a.Instances() {
		n := assign[in.Index]
		if n < -1 || n >= nn {
			return fmt.Errorf("sim: Apps[%d] (%s): instance %s assigned to node %d, the cluster has nodes 0..%d", i, a.Name, in.ID, n, nn-1)
		}
		if n < 0 && in.IsPrimary() {
			unplaced = append(unplaced, in.ID)
		}
		st := instState{
			app: int32(i), dag: dagIdx[in.Node], shard: int32(in.Shard), node: n,
			primary: in.IsPrimary(), rrOff: int32(len(s.rr)),
		}
		if d := in.Node.Descriptor; d != nil {
			st.migratable = d.Migratable
			if d.Stateful {
				st.stateBytes = int64(d.MemoryMB) << 20
			}
		}
		for k := range numCoreKinds {
			v, err := s.p.Demand(in.Node.Service, hwmodel.CoreKind(k), a.Workload.RequestSize)
			if err != nil {
				return fmt.Errorf("sim: Apps[%d] (%s): instance %s: %w", i, a.Name, in.ID, err)
			}
			if !(v > 0) {
				return fmt.Errorf("sim: Apps[%d] (%s): instance %s: demand of %s on %s is %v s, want > 0", i, a.Name, in.ID, in.Node.Service, hwmodel.CoreKind(k), v)
			}
			st.meanNs[k] = v * 1e9
		}
		if st.primary {
			// Round-robin senders start at their own shard so that they
			// do not all begin with shard 0.
			for range in.Node.Out {
				s.rr = append(s.rr, uint32(in.Shard))
			}
		}
		s.insts = append(s.insts, st)
	}
	if len(unplaced) > 0 {
		if len(unplaced) > 5 {
			unplaced = append(unplaced[:5], "...")
		}
		return fmt.Errorf("sim: Apps[%d] (%s): primaries without a node: %v; every primary needs one", i, a.Name, unplaced)
	}
	s.apps = append(s.apps, ar)
	return nil
}

// maxLatency is the largest latency the histograms track exactly: an hour.
const maxLatency = int64(3600e9)

// mix64 is mix.SplitMix64Next, a fast, well-spread 64-bit hash used for
// flow hashes (ECMP), re-keying and key scrambling. It is the same on
// every platform, so runs replay anywhere, and it is the runtime's, so
// the simulator is checked against an emulated cluster that hashes alike.
func mix64(x uint64) uint64 { return mix.SplitMix64Next(x) }

// allocMsg returns a fresh message slot.
func (s *sim) allocMsg() int32 {
	if n := len(s.freeMsgs); n > 0 {
		m := s.freeMsgs[n-1]
		s.freeMsgs = s.freeMsgs[:n-1]
		return m
	}
	s.msgs = append(s.msgs, message{})
	return int32(len(s.msgs) - 1)
}

func (s *sim) freeMsg(m int32) { s.freeMsgs = append(s.freeMsgs, m) }

func (s *sim) allocReq() int32 {
	if n := len(s.freeReqs); n > 0 {
		r := s.freeReqs[n-1]
		s.freeReqs = s.freeReqs[:n-1]
		return r
	}
	s.reqs = append(s.reqs, request{})
	return int32(len(s.reqs) - 1)
}

func (s *sim) freeReq(r int32) { s.freeReqs = append(s.freeReqs, r) }
