package agentd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/e3-platform/e3/collections/durable"
	"github.com/e3-platform/e3/controller"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// Roles an agent runs as (the controller's names).
const (
	RoleHost     = controller.RoleHost
	RoleSmartNIC = controller.RoleSmartNIC
)

// State modes: where instances of stateful services keep their state.
const (
	// StateFsync: a durable store per instance under DataDir, replicated
	// to the instance's backup, fsync on every commit. The default: a
	// write survives the loss of the machine's power.
	StateFsync = "fsync"
	// StateDisk: the same without fsync; a write survives the crash of the
	// agent's process (the page cache has it) but not of the machine.
	// For many agents sharing one disk (e3 up).
	StateDisk = "disk"
	// StateMemory: collections in memory, nothing persisted or
	// replicated.
	StateMemory = "memory"
)

// Config configures an agent process. Role, Server, Controllers,
// JoinToken and Listen are required.
type Config struct {
	// Role is RoleHost or RoleSmartNIC; Server the server's name in the
	// controller's cluster ("r0/s1"); Slot the SmartNIC's index on its
	// server (nic0 is 0).
	Role   string
	Server string
	Slot   int
	// Controllers are the API addresses of the controller's replicas.
	Controllers []string
	// JoinToken is the cluster join token. It also authenticates the host
	// link between a host and its SmartNIC.
	JoinToken string
	// Listen is the data endpoint: UDP for the lossless channels between
	// agents and to clients, and on a SmartNIC also TCP for its host's
	// link. It must be an address the other agents reach (not 0.0.0.0);
	// port 0 picks a free one.
	Listen netip.AddrPort
	// HTTP is where /metrics, /healthz and /v1/status are served ("":
	// not at all; port 0 picks one).
	HTTP string
	// State is StateFsync (default), StateDisk or StateMemory; DataDir
	// holds the stores (required unless StateMemory). An agent restarted
	// on the same DataDir recovers the instances the controller still
	// places on it.
	State   string
	DataDir string
	// RequireBackup makes a write to a reliable collection fail while the
	// instance has no backup attached, instead of being acknowledged from
	// the local disk alone.
	RequireBackup bool
	// Cores is the number of worker cores (0: the topology's for the node).
	Cores int
	// Model names the Table 4 machine whose power model turns busy cores
	// into the modelled-power metric ("": the server's model in the
	// controller's cluster).
	Model string
	// PowerRoot is where RAPL energy counters are read ("" :
	// /sys/class/powercap; missing counters are not exported).
	PowerRoot string
	// Registry resolves microservices (default services.Registry()).
	Registry *service.Registry
	// Logger receives the agent's logs (default: discard).
	Logger *slog.Logger
}

// ErrBadConfig is wrapped by every error about a bad Config.
var ErrBadConfig = errors.New("agentd: bad config")

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	switch c.Role {
	case RoleHost, RoleSmartNIC:
	default:
		return bad("role %q, want host or smartnic (--role)", c.Role)
	}
	if c.Server == "" {
		return bad("no server name; give the server this agent runs on, e.g. r0/s1 (--server)")
	}
	if c.Slot < 0 || c.Slot > 255 {
		return bad("slot %d, want 0..255 (--slot)", c.Slot)
	}
	if len(c.Controllers) == 0 {
		return bad("no controller address (--controller host:port[,host:port...])")
	}
	if len(c.JoinToken) < controller.MinTokenLength {
		return bad("join token of %d bytes, want at least %d (--join-token-file)", len(c.JoinToken), controller.MinTokenLength)
	}
	if !c.Listen.IsValid() || c.Listen.Addr().IsUnspecified() {
		return bad("listen address %v: give the IP other agents reach this one at, e.g. 10.0.1.12:7000 (--listen)", c.Listen)
	}
	if c.State == "" {
		c.State = StateFsync
	}
	switch c.State {
	case StateFsync, StateDisk:
		if c.DataDir == "" {
			return bad("state %s needs a data directory (--data)", c.State)
		}
	case StateMemory:
	default:
		return bad("state %q, want fsync, disk or memory (--state)", c.State)
	}
	if c.Cores < 0 || c.Cores > 1024 {
		return bad("%d cores, want 0..1024 (0: the topology's) (--cores)", c.Cores)
	}
	if c.Model != "" {
		if _, ok := hwmodel.MachineByName(c.Model); !ok {
			var names []string
			for _, m := range hwmodel.Machines() {
				names = append(names, m.Name)
			}
			return bad("model %q is not a machine of Table 4 (%v) (--model)", c.Model, names)
		}
	}
	if c.Registry == nil {
		c.Registry = services.Registry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Agent is a running node agent: a runtime.Agent registered with the
// controller through a controller.AgentLink, its host links, and its
// HTTP endpoint.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	topo    *topology.Topology
	node    topology.NodeID
	cluster string
	machine hwmodel.Machine
	rt      *runtime.Agent
	link    *controller.AgentLink
	nic     *nicLinks
	host    *hostLinks
	tcp     net.Listener // SmartNIC: the host link's listener
	httpLn  net.Listener
	httpSrv *http.Server
	reg     *prometheus.Registry
	power   *powerModel
	rapl    *raplReader

	table       atomic.Pointer[runtime.Table]
	applied     atomic.Uint64
	refusedOld  atomic.Uint64 // stale epochs
	refusedBad  atomic.Uint64 // tables that did not convert or validate
	lastRefusal atomic.Value  // string
	started     time.Time

	closeOnce sync.Once
	closeErr  error
}

// Start binds the data endpoint, registers with the controller (retrying
// while no replica answers, until ctx ends), learns the cluster and its
// node from the answer, and runs the agent. A refusal (a wrong token, a
// node the cluster does not have) is returned at once.
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, started: time.Now()}
	a.lastRefusal.Store("")
	conn, tcp, err := listenData(cfg.Listen, cfg.Role == RoleSmartNIC)
	if err != nil {
		return nil, err
	}
	a.tcp = tcp
	ok := false
	defer func() {
		if !ok {
			conn.Close()
			if tcp != nil {
				tcp.Close()
			}
			if a.httpLn != nil {
				a.httpLn.Close()
			}
			if a.link != nil {
				a.link.Close()
			}
			if a.rt != nil {
				a.rt.Close()
			}
		}
	}()
	addr := conn.LocalAddr()
	a.link = controller.NewAgentLink(controller.AgentConfig{
		Controllers: cfg.Controllers,
		JoinToken:   cfg.JoinToken,
		Register:    controller.RegisterRequest{Role: cfg.Role, Server: cfg.Server, Slot: cfg.Slot, Addr: addr.String(), Cores: cfg.Cores},
		OnRoutes:    a.onRoutes,
		Logger:      cfg.Logger,
		HTTP:        heartbeatClient(),
	})
	resp, err := a.register(ctx)
	if err != nil {
		return nil, err
	}
	a.log = cfg.Logger.With("node", resp.Node)
	if err := a.learn(resp); err != nil {
		return nil, err
	}
	rcfg := runtime.Config{
		Node: a.node, Topology: a.topo, CoreKind: a.coreKind(), Cores: cfg.Cores, Registry: cfg.Registry,
		Conn: conn, Controller: a, Logger: a.log, Recover: true,
		Durable: durable.Options{NoSync: cfg.State == StateDisk, RequireBackup: cfg.RequireBackup},
	}
	if resp.HeartbeatMs > 0 {
		// The controller says how often it expects to hear from agents.
		rcfg.Heartbeat = time.Duration(resp.HeartbeatMs) * time.Millisecond
	}
	if cfg.State != StateMemory {
		rcfg.DataDir = cfg.DataDir
	}
	a.rt, err = runtime.New(rcfg)
	if err != nil {
		return nil, err
	}
	a.power = newPowerModel(a.machine, cfg.Role == RoleHost, a.rt.Cores())
	a.rapl = newRAPL(cfg.PowerRoot)
	srv := a.topo.Server(a.topo.ServerOf(a.node))
	if cfg.Role == RoleSmartNIC {
		a.nic = &nicLinks{ln: tcp, a: a.rt, self: a.node, host: srv.Host, token: cfg.JoinToken, link: &linkState{peer: srv.Host}, log: a.log,
			hostIP: func() netip.Addr {
				if t := a.table.Load(); t != nil && int(srv.Host) < len(t.Addrs) {
					return t.Addrs[srv.Host].Addr()
				}
				return netip.Addr{}
			}}
	} else {
		a.host = newHostLinks(a.rt, a.topo, a.node, addr.Addr(), cfg.JoinToken, a.log)
	}
	a.reg = a.registry()
	if cfg.HTTP != "" {
		if err := a.serveHTTP(cfg.HTTP); err != nil {
			return nil, err
		}
	}
	a.rt.Start()
	if a.nic != nil {
		a.nic.wg.Add(1)
		go a.nic.serve()
	}
	a.link.Start()
	ok = true
	a.log.Info("agent running", "cluster", a.cluster, "data", addr.String(), "cores", a.rt.Cores(), "state", cfg.State)
	return a, nil
}

// listenData binds the UDP data socket and, for a SmartNIC, the TCP host
// link listener on the same IP and port number. With port 0 it retries
// until a port is free for both.
func listenData(at netip.AddrPort, withTCP bool) (*transport.UDPConn, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		conn, err := transport.ListenUDP(at, transport.UDPConfig{})
		if err != nil {
			return nil, nil, fmt.Errorf("agentd: data endpoint (--listen %v): %w", at, err)
		}
		if !withTCP {
			return conn, nil, nil
		}
		ln, err := net.Listen("tcp", conn.LocalAddr().String())
		if err == nil {
			return conn, ln, nil
		}
		conn.Close()
		if at.Port() != 0 || attempt == 20 {
			return nil, nil, fmt.Errorf("agentd: host link listener (TCP, same address as --listen %v): %w", at, err)
		}
	}
}

// heartbeatClient is the HTTP client for registration and heartbeats. A
// replica that does not answer within its timeout is left for the next
// one: a replica cut off by the network (or a machine that lost power)
// leaves connections hanging rather than refused, and an agent that
// waited longer would miss the new leader's grace period (1 s after the
// election) and be declared failed with its server. A heartbeat takes
// milliseconds, a registration a raft commit.
func heartbeatClient() *http.Client {
	return &http.Client{
		Timeout: 500 * time.Millisecond,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 250 * time.Millisecond, KeepAlive: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

// register registers the agent, retrying while the controller cannot
// answer (no replica up yet, an election); an answer that refuses the
// agent ends it.
func (a *Agent) register(ctx context.Context) (*controller.RegisterResponse, error) {
	var last error
	for warned := time.Now(); ; {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := a.link.Register(rctx)
		cancel()
		if err == nil {
			return resp, nil
		}
		var ae *controller.APIError
		if errors.As(err, &ae) && ae.Status != http.StatusServiceUnavailable {
			return nil, fmt.Errorf("agentd: the controller refused to register %s %s of server %s: %w", a.cfg.Role, a.cfg.Listen, a.cfg.Server, err)
		}
		last = err
		if ctx.Err() != nil {
			return nil, fmt.Errorf("agentd: not registered with %v: %w (last error: %v)", a.cfg.Controllers, ctx.Err(), last)
		}
		if time.Since(warned) > 5*time.Second {
			a.log.Warn("no controller answers yet; still trying", "controllers", a.cfg.Controllers, "err", err)
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// learn builds the cluster's topology from the registration's answer and
// finds the agent's node and machine in it.
func (a *Agent) learn(resp *controller.RegisterResponse) error {
	cl, err := hwmodel.ClusterByName(resp.Cluster)
	if err != nil {
		return fmt.Errorf("agentd: the controller's cluster %q: %w", resp.Cluster, err)
	}
	if a.topo, err = hwmodel.Topology(cl); err != nil {
		return err
	}
	if a.node, err = a.topo.Lookup(resp.Node); err != nil {
		return fmt.Errorf("agentd: registered as %s: %w", resp.Node, err)
	}
	if int(a.node) != resp.ID {
		return fmt.Errorf("agentd: registered as %s with id %d, the topology of %s has it as %d", resp.Node, resp.ID, resp.Cluster, a.node)
	}
	a.cluster = resp.Cluster
	model := a.cfg.Model
	if model == "" {
		model = a.topo.Server(a.topo.ServerOf(a.node)).Model
	}
	m, ok := hwmodel.MachineByName(model)
	if !ok {
		return fmt.Errorf("agentd: server %s is a %q, not a machine of Table 4; give --model", a.cfg.Server, model)
	}
	a.machine = m
	return nil
}

func (a *Agent) coreKind() hwmodel.CoreKind {
	if a.cfg.Role == RoleSmartNIC {
		return a.machine.NIC.Core
	}
	return a.machine.HostCore
}

// onRoutes applies a routing table the link delivers.
func (a *Agent) onRoutes(r *controller.Routes) {
	tab, skipped, err := r.Table(a.topo, a.cfg.Registry)
	if err == nil {
		err = a.rt.Apply(tab)
	}
	if err != nil {
		if errors.Is(err, runtime.ErrStaleEpoch) {
			a.refusedOld.Add(1)
		} else {
			a.refusedBad.Add(1)
		}
		a.lastRefusal.Store(err.Error())
		a.log.Warn("routing table refused", "epoch", r.Epoch, "err", err)
		return
	}
	if len(skipped) > 0 {
		a.log.Warn("applications left out of the routing table (a primary has no node)", "epoch", r.Epoch, "apps", skipped)
	}
	a.table.Store(tab)
	a.applied.Add(1)
	if a.host != nil {
		a.host.table(tab)
	}
	a.log.Debug("routing table applied", "epoch", tab.Epoch, "apps", len(tab.Apps), "moves", len(tab.Moves))
}

// Heartbeat implements runtime.Controller: it updates the power model
// and passes the report to the controller.
func (a *Agent) Heartbeat(hb *runtime.Heartbeat) {
	a.power.observe(time.Now(), hb.BusyNs)
	a.link.Heartbeat(hb)
}

// MigrationUpdate implements runtime.MigrationObserver.
func (a *Agent) MigrationUpdate(n topology.NodeID, st runtime.MigrationStatus) {
	a.link.MigrationUpdate(n, st)
}

var (
	_ runtime.Controller        = (*Agent)(nil)
	_ runtime.MigrationObserver = (*Agent)(nil)
)

// Node is the agent's node name ("r0/s1/nic0").
func (a *Agent) Node() string { return a.topo.Name(a.node) }

// Cluster is the controller's cluster the agent belongs to.
func (a *Agent) Cluster() string { return a.cluster }

// Addr is the data endpoint.
func (a *Agent) Addr() netip.AddrPort { return a.rt.Addr() }

// HTTPAddr is the bound address of the metrics and status endpoint ("" if
// none).
func (a *Agent) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// Epoch is the epoch of the routing table in force (0 before the first).
func (a *Agent) Epoch() uint64 { return a.rt.Epoch() }

// Runtime is the runtime agent.
func (a *Agent) Runtime() *runtime.Agent { return a.rt }

// Close stops the agent: no more heartbeats (the controller will declare
// the node failed after its failure timeout), the host links, the
// runtime (requests in flight fail; state files stay for a restart) and
// the HTTP endpoint.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() {
		a.link.Close()
		if a.nic != nil {
			a.nic.close()
		}
		if a.host != nil {
			a.host.close()
		}
		a.closeErr = a.rt.Close()
		if a.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			a.httpSrv.Shutdown(ctx)
			cancel()
		}
	})
	return a.closeErr
}
