package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/e3-platform/e3/controller/raftbolt"
	"github.com/e3-platform/e3/orchestrator"
	"github.com/e3-platform/e3/placement"

	// Placement algorithms register themselves with placement.
	_ "github.com/e3-platform/e3/placement/hcm"
)

// Defaults of [Config]. docs/controller.md gives the reasoning.
const (
	DefaultCluster = "3xType1-SmartNIC"
	DefaultAlgo    = "hcm"
	// DefaultRPS is the offered load a deploy plans for when the request
	// names none: the load `e3 place` assumes, at which every built-in
	// application fits 3xType1-SmartNIC.
	DefaultRPS = 10000
	// DefaultHeartbeatPeriod is the agents' reporting period (the paper's
	// 50 ms).
	DefaultHeartbeatPeriod = 50 * time.Millisecond
	// DefaultFailureTimeout: an agent silent this long is failed with its
	// server (ten heartbeat periods).
	DefaultFailureTimeout = 500 * time.Millisecond
	// DefaultLeaderGrace is how long a new leader waits before it declares
	// any node failed, so that agents that reported to the old leader find
	// the new one first: two failure timeouts.
	DefaultLeaderGrace = time.Second
	// DefaultMigrationTimeout: a migration no agent reports on within this
	// time is failed, and the instance stays on its source.
	DefaultMigrationTimeout = 30 * time.Second
	// Raft timing. Followers notice a dead leader after 1-2 heartbeat
	// timeouts and elect a new one within an election timeout or two, so
	// 400 ms keeps failover well inside 2 s on a LAN while riding out the
	// scheduling hiccups of a loaded machine (raft's own default of 1 s
	// would need 2-3 s).
	DefaultRaftHeartbeatTimeout = 400 * time.Millisecond
	DefaultRaftElectionTimeout  = 400 * time.Millisecond
	DefaultRaftLeaderLease      = 200 * time.Millisecond
	DefaultRaftCommitTimeout    = 10 * time.Millisecond
	// DefaultSnapshotThreshold: a snapshot after this many log entries
	// since the last one, and DefaultTrailingLogs kept behind it so a
	// briefly lagging follower catches up from the log.
	DefaultSnapshotThreshold = 1024
	DefaultTrailingLogs      = 1024
	DefaultSnapshotInterval  = 30 * time.Second
	// DefaultApplyTimeout bounds the wait for a command to commit.
	DefaultApplyTimeout = 5 * time.Second
	// MinTokenLength: tokens are secrets; shorter ones are guessable.
	MinTokenLength = 16
)

// Config configures a controller replica. [New] validates it and fills in
// the defaults; ID, AdminToken, JoinToken and DataDir (unless InMemory)
// are required.
type Config struct {
	// ID names the replica in the raft configuration ("c1").
	ID string
	// RaftAddr is the TCP address the raft transport listens on;
	// RaftAdvertise the one peers dial (default RaftAddr).
	RaftAddr      string
	RaftAdvertise string
	// HTTPAddr is the API's listen address; APIAdvertise the host:port
	// other replicas and clients reach it at (default the bound address).
	HTTPAddr     string
	APIAdvertise string
	// DataDir holds the raft log (raft.db) and snapshots.
	DataDir string
	// Bootstrap starts a new cluster with this replica as its only
	// member. Without Join and without existing state it is implied.
	Bootstrap bool
	// Join lists API addresses of existing replicas; a new replica asks
	// them, in turn, to add it as a voter.
	Join []string
	// Cluster is the hwmodel cluster to manage (default 3xType1-SmartNIC).
	// The first leader writes it into the replicated state; a replica
	// configured otherwise logs the difference and follows the state.
	Cluster string
	// AdminToken authorises mutating API calls; JoinToken authorises
	// agents. Both at least MinTokenLength bytes, and different.
	AdminToken, JoinToken string
	// Algo is the default placement algorithm (hcm).
	Algo string
	// HeartbeatPeriod, FailureTimeout, LeaderGrace, MigrationTimeout: see
	// the defaults.
	HeartbeatPeriod  time.Duration
	FailureTimeout   time.Duration
	LeaderGrace      time.Duration
	MigrationTimeout time.Duration
	// Orchestrator tunes the leader's detectors (thresholds, warm-up,
	// cool-downs; see orchestrator.Config). Its Load, Placer,
	// HeartbeatPeriod, FailureTimeout and InitialEpoch are the
	// controller's and are overwritten.
	Orchestrator orchestrator.Config
	// Raft timing; zero fields take the defaults above.
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration
	RaftLeaderLease      time.Duration
	RaftCommitTimeout    time.Duration
	SnapshotThreshold    uint64
	SnapshotInterval     time.Duration
	TrailingLogs         uint64
	ApplyTimeout         time.Duration

	// Logger receives the controller's logs (default: discard).
	Logger *slog.Logger
	// RaftLog receives raft's own log lines at warning level and above
	// (default: discard).
	RaftLog io.Writer

	// For tests. Transport replaces the TCP transport (RaftAddr is then
	// its LocalAddr); InMemory keeps the log, stable store and snapshots
	// in memory; Listener is the API's listener (HTTPAddr ignored);
	// HTTPClient is used to forward to the leader and to join; Now is the
	// clock.
	Transport  raft.Transport
	InMemory   bool
	Listener   net.Listener
	HTTPClient *http.Client
	Now        func() time.Time
}

// ErrBadConfig is wrapped by every error about a bad Config.
var ErrBadConfig = errors.New("controller: bad config")

func (c *Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	if c.ID == "" {
		return bad("ID is empty; give every replica a name (--id c1)")
	}
	if len(c.AdminToken) < MinTokenLength || len(c.JoinToken) < MinTokenLength {
		return bad("admin token of %d bytes and join token of %d bytes, want at least %d each", len(c.AdminToken), len(c.JoinToken), MinTokenLength)
	}
	if c.AdminToken == c.JoinToken {
		return bad("the admin and join tokens are equal; an agent's token must not grant deploys")
	}
	if c.DataDir == "" && !c.InMemory {
		return bad("DataDir is empty (--data DIR)")
	}
	if c.Transport == nil && c.RaftAddr == "" {
		return bad("RaftAddr is empty (--raft 127.0.0.1:7401)")
	}
	if c.Listener == nil && c.HTTPAddr == "" {
		return bad("HTTPAddr is empty (--http 127.0.0.1:7400)")
	}
	if c.Cluster == "" {
		c.Cluster = DefaultCluster
	}
	if _, err := TopologyOf(c.Cluster); err != nil {
		return bad("Cluster: %v", err)
	}
	if c.Algo == "" {
		c.Algo = DefaultAlgo
	}
	if _, err := placement.New(c.Algo); err != nil {
		return bad("Algo: %v", err)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"HeartbeatPeriod", &c.HeartbeatPeriod, DefaultHeartbeatPeriod},
		{"FailureTimeout", &c.FailureTimeout, DefaultFailureTimeout},
		{"LeaderGrace", &c.LeaderGrace, DefaultLeaderGrace},
		{"MigrationTimeout", &c.MigrationTimeout, DefaultMigrationTimeout},
		{"RaftHeartbeatTimeout", &c.RaftHeartbeatTimeout, DefaultRaftHeartbeatTimeout},
		{"RaftElectionTimeout", &c.RaftElectionTimeout, DefaultRaftElectionTimeout},
		{"RaftLeaderLease", &c.RaftLeaderLease, DefaultRaftLeaderLease},
		{"RaftCommitTimeout", &c.RaftCommitTimeout, DefaultRaftCommitTimeout},
		{"SnapshotInterval", &c.SnapshotInterval, DefaultSnapshotInterval},
		{"ApplyTimeout", &c.ApplyTimeout, DefaultApplyTimeout},
	} {
		if *d.v < 0 {
			return bad("%s = %v, want a positive duration (0 means %v)", d.name, *d.v, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.FailureTimeout < c.HeartbeatPeriod {
		return bad("FailureTimeout %v is below HeartbeatPeriod %v", c.FailureTimeout, c.HeartbeatPeriod)
	}
	if c.RaftLeaderLease > c.RaftHeartbeatTimeout {
		return bad("RaftLeaderLease %v exceeds RaftHeartbeatTimeout %v (raft requires lease <= heartbeat timeout)", c.RaftLeaderLease, c.RaftHeartbeatTimeout)
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RaftLog == nil {
		c.RaftLog = io.Discard
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Server is one controller replica: raft, the state machine, the HTTP API
// and, while it leads, the orchestrator and the failover loop.
type Server struct {
	cfg   Config
	log   *slog.Logger
	fsm   *FSM
	raft  *raft.Raft
	trans raft.Transport
	store *raftbolt.Store
	ln    net.Listener
	srv   *http.Server
	hc    *http.Client
	ownHC bool
	met   *metrics
	api   string // our advertised API host:port

	// lmu serialises the leader's decisions: placement and the proposal
	// of its result, heartbeats into the orchestrator, failover rounds.
	lmu     sync.Mutex
	lead    *leader     // nil unless this replica leads and is ready
	leading atomic.Bool // lead != nil, for readers that must not wait on lmu

	// epochCh is closed and replaced whenever the routing epoch changes,
	// for GET /v1/routes?wait=.
	epochMu sync.Mutex
	epochCh chan struct{}
	epoch   atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New starts a replica: it opens (or creates) its raft state, starts raft,
// bootstraps or joins as configured, and serves the API. Close stops it.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("replica", cfg.ID), fsm: NewFSM(), epochCh: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hc = cfg.HTTPClient
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}}
		s.ownHC = true
	}
	s.met = newMetrics(s)
	s.fsm.onApply = s.applied
	s.fsm.onRestore = s.restored
	ok := false
	defer func() {
		if !ok {
			s.teardown()
		}
	}()

	// The API listener first: its address goes into the replica record.
	s.ln = cfg.Listener
	if s.ln == nil {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("controller: API listen on %s: %w", cfg.HTTPAddr, err)
		}
		s.ln = ln
	}
	s.api = cfg.APIAdvertise
	if s.api == "" {
		s.api = s.ln.Addr().String()
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.RaftHeartbeatTimeout
	rc.ElectionTimeout = cfg.RaftElectionTimeout
	rc.LeaderLeaseTimeout = cfg.RaftLeaderLease
	rc.CommitTimeout = cfg.RaftCommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft." + cfg.ID, Level: hclog.Warn, Output: cfg.RaftLog})

	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if cfg.InMemory {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("controller: data directory: %w", err)
		}
		st, err := raftbolt.Open(filepath.Join(cfg.DataDir, "raft.db"), raftbolt.Options{})
		if err != nil {
			return nil, err
		}
		s.store = st
		logs, stable = st, st
		fss, err := raft.NewFileSnapshotStore(cfg.DataDir, 2, cfg.RaftLog)
		if err != nil {
			return nil, fmt.Errorf("controller: snapshot store: %w", err)
		}
		snaps = fss
	}

	s.trans = cfg.Transport
	if s.trans == nil {
		// Without an advertised address raft advertises the bound one,
		// which must then be a specific IP (not 0.0.0.0).
		var adv net.Addr
		if cfg.RaftAdvertise != "" {
			a, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
			if err != nil {
				return nil, fmt.Errorf("controller: raft advertise address %q: %w", cfg.RaftAdvertise, err)
			}
			adv = a
		}
		// MaxRPCsInFlight 1 turns raft's pipelined replication off: its
		// pipeline can deadlock when a follower refuses an append (after a
		// partition heals, or a term change), which stops replication to
		// that follower and hangs Raft.Shutdown for good. Proposals still
		// go out in batches of up to 64 entries per AppendEntries.
		tr, err := raft.NewTCPTransportWithConfig(cfg.RaftAddr, adv, &raft.NetworkTransportConfig{
			MaxPool: 3, Timeout: 5 * time.Second, MaxRPCsInFlight: 1,
			Logger: hclog.New(&hclog.LoggerOptions{Name: "raft-net", Output: cfg.RaftLog, Level: hclog.DefaultLevel}),
		})
		if err != nil {
			return nil, fmt.Errorf("controller: raft transport on %s: %w", cfg.RaftAddr, err)
		}
		s.trans = tr
	}

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, fmt.Errorf("controller: read raft state: %w", err)
	}
	if !existing && (cfg.Bootstrap || len(cfg.Join) == 0) {
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: s.trans.LocalAddr(), Suffrage: raft.Voter}}}
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, s.trans, conf); err != nil {
			return nil, fmt.Errorf("controller: bootstrap: %w", err)
		}
		s.log.Info("bootstrapped a new controller cluster", "raft", s.trans.LocalAddr())
	}
	r, err := raft.NewRaft(rc, s.fsm, logs, stable, snaps, s.trans)
	if err != nil {
		return nil, fmt.Errorf("controller: start raft: %w", err)
	}
	s.raft = r

	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("API server stopped", "err", err)
		}
	}()
	go s.leadership()
	if !existing && len(cfg.Join) > 0 && !cfg.Bootstrap {
		s.wg.Add(1)
		go s.joinLoop()
	}
	ok = true
	s.log.Info("controller replica started", "api", s.api, "raft", s.trans.LocalAddr(), "existing_state", existing)
	return s, nil
}

// APIAddr is the replica's advertised API address (host:port).
func (s *Server) APIAddr() string { return s.api }

// RaftAddr is the replica's raft transport address.
func (s *Server) RaftAddr() string { return string(s.trans.LocalAddr()) }

// ID is the replica's raft ID.
func (s *Server) ID() string { return s.cfg.ID }

// IsLeader reports whether this replica leads and has taken office (its
// orchestrator is ready).
func (s *Server) IsLeader() bool { return s.leading.Load() }

// Raft exposes the raft node, for status and tests.
func (s *Server) Raft() *raft.Raft { return s.raft }

// Read calls fn with the replicated state under a read lock.
func (s *Server) Read(fn func(*State)) { s.fsm.Read(fn) }

// Close stops the replica: API, leader duties, raft, transport, store. It
// does not leave the raft configuration (use DELETE
// /v1/cluster/replicas/{id} for that); a closed replica is a failed one
// to its peers.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.log.Info("controller replica stopping")
	return s.teardown()
}

func (s *Server) teardown() error {
	s.cancel()
	var errs []error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		cancel()
	} else if s.ln != nil {
		s.ln.Close()
	}
	closeTransport := func() {
		if nt, ok := s.trans.(*raft.NetworkTransport); ok {
			// Close the pooled outbound connections too, so that peers'
			// handlers reading them end; Close alone only stops accepting.
			nt.CloseStreams()
			nt.Close()
		} else if c, ok := s.trans.(io.Closer); ok && s.cfg.Transport == nil {
			c.Close()
		}
	}
	if s.raft != nil {
		f := s.raft.Shutdown()
		// Close the transport before waiting for raft: a replication
		// pipeline to a peer whose answers a partition swallowed holds
		// raft's shutdown until the transport's 5 s timeout otherwise.
		closeTransport()
		if err := f.Error(); err != nil {
			errs = append(errs, err)
		}
	} else {
		closeTransport()
	}
	s.wg.Wait()
	s.stepDown()
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.ownHC {
		s.hc.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// leadership follows raft's leadership changes: taking office builds the
// leader's orchestrator from the state; losing it drops that.
func (s *Server) leadership() {
	defer s.wg.Done()
	ch := s.raft.LeaderCh()
	// A leader whose duties failed (a commit timed out, the state refused
	// a decision it could not rebuild from) takes office again rather
	// than sit as a raft leader that serves nobody.
	recheck := time.NewTicker(500 * time.Millisecond)
	defer recheck.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-recheck.C:
			if s.raft.State() == raft.Leader && !s.IsLeader() {
				if err := s.takeOffice(); err != nil {
					s.log.Warn("could not take office as leader", "err", err)
					s.stepDown()
				}
			}
		case isLeader := <-ch:
			if isLeader {
				s.met.leaderChanges.Inc()
				if err := s.takeOffice(); err != nil {
					s.log.Warn("could not take office as leader", "err", err)
					s.stepDown()
				}
			} else {
				s.stepDown()
			}
		}
	}
}

// now is the controller's clock.
func (s *Server) now() time.Time { return s.cfg.Now() }

// errNotLeader is returned by propose on a replica that does not lead.
var errNotLeader = errors.New("controller: this replica is not the leader")

// propose replicates a command and waits for it to be applied. The error
// is about replication (not the leader, timeout); a command the state
// refused comes back in ApplyResult.Err.
func (s *Server) propose(c *Command) (ApplyResult, error) {
	c.At = s.now().UnixNano()
	b, err := EncodeCommand(c)
	if err != nil {
		return ApplyResult{Err: err}, nil
	}
	start := time.Now()
	f := s.raft.Apply(b, s.cfg.ApplyTimeout)
	if err := f.Error(); err != nil {
		s.met.proposals.WithLabelValues(c.Op, "error").Inc()
		return ApplyResult{}, err
	}
	s.met.applySeconds.Observe(time.Since(start).Seconds())
	res, _ := f.Response().(ApplyResult)
	outcome := "ok"
	if res.Err != nil {
		outcome = "refused"
	}
	s.met.proposals.WithLabelValues(c.Op, outcome).Inc()
	return res, nil
}

// applied is called by the FSM after every command, on every replica.
func (s *Server) applied(c *Command, res ApplyResult) {
	s.met.commands.WithLabelValues(c.Op).Inc()
	if old := s.epoch.Swap(res.Epoch); old != res.Epoch {
		s.epochMu.Lock()
		close(s.epochCh)
		s.epochCh = make(chan struct{})
		s.epochMu.Unlock()
	}
}

// restored wakes routing-table waiters after a snapshot replaced the
// state (on restart, or sent by the leader to a lagging follower).
func (s *Server) restored() {
	var e uint64
	s.fsm.Read(func(st *State) { e = st.Epoch })
	s.epoch.Store(e)
	s.epochMu.Lock()
	close(s.epochCh)
	s.epochCh = make(chan struct{})
	s.epochMu.Unlock()
}

// epochWait returns a channel closed at the next epoch change.
func (s *Server) epochWait() <-chan struct{} {
	s.epochMu.Lock()
	defer s.epochMu.Unlock()
	return s.epochCh
}

// leaderAPI returns the leader's raft ID and API address, "" if unknown.
func (s *Server) leaderAPI() (id, api string) {
	_, lid := s.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	if string(lid) == s.cfg.ID {
		return s.cfg.ID, s.api
	}
	s.fsm.Read(func(st *State) {
		if r := st.Replicas[string(lid)]; r != nil {
			api = r.APIAddr
		}
	})
	return string(lid), api
}

// joinLoop asks the replicas of Config.Join, in turn, to add this one,
// until one does or the replica stops.
func (s *Server) joinLoop() {
	defer s.wg.Done()
	req := JoinRequest{ID: s.cfg.ID, RaftAddr: string(s.trans.LocalAddr()), APIAddr: s.api}
	c := &Client{Endpoints: s.cfg.Join, Token: s.cfg.AdminToken, HTTP: s.hc, Retry: time.Second}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		err := c.Join(ctx, req)
		cancel()
		if err == nil {
			s.log.Info("joined the controller cluster", "via", s.cfg.Join)
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("join failed; retrying", "via", s.cfg.Join, "attempt", attempt, "err", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
