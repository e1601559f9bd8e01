package orchestrator

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/hcm"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the scenario files in testdata with what the orchestrator does now")

// TestScenarios runs the scenario files in testdata: a small command
// language in the manner of etcd raft's data-driven interaction tests.
// Each case is a command line, optional input lines, a line "----" and the
// expected output, ended by a blank line. The commands are documented on
// scenario.run. With -rewrite the files get the actual output instead of
// failing; review the diff before committing it.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files in testdata (%v)", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenarioFile(t, f) })
	}
}

// scenarioCase is one command of a scenario file.
type scenarioCase struct {
	line     int
	cmdLine  string
	input    []string
	expected string
	actual   string
}

// parseScenario splits a file into verbatim text (comments, blank lines)
// and cases. Each element of chunks is either raw text or a case.
type chunk struct {
	raw string
	c   *scenarioCase
}

func parseScenario(t *testing.T, path string, data string) []chunk {
	lines := strings.Split(data, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var out []chunk
	for k := 0; k < len(lines); {
		l := lines[k]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			out = append(out, chunk{raw: l})
			k++
			continue
		}
		c := &scenarioCase{line: k + 1, cmdLine: l}
		k++
		for ; k < len(lines) && lines[k] != "----"; k++ {
			c.input = append(c.input, lines[k])
		}
		if k == len(lines) {
			t.Fatalf("%s:%d: %q has no ---- line before the end of the file", path, c.line, l)
		}
		k++
		var exp []string
		for ; k < len(lines) && lines[k] != ""; k++ {
			exp = append(exp, lines[k])
		}
		c.expected = strings.Join(exp, "\n")
		out = append(out, chunk{c: c})
	}
	return out
}

func runScenarioFile(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	chunks := parseScenario(t, path, string(data))
	s := &scenario{t: t}
	for _, ch := range chunks {
		c := ch.c
		if c == nil {
			continue
		}
		pos := fmt.Sprintf("%s:%d", path, c.line)
		out, err := s.run(c.cmdLine, c.input)
		if err != nil {
			out = "error: " + err.Error()
		}
		out = strings.TrimRight(out, "\n")
		if out == "" {
			out = "ok"
		}
		c.actual = out
		if !*rewrite && c.actual != c.expected {
			t.Errorf("%s: %s\nwant:\n%s\ngot:\n%s", pos, c.cmdLine, c.expected, c.actual)
		}
	}
	if *rewrite {
		var b strings.Builder
		for _, ch := range chunks {
			if ch.c == nil {
				b.WriteString(ch.raw + "\n")
				continue
			}
			b.WriteString(ch.c.cmdLine + "\n")
			for _, l := range ch.c.input {
				b.WriteString(l + "\n")
			}
			b.WriteString("----\n" + ch.c.actual + "\n")
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// args parses "cmd a b key=value key=\"quoted value\"".
type scenarioArgs struct {
	cmd  string
	pos  []string
	kv   map[string]string
	used map[string]bool
}

func parseArgs(line string) (*scenarioArgs, error) {
	a := &scenarioArgs{kv: map[string]string{}, used: map[string]bool{}}
	var toks []string
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			if line[j] == '"' {
				end := strings.IndexByte(line[j+1:], '"')
				if end < 0 {
					return nil, fmt.Errorf("unterminated quote at column %d", j+1)
				}
				j += end + 1
			}
			j++
		}
		toks = append(toks, line[i:j])
		i = j
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	a.cmd = toks[0]
	for _, tk := range toks[1:] {
		if k, v, ok := strings.Cut(tk, "="); ok {
			a.kv[k] = strings.Trim(v, "\"")
		} else {
			a.pos = append(a.pos, tk)
		}
	}
	return a, nil
}

func (a *scenarioArgs) str(k string) (string, bool) {
	v, ok := a.kv[k]
	a.used[k] = true
	return v, ok
}

func (a *scenarioArgs) dur(k string, def time.Duration) (time.Duration, error) {
	v, ok := a.str(k)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%s: %v", k, v, err)
	}
	return d, nil
}

func (a *scenarioArgs) num(k string, def float64) (float64, error) {
	v, ok := a.str(k)
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%s: not a number", k, v)
	}
	return f, nil
}

func (a *scenarioArgs) done() error {
	for k := range a.kv {
		if !a.used[k] {
			return fmt.Errorf("unknown argument %s= for %s", k, a.cmd)
		}
	}
	return nil
}

// nodeReport is what a simulated agent reports every period until told
// otherwise.
type nodeReport struct {
	queue  uint16
	rx, tx uint32
}

type execSetting struct {
	mean  time.Duration
	count uint32
}

// scenario is the simulated cluster around one orchestrator: agents that
// send heartbeats every period unless killed, and a controller that does
// what the test says.
type scenario struct {
	t       *testing.T
	topo    *topology.Topology
	cluster *placement.Cluster
	o       *Orchestrator
	now     time.Duration
	period  time.Duration
	seq     []uint16
	dead    []bool
	drops   []int
	report  []nodeReport
	exec    map[InstanceID]execSetting
	names   map[string]InstanceID
	hb      Heartbeat
}

// run carries out one command and returns its output. The commands:
//
//	cluster NAME [timeout=D queue-threshold=N queue-heartbeats=N port-fraction=F
//	        overload-threshold=F alpha=F warmup=N overload-heartbeats=N min-count=N
//	        node-cooldown=D instance-cooldown=D cpu-limit=F memory-limit=F]
//	    a Table 4 cluster (e.g. 3xType1-SmartNIC) and an orchestrator at t=0
//	deploy [APP] [rps=R] [force]
//	    deploy a built-in application, or the YAML spec of the input, at R
//	    requests a second, placed by HCM; input lines "@ INSTANCE NODE" place
//	    by hand instead (every instance; force skips the constraint check)
//	report NODE [queue=N] [rx=BYTES] [tx=BYTES] [util=F]
//	    what NODE's agent reports from now on (util sets rx and tx to that
//	    share of the port rate)
//	exec INSTANCE=MEAN[:COUNT] ...
//	    the execution samples an instance's agent reports from now on
//	    (COUNT requests a period, default 1000); MEAN=none stops them
//	heartbeat NODE [seq=N queue=N rx=BYTES tx=BYTES]
//	    one heartbeat now, outside the periodic ones
//	tick D
//	    D in heartbeat periods: each period every live agent reports, then
//	    the controller calls Decide and the actions are printed
//	decide
//	    call Decide now
//	kill server|node NAME / revive server|node NAME [seq=N]
//	    stop or restart agents (a restarted agent counts from seq, default 0)
//	drop NODE [n=N]
//	    the network loses NODE's next N periodic heartbeats (default 1)
//	migrated MIGRATION|INSTANCE ok|failed [why=TEXT]
//	    the controller's report of a migration
//	state / where INSTANCE...
//	    print the orchestrator's view
func (s *scenario) run(line string, input []string) (string, error) {
	a, err := parseArgs(line)
	if err != nil {
		return "", err
	}
	if a.cmd != "cluster" && s.o == nil {
		return "", fmt.Errorf("no cluster yet: start with cluster NAME")
	}
	var out string
	switch a.cmd {
	case "cluster":
		out, err = s.cmdCluster(a)
	case "deploy":
		out, err = s.cmdDeploy(a, input)
	case "report":
		out, err = s.cmdReport(a)
	case "exec":
		out, err = s.cmdExec(a)
	case "heartbeat":
		out, err = s.cmdHeartbeat(a)
	case "tick":
		out, err = s.cmdTick(a)
	case "decide":
		out = s.decide()
	case "kill", "revive":
		out, err = s.cmdKill(a)
	case "drop":
		out, err = s.cmdDrop(a)
	case "migrated":
		out, err = s.cmdMigrated(a)
	case "state":
		out = s.state()
	case "where":
		var b strings.Builder
		for _, name := range a.pos {
			id, err := s.instance(name)
			if err != nil {
				return "", err
			}
			info, _ := s.o.Instance(id)
			fmt.Fprintf(&b, "%s: %s\n", s.label(id), s.nodeName(info.Node))
		}
		out = b.String()
	default:
		return "", fmt.Errorf("unknown command %q", a.cmd)
	}
	if err != nil {
		return "", err
	}
	return out, a.done()
}

func (s *scenario) cmdCluster(a *scenarioArgs) (string, error) {
	if len(a.pos) != 1 {
		return "", fmt.Errorf("cluster NAME")
	}
	c, err := hwmodel.ClusterByName(a.pos[0])
	if err != nil {
		return "", err
	}
	if s.topo, err = hwmodel.Topology(c); err != nil {
		return "", err
	}
	if s.cluster, err = placement.NewCluster(s.topo); err != nil {
		return "", err
	}
	cfg := Config{Load: placement.NewLoad(s.cluster), Placer: hcm.New(hcm.Options{}), Rand: rand.New(rand.NewPCG(1, 2))}
	for _, d := range []struct {
		k string
		v *time.Duration
	}{{"timeout", &cfg.FailureTimeout}, {"node-cooldown", &cfg.NodeCoolDown}, {"instance-cooldown", &cfg.InstanceCoolDown}} {
		if *d.v, err = a.dur(d.k, 0); err != nil {
			return "", err
		}
	}
	for _, f := range []struct {
		k string
		v *float64
	}{{"port-fraction", &cfg.PortFraction}, {"overload-threshold", &cfg.OverloadThreshold}, {"alpha", &cfg.EMAAlpha},
		{"cpu-limit", &cfg.Limits.CPU}, {"memory-limit", &cfg.Limits.Memory}} {
		if *f.v, err = a.num(f.k, 0); err != nil {
			return "", err
		}
	}
	for _, f := range []struct {
		k string
		v *int
	}{{"queue-threshold", &cfg.QueueThreshold}, {"queue-heartbeats", &cfg.QueueHeartbeats}, {"warmup", &cfg.WarmUp},
		{"overload-heartbeats", &cfg.OverloadHeartbeats}, {"min-count", &cfg.MinExecCount}} {
		x, err := a.num(f.k, 0)
		if err != nil {
			return "", err
		}
		*f.v = int(x)
	}
	if s.o, err = New(cfg, 0); err != nil {
		return "", err
	}
	s.now, s.period = 0, s.o.Config().HeartbeatPeriod
	nn := s.topo.NumNodes()
	s.seq, s.dead, s.drops, s.report = make([]uint16, nn), make([]bool, nn), make([]int, nn), make([]nodeReport, nn)
	s.exec, s.names = map[InstanceID]execSetting{}, map[string]InstanceID{}
	var names []string
	for n := range s.topo.Nodes() {
		names = append(names, s.topo.Name(n))
	}
	return fmt.Sprintf("%s: %d servers, nodes %s", c.Name, s.topo.NumServers(), strings.Join(names, " ")), nil
}

func (s *scenario) cmdDeploy(a *scenarioArgs, input []string) (string, error) {
	rps, err := s.num(a, "rps", 1000)
	if err != nil {
		return "", err
	}
	var spec, manual []string
	for _, l := range input {
		if strings.HasPrefix(l, "@ ") {
			manual = append(manual, l)
		} else {
			spec = append(spec, l)
		}
	}
	var ap *app.App
	force := slices.Contains(a.pos, "force")
	builtin := slices.DeleteFunc(slices.Clone(a.pos), func(p string) bool { return p == "force" })
	switch {
	case len(builtin) == 1:
		ap, err = app.Builtin(builtin[0], services.Registry())
	case len(builtin) == 0 && len(spec) > 0:
		ap, err = app.Load("scenario.yaml", []byte(strings.Join(spec, "\n")), services.Registry())
	default:
		return "", fmt.Errorf("deploy APP, or deploy with a YAML spec as input")
	}
	if err != nil {
		return "", err
	}
	p, err := placement.FromApp(ap, s.o.Load(), rps)
	if err != nil {
		return "", err
	}
	var res *placement.Result
	if len(manual) > 0 {
		res = &placement.Result{Assignment: make(placement.Assignment, p.NumInstances())}
		for i := range res.Assignment {
			res.Assignment[i] = placement.Unassigned
		}
		for _, l := range manual {
			f := strings.Fields(l)
			if len(f) != 3 {
				return "", fmt.Errorf("%q: want @ INSTANCE NODE", l)
			}
			inst, ok := ap.Instance(f[1])
			if !ok {
				return "", fmt.Errorf("%q: no instance %s in %s", l, f[1], ap.Name)
			}
			n, err := s.topo.Lookup(f[2])
			if err != nil {
				return "", err
			}
			res.Assignment[inst.Index] = n
		}
		for i, n := range res.Assignment {
			if n < 0 {
				return "", fmt.Errorf("instance %s has no @ line", p.Instance(placement.InstanceID(i)).Name)
			}
		}
		if v := placement.Validate(p, res.Assignment); len(v) > 0 && !force {
			return "", fmt.Errorf("manual placement breaks %s (add force to deploy anyway)", v[0])
		}
	} else if res, err = hcm.New(hcm.Options{}).Place(p, nil); err != nil {
		return "", err
	}
	for i := range p.NumInstances() {
		if _, dup := s.names[p.Instance(placement.InstanceID(i)).Name]; dup {
			return "", fmt.Errorf("instance name %s deployed twice; scenarios need unique names", p.Instance(placement.InstanceID(i)).Name)
		}
	}
	ids, err := s.o.Deploy(p, res)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		s.names[s.o.InstanceName(id)] = id
	}
	return s.placementText(ids), nil
}

func (s *scenario) num(a *scenarioArgs, k string, def float64) (float64, error) { return a.num(k, def) }

// placementText lists the nodes holding the given instances and what they
// hold, backups marked (b).
func (s *scenario) placementText(ids []InstanceID) string {
	byNode := map[topology.NodeID][]string{}
	var unplaced []string
	for _, id := range ids {
		info, _ := s.o.Instance(id)
		if info.Removed {
			continue
		}
		if info.Node < 0 {
			unplaced = append(unplaced, s.label(id))
			continue
		}
		byNode[info.Node] = append(byNode[info.Node], s.label(id))
	}
	var b strings.Builder
	for n := range s.topo.Nodes() {
		if l := byNode[n]; len(l) > 0 {
			fmt.Fprintf(&b, "%s: %s\n", s.topo.Name(n), strings.Join(l, " "))
		}
	}
	if len(unplaced) > 0 {
		fmt.Fprintf(&b, "unplaced: %s\n", strings.Join(unplaced, " "))
	}
	return b.String()
}

func (s *scenario) label(id InstanceID) string {
	info, _ := s.o.Instance(id)
	if info.Backup {
		return info.Name + "(b)"
	}
	return info.Name
}

func (s *scenario) nodeName(n topology.NodeID) string {
	if n < 0 {
		return "nowhere"
	}
	return s.topo.Name(n)
}

func (s *scenario) instance(name string) (InstanceID, error) {
	id, ok := s.names[name]
	if !ok {
		return 0, fmt.Errorf("no instance %s", name)
	}
	return id, nil
}

func (s *scenario) node(name string) (topology.NodeID, error) { return s.topo.Lookup(name) }

func (s *scenario) cmdReport(a *scenarioArgs) (string, error) {
	if len(a.pos) != 1 {
		return "", fmt.Errorf("report NODE [queue=N rx=BYTES tx=BYTES util=F]")
	}
	n, err := s.node(a.pos[0])
	if err != nil {
		return "", err
	}
	r := &s.report[n]
	q, err := a.num("queue", float64(r.queue))
	if err != nil {
		return "", err
	}
	r.queue = Saturate16(uint64(q))
	if u, ok := a.str("util"); ok {
		f, err := strconv.ParseFloat(u, 64)
		if err != nil {
			return "", fmt.Errorf("util=%s: not a number", u)
		}
		_, _, gbps := s.cluster.Capacity(n)
		b := Saturate32(uint64(f * gbps * 1e9 / 8 * s.period.Seconds()))
		r.rx, r.tx = b, b
	}
	for _, f := range []struct {
		k string
		v *uint32
	}{{"rx", &r.rx}, {"tx", &r.tx}} {
		x, err := a.num(f.k, float64(*f.v))
		if err != nil {
			return "", err
		}
		*f.v = Saturate32(uint64(x))
	}
	return "", nil
}

func (s *scenario) cmdExec(a *scenarioArgs) (string, error) {
	if len(a.pos) > 0 || len(a.kv) == 0 {
		return "", fmt.Errorf("exec INSTANCE=MEAN[:COUNT] ...")
	}
	keys := make([]string, 0, len(a.kv))
	for k := range a.kv {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, _ := a.str(k)
		id, err := s.instance(k)
		if err != nil {
			return "", err
		}
		if v == "none" {
			delete(s.exec, id)
			continue
		}
		ms, cs, hasCount := strings.Cut(v, ":")
		d, err := time.ParseDuration(ms)
		if err != nil {
			return "", fmt.Errorf("%s=%s: %v", k, v, err)
		}
		e := execSetting{mean: d, count: 1000}
		if hasCount {
			c, err := strconv.ParseUint(cs, 10, 32)
			if err != nil {
				return "", fmt.Errorf("%s=%s: count %v", k, v, err)
			}
			e.count = uint32(c)
		}
		s.exec[id] = e
	}
	return "", nil
}

// heartbeatOf builds node n's periodic heartbeat with sequence seq.
func (s *scenario) heartbeatOf(n topology.NodeID, seq uint16) *Heartbeat {
	r := s.report[n]
	s.hb = Heartbeat{Node: n, Seq: seq, Queue: r.queue, RxBytes: r.rx, TxBytes: r.tx, Samples: s.hb.Samples[:0]}
	for _, id := range s.o.InstancesOn(n) {
		if e, ok := s.exec[id]; ok {
			mean := uint32(e.mean.Nanoseconds())
			if e.count == 0 {
				mean = 0
			}
			s.hb.Samples = append(s.hb.Samples, ExecSample{Instance: id, Count: e.count, MeanNs: mean})
		}
	}
	return &s.hb
}

// send encodes and observes a heartbeat, through the payload path the
// controller uses.
func (s *scenario) send(h *Heartbeat) error {
	b, err := h.Append(nil)
	if err != nil {
		return err
	}
	return s.o.ObservePayload(s.now, b)
}

func (s *scenario) cmdHeartbeat(a *scenarioArgs) (string, error) {
	if len(a.pos) != 1 {
		return "", fmt.Errorf("heartbeat NODE [seq=N queue=N rx=BYTES tx=BYTES]")
	}
	n, err := s.node(a.pos[0])
	if err != nil {
		return "", err
	}
	seq, err := a.num("seq", float64(s.seq[n]+1))
	if err != nil {
		return "", err
	}
	h := s.heartbeatOf(n, uint16(seq))
	q, _ := a.num("queue", float64(h.Queue))
	rx, _ := a.num("rx", float64(h.RxBytes))
	tx, _ := a.num("tx", float64(h.TxBytes))
	h.Queue, h.RxBytes, h.TxBytes = Saturate16(uint64(q)), Saturate32(uint64(rx)), Saturate32(uint64(tx))
	before := s.o.Stats()
	if err := s.send(h); err != nil {
		return "", err
	}
	after := s.o.Stats()
	if after.Stale == before.Stale {
		s.seq[n] = h.Seq // the agent's counter is where it sent from
	}
	switch {
	case after.Stale > before.Stale:
		return "dropped as stale", nil
	case after.Restarts > before.Restarts:
		return "accepted as a restarted sequence", nil
	case after.Gaps > before.Gaps:
		return "accepted after a gap", nil
	}
	return "accepted", nil
}

func (s *scenario) cmdTick(a *scenarioArgs) (string, error) {
	if len(a.pos) != 1 {
		return "", fmt.Errorf("tick DURATION")
	}
	d, err := time.ParseDuration(a.pos[0])
	if err != nil {
		return "", err
	}
	if d <= 0 || d%s.period != 0 {
		return "", fmt.Errorf("tick %v: want a positive multiple of the heartbeat period %v", d, s.period)
	}
	var b strings.Builder
	for range d / s.period {
		s.now += s.period
		for n := range s.topo.Nodes() {
			if s.dead[n] {
				continue
			}
			s.seq[n]++
			if s.drops[n] > 0 {
				s.drops[n]--
				continue
			}
			if err := s.send(s.heartbeatOf(n, s.seq[n])); err != nil {
				return "", err
			}
		}
		b.WriteString(s.decide())
	}
	return b.String(), nil
}

func (s *scenario) decide() string {
	var b strings.Builder
	for _, act := range s.o.Decide(s.now) {
		fmt.Fprintf(&b, "%s %s\n", fmtTime(s.now), s.o.Describe(act))
	}
	return b.String()
}

func fmtTime(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

func (s *scenario) cmdKill(a *scenarioArgs) (string, error) {
	if len(a.pos) != 2 || (a.pos[0] != "server" && a.pos[0] != "node") {
		return "", fmt.Errorf("%s server|node NAME", a.cmd)
	}
	var nodes []topology.NodeID
	if a.pos[0] == "node" {
		n, err := s.node(a.pos[1])
		if err != nil {
			return "", err
		}
		nodes = append(nodes, n)
	} else {
		n, err := s.node(a.pos[1] + "/host")
		if err != nil {
			return "", err
		}
		for m := range s.topo.ServerNodes(s.topo.ServerOf(n)) {
			nodes = append(nodes, m)
		}
	}
	seq, err := a.num("seq", 0)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		s.dead[n] = a.cmd == "kill"
		if a.cmd == "revive" {
			s.seq[n] = uint16(seq) - 1 // the next tick sends seq
		}
	}
	return "", nil
}

func (s *scenario) cmdDrop(a *scenarioArgs) (string, error) {
	if len(a.pos) != 1 {
		return "", fmt.Errorf("drop NODE [n=N]")
	}
	n, err := s.node(a.pos[0])
	if err != nil {
		return "", err
	}
	k, err := a.num("n", 1)
	if err != nil {
		return "", err
	}
	s.drops[n] += int(k)
	return "", nil
}

func (s *scenario) cmdMigrated(a *scenarioArgs) (string, error) {
	if len(a.pos) != 2 || (a.pos[1] != "ok" && a.pos[1] != "failed") {
		return "", fmt.Errorf("migrated MIGRATION|INSTANCE ok|failed [why=TEXT]")
	}
	var m *Migration
	for _, x := range s.o.Migrations() {
		if fmt.Sprintf("m%d", x.ID) == a.pos[0] || s.o.InstanceName(x.Instance) == a.pos[0] {
			m = &x
		}
	}
	if m == nil {
		id, err := strconv.ParseUint(strings.TrimPrefix(a.pos[0], "m"), 10, 32)
		if err != nil {
			return "", fmt.Errorf("no migration in flight for %s", a.pos[0])
		}
		m = &Migration{ID: MigrationID(id)}
	}
	why, _ := a.str("why")
	if a.pos[1] == "ok" {
		epoch, err := s.o.MigrationDone(s.now, m.ID)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("m%d done: %s on %s, routes at epoch %d", m.ID, s.o.InstanceName(m.Instance), s.nodeName(m.To), epoch), nil
	}
	if err := s.o.MigrationFailed(s.now, m.ID, why); err != nil {
		return "", err
	}
	return fmt.Sprintf("m%d failed: %s stays on %s", m.ID, s.o.InstanceName(m.Instance), s.nodeName(m.From)), nil
}

func (s *scenario) state() string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%s epoch %d\n", fmtTime(s.now), s.o.Epoch())
	for n := range s.topo.Nodes() {
		if s.o.NodeFailed(n) {
			fmt.Fprintf(&b, "%s failed\n", s.topo.Name(n))
			continue
		}
		var names []string
		for _, id := range s.o.InstancesOn(n) {
			names = append(names, s.label(id))
		}
		u := s.o.Load().Usage(n)
		fmt.Fprintf(&b, "%s cores %.2f mem %.0fMB: %s\n", s.topo.Name(n), u.Cores, u.MemoryMB, strings.Join(names, " "))
	}
	for _, m := range s.o.Migrations() {
		fmt.Fprintf(&b, "in flight: m%d %s %s -> %s\n", m.ID, s.o.InstanceName(m.Instance), s.nodeName(m.From), s.nodeName(m.To))
	}
	var pending []string
	for i := range InstanceID(s.o.NumInstances()) {
		if info, _ := s.o.Instance(i); info.Node < 0 && !info.Removed {
			pending = append(pending, s.label(i))
		}
	}
	if len(pending) > 0 {
		fmt.Fprintf(&b, "unplaced: %s\n", strings.Join(pending, " "))
	}
	return b.String()
}
