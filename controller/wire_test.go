package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

func TestRoutesTable(t *testing.T) {
	s := registered(t)
	mustApply(t, s, 10, cmdDeploy(t, 1, tinySpec, nodeNames))
	mustApply(t, s, 11, cmdDeploy(t, 1, renamed(tinySpec, "two"), nodeNames))
	topo := mustTopo(t)

	r := routesOf(s)
	tab, skipped, err := r.Table(topo, services.Registry())
	if err != nil || len(skipped) != 0 || len(tab.Apps) != 2 || tab.Epoch != s.Epoch {
		t.Fatalf("table %+v skipped %v err %v", tab, skipped, err)
	}
	for n := range topo.Nodes() {
		if !tab.Addrs[n].IsValid() {
			t.Errorf("node %s has no address", topo.Name(n))
		}
	}

	// A backup without a node stands in on the first node of another
	// server; an application whose primary has no node is left out.
	r = routesOf(s)
	r.Apps[0].Instances[1].Node = "" // count.0.b1; count.0 is on r0/s0/host
	r.Apps[1].Instances[0].Node = "" // count.0 of "two"
	tab, skipped, err = r.Table(topo, services.Registry())
	if err != nil || len(tab.Apps) != 1 || len(skipped) != 1 || skipped[0] != "two" {
		t.Fatalf("with unplaced instances: %d apps, skipped %v, %v", len(tab.Apps), skipped, err)
	}
	if got := topo.Name(tab.Apps[0].Nodes[1]); got != "r0/s1/host" {
		t.Errorf("unplaced backup stands in on %s, want r0/s1/host (first node of another server)", got)
	}
	// With the other servers gone, it stands in on the primary's server,
	// never on the primary's node.
	r = routesOf(s)
	r.Apps[0].Instances[1].Node = ""
	for i := 2; i < len(r.Nodes); i++ {
		r.Nodes[i].Failed = true
	}
	for k := range r.Apps[0].Instances {
		if k != 1 {
			r.Apps[0].Instances[k].Node = "r0/s0/host"
		}
	}
	r.Apps = r.Apps[:1]
	tab, _, err = r.Table(topo, services.Registry())
	if err != nil || topo.Name(tab.Apps[0].Nodes[1]) != "r0/s0/nic0" {
		t.Fatalf("stand-in on a one-server cluster: %v, %v", tab, err)
	}

	// A failed node has no address.
	r = routesOf(s)
	r.Nodes[0].Failed = true
	tab, _, err = r.Table(topo, services.Registry())
	if err != nil || tab.Addrs[0].IsValid() {
		t.Fatalf("failed node's address %v, %v", tab.Addrs[0], err)
	}

	for _, tc := range []struct {
		name string
		edit func(r *Routes)
		says string
	}{
		{"bad node name", func(r *Routes) { r.Nodes[0].Name = "r0/s9/host" }, "s9"},
		{"bad address", func(r *Routes) { r.Nodes[0].Addr = "nowhere" }, "nowhere"},
		{"instance order", func(r *Routes) { r.Apps[0].Instances[0].Instance = "topk.0" }, "topk.0"},
		{"bad instance node", func(r *Routes) { r.Apps[0].Instances[0].Node = "r5/s0/host" }, "r5"},
		{"bad spec", func(r *Routes) { r.Apps[0].Spec = "name: [" }, "test.yaml"},
	} {
		r := routesOf(s)
		tc.edit(r)
		if _, _, err := r.Table(topo, services.Registry()); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.says)
		}
	}
}

// testLeader builds the leader's view of s without raft or HTTP.
func testLeader(t testing.TB, st *State) (*Server, *leader) {
	t.Helper()
	cfg := Config{Algo: DefaultAlgo}
	cfg.HeartbeatPeriod, cfg.FailureTimeout, cfg.LeaderGrace, cfg.Now = DefaultHeartbeatPeriod, DefaultFailureTimeout, DefaultLeaderGrace, time.Now
	s := &Server{cfg: cfg, fsm: &FSM{st: st}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(s.cancel)
	l, err := s.buildLeader()
	if err != nil {
		t.Fatal(err)
	}
	return s, l
}

// FuzzHeartbeat feeds arbitrary heartbeat bodies through the handler's
// path: decoding, the node lookup, the conversion to the orchestrator's
// record and Observe. Nothing may panic; whatever is accepted leaves the
// orchestrator able to decide.
func FuzzHeartbeat(f *testing.F) {
	f.Add([]byte(`{"node":"r0/s0/nic0","seq":3,"queue":40,"rx_bytes":100,"tx_bytes":5,"samples":[{"app":"tiny","instance":"count.0","count":20,"mean_ns":1000}]}`))
	f.Add([]byte(`{"node":"r0/s0/host","seq":65535,"samples":[{"app":"tiny","instance":"count.0","count":0,"mean_ns":9},{"app":"tiny","instance":"count.0","count":1}]}`))
	f.Add([]byte(`{"node":"r0/s0/host","queue":-5,"rx_bytes":18446744073709551615}`))
	f.Add([]byte(`{"node":"r9/s0/host"}`))
	st := registered(f)
	mustApply(f, st, 10, cmdDeploy(f, 1, tinySpec, nodeNames))
	s, l := testLeader(f, st)
	start := time.Now()
	var k int64
	f.Fuzz(func(t *testing.T, body []byte) {
		var hb HeartbeatRequest
		if err := decodeBody(body, &hb); err != nil {
			return
		}
		nr := st.Nodes[hb.Node]
		if nr == nil {
			return
		}
		k++
		now := start.Add(time.Duration(k) * time.Millisecond)
		if _, err := l.heartbeat(now, topology.NodeID(nr.ID), &hb, st); err != nil {
			t.Fatalf("heartbeat of a registered node refused: %v", err)
		}
		l.o.Decide(l.since(now))
		_ = s
	})
}

// FuzzRequestBodies decodes arbitrary bodies as each request of the API
// and runs the checks the handlers run; nothing may panic, and what a
// registration accepts names a node of the cluster.
func FuzzRequestBodies(f *testing.F) {
	f.Add([]byte(`{"node":"r0/s1/nic0","role":"smartnic","addr":"10.0.0.1:7000"}`))
	f.Add([]byte(`{"server":"r0/s2","role":"smartnic","slot":0,"addr":"10.0.0.1:7000","cores":4}`))
	f.Add([]byte(`{"spec":"name: x\nclass: RTA\nnodes:\n  a: {service: count}\n","rps":5}`))
	f.Add([]byte(`{"id":"c2","raft_addr":"1.2.3.4:5","api_addr":"1.2.3.4:6"}`))
	f.Add([]byte(`{"ok":false,"error":"disk full"}`))
	topo, _ := TopologyOf(testCluster)
	f.Fuzz(func(t *testing.T, body []byte) {
		var rr RegisterRequest
		if decodeBody(body, &rr) == nil {
			if c, err := rr.registration(topo); err == nil {
				if _, err := topo.Lookup(c.Node); err != nil {
					t.Fatalf("accepted registration of %q: %v", c.Node, err)
				}
			}
		}
		parseDeploy(body)
		var jr JoinRequest
		decodeBody(body, &jr)
		var mr MigrationReport
		decodeBody(body, &mr)
	})
}
