package cluster

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/loadgen"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/services/kvs"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the scenario files in testdata with what happens now")

// TestMigrationScenarios runs the files in testdata/migration: a small
// command language for the migration hand-over, in the manner of etcd
// raft's data-driven interaction tests. A file is a sequence of cases;
// each is a command line, optional input lines, a line "----", the
// expected output, and a blank line. Lines starting with # are comments.
// With -rewrite the files get the actual output instead; review the diff
// before committing it.
//
// Commands (see scenario.run):
//
//	cluster NAME                 start an emulated cluster in real mode on an in-memory network
//	deploy                       deploy the spec given as input; "@ INSTANCE NODE" lines place it
//	write n=N [background]       set N new keys (k0, k1, ...), 8 at a time; background: while
//	                             the next commands run, until "wait"
//	wait                         wait for background writes; print their accounting
//	migrate INSTANCE NODE [crash=source|destination at=PHASE]
//	                             migrate; with crash, the agent of that role is killed when it
//	                             reaches PHASE (see runtime.Config.MigrationHook)
//	kill NODE / restart NODE     stop an agent as if its process died / start it again on its
//	                             state directory
//	where INSTANCE               where the table routes it and which agents run it
//	check                        read back every acknowledged key
//	files                        the state files on each node
//	leave NODE FILE              put a file in NODE's state directory, as a
//	                             copy left by a process killed outright
func TestMigrationScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/migration/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files (%v)", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			runScenario(t, f)
		})
	}
}

type scenarioCase struct {
	line              int
	cmd               string
	input             []string
	expected, actual  string
	textBefore, after []string
}

func parseScenario(t *testing.T, path string) ([]*scenarioCase, []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var cases []*scenarioCase
	var pending []string
	for k := 0; k < len(lines); {
		l := lines[k]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pending = append(pending, l)
			k++
			continue
		}
		c := &scenarioCase{line: k + 1, cmd: l, textBefore: pending}
		pending = nil
		k++
		for ; k < len(lines) && lines[k] != "----"; k++ {
			c.input = append(c.input, lines[k])
		}
		if k == len(lines) {
			t.Fatalf("%s:%d: %q has no ---- line", path, c.line, l)
		}
		k++
		var exp []string
		for ; k < len(lines) && lines[k] != ""; k++ {
			exp = append(exp, lines[k])
		}
		c.expected = strings.Join(exp, "\n")
		cases = append(cases, c)
	}
	return cases, pending
}

func runScenario(t *testing.T, path string) {
	cases, trailer := parseScenario(t, path)
	s := &scenario{t: t, acked: map[string]string{}}
	defer s.close()
	for _, c := range cases {
		start := time.Now()
		c.actual = strings.TrimRight(s.run(c.cmd, c.input), "\n")
		t.Logf("%s:%d: %s (%v)", filepath.Base(path), c.line, c.cmd, time.Since(start).Round(time.Millisecond))
		if c.actual != c.expected && !*rewrite {
			t.Errorf("%s:%d: %s\nwant:\n%s\ngot:\n%s", path, c.line, c.cmd, c.expected, c.actual)
		}
	}
	if *rewrite {
		var b strings.Builder
		for _, c := range cases {
			for _, l := range c.textBefore {
				b.WriteString(l + "\n")
			}
			b.WriteString(c.cmd + "\n")
			for _, l := range c.input {
				b.WriteString(l + "\n")
			}
			b.WriteString("----\n" + c.actual + "\n")
		}
		for _, l := range trailer {
			b.WriteString(l + "\n")
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scenario is the state of one scenario file's run.
type scenario struct {
	t   *testing.T
	nw  *transport.Network
	c   *Cluster
	dep *Deployment
	tg  *Target

	mu    sync.Mutex
	acked map[string]string
	next  int
	bg    *loadgen.Run
	bgN   int

	// crash arms the migration hook: kill the agent of role when it
	// reaches phase.
	crash struct {
		armed bool
		role  runtime.MigrationRole
		phase runtime.MigrationPhase
		node  topology.NodeID
		what  string
	}
	kills sync.WaitGroup
	log   []string // what the hook did, for the next output
}

func (s *scenario) close() {
	if s.bg != nil {
		s.bg.Stop()
		s.bg.Wait(context.Background())
	}
	if s.c != nil {
		s.kills.Wait()
		s.c.Stop()
	}
	if s.nw != nil {
		s.nw.Close()
	}
}

func (s *scenario) fail(format string, args ...any) string {
	s.t.Helper()
	s.t.Fatalf(format, args...)
	return ""
}

func (s *scenario) node(name string) topology.NodeID {
	s.t.Helper()
	n, err := s.c.Topology().Lookup(name)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// hook is the cluster's MigrationHook.
func (s *scenario) hook(ctx context.Context, n topology.NodeID, st runtime.MigrationStatus) {
	s.mu.Lock()
	cr := &s.crash
	if !cr.armed || st.Role != cr.role || st.Phase != cr.phase {
		s.mu.Unlock()
		return
	}
	cr.armed = false
	what := fmt.Sprintf("%s crashed (%s: %s)", s.c.Topology().Name(n), cr.role, cr.what)
	s.log = append(s.log, what)
	s.kills.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.kills.Done()
		s.c.Kill(n)
	}()
	<-ctx.Done() // the agent's process is gone: nothing more happens here
}

func args(fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func (s *scenario) run(cmd string, input []string) string {
	f := strings.Fields(cmd)
	switch f[0] {
	case "cluster":
		return s.start(f[1])
	case "deploy":
		return s.deploy(input)
	case "write":
		a := args(f[1:])
		n, err := strconv.Atoi(a["n"])
		if err != nil {
			return s.fail("write: n=%q", a["n"])
		}
		if _, ok := a["background"]; ok {
			s.startWrites(n)
			return fmt.Sprintf("writing %d keys in the background", n)
		}
		return s.write(n)
	case "wait":
		return s.wait()
	case "migrate":
		return s.migrate(f[1], f[2], args(f[3:]))
	case "kill":
		if err := s.c.Kill(s.node(f[1])); err != nil {
			return s.fail("%v", err)
		}
		return "ok"
	case "restart":
		if err := s.c.Restart(s.node(f[1])); err != nil {
			return s.fail("%v", err)
		}
		s.waitBackups()
		return "ok"
	case "where":
		return s.where(f[1])
	case "check":
		return s.check()
	case "files":
		return s.files()
	case "leave":
		// A file as a process killed outright (no Close) leaves it.
		p := filepath.Join(s.c.NodeDataDir(s.node(f[1])), f[2])
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return s.fail("%v", err)
		}
		if err := os.WriteFile(p, []byte("left behind"), 0o600); err != nil {
			return s.fail("%v", err)
		}
		return "ok"
	}
	return s.fail("unknown command %q", f[0])
}

func (s *scenario) start(name string) string {
	s.nw = transport.NewNetwork(nil, rand.New(rand.NewPCG(1, 2)))
	c, err := Start(Config{Cluster: name, Dilation: -1, Network: s.nw, MigrationTimeout: 3 * time.Second, RequestTimeout: 5 * time.Second,
		// Fast failure detection: a dead peer's channel fails within
		// about 100 ms.
		Endpoint:      transport.EndpointConfig{MinRTO: time.Millisecond, InitialRTO: 2 * time.Millisecond, MaxRTO: 20 * time.Millisecond, MaxRetries: 6},
		MigrationHook: s.hook})
	if err != nil {
		return s.fail("%v", err)
	}
	s.c = c
	var names []string
	for n := range c.Topology().Nodes() {
		names = append(names, c.Topology().Name(n))
	}
	return fmt.Sprintf("%s: %s", name, strings.Join(names, " "))
}

func (s *scenario) deploy(input []string) string {
	var spec []string
	place := map[string]string{}
	for _, l := range input {
		if rest, ok := strings.CutPrefix(l, "@ "); ok {
			f := strings.Fields(rest)
			place[f[0]] = f[1]
			continue
		}
		spec = append(spec, l)
	}
	a, err := app.Load("scenario.yaml", []byte(strings.Join(spec, "\n")), services.Registry())
	if err != nil {
		return s.fail("%v", err)
	}
	assign := make(placement.Assignment, len(a.Instances()))
	for _, in := range a.Instances() {
		name, ok := place[in.ID]
		if !ok {
			return s.fail("deploy: no placement for %s", in.ID)
		}
		assign[in.Index] = s.node(name)
	}
	plan, err := NewPlan(s.c.Name(), a, 1000, assign)
	if err != nil {
		return s.fail("%v", err)
	}
	if s.dep, err = s.c.Deploy(plan, 1); err != nil {
		return s.fail("%v", err)
	}
	if s.tg, err = s.c.NewTarget(s.dep); err != nil {
		return s.fail("%v", err)
	}
	var out []string
	for _, in := range a.Instances() {
		role := "primary"
		if !in.IsPrimary() {
			role = "backup"
		}
		out = append(out, fmt.Sprintf("%s (%s) on %s", in.ID, role, s.c.Topology().Name(assign[in.Index])))
	}
	return strings.Join(out, "\n")
}

// writeRun returns a run setting n new keys.
func (s *scenario) writeRun(n int) loadgen.ClosedLoop {
	s.mu.Lock()
	w := &setWorkload{n: s.next}
	s.next += n
	s.mu.Unlock()
	return loadgen.ClosedLoop{Options: loadgen.Options{Target: s.tg, Workload: w, MaxRequests: int64(n), Timeout: 8 * time.Second,
		Verify: func(r loadgen.Request, resp []byte) error {
			if len(resp) < 1 || kvs.Status(resp[0]) != kvs.StatusOK {
				return fmt.Errorf("set %s: reply %x", keyOf(r.Payload), resp)
			}
			k := keyOf(r.Payload)
			s.mu.Lock()
			s.acked[k] = "value of " + k
			s.mu.Unlock()
			return nil
		}}, Outstanding: 8}
}

func accounting(sum *loadgen.Summary) string {
	return fmt.Sprintf("%d acknowledged, %d failed, %d timed out", sum.Completed, sum.Failed, sum.TimedOut)
}

func (s *scenario) write(n int) string {
	sum, err := s.writeRun(n).Run(context.Background())
	if err != nil {
		return s.fail("%v", err)
	}
	return accounting(sum)
}

func (s *scenario) startWrites(n int) {
	// Paced, so that the writes span the commands that follow.
	run := s.writeRun(n)
	run.Rate = 2000
	x, err := run.Start()
	if err != nil {
		s.fail("%v", err)
	}
	s.bg, s.bgN = x, n
}

func (s *scenario) wait() string {
	if s.bg == nil {
		return s.fail("wait: no background writes")
	}
	sum, err := s.bg.Wait(context.Background())
	s.bg = nil
	if err != nil {
		return s.fail("%v", err)
	}
	return accounting(sum)
}

var phaseByName = map[string]runtime.MigrationPhase{}

func init() {
	for p := runtime.PhasePreparing; p <= runtime.PhaseFailed; p++ {
		phaseByName[p.String()] = p
	}
}

// crashPoints are the steps a crash can be injected at, by role and
// phase (where runtime.Config.MigrationHook is called).
var crashPoints = map[string]string{
	"source/draining":       "new messages held, in-flight ones still running",
	"source/shipping":       "drained, state not yet sent",
	"source/ready":          "the destination acknowledged, before the source reports it",
	"destination/preparing": "state arrived, not restored",
	"destination/ready":     "state restored, not acknowledged",
}

func (s *scenario) migrate(inst, to string, a map[string]string) string {
	from := s.c.NodeOf(s.dep, s.instance(inst).Index)
	dst := s.node(to)
	if role, ok := a["crash"]; ok {
		phase, ok := phaseByName[a["at"]]
		what := crashPoints[role+"/"+a["at"]]
		if !ok || what == "" {
			return s.fail("migrate: crash=%s at=%s is not a step of the protocol", role, a["at"])
		}
		s.mu.Lock()
		s.crash.armed, s.crash.phase, s.crash.what = true, phase, what
		s.crash.role = runtime.RoleSource
		if role == "destination" {
			s.crash.role = runtime.RoleDestination
		}
		s.mu.Unlock()
	}
	res, err := s.c.Migrate(context.Background(), s.dep, inst, dst)
	if err != nil {
		return s.fail("%v", err)
	}
	s.kills.Wait()
	s.mu.Lock()
	out := s.log
	s.log = nil
	armed := s.crash.armed
	s.crash.armed = false
	s.mu.Unlock()
	if armed {
		out = append(out, "(the crash point was never reached)")
	}
	if res.Committed {
		out = append(out, fmt.Sprintf("committed: %s %s -> %s", inst, s.c.Topology().Name(from), to))
	} else {
		why := "the source reported " + res.Source.Phase.String()
		if s.c.dead(from) {
			why = "the source is down"
		}
		out = append(out, fmt.Sprintf("called off (%s): %s stays on %s", why, inst, s.c.Topology().Name(from)))
	}
	return strings.Join(out, "\n")
}

func (s *scenario) instance(id string) *app.Instance {
	in, ok := s.dep.App.Instance(id)
	if !ok {
		s.fail("no instance %s", id)
	}
	return in
}

func (s *scenario) where(id string) string {
	in := s.instance(id)
	routed := s.c.Topology().Name(s.c.NodeOf(s.dep, in.Index))
	var runs []string
	for n, a := range s.c.Agents() {
		if a.Closed() {
			continue
		}
		if slices.Contains(a.Instances(s.dep.ID), id) {
			runs = append(runs, s.c.Topology().Name(topology.NodeID(n)))
		}
	}
	if len(runs) == 0 {
		return fmt.Sprintf("%s: routed to %s; runs nowhere", id, routed)
	}
	return fmt.Sprintf("%s: routed to %s; runs on %s", id, routed, strings.Join(runs, ", "))
}

// waitBackups waits until the deployment's stateful primaries have their
// backups again (after a restart).
func (s *scenario) waitBackups() {
	if err := s.c.waitReplicated(s.dep, 10*time.Second); err != nil {
		s.fail("%v", err)
	}
}

func (s *scenario) check() string {
	s.mu.Lock()
	keys := make([]string, 0, len(s.acked))
	for k := range s.acked {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	slices.Sort(keys)
	if len(keys) == 0 {
		return "no acknowledged keys"
	}
	var mu sync.Mutex
	var bad []string
	run := loadgen.ClosedLoop{Options: loadgen.Options{Target: s.tg, Workload: &getWorkload{keys: keys}, MaxRequests: int64(len(keys)), Timeout: 5 * time.Second,
		Verify: func(r loadgen.Request, resp []byte) error {
			k := keyOf(r.Payload)
			if len(resp) < kvs.ReplyHeaderLen || kvs.Status(resp[0]) != kvs.StatusOK || string(resp[kvs.ReplyHeaderLen:]) != "value of "+k {
				mu.Lock()
				bad = append(bad, k)
				mu.Unlock()
				return fmt.Errorf("get %s: %x", k, resp)
			}
			return nil
		}}, Outstanding: 16}
	sum, err := run.Run(context.Background())
	if err != nil {
		return s.fail("%v", err)
	}
	out := fmt.Sprintf("%d of %d acknowledged keys read back", sum.Completed, len(keys))
	if len(bad) > 0 {
		slices.Sort(bad)
		out += fmt.Sprintf("; wrong or missing: %v", bad[:min(len(bad), 10)])
	}
	if sum.TimedOut > 0 {
		out += fmt.Sprintf("; %d timed out", sum.TimedOut)
	}
	return out
}

func (s *scenario) files() string {
	var out []string
	for n := range s.c.Topology().Nodes() {
		dir := s.c.NodeDataDir(n)
		var names []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".db") {
				rel, _ := filepath.Rel(dir, p)
				names = append(names, rel)
			}
			return nil
		})
		if len(names) > 0 {
			slices.Sort(names)
			out = append(out, fmt.Sprintf("%s: %s", s.c.Topology().Name(n), strings.Join(names, " ")))
		}
	}
	return strings.Join(out, "\n")
}
