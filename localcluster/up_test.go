package localcluster_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/e3-platform/e3/localcluster"
)

// alive reports whether process pid exists and is not a zombie (a child
// reparented to a PID 1 that does not reap stays a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// upChild is `e3 up` run as a process.
type upChild struct {
	cmd  *exec.Cmd
	out  *bufio.Reader
	pids []int
	text strings.Builder
	ctl  string
}

var pidColumn = regexp.MustCompile(`^(\S+)\s+(controller|host|smartnic)\s+\S+\s+\S+\s+(\d+)\s`)

// startUp runs e3 up with args and reads its report up to "Ctrl-C".
func startUp(t *testing.T, args ...string) *upChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"up", "--ephemeral-ports", "--cores", "2", "--log-level", "warn"}, args...)...)
	cmd.Env = append(os.Environ(), e3Env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u := &upChild{cmd: cmd, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		for _, p := range u.pids {
			if alive(p) {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	done := make(chan error, 1)
	go func() {
		for {
			line, err := u.out.ReadString('\n')
			u.text.WriteString(line)
			if m := pidColumn.FindStringSubmatch(line); m != nil {
				pid, _ := strconv.Atoi(m[3])
				u.pids = append(u.pids, pid)
			}
			if strings.HasPrefix(line, "  export E3_CONTROLLER=") {
				u.ctl = strings.Fields(strings.TrimPrefix(line, "  export E3_CONTROLLER="))[0]
			}
			if strings.HasPrefix(line, "Ctrl-C stops everything") || err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("e3 up ended before it was up (%v):\n%s", err, u.text.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("e3 up not up after 60 s:\n%s", u.text.String())
	}
	return u
}

// TestProcUpCommand runs e3 up --procs as a process: it prints every
// member with its PID, the members serve (e3 status sees every agent
// alive), and Ctrl-C (SIGINT) stops them all, each exiting cleanly, and
// exits 0. Then e3 up is killed with SIGKILL instead: its children die
// with it.
func TestProcUpCommand(t *testing.T) {
	u := startUp(t, "--procs", "--controllers", "3", "--data", t.TempDir())
	if len(u.pids) != 9 {
		t.Fatalf("e3 up listed %d processes, want 3 replicas and 6 agents:\n%s", len(u.pids), u.text.String())
	}
	for _, p := range u.pids {
		if !alive(p) {
			t.Errorf("pid %d listed but not running", p)
		}
	}
	st := exec.Command(os.Args[0], "status", "--controller", u.ctl)
	st.Env = append(os.Environ(), e3Env...)
	out, err := st.CombinedOutput()
	if err != nil || strings.Count(string(out), " alive ") != 6 {
		t.Errorf("e3 status: %v\n%s\nwant 6 agents alive", err, out)
	}
	sent := time.Now()
	u.cmd.Process.Signal(syscall.SIGINT)
	rest, _ := io.ReadAll(u.out)
	if err := u.cmd.Wait(); err != nil {
		t.Errorf("e3 up exited with %v after SIGINT:\n%s", err, rest)
	}
	if !strings.Contains(string(rest), "e3 up: stopped") {
		t.Errorf("e3 up did not report a clean stop:\n%s", rest)
	}
	for _, p := range u.pids {
		if alive(p) {
			t.Errorf("pid %d still running after e3 up exited", p)
		}
	}
	t.Logf("SIGINT: e3 up stopped 9 processes cleanly in %v", time.Since(sent).Round(time.Millisecond))

	// A crashed e3 up leaves no orphans either.
	u = startUp(t, "--procs", "--controllers", "1", "--data", t.TempDir())
	killed := time.Now()
	u.cmd.Process.Signal(syscall.SIGKILL)
	u.cmd.Wait()
	waitFor(t, 5*time.Second, "the children of a killed e3 up gone", func() bool {
		for _, p := range u.pids {
			if alive(p) {
				return false
			}
		}
		return true
	})
	t.Logf("SIGKILL: e3 up's %d children gone %v after it", len(u.pids), time.Since(killed).Round(time.Millisecond))
}

// TestProcNetnsPartition builds the cluster in network namespaces (a
// namespace per server and per replica on a bridge in a ToR namespace),
// serves the kv store across them to a client in the root namespace,
// then unplugs the leader replica's namespace from the bridge while the
// other two run on: writes sent to it from inside its namespace (e3
// deploy processes) are all refused, the majority elects a leader that
// deploys, and after the leader's namespace is plugged back in no
// refused write is on any replica. Tear-down leaves no namespace behind.
// Needs root and iproute2; under CI=true as root it must run.
func TestProcNetnsPartition(t *testing.T) {
	if err := localcluster.NetnsAvailable(); err != nil {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatalf("CI runs as root and must run the namespaced test: %v", err)
		}
		t.Skipf("skipped: %v", err)
	}
	subnet := netip.MustParsePrefix("10.178.0.0/16")
	c := upProcs(t, localcluster.Config{Controllers: 3, Netns: true, NetnsPrefix: "e3t", NetnsSubnet: subnet})
	for _, m := range append(c.Controllers(), c.Agents()...) {
		ap, err := netip.ParseAddrPort(strings.TrimPrefix(m.API+m.Data, "http://"))
		if err != nil || !subnet.Contains(ap.Addr()) || m.Netns == "" {
			t.Fatalf("%s at %q in namespace %q, want an address in %v in a namespace", m.Name, m.API+m.Data, m.Netns, subnet)
		}
	}
	cl := c.Client()
	ctx := context.Background()
	deploy(t, cl, kvSpec)
	waitReplicated(t, c, "kv", 2)
	k := newKVClient(t, c, "kv", netip.MustParseAddr("10.178.255.254"))
	for i := range 200 {
		key := fmt.Sprintf("n%d", i)
		if _, err := k.set(key, "v"+key, 2*time.Second); err != nil {
			t.Fatalf("write %s across the namespaces: %v", key, err)
		}
	}
	for i := range 200 {
		key := fmt.Sprintf("n%d", i)
		if v, ok, err := k.get(key, 2*time.Second); err != nil || !ok || v != "v"+key {
			t.Fatalf("read %s across the namespaces: %q %v %v", key, v, ok, err)
		}
	}
	t.Logf("200 writes and reads from the root namespace to the kv store in the server namespaces")

	cs, err := cl.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lone *localcluster.Member
	var rest []string
	for _, m := range c.Controllers() {
		if m.API == cs.LeaderAPI {
			lone = m
		} else {
			rest = append(rest, m.API)
		}
	}
	dir := t.TempDir()
	ev, err := cl.Events(ctx, 0, 1024)
	if err != nil {
		t.Fatal(err)
	}
	seq := ev.Next
	if err := c.Partition(lone.Name); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	healed := false
	defer func() {
		if !healed {
			c.Heal(lone.Name)
		}
	}()
	// The majority elects a leader meanwhile.
	maj := one(rest[0], c.AdminToken())
	maj.Endpoints, maj.Retry = rest, 5*time.Second
	elected := make(chan time.Duration, 1)
	go func() {
		for time.Since(cut) < 10*time.Second {
			if cs, err := maj.Cluster(ctx); err == nil && cs.Leader != "" && cs.Leader != lone.Name {
				elected <- time.Since(cut)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(elected)
	}()
	// Writes to the cut-off leader from inside its namespace, from the
	// first moment on, three at a time.
	var mu sync.Mutex
	refused, tried := 0, 0
	for round := 0; time.Since(cut) < 2*time.Second; round++ {
		var wg sync.WaitGroup
		for j := range 3 {
			name := fmt.Sprintf("p%d-%d", round, j)
			file := filepath.Join(dir, name+".yaml")
			if err := os.WriteFile(file, []byte(fmt.Sprintf(tinySpec, name)), 0o600); err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				argv := c.InNetns(lone.Name, []string{os.Args[0], "deploy", file, "--controller", lone.API,
					"--token-file", c.AdminTokenFile, "--timeout", "500ms", "--load", "100"})
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Env = append(os.Environ(), e3Env...)
				out, err := cmd.CombinedOutput()
				mu.Lock()
				defer mu.Unlock()
				tried++
				if err != nil {
					refused++
				} else {
					t.Errorf("deploy %s on the cut-off leader acknowledged: %s", name, out)
				}
			}()
		}
		wg.Wait()
	}
	t.Logf("%d of %d deploys sent to the cut-off leader refused", refused, tried)
	d, ok := <-elected
	if !ok {
		t.Fatal("no leader in the majority 10 s after the cut")
	}
	t.Logf("the majority elected a leader %v after the cut", d.Round(time.Millisecond))
	q, err := maj.Deploy(ctx, deployRequest("q"))
	if err != nil {
		t.Fatalf("deploy on the majority: %v", err)
	}
	// Every agent takes the majority's routes, though some were waiting
	// for them on the cut-off replica.
	deployed := time.Now()
	waitFor(t, 5*time.Second, "every agent on the majority's routes", func() bool {
		for _, m := range c.Agents() {
			st, err := agentStatus(m.HTTP)
			if err != nil || st.Epoch < q.Epoch {
				return false
			}
		}
		return true
	})
	t.Logf("every agent on the majority's routes (epoch %d) %v after its deploy", q.Epoch, time.Since(deployed).Round(time.Millisecond))
	if err := c.Heal(lone.Name); err != nil {
		t.Fatal(err)
	}
	healed = true
	var apps []string
	waitFor(t, 10*time.Second, "every replica with the majority's applications", func() bool {
		var first []string
		for i, m := range c.Controllers() {
			as, err := one(m.API, "").Apps(ctx)
			if err != nil {
				return false
			}
			var names []string
			for _, a := range as {
				names = append(names, a.Name)
			}
			if i == 0 {
				first = names
			} else if strings.Join(names, ",") != strings.Join(first, ",") {
				return false
			}
		}
		apps = first
		return true
	})
	// The agents found the new leader within its grace period: no server
	// was failed for heartbeats lost to the cut-off replica.
	ev, err = one(rest[0], "").Events(ctx, seq, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ev.Events {
		if e.Kind == "server-failed" {
			t.Errorf("a server failed while the leader was cut off: %s", e.Message)
		}
	}
	if strings.Join(apps, ",") != "kv,q" {
		t.Errorf("applications after the heal: %v, want kv and q only", apps)
	}
	if err := c.Down(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "e3t-") {
		t.Errorf("namespaces left after tear-down:\n%s", out)
	}
	if exec.Command("ip", "link", "show", "e3t-root").Run() == nil {
		t.Errorf("the root veth e3t-root is left after tear-down")
	}
}

// TestInProcessUp brings the cluster up in this process (e3 up without
// --procs): the replicas and agents serve the kv store to a client, and
// a server whose agents are closed is failed over.
func TestInProcessUp(t *testing.T) {
	c, err := localcluster.Up(context.Background(), localcluster.Config{Controllers: 1, EphemeralPorts: true, AgentCores: 2, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Down(); err != nil {
			t.Error(err)
		}
	}()
	for _, m := range append(c.Controllers(), c.Agents()...) {
		if m.PID != 0 || !m.Running() {
			t.Fatalf("%s: pid %d, running %v; want in process", m.Name, m.PID, m.Running())
		}
	}
	dep := deploy(t, c.Client(), kvSpec)
	waitReplicated(t, c, "kv", 2)
	k := newKVClient(t, c, "kv", netip.MustParseAddr("127.0.0.1"))
	for i := range 100 {
		if _, err := k.set(fmt.Sprintf("k%d", i), "v", 2*time.Second); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	victim := serverOf(dep.Instances[0].Node)
	seq := eventSeq(t, c.Client())
	if err := c.KillServer(victim); err != nil {
		t.Fatal(err)
	}
	serverFailed(t, c.Client(), victim, seq, 10*time.Second)
	waitFor(t, 10*time.Second, "reads on the failover's routes", func() bool {
		v, ok, err := k.get("k7", 300*time.Millisecond)
		return err == nil && ok && v == "v"
	})
}
