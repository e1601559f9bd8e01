package hcm_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/hcm"
	"github.com/e3-platform/e3/topology"
)

// twoPods builds pod 0 with racks 0 and 1 and pod 1 with rack 2, two
// Type2-SmartNIC servers (a host and four SmartNICs each) per rack.
func twoPods(t testing.TB) *placement.Cluster {
	t.Helper()
	spec := hwmodel.ServerSpec(hwmodel.Type2SmartNIC)
	var b topology.Builder
	b.AddServer(spec)
	b.AddServer(spec)
	b.AddRack()
	b.AddServer(spec)
	b.AddServer(spec)
	b.AddPod()
	b.AddServer(spec)
	b.AddServer(spec)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c, err := placement.NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func lookup(t testing.TB, c *placement.Cluster, name string) topology.NodeID {
	t.Helper()
	n, err := c.Topology().Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fill marks nodes as out of memory.
func fill(t testing.TB, l *placement.Load, names ...string) {
	t.Helper()
	for _, name := range names {
		n := lookup(t, l.Cluster(), name)
		l.Set(n, placement.Usage{MemoryMB: float64(l.Cluster().Topology().Node(n).MemoryMB)})
	}
}

func place(t testing.TB, p *placement.Problem) *placement.Result {
	t.Helper()
	res, err := hcm.New(hcm.Options{}).Place(p, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if v := placement.Validate(p, res.Assignment); v != nil {
		t.Fatalf("HCM broke constraints: %v", v)
	}
	return res
}

// TestLevelByLevel deploys one microservice next to an upstream one on
// r0/s0/nic0 while filling the cluster from the upstream outward, and
// checks that HCM takes the closest level with room each time, in the
// paper's order: same node, same server, SmartNIC in the rack, host in the
// rack, then the pod and the cluster.
func TestLevelByLevel(t *testing.T) {
	c := twoPods(t)
	all := func(prefix string, nodes ...string) []string {
		var out []string
		for _, n := range nodes {
			out = append(out, prefix+"/"+n)
		}
		return out
	}
	nics := []string{"nic0", "nic1", "nic2", "nic3"}
	server := append([]string{"host"}, nics...)
	s0 := all("r0/s0", server...)
	r0 := append(slices.Clone(s0), all("r0/s1", server...)...)
	pod0 := append(append(slices.Clone(r0), all("r1/s0", server...)...), all("r1/s1", server...)...)
	for _, tc := range []struct {
		full  []string
		want  string
		level topology.Level
	}{
		{nil, "r0/s0/nic0", topology.SameNode},
		{[]string{"r0/s0/nic0"}, "r0/s0/nic1", topology.SameServer},
		{s0, "r0/s1/nic0", topology.RackSmartNIC},
		{append(slices.Clone(s0), all("r0/s1", nics...)...), "r0/s1/host", topology.RackHost},
		{r0, "r1/s0/nic0", topology.PodSmartNIC},
		{append(slices.Clone(r0), append(all("r1/s0", nics...), all("r1/s1", nics...)...)...), "r1/s0/host", topology.PodHost},
		{pod0, "r2/s0/nic0", topology.ClusterSmartNIC},
		{append(slices.Clone(pod0), append(all("r2/s0", nics...), all("r2/s1", nics...)...)...), "r2/s0/host", topology.ClusterHost},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			l := placement.NewLoad(c)
			fill(t, l, tc.full...)
			p := placement.NewProblem(l)
			p.Explain = true
			up := p.AddInstance(placement.Instance{Name: "up", Service: "ema", RPS: 1e4, IngressRPS: 1e4, Bytes: 512, MemoryMB: 64})
			p.Deploy(up, lookup(t, c, "r0/s0/nic0"))
			w := p.AddInstance(placement.Instance{Name: "w", Service: "ema", RPS: 1e4, Bytes: 512, MemoryMB: 64})
			p.AddEdge(up, w, 1e4, 512)
			res := place(t, p)
			got := c.Topology().Name(res.Assignment[w])
			e := res.Explanations[w]
			if got != tc.want || e.Level != tc.level || e.How != placement.HowBestFit || e.Ancestor != up {
				t.Errorf("w on %s (%s at %s from %d), want %s at %s\n%s", got, e.How, e.Level, e.Ancestor, tc.want, tc.level, e.Format(p))
			}
			if lv := placement.Levels(p, res.Assignment)[w]; lv != tc.level {
				t.Errorf("Levels says %s, want %s", lv, tc.level)
			}
		})
	}
}

// TestBestFit checks find_best_fit's score: within a level, the preferred
// kind first, then the tightest fit.
func TestBestFit(t *testing.T) {
	c := twoPods(t)
	l := placement.NewLoad(c)
	fill(t, l, "r0/s0/nic0")
	// nic2 has the least memory left that still fits; nic3 the least
	// cores left but plenty of memory: memory binds on nic2.
	l.Set(lookup(t, c, "r0/s0/nic2"), placement.Usage{MemoryMB: 4096 - 1500})
	l.Set(lookup(t, c, "r0/s0/nic3"), placement.Usage{Cores: 5})
	l.Set(lookup(t, c, "r0/s0/host"), placement.Usage{MemoryMB: 128*1024 - 1100})
	p := placement.NewProblem(l)
	up := p.AddInstance(placement.Instance{Name: "up", Service: "ema", RPS: 1e4, IngressRPS: 1e4, Bytes: 512, MemoryMB: 64})
	p.Deploy(up, lookup(t, c, "r0/s0/nic0"))
	kvs := p.AddInstance(placement.Instance{Name: "kvs", Service: "kvs", RPS: 1e4, Bytes: 512, MemoryMB: 1024})
	topk := p.AddInstance(placement.Instance{Name: "topk", Service: "topk", RPS: 1e4, Bytes: 512, MemoryMB: 1024})
	p.AddEdge(up, kvs, 1e4, 512)
	p.AddEdge(up, topk, 1e4, 512)
	res := place(t, p)
	// KVS is more efficient on a SmartNIC (Table 1: 1.6x): the tightest
	// SmartNIC, nic2, although the host is tighter still.
	if got := c.Topology().Name(res.Assignment[kvs]); got != "r0/s0/nic2" {
		t.Errorf("kvs on %s, want r0/s0/nic2", got)
	}
	// Top-K is ten times less efficient on a SmartNIC: the host.
	if got := c.Topology().Name(res.Assignment[topk]); got != "r0/s0/host" {
		t.Errorf("topk on %s, want r0/s0/host", got)
	}
}

// TestFirstFit checks find_first_fit's scan order for sources: servers in
// ID order, the kind the service prefers first, skipping what does not fit.
func TestFirstFit(t *testing.T) {
	c := twoPods(t)
	l := placement.NewLoad(c)
	fill(t, l, "r0/s0/nic0", "r0/s0/nic1")
	p := placement.NewProblem(l)
	ema := p.AddInstance(placement.Instance{Name: "ema", Service: "ema", RPS: 1e3, IngressRPS: 1e3, Bytes: 512, MemoryMB: 64})
	sql := p.AddInstance(placement.Instance{Name: "sql", Service: "sql", NonMigratable: true, RPS: 1e3, IngressRPS: 1e3, Bytes: 512, MemoryMB: 64})
	res := place(t, p)
	for i, want := range map[placement.InstanceID]string{ema: "r0/s0/nic2", sql: "r0/s0/host"} {
		if got := c.Topology().Name(res.Assignment[i]); got != want {
			t.Errorf("%s on %s, want %s", p.Instance(i).Name, got, want)
		}
	}
}

// TestBackups checks that backups follow their primaries to the nearest
// other server, never sharing a server with another replica of the shard.
func TestBackups(t *testing.T) {
	c := twoPods(t)
	p := placement.NewProblem(placement.NewLoad(c))
	pr := p.AddInstance(placement.Instance{Name: "kvs.0", Service: "kvs", RPS: 1e4, IngressRPS: 1e4, Bytes: 512, MemoryMB: 1024})
	b1 := p.AddBackup(pr, placement.Instance{Name: "kvs.0.b1", Service: "kvs", MemoryMB: 1024})
	b2 := p.AddBackup(pr, placement.Instance{Name: "kvs.0.b2", Service: "kvs", MemoryMB: 1024})
	b3 := p.AddBackup(pr, placement.Instance{Name: "kvs.0.b3", Service: "kvs", MemoryMB: 1024})
	res := place(t, p)
	want := map[placement.InstanceID]string{pr: "r0/s0/nic0", b1: "r0/s1/nic0", b2: "r1/s0/nic0", b3: "r1/s1/nic0"}
	for i, w := range want {
		if got := c.Topology().Name(res.Assignment[i]); got != w {
			t.Errorf("%s on %s, want %s", p.Instance(i).Name, got, w)
		}
	}
}

// TestUnplaced checks that an instance no node fits is reported, with the
// node closest to fitting and why, and that nothing is overcommitted.
func TestUnplaced(t *testing.T) {
	c := twoPods(t)
	l := placement.NewLoad(c)
	for n := range c.Topology().Nodes() {
		nd := c.Topology().Node(n)
		l.Set(n, placement.Usage{MemoryMB: float64(nd.MemoryMB) - 100})
	}
	l.Set(lookup(t, c, "r1/s1/nic2"), placement.Usage{MemoryMB: 4096 - 900})
	p := placement.NewProblem(l)
	p.Explain = true
	big := p.AddInstance(placement.Instance{Name: "big", Service: "kvs", RPS: 1e3, IngressRPS: 1e3, Bytes: 512, MemoryMB: 1000})
	down := p.AddInstance(placement.Instance{Name: "down", Service: "ema", RPS: 1e3, Bytes: 512, MemoryMB: 64})
	p.AddEdge(big, down, 1e3, 512)
	res := place(t, p)
	if len(res.Unplaced) != 1 || res.Unplaced[0].Instance != big || res.Assignment[big] != placement.Unassigned {
		t.Fatalf("unplaced %+v, assignment %v", res.Unplaced, res.Assignment)
	}
	u := res.Unplaced[0]
	if got, want := u.Describe(p), "big: no node fits; closest r1/s1/nic2: memory: needs 1000 MB, 900 MB free"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	// The descendant of an unplaced instance is placed by first fit.
	if res.Assignment[down] < 0 || res.Explanations[down].How != placement.HowFirstFit {
		t.Errorf("down: %v by %s", res.Assignment[down], res.Explanations[down].How)
	}
	e := res.Explanations[big]
	if e.How != placement.HowUnplaced || e.Rejected[placement.ConstraintMemory] != c.Topology().NumNodes() || e.Examined != c.Topology().NumNodes() {
		t.Errorf("explanation: %+v", e)
	}
	if n := len(e.Examples); n != placement.MaxExamples {
		t.Errorf("%d examples kept, want %d", n, placement.MaxExamples)
	}
}

// TestExplain checks the text of an explanation for a pinned SQL shard
// whose own server is full.
func TestExplain(t *testing.T) {
	c := twoPods(t)
	l := placement.NewLoad(c)
	fill(t, l, "r0/s0/host")
	p := placement.NewProblem(l)
	p.Explain = true
	api := p.AddInstance(placement.Instance{Name: "apigw.0", Service: "apigw", RPS: 1e3, IngressRPS: 1e3, Bytes: 512, MemoryMB: 64})
	p.Deploy(api, lookup(t, c, "r0/s0/nic0"))
	sql := p.AddInstance(placement.Instance{Name: "sql.0", Service: "sql", NonMigratable: true, RPS: 1e3, Bytes: 512, MemoryMB: 1024})
	p.AddEdge(api, sql, 1e3, 512)
	res := place(t, p)
	got := res.Explanations[sql].Format(p)
	t.Log(got)
	for _, want := range []string{
		"sql.0 (sql) -> r0/s1/host by best-fit at level rack-host from apigw.0",
		"level same-node        examined 1, feasible 0",
		"level rack-smartnic    examined 4, feasible 0",
		"pin          eliminated 8: r0/s0/nic0 (pin: not migratable, runs on hosts only, not on a SmartNIC)",
		"memory       eliminated 1: r0/s0/host (memory: needs 1024 MB, 0 MB free)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q:\n%s", want, got)
		}
	}
	if e := res.Explanations[api]; e.How != placement.HowDeployed {
		t.Errorf("deployed instance explained as %s", e.How)
	}
}

// TestDryRun checks that placing changes neither the load nor the
// problem, and that the same problem gives the same result every time,
// whatever the seed, with and without explanations.
func TestDryRun(t *testing.T) {
	c := twoPods(t)
	l := placement.NewLoad(c)
	l.Set(lookup(t, c, "r0/s0/nic0"), placement.Usage{Cores: 3, MemoryMB: 1000, TxGbps: 1})
	before := l.Clone()
	p := placement.NewProblem(l)
	a := p.AddInstance(placement.Instance{Name: "a", Service: "kvs", RPS: 1e5, IngressRPS: 1e5, Bytes: 512, MemoryMB: 1024})
	b := p.AddInstance(placement.Instance{Name: "b", Service: "ema", RPS: 1e5, Bytes: 512, MemoryMB: 64})
	p.AddEdge(a, b, 1e5, 512)
	p.AddBackup(a, placement.Instance{Name: "a.b1", Service: "kvs", MemoryMB: 1024})
	var first placement.Assignment
	for seed := range uint64(3) {
		res, err := hcm.New(hcm.Options{}).Place(p, rand.New(rand.NewPCG(seed, seed)))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = res.Assignment
		} else if !slices.Equal(first, res.Assignment) {
			t.Fatalf("seed %d: %v, first run %v", seed, res.Assignment, first)
		}
	}
	for n := range c.Topology().Nodes() {
		if l.Usage(n) != before.Usage(n) {
			t.Fatalf("placing changed %s's load: %+v, was %+v", c.Topology().Name(n), l.Usage(n), before.Usage(n))
		}
	}
	if placer, err := placement.New("hcm"); err != nil || placer.Name() != "hcm" {
		t.Errorf("registry: %v %v", placer, err)
	}
	if _, err := placement.New("nope"); err == nil || !strings.Contains(err.Error(), "hcm") {
		t.Errorf("unknown algorithm: %v", err)
	}
	bad := placement.NewProblem(l)
	bad.AddInstance(placement.Instance{Name: "x", Service: "kvs", RPS: -1})
	if _, err := hcm.New(hcm.Options{}).Place(bad, nil); err == nil {
		t.Error("a broken problem was placed")
	}
}

// TestCycle places instances that all have an upstream neighbour (no
// source): the walk starts from the first unvisited primary.
func TestCycle(t *testing.T) {
	c := twoPods(t)
	p := placement.NewProblem(placement.NewLoad(c))
	a := p.AddInstance(placement.Instance{Name: "a", Service: "ema", RPS: 1e3, Bytes: 512, MemoryMB: 64})
	b := p.AddInstance(placement.Instance{Name: "b", Service: "ema", RPS: 1e3, Bytes: 512, MemoryMB: 64})
	p.AddEdge(a, b, 1e3, 512)
	p.AddEdge(b, a, 1e3, 512)
	if s := p.Sources(); len(s) != 0 {
		t.Fatalf("sources %v in a cycle", s)
	}
	res := place(t, p)
	if res.Assignment[a] < 0 || res.Assignment[b] != res.Assignment[a] {
		t.Errorf("a on %d, b on %d; want both on one node", res.Assignment[a], res.Assignment[b])
	}
}

// TestConcurrentPlace places one problem from several goroutines: placers
// only read the problem and its load (run it with -race).
func TestConcurrentPlace(t *testing.T) {
	c := twoPods(t)
	p := placement.NewProblem(placement.NewLoad(c))
	prev := placement.None
	for k := range 20 {
		in := placement.Instance{Name: "x", Service: serviceMix[k%len(serviceMix)], RPS: 2e4, Bytes: 512, MemoryMB: 512}
		in.NonMigratable = in.Service == "sql"
		if prev == placement.None {
			in.IngressRPS = in.RPS
		}
		id := p.AddInstance(in)
		p.AddBackup(id, placement.Instance{Name: "x.b", Service: in.Service, MemoryMB: 512, NonMigratable: in.NonMigratable})
		if prev != placement.None {
			p.AddEdge(prev, id, 2e4, 512)
		}
		prev = id
	}
	want := place(t, p).Assignment
	done := make(chan placement.Assignment)
	for range 4 {
		go func() {
			res, err := hcm.New(hcm.Options{}).Place(p, nil)
			if err != nil {
				done <- nil
				return
			}
			done <- res.Assignment
		}()
	}
	for range 4 {
		if got := <-done; !slices.Equal(got, want) {
			t.Errorf("concurrent run %v, want %v", got, want)
		}
	}
}
