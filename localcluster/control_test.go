package localcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e3-platform/e3/controller"
	"github.com/e3-platform/e3/localcluster"
)

// one is a client of a single replica that does not retry.
func one(api, token string) *controller.Client {
	return &controller.Client{Endpoints: []string{api}, Token: token, Retry: -1, HTTP: &http.Client{Timeout: 3 * time.Second}}
}

// snapshot is what a replica's API shows of its state.
type snapshot struct {
	Applied uint64
	Epoch   uint64
	Apps    []string
	Nodes   []string
	Events  uint64
}

func snap(t *testing.T, cl *controller.Client) snapshot {
	t.Helper()
	ctx := context.Background()
	cs, err := cl.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{Applied: cs.Applied, Epoch: cs.Epoch}
	apps, err := cl.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		s.Apps = append(s.Apps, fmt.Sprintf("%s id %d epoch %d unplaced %d", a.Name, a.ID, a.Epoch, a.Unplaced))
	}
	ev, err := cl.Events(ctx, 0, 1024)
	if err != nil {
		t.Fatal(err)
	}
	s.Events = ev.Next
	return s
}

// TestProcMinorityRefusesWrites partitions the leader of three replica
// processes from the other two by stopping them (SIGSTOP): the leader
// steps down once its lease runs out, and from then on every write sent
// to it (deploy, undeploy, an agent's registration) is refused and its
// state does not change. When the majority runs again (SIGCONT), the
// cluster elects a leader and no refused write appears on any replica.
// The writes are sent after the step-down: until then the lone leader
// still appends proposals to its log (it cannot commit them; they fail
// with 503), and with the majority stopped rather than cut off, nobody
// overwrites them, so a leader elected after the heal could commit them.
// The namespaced test (TestProcNetnsPartition) partitions with the
// majority running and writes from the first moment.
func TestProcMinorityRefusesWrites(t *testing.T) {
	c := upProcs(t, localcluster.Config{Controllers: 3})
	cl := c.Client()
	ctx := context.Background()
	deploy(t, cl, fmt.Sprintf(tinySpec, "base"))
	cs, err := cl.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var minority *localcluster.Member
	var majority []*localcluster.Member
	for _, m := range c.Controllers() {
		if m.API == cs.LeaderAPI {
			minority = m
		} else {
			majority = append(majority, m)
		}
	}
	for _, m := range c.Controllers() {
		waitFor(t, 5*time.Second, m.Name+" has the base application", func() bool {
			apps, err := one(m.API, "").Apps(ctx)
			return err == nil && len(apps) == 1
		})
	}
	lone := one(minority.API, c.AdminToken())
	before := snap(t, lone)
	stopped := time.Now()
	for _, m := range majority {
		if err := c.Signal(m.Name, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			for _, m := range majority {
				c.Signal(m.Name, syscall.SIGCONT)
			}
		}
	}
	defer resume()
	waitFor(t, 5*time.Second, minority.Name+" steps down", func() bool {
		cs, err := lone.Cluster(ctx)
		return err == nil && cs.State != "Leader"
	})
	t.Logf("%s cut off from the majority: stepped down after %v", minority.Name, time.Since(stopped).Round(time.Millisecond))

	agent := one(minority.API, c.JoinToken())
	refused, rounds := 0, 0
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); rounds++ {
		name := fmt.Sprintf("p%d", rounds)
		if _, err := lone.Deploy(ctx, controller.DeployRequest{Spec: fmt.Sprintf(tinySpec, name), RPS: 100}); refusedWith503(t, "deploy "+name, err) {
			refused++
		}
		if refusedWith503(t, "undeploy base", lone.Undeploy(ctx, "base")) {
			refused++
		}
		if _, err := agent.Register(ctx, controller.RegisterRequest{Node: "r0/s0/host", Role: "host", Addr: "127.0.0.9:7000"}); refusedWith503(t, "register", err) {
			refused++
		}
		time.Sleep(50 * time.Millisecond)
	}
	during := snap(t, lone)
	if !reflect.DeepEqual(before, during) {
		t.Errorf("the minority's state changed while cut off:\nbefore %+v\nduring %+v", before, during)
	}
	t.Logf("%d of %d writes to the minority refused with 503 in %d rounds", refused, 3*rounds, rounds)
	resume()
	healed := time.Now()
	waitFor(t, 10*time.Second, "a leader after the heal", func() bool {
		cs, err := lone.Cluster(ctx)
		return err == nil && cs.Leader != ""
	})
	t.Logf("leader again %v after the heal", time.Since(healed).Round(time.Millisecond))
	var states []snapshot
	waitFor(t, 10*time.Second, "every replica holding the same state", func() bool {
		states = states[:0]
		for _, m := range c.Controllers() {
			cs, err := one(m.API, "").Cluster(ctx)
			if err != nil {
				return false
			}
			s := snap(t, one(m.API, ""))
			s.Applied = cs.Applied
			states = append(states, s)
		}
		return reflect.DeepEqual(states[0], states[1]) && reflect.DeepEqual(states[0], states[2])
	})
	for i, s := range states {
		if len(s.Apps) != 1 || !strings.HasPrefix(s.Apps[0], "base ") {
			t.Errorf("replica %s after the heal: applications %v, want base only", c.Controllers()[i].Name, s.Apps)
		}
	}
}

// refusedWith503 reports whether err is the API's 503 (no leader, or
// leadership lost); other outcomes fail the test.
func refusedWith503(t *testing.T, what string, err error) bool {
	t.Helper()
	var ae *controller.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
		return true
	}
	t.Errorf("%s on the minority: %v, want 503", what, err)
	return false
}

// TestProcTokens sends every mutating call of the API to an e3
// controller process with a missing, malformed, wrong or wrong-kind
// token, and e3 deploy and e3 undeploy with a wrong or no token: all are
// refused (401 or 403), the controller logs and counts each refusal and
// never the token, and its state does not change.
func TestProcTokens(t *testing.T) {
	c := upProcs(t, localcluster.Config{Controllers: 1})
	ctx := context.Background()
	deploy(t, c.Client(), fmt.Sprintf(tinySpec, "base"))
	ctl := c.Controllers()[0]
	before := snap(t, one(ctl.API, ""))
	nodesBefore := nodeList(t, ctl.API)
	refusedBefore := refusedCount(t, ctl.API)

	const wrong = "not-the-token-0123456789"
	spec := fmt.Sprintf(tinySpec, "evil")
	calls := []struct{ method, path, body, want string }{
		{"POST", "/v1/apps", `{"spec": ` + strconv.Quote(spec) + `}`, "admin"},
		{"DELETE", "/v1/apps/base", "", "admin"},
		{"POST", "/v1/plan", `{"spec": ` + strconv.Quote(spec) + `}`, "admin"},
		{"POST", "/v1/cluster/join", `{"id": "c9", "raft_addr": "127.0.0.1:1", "api_addr": "127.0.0.1:2"}`, "admin"},
		{"DELETE", "/v1/cluster/replicas/c1", "", "admin"},
		{"POST", "/v1/agents/register", `{"node": "r0/s0/host", "role": "host", "addr": "127.0.0.9:7000"}`, "join"},
		{"POST", "/v1/agents/heartbeat", `{"node": "r0/s0/host", "seq": 1, "epoch": 1}`, "join"},
		{"POST", "/v1/agents/migrations/1", `{"ok": true}`, "join"},
		{"GET", "/v1/routes", "", "any"},
	}
	auths := map[string]string{
		"missing":   "",
		"malformed": "Token " + c.AdminToken(),
		"empty":     "Bearer ",
		"wrong":     "Bearer " + wrong,
	}
	refused := 0
	for _, call := range calls {
		as := map[string]string{}
		for k, v := range auths {
			as[k] = v
		}
		switch call.want {
		case "admin":
			as["join token"] = "Bearer " + c.JoinToken()
		case "join":
			as["admin token"] = "Bearer " + c.AdminToken()
		}
		for what, auth := range as {
			req, err := http.NewRequestWithContext(ctx, call.method, "http://"+ctl.API+call.path, strings.NewReader(call.body))
			if err != nil {
				t.Fatal(err)
			}
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s with a %s token: %d, want 401 or 403", call.method, call.path, what, resp.StatusCode)
				continue
			}
			refused++
		}
	}
	// The client commands, as processes.
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"deploy", "iot-ts", "--token", wrong}, nil, "403"},
		{[]string{"undeploy", "base", "--token", wrong}, nil, "403"},
		{[]string{"deploy", "iot-ts"}, []string{"E3_TOKEN="}, "no admin token"},
	} {
		cmd := exec.Command(os.Args[0], append(tc.args, "--controller", ctl.API, "--timeout", "2s")...)
		cmd.Env = append(append(os.Environ(), e3Env...), tc.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("e3 %s: %v, output %q; want a failure saying %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
		if strings.Contains(tc.want, "403") {
			refused++
		}
	}
	after := snap(t, one(ctl.API, ""))
	if !reflect.DeepEqual(before, after) {
		t.Errorf("the state changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if nodesAfter := nodeList(t, ctl.API); !reflect.DeepEqual(nodesBefore, nodesAfter) {
		t.Errorf("the nodes changed:\nbefore %v\nafter  %v", nodesBefore, nodesAfter)
	}
	counted := refusedCount(t, ctl.API) - refusedBefore
	if counted != float64(refused) {
		t.Errorf("e3_controller_auth_refused_total grew by %v, want %d", counted, refused)
	}
	log, err := os.ReadFile(ctl.Log)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(log, []byte(wrong)) || bytes.Contains(log, []byte(c.AdminToken())) {
		t.Errorf("the controller's log %s holds a token", ctl.Log)
	}
	logged := bytes.Count(log, []byte("refused request"))
	if logged < refused {
		t.Errorf("%d refusals logged, want %d", logged, refused)
	}
	t.Logf("%d requests with a missing, malformed, wrong or wrong-kind token refused, logged and counted; the state is unchanged (%d applications, epoch %d, applied index %d)",
		refused, len(after.Apps), after.Epoch, after.Applied)
}

// nodeList lists the registered nodes with their addresses.
func nodeList(t *testing.T, api string) []string {
	t.Helper()
	ns, err := one(api, "").Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf("%s %s %s", n.Name, n.Addr, n.Role))
	}
	return out
}

// refusedCount sums e3_controller_auth_refused_total.
func refusedCount(t *testing.T, api string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "e3_controller_auth_refused_total{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}
