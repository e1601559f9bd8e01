package annealing_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/annealing"
	"github.com/e3-platform/e3/topology"
)

// firstFitOf places p by first fit alone: the annealing's starting point.
func firstFitOf(p *placement.Problem) placement.Assignment {
	s := placement.NewState(p)
	for i := range p.NumInstances() {
		id := placement.InstanceID(i)
		if s.Node(id) >= 0 {
			continue
		}
		for n := range s.ScanCandidates(id) {
			if s.Check(id, n).OK() {
				s.Assign(id, n)
				break
			}
		}
	}
	return s.Assignment()
}

// TestSpreadsFirstFit builds a case where first fit piles twelve small
// instances on the first SmartNIC of 3xType1-SmartNIC; the annealing must
// spread them: lower energy, lower CPU imbalance, far fewer co-located
// pairs.
func TestSpreadsFirstFit(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	p := placement.NewProblem(placement.NewLoad(c))
	for range 12 {
		p.AddInstance(placement.Instance{Name: "kvs", Service: "kvs", RPS: 2e4, IngressRPS: 2e4, Bytes: 512, MemoryMB: 64})
	}
	start := firstFitOf(p)
	topo := c.Topology()
	for _, n := range start {
		if n != start[0] {
			t.Fatalf("first fit spread the instances already (%v); the case tests nothing", start)
		}
	}
	const seed = 42
	t.Logf("seed %d", seed)
	res, st, err := annealing.New(annealing.Options{}).PlaceStats(p, rand.New(rand.NewPCG(seed, 0)))
	if err != nil {
		t.Fatal(err)
	}
	before, err := annealing.Cost(p, start, annealing.Weights{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := annealing.Cost(p, res.Assignment, annealing.Weights{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(before.Total-st.Initial.Total) > 1e-9 || math.Abs(after.Total-st.Best.Total) > 1e-9 {
		t.Errorf("Cost disagrees with the run: start %v vs %v, end %v vs %v", before.Total, st.Initial.Total, after.Total, st.Best.Total)
	}
	if !(after.Total < before.Total && after.CPU < before.CPU && after.Interference < before.Interference/3) {
		t.Errorf("energy %+v, first fit %+v", after, before)
	}
	per := map[topology.NodeID]int{}
	for _, n := range res.Assignment {
		per[n]++
	}
	if len(per) != topo.NumNodes() {
		t.Errorf("instances on %d of %d nodes: %v", len(per), topo.NumNodes(), per)
	}
	if v := placement.Validate(p, res.Assignment); v != nil {
		t.Fatal(v)
	}
	t.Logf("energy %.4f -> %.4f in %d rounds; per node %v", before.Total, after.Total, st.Rounds, per)
}

// TestKnownOptimum enumerates every assignment of small problems (four
// instances, one a backup, on two Type1-SmartNIC servers: 4^4 = 256
// assignments) and checks that the annealing returns one of least energy
// among the feasible ones.
func TestKnownOptimum(t *testing.T) {
	topo, err := topology.New(hwmodel.ServerSpec(hwmodel.Type1SmartNIC), hwmodel.ServerSpec(hwmodel.Type1SmartNIC))
	if err != nil {
		t.Fatal(err)
	}
	c, err := placement.NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	svcs := []string{"kvs", "ema", "topk", "count", "knn", "sql"}
	solved, improved := 0, 0
	defer func() {
		t.Logf("%d problems with feasible assignments, %d where the optimum beats first fit", solved, improved)
		if solved < 8 || improved < 4 {
			t.Error("the cases are too easy to show anything")
		}
	}()
	for seed := range uint64(12) {
		g := rand.New(rand.NewPCG(seed, 99))
		p := placement.NewProblem(placement.NewLoad(c))
		var ids []placement.InstanceID
		for k := range 3 {
			svc := svcs[g.IntN(len(svcs))]
			rps := []float64{1e4, 1e5, 6e5}[g.IntN(3)]
			in := placement.Instance{Name: svc, Service: svc, RPS: rps, Bytes: 512, MemoryMB: float64(int(256) << g.IntN(4)), NonMigratable: svc == "sql"}
			if k == 0 {
				in.IngressRPS = rps
			}
			id := p.AddInstance(in)
			if k > 0 {
				p.AddEdge(ids[g.IntN(k)], id, rps, 512)
			}
			ids = append(ids, id)
		}
		b := *p.Instance(ids[0])
		b.RPS, b.IngressRPS, b.Source = 0, 0, false
		p.AddBackup(ids[0], b)
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		best, count := math.Inf(1), 0
		a := make(placement.Assignment, p.NumInstances())
		var walk func(k int)
		walk = func(k int) {
			if k == len(a) {
				if placement.Validate(p, a) == nil {
					e, err := annealing.Cost(p, a, annealing.Weights{})
					if err != nil {
						t.Fatal(err)
					}
					best = min(best, e.Total)
					count++
				}
				return
			}
			for n := range topo.Nodes() {
				a[k] = n
				walk(k + 1)
			}
		}
		walk(0)
		res, err := annealing.New(annealing.Options{}).Place(p, rand.New(rand.NewPCG(seed, 7)))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Unplaced) > 0 {
			if count > 0 {
				t.Errorf("seed %d: %d unplaced, though %d feasible assignments exist", seed, len(res.Unplaced), count)
			}
			continue
		}
		got, err := annealing.Cost(p, res.Assignment, annealing.Weights{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Total > best+1e-12 {
			t.Errorf("seed %d: energy %.6f, the optimum of %d feasible assignments is %.6f", seed, got.Total, count, best)
		}
		solved++
		if ff, err := annealing.Cost(p, firstFitOf(p), annealing.Weights{}); err == nil && ff.Total > best+1e-9 {
			improved++
		}
	}
}

// TestSameSeed: the same seed gives the same assignment on a real
// application, and the search does depend on the seed.
func TestSameSeed(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	a := builtins(t)[3] // RTA-PTC
	p, err := placement.FromApp(a, placement.NewLoad(c), 1e4)
	if err != nil {
		t.Fatal(err)
	}
	pl := annealing.New(annealing.Options{MaxRounds: 20})
	run := func(seed uint64) placement.Assignment {
		r, err := pl.Place(p, rand.New(rand.NewPCG(seed, 5)))
		if err != nil {
			t.Fatal(err)
		}
		return r.Assignment
	}
	x, y, z := run(1), run(1), run(2)
	same := func(a, b placement.Assignment) bool {
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	if !same(x, y) {
		t.Error("seed 1 twice gave two assignments")
	}
	if same(x, z) {
		t.Error("seeds 1 and 2 gave the same assignment of 60 instances; is the seed used?")
	}
}

func TestErrors(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	p := placement.NewProblem(placement.NewLoad(c))
	p.AddInstance(placement.Instance{Name: "a", Service: "kvs", RPS: 1})
	if _, err := annealing.New(annealing.Options{}).Place(p, nil); !errors.Is(err, annealing.ErrNoRand) {
		t.Errorf("nil rng: %v", err)
	}
	p.AddEdge(0, 7, 1, 1)
	if _, err := annealing.New(annealing.Options{}).Place(p, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, placement.ErrBadProblem) {
		t.Errorf("bad problem: %v", err)
	}
	if pl, err := placement.New("annealing"); err != nil || pl.Name() != "annealing" {
		t.Errorf("registry: %v, %v", pl, err)
	}
}

func TestMaxHops(t *testing.T) {
	for _, tc := range []struct {
		cluster string
		want    int
	}{{"3xType1-SmartNIC", 3}, {"3xBeefy", 1}, {"2xType2-SmartNIC", 3}} {
		if got := annealing.MaxHops(clusterOf(t, tc.cluster).Topology()); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.cluster, got, tc.want)
		}
	}
	ft, err := topology.FatTree(topology.FatTreeOptions{Servers: 100, ServersPerRack: 10, RacksPerPod: 5, Server: hwmodel.ServerSpec(hwmodel.Type2SmartNIC)})
	if err != nil {
		t.Fatal(err)
	}
	if got := annealing.MaxHops(ft); got != 7 {
		t.Errorf("fat tree: %d, want 7 (core switch, hosts behind SmartNICs at both ends)", got)
	}
}
