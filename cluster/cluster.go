package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	goruntime "runtime"
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
	agents   []*runtime.Agent
	addrs    []netip.AddrPort
	ctrl     *Controller
	registry *service.Registry

	emu    *runtime.Emulation // shared by every agent; nil in real mode
	origin time.Time

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

// Start builds the cluster's topology and starts an agent per compute
// node on its own loopback address (or on Config.Network).
func Start(cfg Config) (*Cluster, error) {
	spec, err := hwmodel.ClusterByName(cfg.Cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	topo, err := hwmodel.Topology(spec)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	pc, err := placement.NewCluster(topo)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
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
	c := &Cluster{cfg: cfg, spec: spec, topo: topo, pc: pc, params: params, registry: cfg.Registry}
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
	for n := range topo.Nodes() {
		conn, err := c.listen(netip.AddrPortFrom(AgentAddr(n), 0))
		if err != nil {
			return nil, err
		}
		a, err := runtime.New(runtime.Config{
			Node: n, Topology: topo, CoreKind: pc.CoreKind(n), Registry: cfg.Registry, Conn: conn,
			Endpoint: cfg.Endpoint, Emulation: c.emu, Controller: c.ctrl, RequestTimeout: cfg.RequestTimeout,
			Logger: cfg.Logger,
		})
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.agents = append(c.agents, a)
		c.addrs[n] = a.Addr()
	}
	for s := range topo.Servers() {
		srv := topo.Server(s)
		for i := range srv.SmartNICs {
			nic := srv.Host + 1 + topology.NodeID(i)
			np, hp, err := transport.NewHostLink(transport.HostLinkConfig{Capacity: 4096})
			if err != nil {
				return nil, err
			}
			if err := c.agents[nic].AttachHostLink(srv.Host, np); err != nil {
				return nil, err
			}
			if err := c.agents[srv.Host].AttachHostLink(nic, hp); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range c.agents {
		a.Start()
	}
	ok = true
	return c, nil
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
func (c *Cluster) Agents() []*runtime.Agent { return c.agents }

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
		for _, a := range c.agents {
			if err := a.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		c.stopErr = errors.Join(errs...)
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
