package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/sim"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// Config configures [Start].
type Config struct {
	// Cluster names a cluster of Table 4 (hwmodel.ClusterByName), e.g.
	// "3xType1-SmartNIC".
	Cluster string
	// Dilation is the time-dilation factor D: one emulated nanosecond
	// lasts D real ones (at least 1; [ChooseDilation] picks one for an
	// application). Negative runs real mode: no emulation, handlers at
	// full speed. 0 means 1.
	Dilation float64
	// Params gives the network latencies and the traffic manager's cost;
	// nil means sim.DefaultParams(), so that the emulated and the simulated
	// cluster use the same figures.
	Params *sim.Params
	// Network, if set, carries the agents' traffic instead of loopback UDP
	// (tests use a lossy in-memory network).
	Network *transport.Network
	// Registry resolves microservices; nil means services.Registry().
	Registry *service.Registry
	// RequestTimeout is the agents' request timeout (real time; default
	// runtime.DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Endpoint tunes the channels (Window, retransmission timers).
	Endpoint transport.EndpointConfig
	// Logger receives logs; nil discards them.
	Logger *slog.Logger

	// State says where instances of stateful services keep their state
	// (default StateDisk: durable stores, fsync off).
	State StateMode
	// DataDir is the root of the agents' state directories, one per
	// node; empty means a temporary directory that Stop removes.
	DataDir string
	// MigrationTimeout bounds a migration's drain and shipping (real
	// time; default runtime.DefaultMigrationTimeout, or one second of
	// emulated time if that is longer).
	MigrationTimeout time.Duration
	// MigrationHook is handed to every agent, with the agent's node (see
	// runtime.Config.MigrationHook): fault injection for tests.
	MigrationHook func(ctx context.Context, node topology.NodeID, s runtime.MigrationStatus)
	// Orchestrator, if set, runs the data-plane orchestrator in the
	// controller: heartbeats in, migrations out (see [OrchestratorConfig]).
	Orchestrator *OrchestratorConfig
}

// StateMode says where instances of stateful services keep their state.
type StateMode uint8

// The state modes.
const (
	// StateDisk: a durable store (bbolt file) per instance under the
	// node's state directory, replicated to the instance's backup before
	// a request is answered; fsync off, so a write survives the crash of
	// an agent (the file's pages are in the page cache) but not of the
	// machine. Every emulated node shares this machine's one disk, whose
	// fsyncs would otherwise bound the whole cluster's write rate.
	StateDisk StateMode = iota
	// StateFsync is StateDisk with fsync on every commit.
	StateFsync
	// StateMemory keeps collections in memory (nothing persisted or
	// replicated; backups are not instantiated), as the simulator assumes.
	StateMemory
)

var stateNames = [...]string{"disk", "fsync", "memory"}

func (m StateMode) String() string {
	if int(m) < len(stateNames) {
		return stateNames[m]
	}
	return fmt.Sprintf("StateMode(%d)", uint8(m))
}

// ParseStateMode parses "disk", "fsync" or "memory".
func ParseStateMode(s string) (StateMode, error) {
	for i, n := range stateNames {
		if s == n {
			return StateMode(i), nil
		}
	}
	return 0, fmt.Errorf("cluster: state mode %q: want disk, fsync or memory", s)
}

// Cluster is an emulated cluster running in this process: one agent per
// compute node, each on its own loopback address, the host links between
// SmartNICs and their hosts, and a minimal controller.
type Cluster struct {
	cfg      Config
	spec     hwmodel.Cluster
	topo     *topology.Topology
	pc       *placement.Cluster
	params   sim.Params
	agMu     sync.RWMutex // guards agents and addrs (an agent restarts)
	agents   []*runtime.Agent
	addrs    []netip.AddrPort
	ctrl     *Controller
	registry *service.Registry

	emu    *runtime.Emulation // shared by every agent; nil in real mode
	origin time.Time

	dataDir  string
	ownDir   bool // dataDir is a temporary directory of ours
	restarts int

	cliMu   sync.Mutex
	targets []*Target
	nclient int

	stopOnce sync.Once
	stopErr  error
}

func (c *Cluster) clients() []*Target {
	c.cliMu.Lock()
	defer c.cliMu.Unlock()
	return append([]*Target(nil), c.targets...)
}

func (c *Cluster) addClient(t *Target) {
	c.cliMu.Lock()
	c.targets = append(c.targets, t)
	c.nclient++
	c.cliMu.Unlock()
}

func (c *Cluster) removeClient(t *Target) {
	c.cliMu.Lock()
	defer c.cliMu.Unlock()
	for i, x := range c.targets {
		if x == t {
			c.targets = append(c.targets[:i], c.targets[i+1:]...)
			return
		}
	}
}

// AgentAddr returns the loopback address of node n: 127.0.x.y with
// x.y = n+1 in base 250, so that every compute node has its own address as
// on a real network.
func AgentAddr(n topology.NodeID) netip.Addr {
	v := int(n) + 1
	return netip.AddrFrom4([4]byte{127, 0, byte(v / 250), byte(v%250 + 1)})
}

// build returns the cluster of Table 4 called name, its topology and the
// placement view of it: what planning and starting a cluster both need.
func build(name string) (hwmodel.Cluster, *topology.Topology, *placement.Cluster, error) {
	spec, err := hwmodel.ClusterByName(name)
	if err != nil {
		return hwmodel.Cluster{}, nil, nil, fmt.Errorf("cluster: %w", err)
	}
	topo, err := hwmodel.Topology(spec)
	if err != nil {
		return hwmodel.Cluster{}, nil, nil, fmt.Errorf("cluster: %w", err)
	}
	pc, err := placement.NewCluster(topo)
	if err != nil {
		return hwmodel.Cluster{}, nil, nil, fmt.Errorf("cluster: %w", err)
	}
	return spec, topo, pc, nil
}

// Start builds the cluster's topology and starts an agent per compute
// node on its own loopback address (or on Config.Network).
func Start(cfg Config) (*Cluster, error) {
	spec, topo, pc, err := build(cfg.Cluster)
	if err != nil {
		return nil, err
	}
	params := sim.DefaultParams()
	if cfg.Params != nil {
		params = *cfg.Params
	}
	if cfg.Registry == nil {
		cfg.Registry = services.Registry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MigrationTimeout == 0 {
		// A migration may take up to a second of emulated time, which
		// lasts D seconds here.
		cfg.MigrationTimeout = runtime.DefaultMigrationTimeout
		if d := cfg.Dilation; d > 1 {
			cfg.MigrationTimeout = max(cfg.MigrationTimeout, time.Duration(d*float64(time.Second)))
		}
	}
	c := &Cluster{cfg: cfg, spec: spec, topo: topo, pc: pc, params: params, registry: cfg.Registry, dataDir: cfg.DataDir}
	if c.cfg.State != StateMemory && c.dataDir == "" {
		if c.dataDir, err = os.MkdirTemp("", "e3-cluster-"); err != nil {
			return nil, fmt.Errorf("cluster: state directory: %w", err)
		}
		c.ownDir = true
	}
	c.ctrl = newController(c)
	if cfg.Dilation >= 0 {
		c.emu = c.newEmulation(max(cfg.Dilation, 1))
		c.origin = c.emu.Origin
	} else {
		c.origin = time.Now()
	}
	c.addrs = make([]netip.AddrPort, topo.NumNodes())
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	c.agents = make([]*runtime.Agent, topo.NumNodes())
	for n := range topo.Nodes() {
		a, err := c.newAgent(n)
		if err != nil {
			return nil, err
		}
		c.agents[n] = a
		c.addrs[n] = a.Addr()
	}
	for s := range topo.Servers() {
		srv := topo.Server(s)
		for i := range srv.SmartNICs {
			if err := c.linkHost(srv.Host + 1 + topology.NodeID(i)); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range c.agents {
		a.Start()
	}
	if cfg.Orchestrator != nil {
		if err := c.ctrl.startOrchestrator(*cfg.Orchestrator); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

// newAgent creates the agent of node n on a new socket at its address.
func (c *Cluster) newAgent(n topology.NodeID) (*runtime.Agent, error) {
	conn, err := c.listen(netip.AddrPortFrom(AgentAddr(n), 0))
	if err != nil {
		return nil, err
	}
	cfg := runtime.Config{
		Node: n, Topology: c.topo, CoreKind: c.pc.CoreKind(n), Registry: c.cfg.Registry, Conn: conn,
		Endpoint: c.cfg.Endpoint, Emulation: c.emu, Controller: c.ctrl, RequestTimeout: c.cfg.RequestTimeout,
		Logger: c.cfg.Logger, MigrationTimeout: c.cfg.MigrationTimeout, Recover: true,
	}
	if c.cfg.State != StateMemory {
		cfg.DataDir = filepath.Join(c.dataDir, strings.ReplaceAll(c.topo.Name(n), "/", "-"))
		cfg.Durable.NoSync = c.cfg.State == StateDisk
	}
	if h := c.cfg.MigrationHook; h != nil {
		cfg.MigrationHook = func(ctx context.Context, s runtime.MigrationStatus) { h(ctx, n, s) }
	}
	a, err := runtime.New(cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return a, nil
}

// linkHost joins SmartNIC nic and its host with a new host link.
func (c *Cluster) linkHost(nic topology.NodeID) error {
	host := c.topo.Server(c.topo.Node(nic).Server).Host
	np, hp, err := transport.NewHostLink(transport.HostLinkConfig{Capacity: 4096})
	if err != nil {
		return err
	}
	if err := c.agents[nic].AttachHostLink(host, np); err != nil {
		return err
	}
	return c.agents[host].AttachHostLink(nic, hp)
}

// DataDir returns the root of the agents' state directories ("" with
// StateMemory).
func (c *Cluster) DataDir() string { return c.dataDir }

// NodeDataDir returns node n's state directory.
func (c *Cluster) NodeDataDir(n topology.NodeID) string {
	if c.dataDir == "" {
		return ""
	}
	return filepath.Join(c.dataDir, strings.ReplaceAll(c.topo.Name(n), "/", "-"))
}

func (c *Cluster) listen(addr netip.AddrPort) (transport.BatchConn, error) {
	if c.cfg.Network != nil {
		return c.cfg.Network.Listen(addr)
	}
	conn, err := transport.ListenUDP(addr, transport.UDPConfig{})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return conn, nil
}

// newEmulation builds the emulation every agent shares: the dilation, the
// common origin and the latency model.
func (c *Cluster) newEmulation(d float64) *runtime.Emulation {
	lat, client := LatencyModel(c.topo, c.params)
	now := time.Now()
	return &runtime.Emulation{
		Dilation: d, Origin: now, UnixBase: now.UnixNano(),
		Latency: lat, ClientLatency: client, TMDemand: c.params.TMDemand,
	}
}

// Dilation returns D (0 in real mode).
func (c *Cluster) Dilation() float64 {
	if c.emu == nil {
		return 0
	}
	return c.emu.Dilation
}

// Emulated reports whether the cluster emulates hardware.
func (c *Cluster) Emulated() bool { return c.emu != nil }

// Now returns the cluster's emulated time (real time since start in real
// mode), in nanoseconds.
func (c *Cluster) Now() int64 {
	if c.emu == nil {
		return int64(time.Since(c.origin))
	}
	return int64(float64(time.Since(c.emu.Origin)) / c.emu.Dilation)
}

// Topology returns the cluster's topology.
func (c *Cluster) Topology() *topology.Topology { return c.topo }

// Placement returns the cluster as placement sees it.
func (c *Cluster) Placement() *placement.Cluster { return c.pc }

// Name returns the cluster's name.
func (c *Cluster) Name() string { return c.spec.Name }

// Agents returns the agents, indexed by node.
func (c *Cluster) Agents() []*runtime.Agent {
	c.agMu.RLock()
	defer c.agMu.RUnlock()
	return append([]*runtime.Agent(nil), c.agents...)
}

// Agent returns the agent of node n (a new one after a restart).
func (c *Cluster) Agent(n topology.NodeID) *runtime.Agent {
	c.agMu.RLock()
	defer c.agMu.RUnlock()
	return c.agents[n]
}

// addresses returns the agents' data addresses.
func (c *Cluster) addresses() []netip.AddrPort {
	c.agMu.RLock()
	defer c.agMu.RUnlock()
	return append([]netip.AddrPort(nil), c.addrs...)
}

// Controller returns the cluster's controller.
func (c *Cluster) Controller() *Controller { return c.ctrl }

// Params returns the latency and traffic-manager parameters in use.
func (c *Cluster) Params() sim.Params { return c.params }

// Stop stops every agent and client; it is idempotent.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		for _, t := range c.clients() {
			if err := t.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		c.ctrl.close()
		for _, a := range c.Agents() {
			if err := a.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if c.ownDir {
			if err := os.RemoveAll(c.dataDir); err != nil {
				errs = append(errs, err)
			}
		}
		c.stopErr = errors.Join(errs...)
		// Hand the next cluster of this process the heap a fresh process
		// would have. Measured: after a long run (RTA-SHM at a million
		// requests a second for 22 s), a second cluster started in the
		// same process fell behind its pacing within 65 ms of emulated
		// time and never caught up; with the heap collected and returned
		// first it ran as the first one did.
		goruntime.GC()
		debug.FreeOSMemory()
	})
	return c.stopErr
}

// LatencyModel returns the one-way latencies of the emulated network,
// computed from p exactly as the simulator computes its unloaded
// latencies (sim.UnloadedLatency), split at the SmartNIC whose traffic
// manager forwards a host's traffic: the agent composes a path through a
// SmartNIC from two direct hops and the traffic manager's own (emulated)
// work, instead of adding p.TMDemand as a constant. bytes counts the E3
// header, which p.WireOverhead already includes, so it is taken off.
func LatencyModel(t *topology.Topology, p sim.Params) (hop func(a, b topology.NodeID, bytes int) time.Duration, client func(n topology.NodeID, bytes int) time.Duration) {
	ser := func(wire, gbps float64) time.Duration { return time.Duration(wire*8/gbps + 0.5) }
	portGbps := func(n topology.Node) float64 {
		if n.Ports > 0 {
			return n.PortGbps
		}
		return t.Node(n.ID + 1).PortGbps // a host behind SmartNICs
	}
	end := func(n topology.Node, wire float64) time.Duration {
		switch {
		case n.Kind == topology.SmartNIC:
			return 0
		case n.Ports > 0:
			return p.PCIeLatency
		}
		return p.PCIeLatency + ser(wire, t.Node(n.ID+1).HostLinkGbps)
	}
	wireOf := func(bytes int) float64 { return float64(max(bytes-transport.HeaderSize, 0) + p.WireOverhead) }
	hop = func(a, b topology.NodeID, bytes int) time.Duration {
		if a == b {
			return p.QueueLatency
		}
		wire := wireOf(bytes)
		path := t.Path(a, b)
		na, nb := t.Node(a), t.Node(b)
		if path.Via == topology.ViaHostLink {
			nic := na
			if nic.Kind != topology.SmartNIC {
				nic = nb
			}
			return p.PCIeLatency + ser(wire, nic.HostLinkGbps)
		}
		d := end(na, wire) + end(nb, wire)
		d += 2*p.PortLatency + time.Duration(path.SwitchHops)*p.SwitchLatency
		return d + ser(wire, portGbps(na)) + ser(wire, portGbps(nb))
	}
	client = func(n topology.NodeID, bytes int) time.Duration {
		wire := wireOf(bytes)
		nd := t.Node(n)
		return end(nd, wire) + 2*p.PortLatency + p.SwitchLatency + ser(wire, portGbps(nd))
	}
	return hop, client
}

// numCPU is the machine's cores, a variable so a test can pretend.
var numCPU = goruntime.NumCPU
