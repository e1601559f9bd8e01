package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/e3-platform/e3/collections/durable"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// Channel ids on an agent's data endpoint. Agents talk to each other on
// one channel per pair (PeerChannelID, opened by whichever sends first);
// a client opens ClientChannelID to the agent its requests enter at.
const (
	PeerChannelID   uint32 = 1
	ClientChannelID uint32 = 2
)

// Defaults of [Config].
const (
	DefaultRequestTimeout = 2 * time.Second
	DefaultHeartbeat      = 50 * time.Millisecond
	// DefaultDemand is the emulated service time of a service with no
	// Table 1 calibration (the echo service of tests and benchmarks).
	DefaultDemand = time.Microsecond
)

// Config configures an [Agent]. Node, Topology, Registry and Conn are
// required; the rest have defaults.
type Config struct {
	// Node is the compute node the agent runs, and Topology the cluster it
	// belongs to; the agent's kind (host or SmartNIC) and cores come from
	// the topology.
	Node     topology.NodeID
	Topology *topology.Topology
	// CoreKind is the node's processor, for the emulated service times.
	CoreKind hwmodel.CoreKind
	// Cores overrides the topology's core count (the workers the agent
	// runs); 0 takes the topology's.
	Cores int
	// Registry resolves microservice names.
	Registry *service.Registry
	// Conn is the agent's data socket; the agent runs lossless channels to
	// other agents and to clients over it and closes it on Close.
	Conn transport.BatchConn
	// Endpoint tunes the channels (Window, timeouts, Clock).
	Endpoint transport.EndpointConfig
	// ClientConn, if set, is a socket for bare E3 requests (one datagram,
	// one request, one reply, no channel): the fast path of the transport
	// benchmark. The agent closes it on Close.
	ClientConn transport.BatchConn
	// Emulation, if set, runs the agent as emulated hardware (see
	// [Emulation]); nil runs handlers at full speed (real mode).
	Emulation *Emulation
	// Controller receives a heartbeat every Heartbeat interval (emulated
	// time in emulation); nil sends none.
	Controller Controller
	// Heartbeat is the heartbeat interval (default 50 ms).
	Heartbeat time.Duration
	// RequestTimeout is how long, in real time, an admitted request may go
	// without completing before its client gets an error (default 2 s).
	RequestTimeout time.Duration
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger

	// DataDir, if set, is where instances of stateful services keep their
	// state: a durable store (bbolt file) per instance, replicated to the
	// instance's backup, which the agent then runs too (see state.go).
	// Empty keeps state in memory, as services run in tests and sim.
	DataDir string
	// Durable tunes the stores (fsync, commit delay, replication
	// timeout); the agent sets Quiesce and OnBackupLost itself.
	Durable durable.Options
	// Recover makes the first table applied after the agent started
	// recover the instances it places here from their files in DataDir
	// (an agent restarted after a crash). Instances placed here later
	// start from empty state: a file left from an earlier life may be
	// stale.
	Recover bool
	// MigrationTimeout bounds a migration source's drain and shipping
	// (real time; default DefaultMigrationTimeout). When it passes, the
	// source serves the instance again and reports the move failed.
	MigrationTimeout time.Duration
	// MigrationHook, if set, is called at the steps of every migration
	// this agent takes part in, on the migration's goroutine, and may
	// block: a source calls it after holding (PhaseDraining), after the
	// drain (PhaseShipping) and after the destination's acknowledgement
	// (PhaseReady); a destination when the state has arrived, before
	// restoring it (PhasePreparing), and after restoring it, before
	// acknowledging (PhaseReady). ctx ends when the agent closes. For
	// fault injection in tests (a crash at a chosen step); nil otherwise.
	MigrationHook func(ctx context.Context, s MigrationStatus)
}

// Emulation describes emulated hardware. All times here are emulated
// nanoseconds; real time runs Dilation times slower.
type Emulation struct {
	// Dilation is D: one emulated nanosecond lasts D real nanoseconds.
	Dilation float64
	// Origin is the real instant of emulated time 0; every agent of a
	// cluster shares it.
	Origin time.Time
	// UnixBase is added to emulated time for service.Context.Now, so that
	// services see plausible wall-clock nanoseconds.
	UnixBase int64
	// Latency is the one-way delay of a message of bytes bytes between
	// two nodes joined directly: the same node (an in-memory queue), a
	// host and its SmartNIC (PCIe), or two ends of the network (NIC ports,
	// switches). The agent asks only for such hops; a path through a
	// SmartNIC's traffic manager is composed of two of them plus the
	// traffic manager's work.
	Latency func(from, to topology.NodeID, bytes int) time.Duration
	// ClientLatency is the one-way delay between node n and a client.
	ClientLatency func(n topology.NodeID, bytes int) time.Duration
	// TMDemand is the SmartNIC core time the traffic manager spends
	// forwarding one message between the network and the host.
	TMDemand time.Duration
	// Demand overrides the per-message service time of a service on this
	// node (nil: hwmodel.Demand for the node's core kind, DefaultDemand
	// for services without a calibration).
	Demand func(service string) time.Duration
	// SpinBelow makes the pacer busy-wait (yielding the processor)
	// instead of sleeping when the next message is due in less than this
	// much real time. The default, 0, never spins: a Go timer fires up to
	// about a millisecond late, but a goroutine that spins with
	// runtime.Gosched keeps the scheduler from polling the network, which
	// delays every socket read of the process by milliseconds (measured:
	// channel hops of 5 ms with six spinning pacers on two cores). Late
	// release costs little: figures come from the messages' timestamps.
	SpinBelow time.Duration
}

// Controller is what an agent reports to: the minimal controller of the
// emulated cluster, and later the replicated one.
type Controller interface {
	Heartbeat(hb *Heartbeat)
}

// Agent is the node agent of one compute node (a host or a SmartNIC): it
// holds microservice instances, runs them on one worker per core, routes
// what they emit, tracks requests to completion at the ingress, forwards
// host traffic on a SmartNIC (the traffic manager), and reports
// heartbeats and Prometheus metrics. See the package documentation.
type Agent struct {
	cfg   Config
	topo  *topology.Topology
	node  topology.Node
	self  topology.NodeID
	isNIC bool
	// host is the host of a SmartNIC's server; for a host, its own id.
	host topology.NodeID
	// behindNICs: a host whose traffic goes through its SmartNICs.
	behindNICs bool
	ownNICs    []topology.NodeID // a host's SmartNICs
	emu        *Emulation
	log        *slog.Logger

	ep    *transport.Endpoint
	state atomic.Pointer[agentState]

	// channels to peers, by node; created on first use.
	chMu    sync.Mutex
	peers   []atomic.Pointer[transport.Channel]
	tracked map[*transport.Channel]bool
	clients []*transport.Channel // client channels by connection index
	cliMu   sync.RWMutex

	hostLinks []atomic.Pointer[transport.HostPort] // by node id, nil where there is none
	started   atomic.Bool

	ing     *ingress
	workers []*worker
	rr      atomic.Uint32 // real mode: round-robin steering
	pace    *pacer        // emulation only

	bare *bareOut

	stats agentStats
	// coarse is the wall clock read every 5 ms (by
	// the sweeper, and by the client loop per batch): good enough for
	// timeouts and a real-mode service clock, and free on the data path.
	coarse atomic.Int64
	reg    *prometheus.Registry

	lifeMu  sync.Mutex // serialises Apply, lifecycle calls and Close
	applied bool       // a table was applied since the agent started

	ctl   *control
	rel   *releaser // messages whose barrier passed, to route
	migMu sync.Mutex
	migs  map[uint64]*migration // migrations the table in force lists, by id

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// agentState is what the data path reads without locks: the table and the
// instances this node runs. A new one replaces it on every Apply.
type agentState struct {
	table *Table
	apps  []*appState // by app id; nil where none
}

// New creates an agent; Start runs it.
func New(cfg Config) (*Agent, error) {
	if cfg.Topology == nil {
		return nil, errors.New("runtime: Config.Topology is nil")
	}
	if cfg.Node < 0 || int(cfg.Node) >= cfg.Topology.NumNodes() {
		return nil, fmt.Errorf("runtime: Config.Node %d: the topology has nodes 0..%d", cfg.Node, cfg.Topology.NumNodes()-1)
	}
	if cfg.Registry == nil {
		return nil, errors.New("runtime: Config.Registry is nil")
	}
	if cfg.Conn == nil {
		return nil, errors.New("runtime: Config.Conn is nil")
	}
	t := cfg.Topology
	nd := t.Node(cfg.Node)
	if cfg.Cores == 0 {
		cfg.Cores = nd.Cores
	}
	if cfg.Cores < 1 || cfg.Cores > 1024 {
		return nil, fmt.Errorf("runtime: node %s: %d cores, want 1..1024", t.Name(cfg.Node), cfg.Cores)
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Heartbeat < 0 || cfg.RequestTimeout < 0 {
		return nil, fmt.Errorf("runtime: Heartbeat %v, RequestTimeout %v: want positive durations", cfg.Heartbeat, cfg.RequestTimeout)
	}
	if e := cfg.Emulation; e != nil {
		if !(e.Dilation > 0) || e.Dilation > 1e6 {
			return nil, fmt.Errorf("runtime: Emulation.Dilation %v: want 0 < D <= 1e6", e.Dilation)
		}
		if e.Latency == nil || e.ClientLatency == nil {
			return nil, errors.New("runtime: Emulation.Latency and ClientLatency are required")
		}
		if e.Origin.IsZero() {
			return nil, errors.New("runtime: Emulation.Origin is zero; agents of one cluster must share it")
		}
	}
	if cfg.Endpoint.Window == 0 {
		cfg.Endpoint.Window = 1024
	}
	if cfg.Endpoint.AcceptQueue == 0 {
		cfg.Endpoint.AcceptQueue = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MigrationTimeout == 0 {
		cfg.MigrationTimeout = DefaultMigrationTimeout
	}
	if cfg.MigrationTimeout < 0 {
		return nil, fmt.Errorf("runtime: MigrationTimeout %v: want a positive duration", cfg.MigrationTimeout)
	}
	a := &Agent{
		cfg:       cfg,
		topo:      t,
		node:      nd,
		self:      cfg.Node,
		isNIC:     nd.Kind == topology.SmartNIC,
		host:      t.Server(nd.Server).Host,
		emu:       cfg.Emulation,
		log:       cfg.Logger.With("node", t.Name(cfg.Node)),
		peers:     make([]atomic.Pointer[transport.Channel], t.NumNodes()),
		tracked:   map[*transport.Channel]bool{},
		hostLinks: make([]atomic.Pointer[transport.HostPort], t.NumNodes()),
		ing:       newIngress(),
		ctl:       newControl(),
		rel:       newReleaser(),
		migs:      map[uint64]*migration{},
	}
	if !a.isNIC {
		srv := t.Server(nd.Server)
		for i := range srv.SmartNICs {
			a.ownNICs = append(a.ownNICs, srv.Host+1+topology.NodeID(i))
		}
		a.behindNICs = nd.Ports == 0 && len(a.ownNICs) > 0
	}
	a.state.Store(&agentState{})
	a.ctx, a.cancel = context.WithCancel(context.Background())
	for i := range cfg.Cores {
		a.workers = append(a.workers, newWorker(a, i))
	}
	if a.emu != nil {
		a.pace = newPacer(a)
	}
	a.stats.init(a)
	ecfg := cfg.Endpoint
	ep, err := transport.NewEndpoint(cfg.Conn, ecfg)
	if err != nil {
		return nil, fmt.Errorf("runtime: node %s: %w", t.Name(cfg.Node), err)
	}
	a.ep = ep
	if cfg.ClientConn != nil {
		a.bare = newBareOut(cfg.ClientConn)
	}
	return a, nil
}

// Name is the node's name ("r0/s1/nic0").
func (a *Agent) Name() string { return a.topo.Name(a.self) }

// Node is the node the agent runs.
func (a *Agent) Node() topology.NodeID { return a.self }

// Addr is the agent's data endpoint, the address in routing tables.
func (a *Agent) Addr() netip.AddrPort { return a.ep.LocalAddr() }

// Closed reports whether the agent was closed (stopped or killed).
func (a *Agent) Closed() bool { return a.closed.Load() }

// Cores is the number of workers (emulated cores).
func (a *Agent) Cores() int { return len(a.workers) }

// Metrics is the agent's Prometheus registry (its own, so that many agents
// can live in one process).
func (a *Agent) Metrics() *prometheus.Registry { return a.reg }

// Endpoint exposes the agent's transport endpoint (for its statistics).
func (a *Agent) Endpoint() *transport.Endpoint { return a.ep }

// AttachHostLink joins the agent to peer (its SmartNIC, or its host) over
// one end of a host link. On a running agent it replaces the link (the
// peer's agent was restarted with a new one) and closes the old one.
func (a *Agent) AttachHostLink(peer topology.NodeID, p *transport.HostPort) error {
	if peer < 0 || int(peer) >= len(a.hostLinks) {
		return fmt.Errorf("runtime: %s: host link to node %d, not in the topology", a.Name(), peer)
	}
	if a.topo.ServerOf(peer) != a.node.Server || peer == a.self || (a.isNIC && peer != a.host) || (!a.isNIC && a.topo.Node(peer).Kind != topology.SmartNIC) {
		return fmt.Errorf("runtime: %s: a host link joins a host and its own SmartNIC, not %s", a.Name(), a.topo.Name(peer))
	}
	a.lifeMu.Lock()
	defer a.lifeMu.Unlock()
	if a.closed.Load() {
		return fmt.Errorf("runtime: %s: host link to %s: agent closed", a.Name(), a.topo.Name(peer))
	}
	old := a.hostLinks[peer].Swap(p)
	if a.started.Load() {
		if old != nil {
			old.Close()
		}
		a.wg.Add(1)
		go a.hostLinkLoop(peer, p)
	}
	return nil
}

// Start runs the agent's goroutines: workers, channel and host-link
// receivers, the pacer (emulation), the timeout sweeper and the heartbeat.
func (a *Agent) Start() {
	for _, w := range a.workers {
		a.wg.Add(1)
		go w.run()
	}
	if a.pace != nil {
		a.wg.Add(1)
		go a.pace.run()
	}
	a.wg.Add(1)
	go a.acceptLoop()
	a.lifeMu.Lock()
	a.started.Store(true)
	for peer := range a.hostLinks {
		if p := a.hostLinks[peer].Load(); p != nil {
			a.wg.Add(1)
			go a.hostLinkLoop(topology.NodeID(peer), p)
		}
	}
	a.lifeMu.Unlock()
	if a.cfg.ClientConn != nil {
		a.wg.Add(1)
		go a.bareLoop()
	}
	a.wg.Add(1)
	go a.sweepLoop()
	a.wg.Add(1)
	go a.releaseLoop()
	if a.cfg.Controller != nil {
		a.wg.Add(1)
		go a.heartbeatLoop()
	}
}

// Close stops the agent: it fails the requests still in flight (their
// clients get an error), stops every goroutine, closes the sockets and
// host links, and closes the instances that hold resources. State files
// stay (a restarted agent recovers from them), except those of
// migrations this agent was the destination of, which were never routed.
func (a *Agent) Close() error {
	a.lifeMu.Lock()
	defer a.lifeMu.Unlock()
	if a.closed.Swap(true) {
		return nil
	}
	a.cancel()
	err := a.ep.Close()
	if a.cfg.ClientConn != nil {
		a.cfg.ClientConn.Close()
	}
	for i := range a.hostLinks {
		if p := a.hostLinks[i].Load(); p != nil {
			p.Close()
		}
	}
	a.wg.Wait()
	// Drop what is still queued.
	for _, w := range a.workers {
		for _, m := range w.in.take() {
			putMsg(m)
		}
	}
	st := a.state.Load()
	for _, as := range st.apps {
		if as == nil {
			continue
		}
		for _, in := range as.local {
			if in != nil {
				in.stop()
			}
		}
		for _, bi := range as.backups {
			if bi != nil {
				bi.close(false)
			}
		}
		for _, m := range as.incoming {
			if m != nil && as.local[m.mv.Instance] != m.in {
				m.in.stopAndFree(true)
			}
		}
	}
	// Held messages of instances that never resumed are dropped; their
	// requests failed above.
	return err
}

// coarseNow returns the coarse wall clock.
func (a *Agent) coarseNow() time.Time {
	if v := a.coarse.Load(); v != 0 {
		return time.Unix(0, v)
	}
	return time.Now()
}

func (a *Agent) tick() { a.coarse.Store(time.Now().UnixNano()) }

// emuNow returns the current emulated time (ns since the origin).
func (a *Agent) emuNow() int64 {
	return int64(float64(time.Since(a.emu.Origin)) / a.emu.Dilation)
}

// realAt returns the real instant of emulated time t.
func (a *Agent) realAt(t int64) time.Time {
	return a.emu.Origin.Add(time.Duration(float64(t) * a.emu.Dilation))
}

// peerChannel returns the channel to node n, opening it on first use.
func (a *Agent) peerChannel(n topology.NodeID) (*transport.Channel, error) {
	if ch := a.peers[n].Load(); ch != nil {
		return ch, nil
	}
	addr := a.state.Load().table.addr(n)
	if !addr.IsValid() {
		return nil, fmt.Errorf("runtime: %s: no address for node %s", a.Name(), a.topo.Name(n))
	}
	a.chMu.Lock()
	defer a.chMu.Unlock()
	if ch := a.peers[n].Load(); ch != nil {
		return ch, nil
	}
	ch, err := a.ep.Open(addr, PeerChannelID)
	if err != nil {
		return nil, err
	}
	a.peers[n].Store(ch)
	a.trackLocked(ch, fromPeer, n)
	return ch, nil
}

// forgetPeer closes the channels to node n, so that the next message
// opens new ones to the address the table in force gives.
func (a *Agent) forgetPeer(n topology.NodeID) {
	a.chMu.Lock()
	ch := a.peers[n].Swap(nil)
	a.chMu.Unlock()
	if ch != nil {
		ch.Close()
	}
	a.ctl.mu.Lock()
	var cs []*transport.Channel
	for _, id := range []uint32{ControlChannelID, BulkChannelID} {
		if cc := a.ctl.chans[chanRef{n, id}]; cc != nil {
			cs = append(cs, cc)
			delete(a.ctl.chans, chanRef{n, id})
		}
	}
	a.ctl.mu.Unlock()
	for _, cc := range cs {
		cc.Close()
	}
}

// trackLocked starts a receiver for ch unless one runs; a.chMu held.
func (a *Agent) trackLocked(ch *transport.Channel, src origin, peer topology.NodeID) {
	if a.tracked[ch] {
		return
	}
	a.tracked[ch] = true
	var conn uint32
	if src == fromClient {
		a.cliMu.Lock()
		conn = uint32(len(a.clients))
		a.clients = append(a.clients, ch)
		a.cliMu.Unlock()
	}
	a.wg.Add(1)
	go a.recvLoop(ch, src, peer, conn)
}

func (a *Agent) acceptLoop() {
	defer a.wg.Done()
	for {
		ch, err := a.ep.Accept(a.ctx)
		if err != nil {
			return
		}
		a.chMu.Lock()
		switch ch.ID() {
		case ClientChannelID:
			a.trackLocked(ch, fromClient, -1)
		case PeerChannelID:
			n := a.nodeByAddr(ch.Peer())
			if n < 0 {
				a.chMu.Unlock()
				a.log.Warn("channel from an address not in the routing table", "peer", ch.Peer())
				ch.Close()
				continue
			}
			if a.peers[n].Load() == nil {
				a.peers[n].Store(ch)
			}
			a.trackLocked(ch, fromPeer, n)
		case ControlChannelID, BulkChannelID:
			a.acceptControl(ch)
		default:
			a.log.Warn("channel with an unknown id", "peer", ch.Peer(), "id", ch.ID())
			ch.Close()
		}
		a.chMu.Unlock()
	}
}

func (a *Agent) nodeByAddr(addr netip.AddrPort) topology.NodeID {
	t := a.state.Load().table
	if t == nil {
		return -1
	}
	for i, ad := range t.Addrs {
		if ad == addr {
			return topology.NodeID(i)
		}
	}
	return -1
}

func (t *Table) addr(n topology.NodeID) netip.AddrPort {
	if t == nil || int(n) >= len(t.Addrs) {
		return netip.AddrPort{}
	}
	return t.Addrs[n]
}

// recvLoop takes messages off one channel and hands them to the engine.
func (a *Agent) recvLoop(ch *transport.Channel, src origin, peer topology.NodeID, conn uint32) {
	defer a.wg.Done()
	for {
		m := getMsg()
		b, err := ch.Recv(a.ctx, m.b[:0])
		if err != nil {
			putMsg(m)
			if a.ctx.Err() == nil && src == fromPeer {
				a.log.Warn("peer channel failed", "peer", a.topo.Name(peer), "err", err)
				a.chMu.Lock()
				delete(a.tracked, ch)
				a.peers[peer].CompareAndSwap(ch, nil)
				a.chMu.Unlock()
			}
			return
		}
		m.b = b
		if err := m.h.Decode(m.b); err != nil {
			a.stats.badMessages.Add(1)
			putMsg(m)
			continue
		}
		a.stats.bytesIn.Add(uint64(len(m.b)))
		m.src, m.peer, m.conn = src, peer, conn
		a.input(m)
	}
}

func (a *Agent) hostLinkLoop(peer topology.NodeID, p *transport.HostPort) {
	defer a.wg.Done()
	for {
		m := getMsg()
		b, err := p.Recv(a.ctx, m.b[:0])
		if err != nil {
			putMsg(m)
			return
		}
		m.b = b
		if err := m.h.Decode(m.b); err != nil {
			a.stats.badMessages.Add(1)
			putMsg(m)
			continue
		}
		m.src, m.peer = fromHostLink, peer
		a.input(m)
	}
}

// sweepLoop fails requests that have waited longer than the timeout.
func (a *Agent) sweepLoop() {
	defer a.wg.Done()
	period := max(a.cfg.RequestTimeout/4, time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	clk := time.NewTicker(5 * time.Millisecond)
	defer clk.Stop()
	var ids []uint64
	out := getOutcome()
	defer putOutcome(out)
	for {
		select {
		case <-a.ctx.Done():
			// Nothing more will complete: fail what is left so that no
			// client waits in silence.
			ids = a.ing.expired(time.Now().Add(time.Hour), ids[:0])
			for _, id := range ids {
				if a.ing.fail(id, "runtime: agent stopped", out) {
					a.stats.failed.Add(1)
					a.replyClient(out, a.nowForReply())
				}
			}
			return
		case <-clk.C:
			a.tick()
		case now := <-t.C:
			a.tick()
			ids = a.ing.expired(now.Add(-a.cfg.RequestTimeout), ids[:0])
			for _, id := range ids {
				if a.ing.fail(id, "runtime: request timed out after "+a.cfg.RequestTimeout.String(), out) {
					a.stats.timeouts.Add(1)
					a.replyClient(out, a.nowForReply())
				}
			}
		}
	}
}

func (a *Agent) nowForReply() int64 {
	if a.emu == nil {
		return 0
	}
	return a.emuNow()
}
