package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/e3-platform/e3/controller"
)

const (
	cliAdminTok = "cli-admin-0123456789"
	cliJoinTok  = "cli-join-0123456789"
)

// startController runs a one-replica controller in memory with an agent
// registered for every node of 3xType1-SmartNIC.
func startController(t *testing.T) string {
	t.Helper()
	_, tr := raft.NewInmemTransport("")
	s, err := controller.New(controller.Config{ID: "c1", HTTPAddr: "127.0.0.1:0", InMemory: true, Transport: tr,
		AdminToken: cliAdminTok, JoinToken: cliJoinTok, LeaderGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); tr.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for !s.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("the controller did not lead within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := &controller.Client{Endpoints: []string{s.APIAddr()}, Token: cliJoinTok}
	for i, n := range []string{"r0/s0/host", "r0/s0/nic0", "r0/s1/host", "r0/s1/nic0", "r0/s2/host", "r0/s2/nic0"} {
		role := "smartnic"
		if strings.HasSuffix(n, "host") {
			role = "host"
		}
		if _, err := c.Register(context.Background(), controller.RegisterRequest{Node: n, Role: role, Addr: fmt.Sprintf("127.0.0.1:%d", 22000+i)}); err != nil {
			t.Fatal(err)
		}
	}
	return s.APIAddr()
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestClientCommands(t *testing.T) {
	api := startController(t)
	spec := filepath.Join(t.TempDir(), "tiny.yaml")
	os.WriteFile(spec, []byte("name: tiny\nclass: RTA\nnodes:\n  count: {service: count, shards: 2, backups: 1}\n  topk: {service: topk}\nedges:\n  - {from: count, to: topk}\n"), 0o644)
	ctl := "--controller=" + api

	code, out, errOut := runCLI(t, "plan", spec, ctl, "--token", cliAdminTok, "--explain")
	if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, "count.0.b1") || !strings.Contains(out, "candidates examined") {
		t.Fatalf("plan: %d\n%s%s", code, out, errOut)
	}
	t.Setenv("E3_TOKEN", cliAdminTok)
	code, out, errOut = runCLI(t, "deploy", spec, ctl, "--load", "5000")
	if code != 0 || !strings.Contains(out, "tiny deployed as app 1") {
		t.Fatalf("deploy: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "deploy", "rta-ptc", ctl, "--json")
	if code != 0 || !strings.Contains(out, `"app": "RTA-PTC"`) {
		t.Fatalf("deploy of a built-in: %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "deploy", spec, ctl)
	if code != 1 || !strings.Contains(errOut, "409") || !strings.Contains(errOut, "already deployed") {
		t.Fatalf("second deploy: %d %s", code, errOut)
	}
	code, out, errOut = runCLI(t, "status", ctl)
	for _, want := range []string{"leader c1", "r0/s2/nic0", "tiny", "RTA-PTC", "deployed"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("status lacks %q: %d\n%s%s", want, code, out, errOut)
		}
	}
	code, out, _ = runCLI(t, "undeploy", "tiny", ctl)
	if code != 0 || !strings.Contains(out, "tiny undeployed") {
		t.Fatalf("undeploy: %d %s", code, out)
	}

	// Wrong and missing tokens are refused and change nothing.
	code, _, errOut = runCLI(t, "undeploy", "RTA-PTC", ctl, "--token", "wrong-token-wrong-token")
	if code != 1 || !strings.Contains(errOut, "403") {
		t.Fatalf("undeploy with a wrong token: %d %s", code, errOut)
	}
	t.Setenv("E3_TOKEN", "")
	code, _, errOut = runCLI(t, "deploy", spec, ctl)
	if code != 1 || !strings.Contains(errOut, "no admin token") {
		t.Fatalf("deploy without a token: %d %s", code, errOut)
	}
	code, out, _ = runCLI(t, "status", ctl, "--json")
	if code != 0 || !strings.Contains(out, `"RTA-PTC"`) || strings.Contains(out, `"name": "tiny"`) {
		t.Fatalf("status after refused calls: %d\n%s", code, out)
	}

	code, _, errOut = runCLI(t, "deploy", "no-such-app", ctl, "--token", cliAdminTok)
	if code != 1 || !strings.Contains(errOut, "built-ins") {
		t.Fatalf("unknown app: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "status", "--controller=127.0.0.1:1", "--timeout", "200ms")
	if code != 1 || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Fatalf("unreachable controller: %d %s", code, errOut)
	}
}

func TestControllerFlags(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := runCLI(t, "controller", "--data", dir, "--cluster", "9xNoSuch", "--http", "127.0.0.1:0", "--raft", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "9xNoSuch") {
		t.Fatalf("bad --cluster: %d %s", code, errOut)
	}
	// The first start created both tokens, different, and keeps them.
	a, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	j, _ := os.ReadFile(filepath.Join(dir, "join.token"))
	if len(a) < 16 || len(j) < 16 || string(a) == string(j) {
		t.Fatalf("generated tokens %q %q", a, j)
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	code, _, errOut = runCLI(t, "controller", "--data", dir, "--token-file", short)
	if code != 1 || !strings.Contains(errOut, "--token-file") || !strings.Contains(errOut, "3 bytes") {
		t.Fatalf("short token: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "controller", "--data", dir, "--log-level", "loud")
	if code != 1 || !strings.Contains(errOut, "loud") {
		t.Fatalf("bad --log-level: %d %s", code, errOut)
	}
}
