package controller

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/services"
)

func serverOf(node string) string { return node[:strings.LastIndex(node, "/")] }

// TestFailover silences both agents of the server that holds a primary
// (its power failed) and checks the controller's failover: the server is
// declared failed between the failure timeout and a few heartbeat periods
// after it, every primary it held is promoted on the node of its backup,
// new backups are created on other servers, nothing is left on the failed
// server, the routes are republished at a new epoch and reach the agents,
// and the server is taken back when it reports again.
func TestFailover(t *testing.T) {
	rs := startReplicas(t, clusterOpts{n: 1, inmem: true, tweak: func(_ int, c *Config) { c.LeaderGrace = 200 * time.Millisecond }})
	agents := startAgents(t, rs.endpoints(), nodeNames)
	defer agents.close()
	c := rs.client(adminTok)
	ctx := context.Background()
	// Spread the load so that primaries and backups use all servers.
	req := deployReq(backupSpec)
	req.RPS = 200000
	dep, err := c.Deploy(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, in := range dep.Instances {
		before[in.Instance] = in.Node
	}
	victim := serverOf(before["kvs.0"])
	t.Logf("placement: %v; failing server %s", before, victim)
	time.Sleep(300 * time.Millisecond) // past the leader's grace
	silenced := time.Now()
	agents.silence(victim+"/host", victim+"/nic0")

	var st *State
	var detected time.Duration
	for {
		rs.servers[0].Read(func(s *State) {
			if n := s.Nodes[victim+"/host"]; n != nil && n.Failed {
				if detected == 0 {
					detected = time.Since(silenced)
				}
				// Wait for the routes event that closes the round (only
				// failover rounds record one).
				for _, e := range s.Events {
					if e.Kind == "routes" {
						st = copyState(t, s)
					}
				}
			}
		})
		if st != nil {
			break
		}
		if time.Since(silenced) > 5*time.Second {
			t.Fatalf("server %s not failed over 5 s after it fell silent", victim)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("server %s declared failed %v after its agents fell silent", victim, detected)
	// The last heartbeat may have left up to one period before the
	// silence began.
	if detected < 450*time.Millisecond || detected > 1500*time.Millisecond {
		t.Errorf("failure declared after %v, want between the 500 ms timeout (less one 50 ms period) and 1.5 s", detected)
	}
	if st.Epoch <= dep.Epoch {
		t.Errorf("epoch %d after failover, want above the deploy's %d", st.Epoch, dep.Epoch)
	}
	a := st.Apps["kv"]
	after := map[string]InstanceRecord{}
	for _, in := range a.Instances {
		after[in.Instance] = in
		if in.Node == "" {
			t.Errorf("%s has no node after failover", in.Instance)
		}
		if serverOf(in.Node) == victim {
			t.Errorf("%s still on the failed server (%s)", in.Instance, in.Node)
		}
	}
	for _, p := range []string{"kvs.0", "kvs.1", "count.0"} {
		b := p + ".b1"
		if serverOf(after[p].Node) == serverOf(after[b].Node) {
			t.Errorf("%s on %s and its backup on %s: same server", p, after[p].Node, after[b].Node)
		}
		if serverOf(before[p]) != victim {
			if after[p].Node != before[p] {
				t.Errorf("%s moved from %s though its server is alive", p, before[p])
			}
			continue
		}
		// The primary was lost: its backup's replica took over, where the
		// backup ran.
		if after[p].Node != before[b] || after[p].PromotedFrom != b {
			t.Errorf("%s after failover: %+v, want promoted from %s on %s", p, after[p], b, before[b])
		}
	}
	kinds := map[string]int{}
	for _, e := range st.Events {
		kinds[e.Kind]++
	}
	for _, k := range []string{"server-failed", "promote", "create-backup", "routes"} {
		if kinds[k] == 0 {
			t.Errorf("no %s event; events: %v", k, kinds)
		}
	}
	// The surviving agents receive the new table, and it converts.
	deadline := time.Now().Add(3 * time.Second)
	var watcher string
	for _, n := range nodeNames {
		if serverOf(n) != victim {
			watcher = n
			break
		}
	}
	for {
		if r := agents.lastRoutes(watcher); r != nil && r.Epoch >= st.Epoch {
			tab, skipped, err := r.Table(mustTopo(t), services.Registry())
			if err != nil || len(skipped) > 0 {
				t.Fatalf("new routes: %v, skipped %v", err, skipped)
			}
			for _, n := range tab.Apps[0].Nodes {
				if serverOf(mustTopo(t).Name(n)) == victim {
					t.Errorf("routes at epoch %d still send to %s", r.Epoch, mustTopo(t).Name(n))
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s did not get the routes of epoch %d", watcher, st.Epoch)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Power comes back: the agents report and the nodes rejoin, empty.
	agents.mu.Lock()
	delete(agents.silent, victim+"/host")
	delete(agents.silent, victim+"/nic0")
	agents.mu.Unlock()
	deadline = time.Now().Add(3 * time.Second)
	for {
		var failed bool
		rs.servers[0].Read(func(s *State) { failed = s.Nodes[victim+"/host"].Failed || s.Nodes[victim+"/nic0"].Failed })
		if !failed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server's nodes did not rejoin after reporting again")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And a new deploy may use them again.
	p, err := c.Plan(ctx, deployReq(tinySpec))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Masked {
		if serverOf(m) == victim {
			t.Errorf("rejoined node %s still masked from placement", m)
		}
	}
}

func copyState(t *testing.T, s *State) *State {
	t.Helper()
	st := NewState()
	if err := json.Unmarshal([]byte(stateJSON(t, s)), st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestLateAgents starts the agents well after the leader declared every
// silent server failed: their registrations bring the nodes back at once,
// so a deploy right after succeeds.
func TestLateAgents(t *testing.T) {
	rs := startReplicas(t, clusterOpts{n: 1, inmem: true, tweak: func(_ int, c *Config) { c.LeaderGrace = 50 * time.Millisecond }})
	time.Sleep(800 * time.Millisecond) // grace and failure timeout over: every server failed
	agents := startAgents(t, rs.endpoints(), nodeNames)
	defer agents.close()
	dep, err := rs.client(adminTok).Deploy(context.Background(), deployReq(backupSpec))
	if err != nil {
		t.Fatalf("deploy right after the agents registered: %v", err)
	}
	if len(dep.Masked) != 0 {
		t.Errorf("nodes masked after registering: %v", dep.Masked)
	}
}
