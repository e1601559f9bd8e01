package localcluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/e3-platform/e3/agentd"
	"github.com/e3-platform/e3/controller"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/topology"
)

// Default ports. Every member has an address of its own, so the same
// ports serve all of them.
const (
	DefaultAPIPort     = 7400
	DefaultRaftPort    = 7401
	DefaultDataPort    = 7000
	DefaultMetricsPort = 7100
)

// Config configures [Up].
type Config struct {
	// Cluster is a cluster of Table 4 (default 3xType1-SmartNIC): an
	// agent runs for each of its hosts and SmartNICs.
	Cluster string
	// Controllers is the number of controller replicas (default 3).
	Controllers int
	// Procs runs every replica and agent as a process of its own (the e3
	// binary, Exe); otherwise all run in this process.
	Procs bool
	// Netns puts every server and every replica in a network namespace of
	// its own, behind a bridge in a ToR namespace (root and iproute2
	// needed; implies Procs).
	Netns bool
	// NetnsPrefix names the namespaces and veths (default "e3up"; at
	// most 6 characters); NetnsSubnet is the /16 they are numbered in
	// (default 10.177.0.0/16).
	NetnsPrefix string
	NetnsSubnet netip.Prefix
	// Dir holds the tokens, the replicas' and agents' data directories
	// and the logs; "" makes a temporary directory that Down removes.
	Dir string
	// Exe is the e3 binary the processes run (default: this program);
	// Env is added to their environment.
	Exe string
	Env []string
	// EphemeralPorts lets every listener pick a free port instead of the
	// defaults (tests, and several clusters side by side).
	EphemeralPorts bool
	// State is the agents' state mode (default agentd.StateDisk: many
	// agents share this machine's disk).
	State string
	// FailureTimeout is passed to the replicas (0: the controller's
	// default, 500 ms).
	FailureTimeout time.Duration
	// AgentCores overrides each agent's worker count (0: the topology's).
	AgentCores int
	// NoAgents starts the replicas only.
	NoAgents bool
	// LogLevel for the members (default info).
	LogLevel string
	// StartTimeout bounds the start of each member (default 30 s).
	StartTimeout time.Duration
	// Logger receives progress messages (default: discard). In-process
	// members log here too.
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.Cluster == "" {
		c.Cluster = controller.DefaultCluster
	}
	if c.Controllers == 0 {
		c.Controllers = 3
	}
	if c.Controllers < 1 || c.Controllers > 7 {
		return fmt.Errorf("localcluster: %d controllers, want 1 to 7 (3 survives one failure, 5 two)", c.Controllers)
	}
	if c.Netns {
		c.Procs = true
		if c.NetnsPrefix == "" {
			c.NetnsPrefix = "e3up"
		}
		if !c.NetnsSubnet.IsValid() {
			c.NetnsSubnet = netip.MustParsePrefix("10.177.0.0/16")
		}
	}
	if c.State == "" {
		c.State = agentd.StateDisk
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Procs && c.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("localcluster: finding the e3 binary: %w", err)
		}
		c.Exe = exe
	}
	return nil
}

// Member is a controller replica or an agent of the local cluster.
type Member struct {
	// Name is the replica's id ("c1") or the agent's node ("r0/s1/nic0").
	Name string
	// Kind is "controller", "host" or "smartnic"; Server the agent's
	// server.
	Kind   string
	Server string
	// API is a replica's API address; Data an agent's data endpoint and
	// HTTP its metrics endpoint.
	API  string
	Raft string
	Data string
	HTTP string
	// PID is the process (0 in process); Netns its namespace ("" if
	// none); Log its log file (processes only); DataDir its directory.
	PID     int
	Netns   string
	Log     string
	DataDir string

	proc  *proc
	srv   *controller.Server
	agent *agentd.Agent
	ip    netip.Addr
}

// Running reports whether the member still runs.
func (m *Member) Running() bool {
	switch {
	case m.proc != nil:
		return !m.proc.exited()
	case m.srv != nil, m.agent != nil:
		return true
	}
	return false
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg            Config
	topo           *topology.Topology
	Dir            string
	ownDir         bool
	AdminTokenFile string
	JoinTokenFile  string
	adminTok       string
	joinTok        string
	net            *netns

	mu          sync.Mutex
	controllers []*Member
	agents      []*Member
	downOnce    sync.Once
	downErr     error
}

// Up starts a local cluster: the replicas first (the first bootstraps,
// the others join it), then an agent per compute node, and returns once
// every agent has registered. On error everything started is stopped.
func Up(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	spec, err := hwmodel.ClusterByName(cfg.Cluster)
	if err != nil {
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	topo, err := hwmodel.Topology(spec)
	if err != nil {
		return nil, err
	}
	if cfg.Netns {
		if err := NetnsAvailable(); err != nil {
			return nil, err
		}
	}
	c := &Cluster{cfg: cfg, topo: topo, Dir: cfg.Dir}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "e3-up-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	}
	ok := false
	defer func() {
		if !ok {
			c.Down()
		}
	}()
	for _, d := range []string{"logs", "controllers", "agents"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	if c.adminTok, c.AdminTokenFile, err = token(c.Dir, "admin.token"); err != nil {
		return nil, err
	}
	if c.joinTok, c.JoinTokenFile, err = token(c.Dir, "join.token"); err != nil {
		return nil, err
	}
	if cfg.Netns {
		if c.net, err = newNetns(cfg.NetnsPrefix, cfg.NetnsSubnet); err != nil {
			return nil, err
		}
		c.net.log = func(s string) { cfg.Logger.Debug(s) }
		if err := c.net.setup(); err != nil {
			return nil, err
		}
	}
	if err := c.startControllers(ctx); err != nil {
		return nil, err
	}
	if !cfg.NoAgents {
		if err := c.startAgents(ctx); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

// token reads DIR/name, or creates it with a random token.
func token(dir, name string) (tok, path string, err error) {
	path = filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= controller.MinTokenLength {
		return strings.TrimSpace(string(b)), path, nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	tok = hex.EncodeToString(b[:])
	return tok, path, os.WriteFile(path, []byte(tok+"\n"), 0o600)
}

func (c *Cluster) port(def int) int {
	if c.cfg.EphemeralPorts {
		return 0
	}
	return def
}

// controllerIP and nodeIP give members their addresses: on loopback
// 127.0.100.i for replicas and 127.0.x.y per compute node (as e3 run
// numbers its agents); in namespaces, the namespaced subnet's.
func (c *Cluster) controllerIP(i int) netip.Addr {
	if c.net != nil {
		return c.net.controllerIP(i)
	}
	return netip.AddrFrom4([4]byte{127, 0, 100, byte(i + 1)})
}

func (c *Cluster) nodeIP(n topology.NodeID) netip.Addr {
	if c.net != nil {
		return c.net.nodeIP(int(n))
	}
	v := int(n) + 1
	return netip.AddrFrom4([4]byte{127, 0, byte(v / 250), byte(v%250 + 1)})
}

var (
	controllerReady = regexp.MustCompile(`^e3 controller (\S+): API on http://(\S+), raft on (\S+),`)
	agentReady      = regexp.MustCompile(`^e3 agent (\S+): cluster (\S+), data on (\S+), (?:metrics on http://(\S+)/metrics|no metrics)`)
)

func (c *Cluster) startControllers(ctx context.Context) error {
	var first string
	for i := range c.cfg.Controllers {
		id := fmt.Sprintf("c%d", i+1)
		ip := c.controllerIP(i)
		m := &Member{Name: id, Kind: "controller", ip: ip, DataDir: filepath.Join(c.Dir, "controllers", id)}
		raft := netip.AddrPortFrom(ip, uint16(c.port(DefaultRaftPort))).String()
		api := netip.AddrPortFrom(ip, uint16(c.port(DefaultAPIPort))).String()
		if c.net != nil {
			if err := c.net.addMember(id, c.cfg.NetnsPrefix+"-"+id, ip); err != nil {
				return err
			}
			m.Netns = c.net.nsOf[id]
		}
		if c.cfg.Procs {
			argv := []string{c.cfg.Exe, "controller", "--id", id, "--raft", raft, "--http", api, "--data", m.DataDir,
				"--cluster", c.cfg.Cluster, "--token-file", c.AdminTokenFile, "--join-token-file", c.JoinTokenFile,
				"--log-level", c.cfg.LogLevel}
			if c.cfg.FailureTimeout > 0 {
				argv = append(argv, "--failure-timeout", c.cfg.FailureTimeout.String())
			}
			if i == 0 {
				argv = append(argv, "--bootstrap")
			} else {
				argv = append(argv, "--join", first)
			}
			if c.net != nil {
				argv = c.net.exec(id, argv)
			}
			m.Log = filepath.Join(c.Dir, "logs", id+".log")
			p, line, err := startProc(ctx, id, argv, c.cfg.Env, m.Log, c.cfg.StartTimeout)
			if err != nil {
				return err
			}
			m.proc, m.PID = p, p.pid()
			c.add(m, true)
			f := controllerReady.FindStringSubmatch(line)
			if f == nil {
				return fmt.Errorf("localcluster: replica %s said %q, not that it serves", id, line)
			}
			m.API, m.Raft = f[2], f[3]
		} else {
			if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
				return err
			}
			cfg := controller.Config{ID: id, RaftAddr: raft, HTTPAddr: api, DataDir: m.DataDir, Cluster: c.cfg.Cluster,
				AdminToken: c.adminTok, JoinToken: c.joinTok, FailureTimeout: c.cfg.FailureTimeout,
				Logger: c.cfg.Logger.With("replica", id), Bootstrap: i == 0}
			if i > 0 {
				cfg.Join = []string{first}
			}
			s, err := controller.New(cfg)
			if err != nil {
				return fmt.Errorf("localcluster: replica %s: %w", id, err)
			}
			m.srv, m.API, m.Raft = s, s.APIAddr(), s.RaftAddr()
			c.add(m, true)
		}
		if i == 0 {
			first = m.API
		}
		c.cfg.Logger.Info("controller replica up", "id", id, "api", m.API, "pid", m.PID)
	}
	return c.waitReplicas(ctx)
}

// waitReplicas waits until every replica is a voter and a leader serves.
func (c *Cluster) waitReplicas(ctx context.Context) error {
	cl := c.Client()
	deadline := time.Now().Add(c.cfg.StartTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		cs, err := cl.Cluster(cctx)
		cancel()
		if err == nil && cs.Leader != "" && len(cs.Replicas) == c.cfg.Controllers {
			voters := 0
			for _, r := range cs.Replicas {
				if r.Voter && r.APIAddr != "" {
					voters++
				}
			}
			if voters == c.cfg.Controllers {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("localcluster: %d replicas did not form a cluster within %v (last answer %+v, %v)", c.cfg.Controllers, c.cfg.StartTimeout, cs, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) startAgents(ctx context.Context) error {
	t := c.topo
	type job struct {
		m    *Member
		n    topology.NodeID
		slot int
	}
	var jobs []job
	for s := range t.Servers() {
		srv := t.Server(s)
		server := t.ServerName(s)
		var ips []netip.Addr
		for n := range t.ServerNodes(s) {
			ips = append(ips, c.nodeIP(n))
		}
		if c.net != nil {
			if err := c.net.addMember(server, c.cfg.NetnsPrefix+"-"+strings.ReplaceAll(server, "/", "-"), ips...); err != nil {
				return err
			}
		}
		for n := range t.ServerNodes(s) {
			kind, slot := agentd.RoleHost, 0
			if t.Node(n).Kind == topology.SmartNIC {
				kind, slot = agentd.RoleSmartNIC, int(n-srv.Host-1)
			}
			m := &Member{Name: t.Name(n), Kind: kind, Server: server, ip: c.nodeIP(n),
				DataDir: filepath.Join(c.Dir, "agents", strings.ReplaceAll(t.Name(n), "/", "-"))}
			if c.net != nil {
				m.Netns = c.net.nsOf[server]
			}
			jobs = append(jobs, job{m, n, slot})
		}
	}
	var eps []string
	for _, r := range c.Controllers() {
		eps = append(eps, r.API)
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for k, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = c.startAgent(ctx, j.m, j.slot, eps)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) startAgent(ctx context.Context, m *Member, slot int, eps []string) error {
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return err
	}
	listen := netip.AddrPortFrom(m.ip, uint16(c.port(DefaultDataPort)))
	metrics := netip.AddrPortFrom(m.ip, uint16(c.port(DefaultMetricsPort)))
	if c.cfg.Procs {
		argv := []string{c.cfg.Exe, "agent", "--role", m.Kind, "--server", m.Server, "--slot", strconv.Itoa(slot),
			"--controller", strings.Join(eps, ","), "--listen", listen.String(), "--metrics", metrics.String(),
			"--data", m.DataDir, "--state", c.cfg.State, "--join-token-file", c.JoinTokenFile, "--log-level", c.cfg.LogLevel}
		if c.cfg.AgentCores > 0 {
			argv = append(argv, "--cores", strconv.Itoa(c.cfg.AgentCores))
		}
		if c.net != nil {
			argv = c.net.exec(m.Server, argv)
		}
		m.Log = filepath.Join(c.Dir, "logs", strings.ReplaceAll(m.Name, "/", "-")+".log")
		p, line, err := startProc(ctx, m.Name, argv, c.cfg.Env, m.Log, c.cfg.StartTimeout)
		if err != nil {
			return err
		}
		m.proc, m.PID = p, p.pid()
		c.add(m, false)
		f := agentReady.FindStringSubmatch(line)
		if f == nil || f[1] != m.Name {
			return fmt.Errorf("localcluster: agent %s said %q, not that it runs", m.Name, line)
		}
		m.Data, m.HTTP = f[3], f[4]
		return nil
	}
	a, err := agentd.Start(ctx, agentd.Config{Role: m.Kind, Server: m.Server, Slot: slot, Controllers: eps, JoinToken: c.joinTok,
		Listen: listen, HTTP: metrics.String(), State: c.cfg.State, DataDir: m.DataDir, Cores: c.cfg.AgentCores,
		Logger: c.cfg.Logger.With("agent", m.Name)})
	if err != nil {
		return fmt.Errorf("localcluster: agent %s: %w", m.Name, err)
	}
	m.agent, m.Data, m.HTTP = a, a.Addr().String(), a.HTTPAddr()
	c.add(m, false)
	return nil
}

func (c *Cluster) add(m *Member, controller bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if controller {
		c.controllers = append(c.controllers, m)
		return
	}
	c.agents = append(c.agents, m)
	sort.Slice(c.agents, func(i, j int) bool {
		a, _ := c.topo.Lookup(c.agents[i].Name)
		b, _ := c.topo.Lookup(c.agents[j].Name)
		return a < b
	})
}

// Topology is the cluster's topology.
func (c *Cluster) Topology() *topology.Topology { return c.topo }

// Controllers are the replicas, in start order.
func (c *Cluster) Controllers() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Member(nil), c.controllers...)
}

// Agents are the agents, in node order.
func (c *Cluster) Agents() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Member(nil), c.agents...)
}

// Member finds a replica or an agent by name.
func (c *Cluster) Member(name string) (*Member, bool) {
	for _, m := range append(c.Controllers(), c.Agents()...) {
		if m.Name == name {
			return m, true
		}
	}
	return nil, false
}

// Endpoints are the replicas' API addresses.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Controllers() {
		eps = append(eps, m.API)
	}
	return eps
}

// AdminToken and JoinToken are the cluster's tokens.
func (c *Cluster) AdminToken() string { return c.adminTok }
func (c *Cluster) JoinToken() string  { return c.joinTok }

// Client is an admin client of the replicas.
func (c *Cluster) Client() *controller.Client {
	return &controller.Client{Endpoints: c.Endpoints(), Token: c.adminTok, Retry: 10 * time.Second}
}

// Kill ends a member at once: SIGKILL to its process group (a process),
// or closing it (in process: the nearest thing, though a closed replica
// or agent does not lose what a killed process loses).
func (c *Cluster) Kill(name string) error {
	m, ok := c.Member(name)
	if !ok {
		return fmt.Errorf("localcluster: no member %q", name)
	}
	switch {
	case m.proc != nil:
		m.proc.kill()
	case m.srv != nil:
		m.srv.Close()
	case m.agent != nil:
		m.agent.Close()
	}
	return nil
}

// KillServer kills every agent of a server (its power failed), all at
// once.
func (c *Cluster) KillServer(server string) error {
	var ms []*Member
	for _, m := range c.Agents() {
		if m.Server == server {
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		return fmt.Errorf("localcluster: no agents on server %q", server)
	}
	for _, m := range ms {
		if m.proc != nil {
			m.proc.signal(syscall.SIGKILL)
		}
	}
	for _, m := range ms {
		if err := c.Kill(m.Name); err != nil {
			return err
		}
	}
	return nil
}

// Signal sends sig to a member's process group.
func (c *Cluster) Signal(name string, sig syscall.Signal) error {
	m, ok := c.Member(name)
	if !ok || m.proc == nil {
		return fmt.Errorf("localcluster: no member process %q", name)
	}
	return m.proc.signal(sig)
}

// Partition cuts a member (a replica's id, or a server's name) off the
// network: its namespace's port leaves the ToR bridge. Netns only.
func (c *Cluster) Partition(member string) error {
	if c.net == nil {
		return errors.New("localcluster: partitions need the namespaced cluster (--netns)")
	}
	return c.net.partition(member)
}

// Heal undoes Partition.
func (c *Cluster) Heal(member string) error {
	if c.net == nil {
		return errors.New("localcluster: partitions need the namespaced cluster (--netns)")
	}
	return c.net.heal(member)
}

// InNetns wraps argv to run in a member's namespace ("" and no change
// when the cluster has none).
func (c *Cluster) InNetns(member string, argv []string) []string {
	if c.net == nil {
		return argv
	}
	return c.net.exec(member, argv)
}

// Down stops everything: the agents first (SIGTERM, SIGKILL after 5 s),
// then the replicas one by one, then the namespaces; it removes the directory if Up
// made it. It reports members that did not exit cleanly.
func (c *Cluster) Down() error {
	c.downOnce.Do(func() {
		var errs []error
		stop := func(ms []*Member) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, m := range ms {
				wg.Add(1)
				go func() {
					defer wg.Done()
					start := time.Now()
					defer func() { c.cfg.Logger.Debug("stopped", "member", m.Name, "took", time.Since(start)) }()
					var err error
					switch {
					case m.proc != nil:
						m.proc.mu.Lock()
						killed := m.proc.killed
						m.proc.mu.Unlock()
						if !m.proc.stop(5*time.Second) && !killed {
							err = fmt.Errorf("localcluster: %s (pid %d) did not exit cleanly on SIGTERM (%v); log %s", m.Name, m.PID, m.proc.err, m.Log)
						}
					case m.srv != nil:
						err = m.srv.Close()
					case m.agent != nil:
						err = m.agent.Close()
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
		}
		stop(c.Agents())
		// Replicas one at a time: two replicas shutting down together can
		// wait on each other's raft RPCs until the transport's timeout
		// (each one's raft waits for its RPC to the other, whose handler
		// waits for a raft loop that is shutting down).
		for _, m := range c.Controllers() {
			stop([]*Member{m})
		}
		if c.net != nil {
			if err := c.net.teardown(); err != nil {
				errs = append(errs, err)
			}
		}
		if c.ownDir {
			os.RemoveAll(c.Dir)
		}
		c.downErr = errors.Join(errs...)
	})
	return c.downErr
}

// Print writes how to reach the cluster.
func (c *Cluster) Print(w io.Writer) {
	mode := "in this process"
	switch {
	case c.net != nil:
		mode = "as processes in network namespaces (" + c.cfg.NetnsPrefix + "-*; ToR bridge in " + c.net.tor + ", this host at " + c.net.rootIP().String() + ")"
	case c.cfg.Procs:
		mode = "as processes on loopback addresses"
	}
	replicas := "replicas"
	if len(c.Controllers()) == 1 {
		replicas = "replica"
	}
	fmt.Fprintf(w, "e3 up: cluster %s, %d controller %s and %d agents %s\n\n", c.cfg.Cluster, len(c.Controllers()), replicas, len(c.Agents()), mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tKIND\tADDRESS\tMETRICS\tPID\tNETNS")
	for _, m := range c.Controllers() {
		fmt.Fprintf(tw, "%s\tcontroller\thttp://%s\thttp://%s/metrics\t%s\t%s\n", m.Name, m.API, m.API, pid(m.PID), dash(m.Netns))
	}
	for _, m := range c.Agents() {
		fmt.Fprintf(tw, "%s\t%s\t%s\thttp://%s/metrics\t%s\t%s\n", m.Name, m.Kind, m.Data, m.HTTP, pid(m.PID), dash(m.Netns))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nadmin token: %s\njoin token:  %s\n", c.AdminTokenFile, c.JoinTokenFile)
	if c.cfg.Procs {
		fmt.Fprintf(w, "logs:        %s\n", filepath.Join(c.Dir, "logs"))
	}
	fmt.Fprintf(w, "\nTry it:\n  export E3_CONTROLLER=%s E3_TOKEN=$(cat %s)\n  e3 deploy iot-ts && e3 status\n", strings.Join(c.Endpoints(), ","), c.AdminTokenFile)
	if c.net != nil {
		fmt.Fprintf(w, "  ip netns exec %s e3 status --controller %s   # from inside a server\n", c.net.nsOf[c.Agents()[0].Server], c.Endpoints()[0])
	}
	fmt.Fprintln(w, "\nCtrl-C stops everything.")
}

func pid(p int) string {
	if p == 0 {
		return "-"
	}
	return strconv.Itoa(p)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
