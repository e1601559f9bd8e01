package controller

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the replica's Prometheus metrics, in a registry of its own
// (several replicas live in one test process).
type metrics struct {
	reg             *prometheus.Registry
	requests        *prometheus.CounterVec
	requestSeconds  *prometheus.HistogramVec
	authRefused     *prometheus.CounterVec
	proposals       *prometheus.CounterVec
	commands        *prometheus.CounterVec
	applySeconds    prometheus.Histogram
	heartbeats      prometheus.Counter
	forwarded       prometheus.Counter
	failoverActions *prometheus.CounterVec
	leaderChanges   prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"replica": s.cfg.ID}
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "e3", Subsystem: "controller", Name: name, Help: help, ConstLabels: labels}
	}
	m := &metrics{reg: reg}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts(opts("http_requests_total", "API requests by route and status code.")), []string{"route", "code"})
	m.requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "e3", Subsystem: "controller", Name: "http_request_seconds",
		Help: "API request latency by route.", ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}, []string{"route"})
	m.authRefused = prometheus.NewCounterVec(prometheus.CounterOpts(opts("auth_refused_total", "Requests refused for a missing or wrong token.")), []string{"wants", "reason"})
	m.proposals = prometheus.NewCounterVec(prometheus.CounterOpts(opts("proposals_total", "Commands this replica proposed, by op and outcome (ok, refused by the state, error).")), []string{"op", "outcome"})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts(opts("commands_applied_total", "Commands applied to the state machine, by op.")), []string{"op"})
	m.applySeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "e3", Subsystem: "controller", Name: "commit_seconds",
		Help: "Time from proposing a command to its application (replication and fsync).", ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.heartbeats = prometheus.NewCounter(prometheus.CounterOpts(opts("heartbeats_total", "Agent heartbeats received.")))
	m.forwarded = prometheus.NewCounter(prometheus.CounterOpts(opts("forwarded_total", "Requests forwarded to the leader.")))
	m.failoverActions = prometheus.NewCounterVec(prometheus.CounterOpts(opts("orchestrator_actions_total", "Orchestrator actions carried out, by kind.")), []string{"kind"})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts(opts("leader_elected_total", "Times this replica became the leader.")))
	reg.MustRegister(m.requests, m.requestSeconds, m.authRefused, m.proposals, m.commands, m.applySeconds, m.heartbeats, m.forwarded, m.failoverActions, m.leaderChanges)
	reg.MustRegister(collectors.NewGoCollector())

	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts(name, help)), f))
	}
	gauge("is_leader", "1 while this replica leads and has taken office.", func() float64 {
		if s.IsLeader() {
			return 1
		}
		return 0
	})
	raftStat := func(key string) func() float64 {
		return func() float64 {
			if s.raft == nil {
				return 0
			}
			v, _ := strconv.ParseFloat(s.raft.Stats()[key], 64)
			return v
		}
	}
	gauge("raft_term", "Current raft term.", raftStat("term"))
	gauge("raft_commit_index", "Raft commit index.", raftStat("commit_index"))
	gauge("raft_applied_index", "Raft index applied to the state machine.", raftStat("applied_index"))
	gauge("raft_peers", "Voters in the raft configuration besides this replica.", raftStat("num_peers"))
	read := func(f func(*State) float64) func() float64 {
		return func() float64 {
			var v float64
			s.fsm.Read(func(st *State) { v = f(st) })
			return v
		}
	}
	gauge("routing_epoch", "Routing-table epoch in force.", read(func(st *State) float64 { return float64(st.Epoch) }))
	gauge("apps", "Deployed applications.", read(func(st *State) float64 { return float64(len(st.Apps)) }))
	gauge("nodes_registered", "Registered compute nodes.", read(func(st *State) float64 { return float64(len(st.Nodes)) }))
	gauge("nodes_failed", "Registered nodes whose server is declared failed.", read(func(st *State) float64 {
		n := 0
		for _, r := range st.Nodes {
			if r.Failed {
				n++
			}
		}
		return float64(n)
	}))
	gauge("migrations_in_flight", "Migrations ordered and not yet reported.", read(func(st *State) float64 { return float64(len(st.Migrations)) }))
	gauge("instances_unplaced", "Instances without a node (waiting for capacity).", read(func(st *State) float64 {
		n := 0
		for _, a := range st.Apps {
			for _, in := range a.Instances {
				if in.Node == "" {
					n++
				}
			}
		}
		return float64(n)
	}))
	return m
}
