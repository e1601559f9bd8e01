package ilp_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/ilp"
	"github.com/e3-platform/e3/topology"
)

// needCBC skips a test when cbc is not installed, except under CI=true,
// where it must run.
func needCBC(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("cbc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cbc is not installed, and CI=true requires this test to run: apt-get install coinor-cbc (%v)", err)
		}
		t.Skip("cbc is not installed (Debian/Ubuntu: apt-get install coinor-cbc)")
	}
}

func clusterOf(t testing.TB, name string) *placement.Cluster {
	t.Helper()
	hc, err := hwmodel.ClusterByName(name)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := hwmodel.Topology(hc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := placement.NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tiny draws a problem of k primaries (and a backup of the first) on c with
// a given demand per message, so that CPU, memory and NIC ports all come
// close to binding: rates of up to 4 million messages of 512 B a second
// are 16 Gb/s, more than a Type1 SmartNIC's ports carry on top of others.
//
// A crowded problem pins everything to SmartNICs at 2.5 GB (one per LiquidIO), so that not
// all fit though each does alone: the elastic model's case.
func tiny(g *rand.Rand, c *placement.Cluster, k int, crowded bool) *placement.Problem {
	l := placement.NewLoad(c)
	topo := c.Topology()
	for n := range topo.Nodes() {
		if g.IntN(4) == 0 {
			nd := topo.Node(n)
			f := []float64{0.3, 0.7}[g.IntN(2)]
			l.Set(n, placement.Usage{Cores: f * float64(nd.Cores), MemoryMB: f * float64(nd.MemoryMB), TxGbps: f * float64(nd.Ports) * nd.PortGbps})
		}
	}
	p := placement.NewProblem(l)
	var ids []placement.InstanceID
	for j := range k {
		var d placement.CoreDemand
		for x := range d {
			d[x] = []float64{2e-7, 1e-6, 3e-6}[g.IntN(3)]
		}
		rps := []float64{1e5, 1e6, 1e6, 3e6}[g.IntN(4)]
		in := placement.Instance{Name: "s", Service: "x", RPS: rps, Demand: d, NICBenefit: 1, Bytes: 512,
			MemoryMB: []float64{256, 256, 2048, 3500}[g.IntN(4)], Pin: placement.Pin(max(0, g.IntN(6)-3))}
		if crowded {
			in.Pin, in.MemoryMB = placement.PinSmartNIC, 2500
		}
		if j == 0 || g.IntN(4) == 0 {
			in.IngressRPS = rps / 4
		}
		id := p.AddInstance(in)
		if j > 0 {
			from := ids[g.IntN(j)]
			p.AddEdge(from, id, min(rps, p.Instance(from).RPS), 512)
		}
		ids = append(ids, id)
	}
	b := *p.Instance(ids[0])
	b.RPS, b.IngressRPS, b.Source = 0, 0, false
	p.AddBackup(ids[0], b)
	return p
}

// bruteForce returns the least Objective over every assignment that
// places everything and that Validate accepts, how many there are, and the
// most instances any valid assignment places.
func bruteForce(t *testing.T, p *placement.Problem) (best float64, feasible, mostPlaced int) {
	t.Helper()
	best = math.Inf(1)
	nn := p.Topology().NumNodes()
	a := make(placement.Assignment, p.NumInstances())
	var walk func(k, placed int)
	walk = func(k, placed int) {
		if k == len(a) {
			if placed <= mostPlaced && placed < len(a) {
				return
			}
			if placement.Validate(p, a) != nil {
				return
			}
			mostPlaced = max(mostPlaced, placed)
			if placed == len(a) {
				v, err := ilp.Objective(p, a, ilp.Weights{})
				if err != nil {
					t.Fatal(err)
				}
				best = min(best, v)
				feasible++
			}
			return
		}
		for n := placement.Unassigned; n < topology.NodeID(nn); n++ {
			a[k] = n
			if n < 0 {
				walk(k+1, placed)
			} else {
				walk(k+1, placed+1)
			}
		}
	}
	walk(0, 0)
	return best, feasible, mostPlaced
}

// TestOptimalAgainstBruteForce solves small problems on three servers and
// checks that cbc proves optimality, that its optimum equals the least
// objective over every feasible assignment found by enumeration (so the
// formulation, its linearisations, the symmetry breaking and the pruned
// candidates lose nothing and allow nothing infeasible), that the result
// satisfies Validate, and that cbc's objective is that of the result.
func TestOptimalAgainstBruteForce(t *testing.T) {
	needCBC(t)
	// Three Type1 servers in one rack (the servers are interchangeable:
	// symmetry breaking applies), three Beefy hosts with ports of their
	// own, and three Type1 servers in two racks of one pod and a second
	// pod (every hop term: rack, pod, hosts behind SmartNICs).
	var b topology.Builder
	b.AddServer(hwmodel.ServerSpec(hwmodel.Type1SmartNIC))
	b.AddRack()
	b.AddServer(hwmodel.ServerSpec(hwmodel.Type1SmartNIC))
	b.AddPod()
	b.AddServer(hwmodel.ServerSpec(hwmodel.Type1SmartNIC))
	spread, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := placement.NewCluster(spread)
	if err != nil {
		t.Fatal(err)
	}
	clusters := []*placement.Cluster{clusterOf(t, "3xType1-SmartNIC"), clusterOf(t, "3xBeefy"), sc}
	solved, infeasible, elastic, ports := 0, 0, 0, 0
	for seed := range uint64(45) {
		g := rand.New(rand.NewPCG(seed, 11))
		p := tiny(g, clusters[seed%3], 3+int(seed%2), seed%6 == 3)
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		best, feasible, most := bruteForce(t, p)
		res, rep, err := ilp.New(ilp.Options{TimeLimit: 60}).Solve(p)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if v := placement.Validate(p, res.Assignment); v != nil {
			t.Fatalf("seed %d: %v", seed, v)
		}
		if len(rep.Dropped) > 0 {
			t.Fatalf("seed %d: the checkers rejected the solution's %v", seed, rep.Dropped)
		}
		if feasible == 0 {
			if got := p.NumInstances() - len(res.Unplaced); got != most {
				t.Errorf("seed %d: %d placed, the most any valid assignment places is %d", seed, got, most)
			}
			if rep.Elastic {
				elastic++
			}
			infeasible++
			continue
		}
		if rep.Status != ilp.StatusOptimal || rep.Elastic || len(res.Unplaced) > 0 {
			t.Fatalf("seed %d: status %v elastic %v unplaced %d", seed, rep.Status, rep.Elastic, len(res.Unplaced))
		}
		got, err := ilp.Objective(p, res.Assignment, ilp.Weights{})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-best) > 1e-6*max(1, best) || math.Abs(rep.Objective-got) > 1e-6*max(1, got) {
			t.Errorf("seed %d: cbc %.9f, its assignment %.9f, the optimum of %d feasible assignments %.9f", seed, rep.Objective, got, feasible, best)
		}
		solved++
		if m, _ := ilp.Build(p, ilp.Weights{}, false); m != nil {
			var buf strings.Builder
			m.WriteLP(&buf)
			if strings.Contains(buf.String(), "\n tx_") || strings.Contains(buf.String(), "\n rx_") {
				ports++
			}
		}
	}
	t.Logf("%d solved to proven optimality and checked against enumeration (%d with port rows); %d infeasible, %d of them by the elastic model",
		solved, ports, infeasible, elastic)
	if solved < 12 || infeasible == 0 || elastic == 0 || ports == 0 {
		t.Error("the cases do not exercise both outcomes")
	}
}

// TestElastic: three instances of 3 GB each and one Type1 SmartNIC they
// must all use (pinned); only one fits its 4 GB, so the strict model is
// infeasible and the elastic one places one and reports two.
func TestElastic(t *testing.T) {
	needCBC(t)
	topo, err := topology.New(hwmodel.ServerSpec(hwmodel.Type1SmartNIC))
	if err != nil {
		t.Fatal(err)
	}
	c, err := placement.NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	p := placement.NewProblem(placement.NewLoad(c))
	for range 3 {
		p.AddInstance(placement.Instance{Name: "big", Service: "kvs", RPS: 1e3, Bytes: 512, MemoryMB: 3000, Pin: placement.PinSmartNIC})
	}
	res, rep, err := ilp.New(ilp.Options{}).Solve(p)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Elastic || len(res.Unplaced) != 2 || rep.Status != ilp.StatusOptimal {
		t.Fatalf("elastic %v, status %v, unplaced %+v", rep.Elastic, rep.Status, res.Unplaced)
	}
	if r := res.Unplaced[0].Reason; r.Constraint != placement.ConstraintMemory {
		t.Errorf("unplaced for %v, want memory", r)
	}
}

// TestNoSolver: a missing cbc is an error naming the Debian package.
func TestNoSolver(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	p := placement.NewProblem(placement.NewLoad(c))
	p.AddInstance(placement.Instance{Name: "a", Service: "kvs", RPS: 1e3, MemoryMB: 64})
	_, err := ilp.New(ilp.Options{Solver: "/nonexistent/cbc"}).Place(p, nil)
	if !errors.Is(err, ilp.ErrNoSolver) || !strings.Contains(err.Error(), "coinor-cbc") {
		t.Fatalf("error %v", err)
	}
	if pl, err := placement.New("ilp"); err != nil || pl.Name() != "ilp" {
		t.Errorf("registry: %v %v", pl, err)
	}
}

// TestTimeLimitEnv: the environment sets the limit of a placer whose
// Options do not, and a bad value is an error naming the variable.
func TestTimeLimitEnv(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	p := placement.NewProblem(placement.NewLoad(c))
	p.AddInstance(placement.Instance{Name: "a", Service: "kvs", RPS: 1e3, MemoryMB: 64})
	t.Setenv(ilp.TimeLimitEnv, "soon")
	_, err := ilp.New(ilp.Options{}).Place(p, nil)
	if err == nil || !strings.Contains(err.Error(), `E3_ILP_TIME_LIMIT="soon"`) {
		t.Fatalf("error %v", err)
	}
	// An explicit limit wins over the environment.
	if _, err := ilp.New(ilp.Options{TimeLimit: 1, Solver: "/nonexistent/cbc"}).Place(p, nil); !errors.Is(err, ilp.ErrNoSolver) {
		t.Fatalf("error %v", err)
	}
}

// TestBadProblem: a malformed problem is reported before cbc runs.
func TestBadProblem(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	p := placement.NewProblem(placement.NewLoad(c))
	p.AddInstance(placement.Instance{Name: "a", Service: "kvs", RPS: -1})
	if _, err := ilp.New(ilp.Options{Solver: "/nonexistent/cbc"}).Place(p, nil); !errors.Is(err, placement.ErrBadProblem) {
		t.Fatalf("error %v", err)
	}
}

// TestStoppedOnTime gives cbc a problem it cannot prove in its time limit
// and checks that the best solution found is used, reported as stopped,
// and valid.
func TestStoppedOnTime(t *testing.T) {
	needCBC(t)
	if testing.Short() {
		t.Skip("runs cbc to its time limit")
	}
	c := clusterOf(t, "3xType1-SmartNIC")
	p, err := placement.FromApp(builtin(t, "RTA-PTC"), placement.NewLoad(c), 1e4)
	if err != nil {
		t.Fatal(err)
	}
	res, rep, err := ilp.New(ilp.Options{TimeLimit: 2}).Solve(p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != ilp.StatusStopped || rep.Run.Gap <= 0 {
		t.Errorf("status %v, gap %v; expected a time-limited stop with a gap", rep.Status, rep.Run.Gap)
	}
	if v := placement.Validate(p, res.Assignment); v != nil || len(res.Unplaced) > 0 {
		t.Fatalf("violations %v, unplaced %d", v, len(res.Unplaced))
	}
	got, _ := ilp.Objective(p, res.Assignment, ilp.Weights{})
	if math.Abs(got-rep.Objective) > 1e-6 {
		t.Errorf("cbc's objective %v, the assignment's %v", rep.Objective, got)
	}
	t.Logf("RTA-PTC in 2 s: objective %.4f, bound %.4f, gap %.2f", rep.Objective, rep.Run.Bound, rep.Run.Gap)
}

// TestNodeLimit stops cbc by a node limit on a problem it does not prove
// optimal within it (RTA-SF at a load that does not fit: the elastic
// model) and checks that the answer is valid and the same in two runs:
// what makes the experiments' ILP figures reproducible, which a time limit
// does not.
func TestNodeLimit(t *testing.T) {
	needCBC(t)
	if testing.Short() {
		t.Skip("runs cbc twice")
	}
	c := clusterOf(t, "3xType1-SmartNIC")
	p, err := placement.FromApp(builtin(t, "RTA-SF"), placement.NewLoad(c), 1e6)
	if err != nil {
		t.Fatal(err)
	}
	const nodes = 30
	var first placement.Assignment
	for run := range 2 {
		res, rep, err := ilp.New(ilp.Options{TimeLimit: 120, NodeLimit: nodes}).Solve(p)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Status != ilp.StatusStopped || rep.Run.Nodes != nodes {
			t.Fatalf("status %v after %d nodes in %v; want a stop at the node limit of %d", rep.Status, rep.Run.Nodes, rep.Run.Wall, nodes)
		}
		if v := placement.Validate(p, res.Assignment); v != nil {
			t.Fatalf("violations %v", v)
		}
		t.Logf("run %d: objective %.6f after %d nodes in %v", run, rep.Objective, rep.Run.Nodes, rep.Run.Wall)
		if run == 0 {
			first = res.Assignment
		} else if !slices.Equal(first, res.Assignment) {
			t.Errorf("two runs with a node limit placed differently:\n%v\n%v", first, res.Assignment)
		}
	}
	if _, _, err := ilp.New(ilp.Options{NodeLimit: -1}).Solve(p); err == nil || !strings.Contains(err.Error(), "NodeLimit") {
		t.Errorf("NodeLimit -1: error %v, want one naming NodeLimit", err)
	}
}

// TestExplain: with Problem.Explain the result explains every instance:
// how it was placed, and the constraint elimination over the cluster as
// the solution stands (SQL never on a SmartNIC).
func TestExplain(t *testing.T) {
	needCBC(t)
	p := small(t)
	p.Explain = true
	res, err := ilp.New(ilp.Options{}).Place(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Explanations) != p.NumInstances() {
		t.Fatalf("%d explanations for %d instances", len(res.Explanations), p.NumInstances())
	}
	for i, e := range res.Explanations {
		if e.Node != res.Assignment[i] || e.How != placement.HowSearch || e.Examined != p.Topology().NumNodes() {
			t.Errorf("%d: %+v", i, e)
		}
	}
	if sql := res.Explanations[3]; sql.Rejected[placement.ConstraintPin] != 2 {
		t.Errorf("SQL: pin eliminated %d nodes, want the 2 SmartNICs", sql.Rejected[placement.ConstraintPin])
	}
}
