package controller

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e3-platform/e3/orchestrator"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/topology"
)

// AgentConfig configures an [AgentLink].
type AgentConfig struct {
	// Controllers are the API addresses of the controller's replicas.
	Controllers []string
	// JoinToken is the cluster join token.
	JoinToken string
	// Register says who the agent is and where its data endpoint listens.
	Register RegisterRequest
	// OnRoutes receives every routing table newer than the last one, on
	// the link's own goroutine, in epoch order. An agent applies it
	// (Routes.Table, then runtime.Agent.Apply).
	OnRoutes func(*Routes)
	// HTTP is the client for heartbeats and registration (default: 2 s
	// timeout). Routing tables are long-polled with a client of its own.
	HTTP *http.Client
	// Logger receives the link's logs (default: discard).
	Logger *slog.Logger
}

// AgentLink is the agent's side of the controller's API: it registers the
// agent, sends its heartbeats to whichever replica leads, and delivers
// each new routing table. It implements runtime.Controller, so a
// runtime.Agent reports through it directly; Heartbeat never blocks the
// agent (a report still being sent when the next is due is replaced by
// the newer one).
type AgentLink struct {
	cfg    AgentConfig
	api    *Client
	routes *Client
	log    *slog.Logger

	node atomic.Value // string: the registered node name
	seq  uint16

	mu       sync.Mutex
	pending  *HeartbeatRequest
	reports  map[uint64]MigrationReport // to send
	reported map[uint64]bool            // sent and accepted
	prevIn   uint64
	prevOut  uint64
	prevMsgs map[string]uint64
	appNames map[uint32]string
	wake     chan struct{}

	epoch     atomic.Uint64 // last table delivered
	seen      atomic.Uint64 // highest epoch the controller reported
	sent      atomic.Uint64
	sendFails atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ runtime.Controller        = (*AgentLink)(nil)
	_ runtime.MigrationObserver = (*AgentLink)(nil)
)

// NewAgentLink returns a link; Register it, then Start it.
func NewAgentLink(cfg AgentConfig) *AgentLink {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	}
	l := &AgentLink{
		cfg:      cfg,
		api:      &Client{Endpoints: cfg.Controllers, Token: cfg.JoinToken, HTTP: hc, Retry: -1},
		routes:   &Client{Endpoints: cfg.Controllers, Token: cfg.JoinToken, HTTP: &http.Client{Transport: &http.Transport{IdleConnTimeout: 30 * time.Second}}, Retry: -1},
		log:      cfg.Logger,
		prevMsgs: map[string]uint64{},
		reports:  map[uint64]MigrationReport{},
		reported: map[uint64]bool{},
		appNames: map[uint32]string{},
		wake:     make(chan struct{}, 1),
	}
	l.node.Store("")
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// Register registers the agent, retrying through elections for up to
// the context's deadline.
func (l *AgentLink) Register(ctx context.Context) (*RegisterResponse, error) {
	c := &Client{Endpoints: l.api.Endpoints, Token: l.api.Token, HTTP: l.api.HTTP}
	if dl, ok := ctx.Deadline(); ok {
		c.Retry = time.Until(dl)
	}
	resp, err := c.Register(ctx, l.cfg.Register)
	if err != nil {
		return nil, err
	}
	l.node.Store(resp.Node)
	return resp, nil
}

// Node is the registered node's name ("" before Register).
func (l *AgentLink) Node() string { return l.node.Load().(string) }

// Epoch is the epoch of the last routing table delivered to OnRoutes.
func (l *AgentLink) Epoch() uint64 { return l.epoch.Load() }

// Sent counts heartbeats the controller accepted; SendFailures those it
// did not (no leader, unreachable).
func (l *AgentLink) Sent() uint64         { return l.sent.Load() }
func (l *AgentLink) SendFailures() uint64 { return l.sendFails.Load() }

// Start runs the sender and the routing-table watcher.
func (l *AgentLink) Start() {
	l.wg.Add(2)
	go l.sendLoop()
	go l.routesLoop()
}

// Close stops the link.
func (l *AgentLink) Close() {
	l.cancel()
	l.wg.Wait()
	l.routes.HTTP.CloseIdleConnections()
	l.api.HTTP.CloseIdleConnections()
}

// MigrationUpdate implements runtime.MigrationObserver. The source of a
// migration speaks for it: when it is ready (the destination holds the
// state) the controller is told to commit, and when shipping failed, to
// call it off. Reports are sent by the link's goroutine, and again until
// the controller accepts them.
func (l *AgentLink) MigrationUpdate(_ topology.NodeID, st runtime.MigrationStatus) {
	if l.queueReport(st) {
		l.poke()
	}
}

// queueReport queues the report a source's status calls for; it says
// whether there was one.
func (l *AgentLink) queueReport(st runtime.MigrationStatus) bool {
	if st.Role != runtime.RoleSource {
		return false
	}
	var rep MigrationReport
	switch st.Phase {
	case runtime.PhaseReady:
		rep.OK = true
	case runtime.PhaseFailed:
		rep.Error = st.Err
		if rep.Error == "" {
			rep.Error = "the source reported the move failed"
		}
	default:
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reported[st.ID] {
		return false
	}
	l.reports[st.ID] = rep
	return true
}

func (l *AgentLink) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Heartbeat implements runtime.Controller: it turns the agent's report
// (cumulative counters) into the controller's per-period record and
// queues it for sending. Migration progress in the heartbeat is reported
// too, in case an update was lost.
func (l *AgentLink) Heartbeat(hb *runtime.Heartbeat) {
	for _, st := range hb.Migrations {
		l.queueReport(st)
	}
	l.mu.Lock()
	req := &HeartbeatRequest{Node: l.Node(), Epoch: hb.Epoch, Queue: hb.TMQueueDepth,
		RxBytes: hb.BytesIn - min(l.prevIn, hb.BytesIn), TxBytes: hb.BytesOut - min(l.prevOut, hb.BytesOut)}
	l.prevIn, l.prevOut = hb.BytesIn, hb.BytesOut
	for _, is := range hb.Instances {
		name := l.appNames[is.App]
		if name == "" {
			continue
		}
		key := name + "/" + is.Instance
		n := is.Messages - min(l.prevMsgs[key], is.Messages)
		l.prevMsgs[key] = is.Messages
		smp := HeartbeatSample{App: name, Instance: is.Instance, Count: orchestrator.Saturate32(n)}
		if n > 0 {
			smp.MeanNs = orchestrator.Saturate32(uint64(max(is.ExecEMA, 0)))
		}
		req.Samples = append(req.Samples, smp)
	}
	l.mu.Unlock()
	l.Send(req)
}

// Send queues a heartbeat as is (its Node defaults to the registered
// node, its Seq is set here). Agents that are not a runtime.Agent use it.
func (l *AgentLink) Send(req *HeartbeatRequest) {
	l.mu.Lock()
	if req.Node == "" {
		req.Node = l.Node()
	}
	l.seq++
	req.Seq = l.seq
	l.pending = req
	l.mu.Unlock()
	l.poke()
}

func (l *AgentLink) sendLoop() {
	defer l.wg.Done()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.wake:
		}
		l.mu.Lock()
		req := l.pending
		l.pending = nil
		reps := make(map[uint64]MigrationReport, len(l.reports))
		for id, r := range l.reports {
			reps[id] = r
		}
		l.mu.Unlock()
		for id, rep := range reps {
			err := l.api.ReportMigration(l.ctx, id, rep)
			var ae *APIError
			// Accepted, or the controller no longer knows the migration
			// (ended, or ordered by a leader since deposed): done either way.
			if err == nil || errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				l.mu.Lock()
				delete(l.reports, id)
				l.reported[id] = true
				l.mu.Unlock()
			} else {
				l.log.Warn("migration report not accepted; will retry", "migration", id, "err", err)
			}
		}
		if req == nil {
			continue
		}
		resp, err := l.api.Heartbeat(l.ctx, req)
		if err != nil {
			l.sendFails.Add(1)
			var ae *APIError
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				// The controller does not know us (a new cluster, or
				// state restored from before we registered).
				ctx, cancel := context.WithTimeout(l.ctx, 2*time.Second)
				_, rerr := l.Register(ctx)
				cancel()
				l.log.Warn("heartbeat refused; registered again", "err", err, "register_err", rerr)
			}
			continue
		}
		l.sent.Add(1)
		for {
			old := l.seen.Load()
			if resp.Epoch <= old || l.seen.CompareAndSwap(old, resp.Epoch) {
				break
			}
		}
	}
}

// routesLoop long-polls the routing table and hands each newer one over.
// A poll lasts at most 2 s: a replica cut off by the network leaves the
// request hanging rather than refused, and after such a poll the next
// one goes to the replica the heartbeats reach.
func (l *AgentLink) routesLoop() {
	defer l.wg.Done()
	for l.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(l.ctx, 2*time.Second)
		r, err := l.routes.Routes(ctx, l.epoch.Load(), 1500*time.Millisecond)
		cancel()
		if err != nil && l.ctx.Err() == nil {
			l.routes.next.Store(l.api.next.Load())
		}
		if err != nil {
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if r.Epoch <= l.epoch.Load() {
			continue
		}
		l.mu.Lock()
		for _, a := range r.Apps {
			l.appNames[a.ID] = a.Name
		}
		l.mu.Unlock()
		l.epoch.Store(r.Epoch)
		if l.cfg.OnRoutes != nil {
			l.cfg.OnRoutes(r)
		}
	}
}
