package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

const (
	adminTok = "admin-0123456789abcdef"
	joinTok  = "join-0123456789abcdef"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

// replicas is a controller cluster in this process.
type replicas struct {
	t       *testing.T
	servers []*Server
	cfgs    []Config
	inmem   []*raft.InmemTransport // with InmemTransport only
	hc      *http.Client
}

type clusterOpts struct {
	n      int
	inmem  bool // raft over raft.InmemTransport, stores in memory
	tweak  func(i int, c *Config)
	logger bool
}

func testConfig(t *testing.T, id string) Config {
	return Config{ID: id, AdminToken: adminTok, JoinToken: joinTok, HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0"}
}

// startReplicas starts o.n replicas: the first bootstraps, the others
// join through its API, and it waits until all are voters and one leads.
func startReplicas(t *testing.T, o clusterOpts) *replicas {
	t.Helper()
	rs := &replicas{t: t, hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(rs.close)
	for i := range o.n {
		cfg := testConfig(t, fmt.Sprintf("c%d", i+1))
		cfg.HTTPClient = rs.hc
		if o.inmem {
			_, tr := raft.NewInmemTransport("")
			for _, other := range rs.inmem {
				tr.Connect(other.LocalAddr(), other)
				other.Connect(tr.LocalAddr(), tr)
			}
			rs.inmem = append(rs.inmem, tr)
			cfg.Transport, cfg.InMemory = tr, true
		} else {
			cfg.DataDir = t.TempDir()
		}
		if i > 0 {
			cfg.Join = []string{rs.servers[0].APIAddr()}
		}
		if o.tweak != nil {
			o.tweak(i, &cfg)
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatalf("start replica %d: %v", i+1, err)
		}
		rs.servers = append(rs.servers, s)
		rs.cfgs = append(rs.cfgs, cfg)
		if i == 0 {
			rs.waitLeader(5 * time.Second)
		}
	}
	rs.waitVoters(o.n, 10*time.Second)
	return rs
}

func (rs *replicas) close() {
	for _, s := range rs.servers {
		if s != nil {
			s.Close()
		}
	}
	for _, tr := range rs.inmem {
		tr.Close()
	}
	rs.hc.CloseIdleConnections()
}

// stop closes replica i (a crash, as far as its peers can tell).
func (rs *replicas) stop(i int) {
	rs.servers[i].Close()
	rs.servers[i] = nil
}

// leader returns the index of the replica that leads and has taken
// office, or -1.
func (rs *replicas) leader() int {
	for i, s := range rs.servers {
		if s != nil && s.IsLeader() {
			return i
		}
	}
	return -1
}

func (rs *replicas) waitLeader(d time.Duration) int {
	rs.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if i := rs.leader(); i >= 0 {
			return i
		}
		time.Sleep(5 * time.Millisecond)
	}
	rs.t.Fatalf("no leader within %v", d)
	return -1
}

func (rs *replicas) waitVoters(n int, d time.Duration) {
	rs.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l := rs.leader(); l >= 0 {
			f := rs.servers[l].Raft().GetConfiguration()
			if f.Error() == nil && len(f.Configuration().Servers) == n {
				// and every replica has caught up with the replica records
				ok := true
				for _, s := range rs.servers {
					var k int
					s.Read(func(st *State) { k = len(st.Replicas) })
					ok = ok && k == n
				}
				if ok {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	rs.t.Fatalf("the cluster did not reach %d voters within %v", n, d)
}

// endpoints lists the live replicas' API addresses.
func (rs *replicas) endpoints() []string {
	var out []string
	for _, s := range rs.servers {
		if s != nil {
			out = append(out, s.APIAddr())
		}
	}
	return out
}

func (rs *replicas) client(token string) *Client {
	return &Client{Endpoints: rs.endpoints(), Token: token, HTTP: rs.hc, Retry: 5 * time.Second}
}

// stateOf returns replica i's state as JSON, once it has applied
// everything the leader committed.
func (rs *replicas) stateOf(i int) string {
	rs.t.Helper()
	var b []byte
	rs.servers[i].Read(func(st *State) {
		var err error
		b, err = json.Marshal(st)
		if err != nil {
			rs.t.Fatal(err)
		}
	})
	return string(b)
}

// converge waits until every live replica has applied the leader's last
// index and returns the states.
func (rs *replicas) converge(d time.Duration) []string {
	rs.t.Helper()
	deadline := time.Now().Add(d)
	var target uint64
	l := -1
	for {
		if target == 0 {
			// One barrier: everything committed before it is applied on
			// the leader once it returns.
			if l = rs.leader(); l >= 0 && rs.servers[l].Raft().Barrier(2*time.Second).Error() == nil {
				target = rs.servers[l].Raft().AppliedIndex()
			}
		}
		if target > 0 {
			ok := true
			for _, s := range rs.servers {
				ok = ok && (s == nil || s.Raft().AppliedIndex() >= target)
			}
			if ok {
				// Commands may still be arriving (a new leader taking
				// office records itself): return only identical states,
				// and try again otherwise.
				var out []string
				for i, s := range rs.servers {
					if s != nil {
						out = append(out, rs.stateOf(i))
					}
				}
				same := true
				for _, st := range out {
					same = same && st == out[0]
				}
				if same || time.Now().After(deadline) {
					return out
				}
				target = 0
			}
		}
		if time.Now().After(deadline) {
			var idx []string
			for i, s := range rs.servers {
				if s != nil {
					idx = append(idx, fmt.Sprintf("c%d: %s applied %d last %d", i+1, s.Raft().State(), s.Raft().AppliedIndex(), s.Raft().LastIndex()))
				}
			}
			rs.t.Fatalf("replicas did not converge on index %d within %v (leader c%d): %s", target, d, l+1, strings.Join(idx, "; "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeAgents registers an agent for every node of the cluster and sends
// their heartbeats every period until stopped; a stopped node falls
// silent (as if its server lost power).
type fakeAgents struct {
	links   map[string]*AgentLink
	mu      sync.Mutex
	silent  map[string]bool
	routes  map[string][]*Routes
	stop    chan struct{}
	wg      sync.WaitGroup
	period  time.Duration
	started bool
}

func startAgents(t *testing.T, endpoints []string, names []string) *fakeAgents {
	t.Helper()
	fa := &fakeAgents{links: map[string]*AgentLink{}, silent: map[string]bool{}, routes: map[string][]*Routes{}, stop: make(chan struct{}), period: 50 * time.Millisecond}
	for i, name := range names {
		link := NewAgentLink(AgentConfig{
			Controllers: endpoints, JoinToken: joinTok,
			Register: RegisterRequest{Node: name, Role: roleOf(name), Addr: fmt.Sprintf("127.0.0.1:%d", 21000+i)},
			OnRoutes: func(r *Routes) {
				fa.mu.Lock()
				fa.routes[name] = append(fa.routes[name], r)
				fa.mu.Unlock()
			},
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := link.Register(ctx)
		cancel()
		if err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		link.Start()
		fa.links[name] = link
	}
	fa.wg.Add(1)
	go fa.run()
	t.Cleanup(fa.close)
	return fa
}

func (fa *fakeAgents) run() {
	defer fa.wg.Done()
	tk := time.NewTicker(fa.period)
	defer tk.Stop()
	for {
		select {
		case <-fa.stop:
			return
		case <-tk.C:
			fa.mu.Lock()
			for name, l := range fa.links {
				if !fa.silent[name] {
					l.Send(&HeartbeatRequest{})
				}
			}
			fa.mu.Unlock()
		}
	}
}

func (fa *fakeAgents) silence(names ...string) {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	for _, n := range names {
		fa.silent[n] = true
	}
}

func (fa *fakeAgents) lastRoutes(name string) *Routes {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	rs := fa.routes[name]
	if len(rs) == 0 {
		return nil
	}
	return rs[len(rs)-1]
}

func (fa *fakeAgents) close() {
	select {
	case <-fa.stop:
		return
	default:
	}
	close(fa.stop)
	fa.wg.Wait()
	for _, l := range fa.links {
		l.Close()
	}
}

// rawCall sends one request and returns the status and body.
func rawCall(t *testing.T, hc *http.Client, method, url, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func deployReq(spec string) DeployRequest {
	return DeployRequest{Spec: spec, File: "test.yaml", RPS: 1000}
}
