package controller

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

const backupSpec = `name: kv
class: IOT
nodes:
  kvs:   {service: kvs, shards: 2, backups: 1}
  count: {service: count, shards: 1, backups: 1}
edges:
  - {from: kvs, to: count}
`

func TestSingleReplicaAPI(t *testing.T) {
	rs := startReplicas(t, clusterOpts{n: 1, inmem: true})
	agents := startAgents(t, rs.endpoints(), nodeNames)
	_ = agents
	c := rs.client(adminTok)
	ctx := context.Background()

	// A dry run places every instance and changes nothing.
	before := rs.stateOf(0)
	plan, err := c.Plan(ctx, deployReq(backupSpec))
	if err != nil {
		t.Fatal(err)
	}
	if !plan.DryRun || len(plan.Instances) != 6 || len(plan.Unplaced) != 0 || plan.Metrics == nil {
		t.Fatalf("plan: %+v", plan)
	}
	for _, in := range plan.Instances {
		if in.Node == "" || !strings.Contains(in.Explanation, in.Instance) {
			t.Errorf("plan instance %+v: want a node and an explanation naming it", in)
		}
	}
	if after := rs.stateOf(0); after != before {
		t.Fatal("a plan changed the state")
	}

	dep, err := c.Deploy(ctx, deployReq(backupSpec))
	if err != nil {
		t.Fatal(err)
	}
	if dep.DryRun || dep.AppID != 1 || dep.Epoch == 0 {
		t.Fatalf("deploy answer %+v", dep)
	}
	// The deploy decided what the plan did: placement is deterministic for
	// the same load and seed.
	for i := range plan.Instances {
		if plan.Instances[i].Node != dep.Instances[i].Node {
			t.Errorf("instance %s: plan %s, deploy %s", plan.Instances[i].Instance, plan.Instances[i].Node, dep.Instances[i].Node)
		}
	}
	// Replicas of a shard never share a server (fault domains).
	servers := map[string]string{}
	for _, in := range dep.Instances {
		srv := in.Node[:strings.LastIndex(in.Node, "/")]
		shard := strings.SplitN(in.Instance, ".", 3)[:2]
		key := strings.Join(shard, ".")
		if servers[key] == srv {
			t.Errorf("%s on %s shares server %s with another replica", in.Instance, in.Node, srv)
		}
		servers[key] = srv
	}

	if _, err := c.Deploy(ctx, deployReq(backupSpec)); !isStatus(err, http.StatusConflict) {
		t.Fatalf("second deploy: %v, want 409", err)
	}
	bad := deployReq("name: x\nclass: IOT\nnodes:\n  a: {service: nosuch}\n")
	if _, err := c.Deploy(ctx, bad); !isStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("deploy of a bad spec: %v, want 400 naming the service", err)
	}

	apps, err := c.Apps(ctx)
	if err != nil || len(apps) != 1 || apps[0].Name != "kv" || apps[0].Instances != 6 || apps[0].Unplaced != 0 {
		t.Fatalf("apps %+v, %v", apps, err)
	}
	pl, err := c.Placements(ctx, "kv", true)
	if err != nil || len(pl) != 6 || pl[0].Explanation == "" {
		t.Fatalf("placements %+v, %v", pl, err)
	}
	pl, _ = c.Placements(ctx, "", false)
	if len(pl) != 6 || pl[0].Explanation != "" {
		t.Fatalf("placements without explain: %+v", pl)
	}
	if _, err := c.Placements(ctx, "nope", false); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("placements of an unknown app: %v", err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 6 {
		t.Fatalf("nodes %+v, %v", nodes, err)
	}
	for _, n := range nodes {
		if n.Alive == nil || !*n.Alive {
			t.Errorf("node %s not alive: %+v", n.Name, n)
		}
	}
	ev, err := c.Events(ctx, 0, 0)
	if err != nil || !hasEvent(ev.Events, "deployed", "kv") {
		t.Fatalf("events %+v, %v", ev, err)
	}

	// Every agent received the routing table with the application, and it
	// converts into a runtime table.
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := agents.lastRoutes("r0/s0/host")
		if r != nil && r.Epoch >= dep.Epoch {
			topo := mustTopo(t)
			tab, skipped, err := r.Table(topo, services.Registry())
			if err != nil || len(skipped) != 0 || len(tab.Apps) != 1 || tab.Apps[0].ID != 1 || !tab.Addrs[0].IsValid() {
				t.Fatalf("routes -> table: %+v skipped %v err %v", tab, skipped, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent r0/s0/host got no routes at epoch %d", dep.Epoch)
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := c.Undeploy(ctx, "kv"); err != nil {
		t.Fatal(err)
	}
	if err := c.Undeploy(ctx, "kv"); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("second undeploy: %v", err)
	}
	// The undeployed application's resources are free again: it deploys
	// to the same nodes.
	dep2, err := c.Deploy(ctx, deployReq(backupSpec))
	if err != nil {
		t.Fatal(err)
	}
	for i := range dep.Instances {
		if dep.Instances[i].Node != dep2.Instances[i].Node {
			t.Errorf("redeploy moved %s from %s to %s", dep.Instances[i].Instance, dep.Instances[i].Node, dep2.Instances[i].Node)
		}
	}

	code, body := rawCall(t, rs.hc, "GET", "http://"+rs.servers[0].APIAddr()+"/metrics", "", "")
	for _, m := range []string{"e3_controller_apps", "e3_controller_is_leader", "e3_controller_routing_epoch", "e3_controller_heartbeats_total", "e3_controller_http_requests_total"} {
		if code != 200 || !strings.Contains(body, m) {
			t.Errorf("metrics: %d, missing %s", code, m)
		}
	}
	code, body = rawCall(t, rs.hc, "GET", "http://"+rs.servers[0].APIAddr()+"/v1/nope", "", "")
	if code != 404 || !strings.Contains(body, "/v1/nope") {
		t.Errorf("unknown path: %d %s", code, body)
	}
}

func isStatus(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == code
}

func hasEvent(evs []Event, kind, app string) bool {
	for _, e := range evs {
		if e.Kind == kind && e.App == app {
			return true
		}
	}
	return false
}

func mustTopo(t *testing.T) *topology.Topology {
	t.Helper()
	topo, err := TopologyOf(testCluster)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// TestAuth sends every mutating call with no token, a malformed header,
// a wrong token and the other kind of token, and checks each is refused
// (401 or 403), logged in the metrics, and changes nothing.
func TestAuth(t *testing.T) {
	rs := startReplicas(t, clusterOpts{n: 1, inmem: true})
	startAgents(t, rs.endpoints(), nodeNames)
	if _, err := rs.client(adminTok).Deploy(context.Background(), deployReq(backupSpec)); err != nil {
		t.Fatal(err)
	}
	base := "http://" + rs.servers[0].APIAddr()
	deploy, _ := json.Marshal(deployReq(strings.Replace(backupSpec, "name: kv", "name: kv2", 1)))
	calls := []struct {
		method, path, body string
		wants              string // admin or join
	}{
		{"POST", "/v1/apps", string(deploy), "admin"},
		{"DELETE", "/v1/apps/kv", "", "admin"},
		{"POST", "/v1/plan", string(deploy), "admin"},
		{"POST", "/v1/cluster/join", `{"id":"evil","raft_addr":"127.0.0.1:1","api_addr":"127.0.0.1:2"}`, "admin"},
		{"DELETE", "/v1/cluster/replicas/c1", "", "admin"},
		{"POST", "/v1/agents/register", `{"node":"r0/s0/host","role":"host","addr":"10.9.9.9:1"}`, "join"},
		{"POST", "/v1/agents/heartbeat", `{"node":"r0/s0/host","seq":1}`, "join"},
		{"POST", "/v1/agents/migrations/1", `{"ok":true}`, "join"},
		{"GET", "/v1/routes", "", "any"},
	}
	before := rs.converge(5 * time.Second)[0]
	for _, c := range calls {
		headers := []struct {
			name, value string
			code        int
		}{
			{"missing", "", http.StatusUnauthorized},
			{"not bearer", "Basic " + adminTok, http.StatusUnauthorized},
			{"wrong", "Bearer not-the-token-at-all", http.StatusForbidden},
		}
		switch c.wants {
		case "admin":
			headers = append(headers, struct {
				name, value string
				code        int
			}{"join token", "Bearer " + joinTok, http.StatusForbidden})
		case "join":
			headers = append(headers, struct {
				name, value string
				code        int
			}{"admin token", "Bearer " + adminTok, http.StatusForbidden})
		}
		for _, h := range headers {
			code, body := rawCall(t, rs.hc, c.method, base+c.path, h.value, c.body)
			if code != h.code {
				t.Errorf("%s %s with %s token: %d %s, want %d", c.method, c.path, h.name, code, body, h.code)
				continue
			}
			var eb ErrorBody
			if json.Unmarshal([]byte(body), &eb) != nil || eb.Error == "" || eb.Code == "" {
				t.Errorf("%s %s with %s token: error body %q is not an ErrorBody", c.method, c.path, h.name, body)
			}
		}
	}
	after := rs.converge(5 * time.Second)[0]
	if after != before {
		t.Fatalf("refused calls changed the state:\nbefore %s\nafter  %s", before, after)
	}
	_, metrics := rawCall(t, rs.hc, "GET", base+"/metrics", "", "")
	if !strings.Contains(metrics, `e3_controller_auth_refused_total{reason="wrong_token",replica="c1",wants="admin"}`) {
		t.Error("refusals not counted in e3_controller_auth_refused_total")
	}
	// With the right token the same call goes through.
	code, body := rawCall(t, rs.hc, "DELETE", base+"/v1/apps/kv", "Bearer "+adminTok, "")
	if code != 200 {
		t.Fatalf("undeploy with the admin token: %d %s", code, body)
	}
}
