package controller

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

// Headers of the API.
const (
	// HeaderLeader carries the leader's API address on every answer.
	HeaderLeader = "E3-Leader"
	// HeaderForwarded marks a request a follower forwarded to the leader;
	// it is not forwarded again.
	HeaderForwarded = "E3-Forwarded-By"
)

// tokenKind says which token an endpoint wants.
type tokenKind int

const (
	tokenNone  tokenKind = iota
	tokenAdmin           // operators: deploy, undeploy, plan, membership
	tokenJoin            // agents: register, heartbeat, reports
	tokenAny             // either (routing tables)
)

func (k tokenKind) String() string {
	return [...]string{"none", "admin", "join", "admin or join"}[k]
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, tok tokenKind, leaderOnly bool, fn func(w http.ResponseWriter, r *http.Request, body []byte)) {
		mux.Handle(pattern, s.wrap(pattern, tok, leaderOnly, fn))
	}
	h("POST /v1/apps", tokenAdmin, true, s.handleDeploy)
	h("GET /v1/apps", tokenNone, false, s.handleApps)
	h("GET /v1/apps/{name}", tokenNone, false, s.handleApp)
	h("DELETE /v1/apps/{name}", tokenAdmin, true, s.handleUndeploy)
	h("POST /v1/plan", tokenAdmin, true, s.handlePlan)
	h("GET /v1/nodes", tokenNone, false, s.handleNodes)
	h("GET /v1/placements", tokenNone, false, s.handlePlacements)
	h("GET /v1/events", tokenNone, false, s.handleEvents)
	h("GET /v1/cluster", tokenNone, false, s.handleCluster)
	h("POST /v1/cluster/join", tokenAdmin, true, s.handleJoin)
	h("DELETE /v1/cluster/replicas/{id}", tokenAdmin, true, s.handleRemoveReplica)
	h("GET /v1/routes", tokenAny, false, s.handleRoutes)
	h("POST /v1/agents/register", tokenJoin, true, s.handleRegister)
	h("POST /v1/agents/heartbeat", tokenJoin, true, s.handleHeartbeat)
	h("POST /v1/agents/migrations/{id}", tokenJoin, true, s.handleMigrationReport)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "replica": s.cfg.ID})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if id, _ := s.leaderAPI(); id == "" {
			writeError(w, http.StatusServiceUnavailable, "no_leader", "no leader elected: the replica cannot reach a majority", "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "replica": s.cfg.ID})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no endpoint %s %s; see docs/controller.md", r.Method, r.URL.Path), "")
	})
	return mux
}

// statusWriter records the status for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// wrap adds to a handler: metrics, the body read with a size limit, the
// token check, and, for an endpoint only the leader serves, forwarding to
// the leader.
func (s *Server) wrap(route string, tok tokenKind, leaderOnly bool, fn func(http.ResponseWriter, *http.Request, []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			s.met.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
			s.met.requestSeconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		if _, api := s.leaderAPI(); api != "" {
			sw.Header().Set(HeaderLeader, api)
		}
		if !s.authorized(sw, r, tok) {
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			writeError(sw, http.StatusBadRequest, "bad_body", "reading the request body: "+err.Error(), "")
			return
		}
		if len(body) > maxBody {
			writeError(sw, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body over %d bytes", maxBody), "")
			return
		}
		if leaderOnly && !s.IsLeader() {
			s.forward(sw, r, body)
			return
		}
		fn(sw, r, body)
	})
}

func hashToken(t string) [32]byte { return sha256.Sum256([]byte(t)) }

// authorized checks the bearer token an endpoint wants. A missing token
// is 401, a wrong one 403; both are logged (never the token itself) and
// change nothing.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, want tokenKind) bool {
	if want == tokenNone {
		return true
	}
	refuse := func(code int, reason, msg string) bool {
		s.met.authRefused.WithLabelValues(want.String(), reason).Inc()
		s.log.Warn("refused request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", reason, "wants", want.String()+" token")
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="e3"`)
		}
		writeError(w, code, reason, msg, "")
		return false
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return refuse(http.StatusUnauthorized, "missing_token", fmt.Sprintf("%s %s needs the %s token: send Authorization: Bearer <token>", r.Method, r.URL.Path, want))
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return refuse(http.StatusUnauthorized, "bad_scheme", "the Authorization header must be \"Bearer <token>\"")
	}
	got := hashToken(strings.TrimSpace(tok))
	admin, join := hashToken(s.cfg.AdminToken), hashToken(s.cfg.JoinToken)
	isAdmin := subtle.ConstantTimeCompare(got[:], admin[:]) == 1
	isJoin := subtle.ConstantTimeCompare(got[:], join[:]) == 1
	switch {
	case want == tokenAdmin && isAdmin, want == tokenJoin && isJoin, want == tokenAny && (isAdmin || isJoin):
		return true
	case want == tokenAdmin && isJoin:
		return refuse(http.StatusForbidden, "wrong_token", fmt.Sprintf("%s %s needs the admin token; the cluster join token only admits agents", r.Method, r.URL.Path))
	}
	return refuse(http.StatusForbidden, "wrong_token", fmt.Sprintf("%s %s: token refused (it is not the %s token)", r.Method, r.URL.Path, want))
}

// forward sends a request that only the leader can serve to the leader and
// relays the answer. A request that was forwarded already is not
// forwarded again: the leader changed while it travelled, and the client
// should retry.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	id, api := s.leaderAPI()
	if r.Header.Get(HeaderForwarded) != "" {
		writeError(w, http.StatusServiceUnavailable, "not_leader", fmt.Sprintf("forwarded to replica %s, which is no longer the leader; retry", s.cfg.ID), api)
		return
	}
	if id == "" || api == "" {
		writeError(w, http.StatusServiceUnavailable, "no_leader", fmt.Sprintf("replica %s knows no leader (an election is under way, or this replica is cut off from the majority); nothing was changed, retry", s.cfg.ID), "")
		return
	}
	if id == s.cfg.ID {
		writeError(w, http.StatusServiceUnavailable, "not_ready", "this replica was just elected and is taking office; retry", s.api)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ApplyTimeout+2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+api+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), api)
		return
	}
	for _, k := range []string{"Authorization", "Content-Type", "Accept"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set(HeaderForwarded, s.cfg.ID)
	s.met.forwarded.Inc()
	resp, err := s.hc.Do(req)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "leader_unreachable", fmt.Sprintf("forwarding to the leader %s at %s: %v; retry", id, api, err), api)
		return
	}
	defer resp.Body.Close()
	for _, k := range []string{"Content-Type", "WWW-Authenticate"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.Header().Set(HeaderLeader, api)
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg, leader string, details ...string) {
	writeJSON(w, code, ErrorBody{Error: msg, Code: kind, Details: details, Leader: leader})
}

// fail maps an error to its HTTP answer: refusals of the state by kind,
// raft's leadership errors to 503 with the leader's address.
func (s *Server) fail(w http.ResponseWriter, err error) {
	_, api := s.leaderAPI()
	var list app.ErrorList
	switch {
	case errors.As(err, &list):
		var det []string
		for _, e := range list {
			det = append(det, e.Error())
		}
		writeError(w, http.StatusBadRequest, "bad_spec", fmt.Sprintf("the application spec has %d problem(s): %s", len(list), det[0]), api, det...)
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error(), api)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error(), api)
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid", err.Error(), api)
	case errors.Is(err, errNotLeader), errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrEnqueueTimeout):
		writeError(w, http.StatusServiceUnavailable, "not_leader", fmt.Sprintf("replica %s could not commit: %v; the change may not have happened, check and retry", s.cfg.ID, err), api)
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error(), api)
	}
}

// parseDeploy decodes and validates a deploy or plan request.
func parseDeploy(body []byte) (*DeployRequest, *app.App, error) {
	var req DeployRequest
	if err := decodeBody(body, &req); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if strings.TrimSpace(req.Spec) == "" {
		return nil, nil, fmt.Errorf("%w: spec is empty: send the application's YAML in \"spec\"", ErrInvalid)
	}
	if req.File == "" {
		req.File = "spec.yaml"
	}
	if req.RPS == 0 {
		req.RPS = DefaultRPS
	}
	if !(req.RPS > 0) || req.RPS > 1e12 {
		return nil, nil, fmt.Errorf("%w: rps %v, want a rate in (0, 1e12]", ErrInvalid, req.RPS)
	}
	if req.Seed == 0 {
		req.Seed = 1
	}
	a, err := app.Load(req.File, []byte(req.Spec), services.Registry())
	if err != nil {
		return nil, nil, err
	}
	return &req, a, nil
}

func (s *Server) handlePlan(w http.ResponseWriter, r *http.Request, body []byte) {
	req, a, err := parseDeploy(body)
	if err != nil {
		s.fail(w, err)
		return
	}
	if req.Algo == "" {
		req.Algo = s.cfg.Algo
	}
	s.lmu.Lock()
	l := s.lead
	if l == nil {
		s.lmu.Unlock()
		s.fail(w, errNotLeader)
		return
	}
	var pl *plan
	s.fsm.Read(func(st *State) { pl, err = l.place(st, a, req.RPS, req.Seed, req.Algo) })
	s.lmu.Unlock()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, pl.response(req.RPS, req.Seed, req.Algo))
}

func (s *Server) handleDeploy(w http.ResponseWriter, r *http.Request, body []byte) {
	req, a, err := parseDeploy(body)
	if err != nil {
		s.fail(w, err)
		return
	}
	if req.Algo == "" {
		req.Algo = s.cfg.Algo
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	l := s.lead
	if l == nil {
		s.fail(w, errNotLeader)
		return
	}
	var pl *plan
	s.fsm.Read(func(st *State) {
		if old := st.Apps[a.Name]; old != nil {
			err = fmt.Errorf("%w: application %s is already deployed (id %d); undeploy it first", ErrConflict, a.Name, old.ID)
			return
		}
		pl, err = l.place(st, a, req.RPS, req.Seed, req.Algo)
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	resp := pl.response(req.RPS, req.Seed, req.Algo)
	if len(pl.res.Unplaced) > 0 {
		msg := fmt.Sprintf("%s was not deployed: %d of %d instances fit nowhere; first: %s", a.Name, len(resp.Unplaced), len(resp.Instances), resp.Unplaced[0])
		if len(pl.masked) > 0 {
			msg += fmt.Sprintf(" (%d of %d nodes were not considered, having no live agent: %s)", len(pl.masked), l.topo.NumNodes(), strings.Join(pl.masked, ", "))
		}
		writeJSON(w, http.StatusUnprocessableEntity, ErrorBody{Code: "unplaceable", Error: msg, Details: resp.Unplaced})
		return
	}
	res, err := s.propose(&Command{Op: OpDeploy, Deploy: &DeployCmd{File: req.File, Spec: req.Spec, RPS: req.RPS, Seed: req.Seed, Algo: req.Algo, Instances: pl.placements()}})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if err := l.deployed(a.Name, pl, req.RPS); err != nil {
		// Committed but the orchestrator would not take it: rebuild the
		// leader's view from the state, which is the truth.
		s.log.Error("orchestrator refused a committed deploy; rebuilding from the state", "app", a.Name, "err", err)
		if nl, err2 := s.buildLeader(); err2 == nil {
			l.cancel()
			s.lead = nl
			s.wg.Add(1)
			go s.failoverLoop(nl)
		}
	}
	resp.DryRun, resp.AppID, resp.Epoch = false, res.AppID, res.Epoch
	s.log.Info("deployed", "app", a.Name, "id", res.AppID, "epoch", res.Epoch, "instances", len(resp.Instances))
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) handleUndeploy(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("name")
	s.lmu.Lock()
	defer s.lmu.Unlock()
	l := s.lead
	if l == nil {
		s.fail(w, errNotLeader)
		return
	}
	res, err := s.propose(&Command{Op: OpUndeploy, Undeploy: &UndeployCmd{Name: name}})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if err := l.undeployed(name); err != nil {
		s.log.Error("orchestrator refused an undeploy", "app", name, "err", err)
	}
	s.log.Info("undeployed", "app", name, "epoch", res.Epoch)
	writeJSON(w, http.StatusOK, map[string]any{"undeployed": name, "epoch": res.Epoch})
}

func summary(st *State, a *AppRecord) AppSummary {
	sm := AppSummary{Name: a.Name, ID: a.ID, File: a.File, RPS: a.RPS, Algo: a.Algo, Seed: a.Seed, Deployed: a.Deployed, Epoch: a.Epoch, Instances: len(a.Instances)}
	for _, in := range a.Instances {
		switch n := st.Nodes[in.Node]; {
		case in.Node == "":
			sm.Unplaced++
		case n != nil && n.Role == RoleSmartNIC:
			sm.OnSmartNIC++
		default:
			sm.OnHost++
		}
	}
	return sm
}

func (s *Server) handleApps(w http.ResponseWriter, r *http.Request, _ []byte) {
	out := []AppSummary{}
	s.fsm.Read(func(st *State) {
		for _, a := range st.SortedApps() {
			out = append(out, summary(st, a))
		}
	})
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleApp(w http.ResponseWriter, r *http.Request, _ []byte) {
	name := r.PathValue("name")
	var rec *AppRecord
	var sm AppSummary
	s.fsm.Read(func(st *State) {
		if a := st.Apps[name]; a != nil {
			cp := *a
			cp.Instances = append([]InstanceRecord(nil), a.Instances...)
			rec, sm = &cp, summary(st, a)
		}
	})
	if rec == nil {
		s.fail(w, fmt.Errorf("%w: no application %s is deployed", ErrNotFound, name))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"summary": sm, "app": rec})
}

func (s *Server) handlePlacements(w http.ResponseWriter, r *http.Request, _ []byte) {
	explain := r.URL.Query().Get("explain")
	withExplain := explain == "1" || explain == "true"
	only := r.URL.Query().Get("app")
	out := []PlacedInstance{}
	found := only == ""
	s.fsm.Read(func(st *State) {
		for _, a := range st.SortedApps() {
			if only != "" && a.Name != only {
				continue
			}
			found = true
			for _, in := range a.Instances {
				pi := PlacedInstance{App: a.Name, Instance: in.Instance, Service: in.Service, Role: in.Role, Node: in.Node, Level: in.Level, PromotedFrom: in.PromotedFrom}
				if n := st.Nodes[in.Node]; n != nil {
					pi.Kind = n.Role
				}
				if withExplain {
					pi.Explanation = in.Explanation
				}
				out = append(out, pi)
			}
		}
	})
	if !found {
		s.fail(w, fmt.Errorf("%w: no application %s is deployed", ErrNotFound, only))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	since, limit := uint64(0), 100
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.fail(w, fmt.Errorf("%w: since=%q: want an event sequence number", ErrInvalid, v))
			return
		}
		since = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxEvents {
			s.fail(w, fmt.Errorf("%w: limit=%q: want 1..%d", ErrInvalid, v, MaxEvents))
			return
		}
		limit = n
	}
	resp := EventsResponse{Events: []Event{}}
	s.fsm.Read(func(st *State) {
		for _, e := range st.Events {
			if e.Seq >= since && len(resp.Events) < limit {
				resp.Events = append(resp.Events, e)
			}
		}
		resp.Next = st.NextEvent
		if n := len(resp.Events); n > 0 && n == limit {
			resp.Next = resp.Events[n-1].Seq + 1
		}
	})
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request, body []byte) {
	// Liveness is the leader's: a follower asks it, and answers from the
	// state alone if it cannot.
	if !s.IsLeader() && r.Header.Get(HeaderForwarded) == "" {
		if id, api := s.leaderAPI(); id != "" && id != s.cfg.ID && api != "" {
			if s.tryForwardRead(w, r, api) {
				return
			}
		}
	}
	var out []NodeStatus
	now := s.now()
	s.lmu.Lock()
	l := s.lead
	s.fsm.Read(func(st *State) {
		count := map[string]int{}
		for _, a := range st.Apps {
			for _, in := range a.Instances {
				count[in.Node]++
			}
		}
		for _, n := range st.SortedNodes() {
			ns := NodeStatus{NodeRecord: *n, Instances: count[n.Name]}
			if l != nil {
				alive, ago := l.alive(now, topology.NodeID(n.ID))
				ns.Alive, ns.LastHeardMs = &alive, &ago
			}
			out = append(out, ns)
		}
	})
	s.lmu.Unlock()
	if out == nil {
		out = []NodeStatus{}
	}
	writeJSON(w, http.StatusOK, out)
}

// tryForwardRead relays a read to the leader; false if it could not.
func (s *Server) tryForwardRead(w http.ResponseWriter, r *http.Request, api string) bool {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+api+r.URL.RequestURI(), nil)
	if err != nil {
		return false
	}
	req.Header.Set(HeaderForwarded, s.cfg.ID)
	resp, err := s.hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	return true
}

func (s *Server) handleCluster(w http.ResponseWriter, r *http.Request, _ []byte) {
	lid, lapi := s.leaderAPI()
	cs := ClusterStatus{Replica: s.cfg.ID, State: s.raft.State().String(), Leader: lid, LeaderAPI: lapi,
		LastIndex: s.raft.LastIndex(), Applied: s.raft.AppliedIndex(), Replicas: []ReplicaStatus{}}
	cs.Term, _ = strconv.ParseUint(s.raft.Stats()["term"], 10, 64)
	fut := s.raft.GetConfiguration()
	var servers []raft.Server
	if fut.Error() == nil {
		servers = fut.Configuration().Servers
	}
	s.fsm.Read(func(st *State) {
		cs.Cluster, cs.Epoch, cs.Apps, cs.Nodes = st.Cluster, st.Epoch, len(st.Apps), len(st.Nodes)
		cs.Migrations = st.SortedMigrations()
		for _, sv := range servers {
			rs := ReplicaStatus{ID: string(sv.ID), RaftAddr: string(sv.Address), Voter: sv.Suffrage == raft.Voter, Leader: string(sv.ID) == lid}
			if rec := st.Replicas[string(sv.ID)]; rec != nil {
				rs.APIAddr = rec.APIAddr
			}
			cs.Replicas = append(cs.Replicas, rs)
		}
	})
	writeJSON(w, http.StatusOK, cs)
}

func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request, body []byte) {
	var req JoinRequest
	if err := decodeBody(body, &req); err != nil {
		s.fail(w, fmt.Errorf("%w: %w", ErrInvalid, err))
		return
	}
	if req.ID == "" || req.RaftAddr == "" || req.APIAddr == "" {
		s.fail(w, fmt.Errorf("%w: join needs id, raft_addr and api_addr", ErrInvalid))
		return
	}
	if err := s.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		s.fail(w, err)
		return
	}
	res, err := s.propose(&Command{Op: OpReplica, Replica: &ReplicaCmd{ID: req.ID, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr}})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	s.log.Info("replica joined", "id", req.ID, "raft", req.RaftAddr, "api", req.APIAddr)
	writeJSON(w, http.StatusOK, map[string]string{"joined": req.ID})
}

func (s *Server) handleRemoveReplica(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("id")
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		s.fail(w, err)
		return
	}
	res, err := s.propose(&Command{Op: OpReplica, Replica: &ReplicaCmd{ID: id, Remove: true}})
	if err == nil && res.Err != nil && !errors.Is(res.Err, ErrNotFound) {
		err = res.Err
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": id})
}

// handleRoutes serves the routing table. With ?wait=E it holds the
// request (up to ?timeout=, default 25 s, at most 60 s) until the epoch
// exceeds E, so agents learn of a new table without polling.
func (s *Server) handleRoutes(w http.ResponseWriter, r *http.Request, _ []byte) {
	q := r.URL.Query()
	if v := q.Get("wait"); v != "" {
		after, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.fail(w, fmt.Errorf("%w: wait=%q: want an epoch", ErrInvalid, v))
			return
		}
		timeout := 25 * time.Second
		if v := q.Get("timeout"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > time.Minute {
				s.fail(w, fmt.Errorf("%w: timeout=%q: want a duration up to 1m", ErrInvalid, v))
				return
			}
			timeout = d
		}
		deadline := time.NewTimer(timeout)
		defer deadline.Stop()
		for {
			ch := s.epochWait()
			var cur uint64
			s.fsm.Read(func(st *State) { cur = st.Epoch })
			if cur > after {
				break
			}
			select {
			case <-ch:
				continue
			case <-deadline.C:
			case <-r.Context().Done():
				return
			case <-s.ctx.Done():
			}
			break
		}
	}
	var rt *Routes
	s.fsm.Read(func(st *State) { rt = routesOf(st) })
	writeJSON(w, http.StatusOK, rt)
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request, body []byte) {
	var req RegisterRequest
	if err := decodeBody(body, &req); err != nil {
		s.fail(w, fmt.Errorf("%w: %w", ErrInvalid, err))
		return
	}
	var cmd *RegisterCmd
	var err error
	var cluster string
	s.fsm.Read(func(st *State) {
		cluster = st.Cluster
		if st.Topology() == nil {
			err = fmt.Errorf("%w: the cluster is not initialised yet; retry", errNotLeader)
			return
		}
		cmd, err = req.registration(st.Topology())
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	res, err := s.propose(&Command{Op: OpRegister, Register: cmd})
	if err == nil {
		err = res.Err
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	var id int
	s.fsm.Read(func(st *State) { id = st.Nodes[cmd.Node].ID })
	// Registering is a sign of life: the node counts as heard (and, if
	// its server had been failed, comes back).
	s.lmu.Lock()
	if l := s.lead; l != nil {
		var back bool
		s.fsm.Read(func(st *State) {
			back, _ = l.heartbeat(s.now(), topology.NodeID(id), &HeartbeatRequest{Node: cmd.Node}, st)
		})
		if back {
			if err := s.failoverRoundLocked(l); err != nil {
				s.log.Warn("failover round after a registration failed", "err", err)
			}
		}
	}
	s.lmu.Unlock()
	s.log.Info("agent registered", "node", cmd.Node, "addr", cmd.Addr)
	writeJSON(w, http.StatusOK, RegisterResponse{Node: cmd.Node, ID: id, Cluster: cluster, Epoch: res.Epoch,
		HeartbeatMs: s.cfg.HeartbeatPeriod.Milliseconds(), FailureTimeoutMs: s.cfg.FailureTimeout.Milliseconds(), Leader: s.api})
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request, body []byte) {
	var hb HeartbeatRequest
	if err := decodeBody(body, &hb); err != nil {
		s.fail(w, fmt.Errorf("%w: heartbeat: %w", ErrInvalid, err))
		return
	}
	if len(hb.Samples) > 4096 {
		s.fail(w, fmt.Errorf("%w: heartbeat of %s: %d samples, at most 4096", ErrInvalid, hb.Node, len(hb.Samples)))
		return
	}
	s.met.heartbeats.Inc()
	s.lmu.Lock()
	defer s.lmu.Unlock()
	l := s.lead
	if l == nil {
		s.fail(w, errNotLeader)
		return
	}
	var err error
	var back bool
	var epoch uint64
	s.fsm.Read(func(st *State) {
		epoch = st.Epoch
		nr := st.Nodes[hb.Node]
		if nr == nil {
			err = fmt.Errorf("%w: heartbeat from %q, which is not registered: register first (POST /v1/agents/register)", ErrNotFound, hb.Node)
			return
		}
		back, err = l.heartbeat(s.now(), topology.NodeID(nr.ID), &hb, st)
	})
	if err != nil {
		s.fail(w, err)
		return
	}
	if back {
		if err := s.failoverRoundLocked(l); err != nil {
			s.log.Warn("failover round after a node came back failed", "err", err)
		}
		s.fsm.Read(func(st *State) { epoch = st.Epoch })
	}
	writeJSON(w, http.StatusOK, HeartbeatResponse{Epoch: epoch, Leader: s.api})
}

func (s *Server) handleMigrationReport(w http.ResponseWriter, r *http.Request, body []byte) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, fmt.Errorf("%w: migration id %q is not a number", ErrInvalid, r.PathValue("id")))
		return
	}
	var rep MigrationReport
	if err := decodeBody(body, &rep); err != nil {
		s.fail(w, fmt.Errorf("%w: %w", ErrInvalid, err))
		return
	}
	res, err := s.migrationReport(id, &rep)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"migration": id, "ok": rep.OK, "epoch": res.Epoch})
}
