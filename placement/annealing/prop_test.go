package annealing_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/annealing"
	"github.com/e3-platform/e3/topology"
)

var mix = []string{"kvs", "ema", "topk", "sql", "ipsec", "knn", "bayes", "count", "apigw", "nids", "spike"}

// drawCluster draws one or two racks of one to three Table 4 servers each.
func drawCluster(t *rapid.T) *placement.Cluster {
	var b topology.Builder
	machines := hwmodel.Machines()
	for r := range rapid.IntRange(1, 2).Draw(t, "racks") {
		if r > 0 {
			b.AddRack()
		}
		for range rapid.IntRange(1, 3).Draw(t, "servers") {
			b.AddServer(hwmodel.ServerSpec(rapid.SampledFrom(machines).Draw(t, "machine")))
		}
	}
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

// drawProblem draws up to eight primaries joined by random edges, with
// backups, pins, a partly busy cluster and some instances already
// deployed; tight enough that instances are sometimes unplaced.
func drawProblem(t *rapid.T, c *placement.Cluster) *placement.Problem {
	topo := c.Topology()
	l := placement.NewLoad(c)
	for n := range topo.Nodes() {
		nd := topo.Node(n)
		f := rapid.SampledFrom([]float64{0, 0, 0.6, 0.97}).Draw(t, "busy")
		l.Set(n, placement.Usage{Cores: f * float64(nd.Cores), MemoryMB: f * float64(nd.MemoryMB), RxGbps: f * float64(nd.Ports) * nd.PortGbps})
	}
	p := placement.NewProblem(l)
	p.Limits.CPU = rapid.SampledFrom([]float64{0, 0.7}).Draw(t, "cpu limit")
	var prim []placement.InstanceID
	for k := range rapid.IntRange(1, 8).Draw(t, "primaries") {
		svc := rapid.SampledFrom(mix).Draw(t, "service")
		rps := rapid.SampledFrom([]float64{1e3, 5e4, 4e5, 3e6}).Draw(t, "rps")
		in := placement.Instance{Name: svc, Service: svc, RPS: rps, Bytes: 512, NonMigratable: svc == "sql",
			MemoryMB: rapid.SampledFrom([]float64{32, 512, 3000, 40000}).Draw(t, "memory"),
			Pin:      placement.Pin(rapid.IntRange(0, 2).Draw(t, "pin"))}
		if in.NonMigratable && in.Pin == placement.PinSmartNIC {
			in.Pin = placement.PinHost
		}
		if k == 0 || rapid.IntRange(0, 3).Draw(t, "source") == 0 {
			in.IngressRPS = rps
		}
		prim = append(prim, p.AddInstance(in))
	}
	for k := 1; k < len(prim); k++ {
		for range rapid.IntRange(0, 2).Draw(t, "in-edges") {
			from := prim[rapid.IntRange(0, k-1).Draw(t, "from")]
			p.AddEdge(from, prim[k], rapid.SampledFrom([]float64{1e3, 2e5, 4e6}).Draw(t, "edge rps"), 512)
		}
	}
	for _, pr := range prim {
		for range rapid.IntRange(0, 1).Draw(t, "backups") {
			in := *p.Instance(pr)
			in.Name += ".b"
			in.RPS, in.IngressRPS, in.Source = 0, 0, false
			p.AddBackup(pr, in)
		}
	}
	s := placement.NewState(p)
	for i := range p.NumInstances() {
		if rapid.IntRange(0, 4).Draw(t, "deployed") == 0 {
			id := placement.InstanceID(i)
			n := topology.NodeID(rapid.IntRange(0, topo.NumNodes()-1).Draw(t, "on"))
			if (placement.PinCheck{}).Check(s, id, n).OK() && (placement.FaultDomainCheck{}).Check(s, id, n).OK() {
				p.Deploy(id, n)
				s = placement.NewState(p)
			}
		}
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	return p
}

// quick is a small budget: the properties hold whatever the budget, and
// the test stays fast.
var quick = annealing.Options{TransitionsPerRound: 60, MaxRounds: 15}

// TestPropertyAnnealing: on random problems every returned assignment
// satisfies every constraint (placement.Validate, from scratch); deployed
// instances stay; the Load is untouched; every unassigned instance is
// reported unplaced and no node can take it; the same seed gives the same
// assignment; explanations change nothing.
func TestPropertyAnnealing(t *testing.T) {
	var placed, unplaced, moved int
	defer func() {
		t.Logf("over all runs: %d placed, %d unplaced, %d runs where annealing moved something", placed, unplaced, moved)
		if placed == 0 || unplaced == 0 || moved == 0 {
			t.Error("the generator does not exercise placed and unplaced instances and real searches")
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		c := drawCluster(t)
		p := drawProblem(t, c)
		topo := c.Topology()
		before := p.Load().Clone()
		seed := rapid.Uint64().Draw(t, "seed")
		pl := annealing.New(quick)
		res, st, err := pl.PlaceStats(p, rand.New(rand.NewPCG(seed, 1)))
		if err != nil {
			t.Fatal(err)
		}
		a := res.Assignment
		if v := placement.Validate(p, a); v != nil {
			t.Fatalf("violations: %v", v)
		}
		if st.Accepted > 0 {
			moved++
		}
		var missing []placement.InstanceID
		for i, n := range a {
			in := p.Instance(placement.InstanceID(i))
			if in.Deployed >= 0 && n != in.Deployed {
				t.Fatalf("%s moved off its node", in.Name)
			}
			if n < 0 {
				missing = append(missing, placement.InstanceID(i))
				unplaced++
			} else if in.Deployed < 0 {
				placed++
			}
		}
		var reported []placement.InstanceID
		for _, u := range res.Unplaced {
			reported = append(reported, u.Instance)
		}
		if !slices.Equal(missing, reported) {
			t.Fatalf("unassigned %v, reported %v", missing, reported)
		}
		for _, i := range missing {
			try := slices.Clone(a)
			for n := range topo.Nodes() {
				try[i] = n
				if placement.Validate(p, try) == nil {
					t.Fatalf("%s is unplaced but fits on %s", p.Instance(i).Name, topo.Name(n))
				}
			}
		}
		for n := range topo.Nodes() {
			if p.Load().Usage(n) != before.Usage(n) {
				t.Fatalf("the load of %s changed", topo.Name(n))
			}
		}
		again, err := pl.Place(p, rand.New(rand.NewPCG(seed, 1)))
		if err != nil || !slices.Equal(again.Assignment, a) {
			t.Fatalf("same seed: %v then %v (%v)", a, again.Assignment, err)
		}
		p.Explain = true
		ex, err := pl.Place(p, rand.New(rand.NewPCG(seed, 1)))
		if err != nil || !slices.Equal(ex.Assignment, a) || len(ex.Explanations) != p.NumInstances() {
			t.Fatalf("explaining changed the result or gave %d explanations (%v)", len(ex.Explanations), err)
		}
		for i, e := range ex.Explanations {
			if e.Node != a[i] {
				t.Fatalf("explanation %d names node %d, the assignment %d", i, e.Node, a[i])
			}
		}
	})
}
