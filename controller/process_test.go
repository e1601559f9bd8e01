package controller

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary run one controller replica instead of
// the tests (see runChild); the process test starts three of them.
const childEnv = "E3_CONTROLLER_TEST_CHILD"

// childConfig is what a child replica is told, as JSON in childEnv.
type childConfig struct {
	ID        string   `json:"id"`
	Raft      string   `json:"raft"`
	HTTP      string   `json:"http"`
	Data      string   `json:"data"`
	Join      []string `json:"join"`
	Bootstrap bool     `json:"bootstrap"`
}

// runChild runs a replica until SIGTERM (or SIGKILL from the test) and
// prints "ready" once it serves.
func runChild() int {
	var cc childConfig
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	s, err := New(Config{ID: cc.ID, RaftAddr: cc.Raft, HTTPAddr: cc.HTTP, DataDir: cc.Data, Join: cc.Join, Bootstrap: cc.Bootstrap,
		AdminToken: adminTok, JoinToken: joinTok})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	fmt.Println("ready", s.APIAddr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Close()
	return 0
}

type child struct {
	cmd *exec.Cmd
	api string
}

func startChild(t *testing.T, cc childConfig) *child {
	t.Helper()
	b, _ := json.Marshal(cc)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("child %s: %q, %v", cc.ID, line, err)
	}
	c.api = strings.TrimSpace(strings.TrimPrefix(line, "ready "))
	return c
}

// TestProcessKillLeader runs three replicas as separate processes (this
// test binary re-executed), deploys, kills the leader with SIGKILL, and
// checks that a new leader serves within 2 s with every application.
func TestProcessKillLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes; skipped with -short")
	}
	var kids []*child
	for i := range 3 {
		cc := childConfig{ID: fmt.Sprintf("p%d", i+1), Raft: freePort(t), HTTP: freePort(t), Data: t.TempDir()}
		if i == 0 {
			cc.Bootstrap = true
		} else {
			cc.Join = []string{kids[0].api}
		}
		kids = append(kids, startChild(t, cc))
	}
	var eps []string
	for _, k := range kids {
		eps = append(eps, k.api)
	}
	c := &Client{Endpoints: eps, Token: adminTok, Retry: 10 * time.Second}
	ctx := context.Background()
	// Wait for three voters.
	deadline := time.Now().Add(15 * time.Second)
	for {
		cs, err := c.Cluster(ctx)
		if err == nil && len(cs.Replicas) == 3 && cs.Leader != "" {
			allAPI := true
			for _, r := range cs.Replicas {
				allAPI = allAPI && r.APIAddr != ""
			}
			if allAPI {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no three-replica cluster: %+v %v", cs, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	agents := startAgents(t, eps, nodeNames)
	var names []string
	for i := range 5 {
		name := fmt.Sprintf("p%d", i)
		if _, err := c.Deploy(ctx, deployReq(renamed(tinySpec, name))); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	cs, err := c.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var victim *child
	var rest []string
	for _, k := range kids {
		if k.api == cs.LeaderAPI {
			victim = k
		} else {
			rest = append(rest, k.api)
		}
	}
	if victim == nil {
		t.Fatalf("leader %s (%s) is none of the children", cs.Leader, cs.LeaderAPI)
	}
	killed := time.Now()
	victim.cmd.Process.Signal(syscall.SIGKILL)
	victim.cmd.Wait()
	survivors := &Client{Endpoints: rest, Token: adminTok, Retry: -1}
	var elected time.Duration
	for {
		cs, err := survivors.Cluster(ctx)
		if err == nil && cs.Leader != "" && cs.LeaderAPI != victim.api {
			if _, err := (&Client{Endpoints: []string{cs.LeaderAPI}, Retry: -1}).Cluster(ctx); err == nil {
				elected = time.Since(killed)
				break
			}
		}
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("no new leader 5 s after killing %s", cs.Leader)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("new leader %v after SIGKILL of the leader", elected)
	if elected > 2*time.Second {
		t.Errorf("new leader after %v, want within 2 s", elected)
	}
	survivors.Retry = 10 * time.Second
	if _, err := survivors.Deploy(ctx, deployReq(renamed(tinySpec, "after"))); err != nil {
		t.Fatalf("deploy after the leader died: %v", err)
	}
	apps, err := survivors.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, a := range apps {
		have[a.Name] = a.Unplaced == 0
	}
	for _, n := range append(names, "after") {
		if !have[n] {
			t.Errorf("application %s lost or unplaced after the leader died: %+v", n, apps)
		}
	}
	agents.close()
	for _, k := range kids {
		if k != victim {
			k.cmd.Process.Signal(syscall.SIGTERM)
			k.cmd.Wait()
		}
	}
}
