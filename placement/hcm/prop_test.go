package hcm_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/hcm"
	"github.com/e3-platform/e3/topology"
)

var serviceMix = []string{"kvs", "ema", "topk", "sql", "ipsec", "knn", "bayes", "count", "apigw", "nids"}

// randomCluster draws a small cluster of Table 4 machines in one or two
// pods of one or two racks.
func randomCluster(t *rapid.T) *placement.Cluster {
	machines := hwmodel.Machines()
	var b topology.Builder
	pods := rapid.IntRange(1, 2).Draw(t, "pods")
	for p := range pods {
		if p > 0 {
			b.AddPod()
		}
		for r := range rapid.IntRange(1, 2).Draw(t, "racks") {
			if r > 0 || p > 0 {
				b.AddRack()
			}
			for range rapid.IntRange(1, 3).Draw(t, "servers") {
				b.AddServer(hwmodel.ServerSpec(rapid.SampledFrom(machines).Draw(t, "machine")))
			}
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

// randomProblem draws a DAG of up to 14 instances with backups, pins,
// instances already deployed, and a random load, tight enough that some
// instances often cannot be placed.
func randomProblem(t *rapid.T, c *placement.Cluster) *placement.Problem {
	topo := c.Topology()
	l := placement.NewLoad(c)
	for n := range topo.Nodes() {
		nd := topo.Node(n)
		f := rapid.SampledFrom([]float64{0, 0, 0.5, 0.95}).Draw(t, "fill")
		l.Set(n, placement.Usage{Cores: f * float64(nd.Cores), MemoryMB: f * float64(nd.MemoryMB),
			TxGbps: f * float64(nd.Ports) * nd.PortGbps})
	}
	p := placement.NewProblem(l)
	p.Limits.CPU = rapid.SampledFrom([]float64{0, 0.8}).Draw(t, "cpu limit")
	n := rapid.IntRange(1, 10).Draw(t, "primaries")
	var prim []placement.InstanceID
	for k := range n {
		svc := rapid.SampledFrom(serviceMix).Draw(t, "service")
		rps := rapid.SampledFrom([]float64{1e3, 3e4, 3e5, 2e6}).Draw(t, "rps")
		in := placement.Instance{Name: svc, Service: svc, RPS: rps, Bytes: 512,
			MemoryMB:      rapid.SampledFrom([]float64{64, 512, 2048, 30000}).Draw(t, "memory"),
			NonMigratable: svc == "sql", Pin: placement.Pin(rapid.IntRange(0, 2).Draw(t, "pin"))}
		if in.NonMigratable && in.Pin == placement.PinSmartNIC {
			in.Pin = placement.PinAny
		}
		if k == 0 || rapid.IntRange(0, 4).Draw(t, "source") == 0 {
			in.IngressRPS = rps
		}
		prim = append(prim, p.AddInstance(in))
	}
	for k := 1; k < n; k++ {
		for range rapid.IntRange(0, 2).Draw(t, "in-edges") {
			from := prim[rapid.IntRange(0, k-1).Draw(t, "from")]
			p.AddEdge(from, prim[k], rapid.SampledFrom([]float64{1e3, 1e5, 3e6}).Draw(t, "edge rps"), 512)
		}
	}
	for _, pr := range prim {
		for range rapid.IntRange(0, 2).Draw(t, "backups") {
			in := *p.Instance(pr)
			in.Name += ".b"
			in.RPS, in.IngressRPS, in.Source = 0, 0, false
			p.AddBackup(pr, in)
		}
	}
	// Some instances run already; they are part of the load.
	for i := range p.NumInstances() {
		if rapid.IntRange(0, 5).Draw(t, "deployed") == 0 {
			id := placement.InstanceID(i)
			n := topology.NodeID(rapid.IntRange(0, topo.NumNodes()-1).Draw(t, "where"))
			// Deploy it where its pin and fault domain allow, as a
			// real deployment would.
			s := placement.NewState(p)
			if (placement.PinCheck{}).Check(s, id, n).OK() && (placement.FaultDomainCheck{}).Check(s, id, n).OK() {
				p.Deploy(id, n)
			}
		}
	}
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPropertyHCM places random problems on random clusters and checks:
// every assignment satisfies every constraint (Validate, which recomputes
// from scratch); every instance is placed or reported unplaced, and no
// node could take an unplaced one; deployed instances stay put; the load
// is not touched; explaining changes no decision; placing again gives the
// same result.
func TestPropertyHCM(t *testing.T) {
	var placed, unplacedTotal, deployed int
	defer func() {
		t.Logf("over all runs: %d instances placed, %d unplaced, %d deployed beforehand", placed, unplacedTotal, deployed)
		if placed == 0 || unplacedTotal == 0 || deployed == 0 {
			t.Error("the generator does not exercise placed, unplaced and deployed instances")
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		c := randomCluster(t)
		p := randomProblem(t, c)
		topo := c.Topology()
		before := p.Load().Clone()
		placer := hcm.New(hcm.Options{
			BestFitLimit:     rapid.SampledFrom([]int{0, 0, 1, 3}).Draw(t, "best-fit limit"),
			ServerAsOneLevel: rapid.Bool().Draw(t, "server as one level"),
		})
		res, err := placer.Place(p, rand.New(rand.NewPCG(7, 7)))
		if err != nil {
			t.Fatal(err)
		}
		a := res.Assignment
		if v := placement.Validate(p, a); v != nil {
			t.Fatalf("violations: %v", v)
		}
		var unplaced []placement.InstanceID
		for i, n := range a {
			in := p.Instance(placement.InstanceID(i))
			if in.Deployed >= 0 && n != in.Deployed {
				t.Fatalf("%s moved from %s to %d", in.Name, topo.Name(in.Deployed), n)
			}
			switch {
			case n < 0:
				unplaced = append(unplaced, placement.InstanceID(i))
				unplacedTotal++
			case in.Deployed >= 0:
				deployed++
			default:
				placed++
			}
		}
		var reported []placement.InstanceID
		for _, u := range res.Unplaced {
			reported = append(reported, u.Instance)
			if u.Reason.OK() {
				t.Fatalf("%s unplaced with no reason", p.Instance(u.Instance).Name)
			}
		}
		if !slices.Equal(unplaced, reported) {
			t.Fatalf("unassigned %v, reported unplaced %v", unplaced, reported)
		}
		// No node can take an unplaced instance, even now that the rest
		// is placed: constraints only tighten as instances are added.
		for _, i := range unplaced {
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
		again, _ := placer.Place(p, rand.New(rand.NewPCG(8, 8)))
		if !slices.Equal(again.Assignment, a) {
			t.Fatalf("second run %v, first %v", again.Assignment, a)
		}
		p.Explain = true
		explained, _ := placer.Place(p, nil)
		if !slices.Equal(explained.Assignment, a) {
			t.Fatalf("with explanations %v, without %v", explained.Assignment, a)
		}
		if len(explained.Explanations) != p.NumInstances() {
			t.Fatalf("%d explanations for %d instances", len(explained.Explanations), p.NumInstances())
		}
		for i, e := range explained.Explanations {
			if e.Node != a[i] {
				t.Fatalf("explanation of %d names node %d, assignment %d", i, e.Node, a[i])
			}
			if len(e.Examples) > int(placement.NumConstraints)*placement.MaxExamples {
				t.Fatalf("explanation keeps %d examples", len(e.Examples))
			}
		}
	})
}

// TestBruteForceMSPlace checks HCM against exhaustive search on tiny
// problems. A source alone is placed if and only if some node takes it,
// on the first such node of the scan order. A microservice fed by a
// deployed one lands at the closest level any feasible node offers (on a
// cluster of one machine model, also the fewest hops), and it is unplaced
// only when no node at all fits.
func TestBruteForceMSPlace(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := randomCluster(t)
		topo := c.Topology()
		l := placement.NewLoad(c)
		for n := range topo.Nodes() {
			nd := topo.Node(n)
			f := rapid.SampledFrom([]float64{0, 0.9, 1}).Draw(t, "fill")
			l.Set(n, placement.Usage{Cores: f * float64(nd.Cores), MemoryMB: rapid.SampledFrom([]float64{0, 0.9, 1}).Draw(t, "mem") * float64(nd.MemoryMB)})
		}
		p := placement.NewProblem(l)
		svc := rapid.SampledFrom(serviceMix).Draw(t, "service")
		in := placement.Instance{Name: "w", Service: svc, NonMigratable: svc == "sql", RPS: rapid.SampledFrom([]float64{1e3, 1e5, 1e6}).Draw(t, "rps"),
			MemoryMB: rapid.SampledFrom([]float64{64, 1024}).Draw(t, "memory"), Bytes: 512}
		fed := rapid.Bool().Draw(t, "fed")
		var up placement.InstanceID = placement.None
		if fed {
			up = p.AddInstance(placement.Instance{Name: "up", Service: "ema", RPS: in.RPS, IngressRPS: in.RPS, Bytes: 512})
			p.Deploy(up, topology.NodeID(rapid.IntRange(0, topo.NumNodes()-1).Draw(t, "up node")))
		} else {
			in.IngressRPS = in.RPS
		}
		w := p.AddInstance(in)
		if fed {
			p.AddEdge(up, w, in.RPS, 512)
		}
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		res, err := hcm.New(hcm.Options{}).Place(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := res.Assignment[w]
		var feasible []topology.NodeID
		try := slices.Clone(res.Assignment)
		for n := range topo.Nodes() {
			try[w] = n
			if placement.Validate(p, try) == nil {
				feasible = append(feasible, n)
			}
		}
		if (got >= 0) != (len(feasible) > 0) {
			t.Fatalf("HCM: %d; feasible nodes %v", got, feasible)
		}
		if got < 0 {
			return
		}
		if !fed {
			// The first feasible node in scan order: servers in order,
			// the preferred kind first.
			nicFirst := p.Instance(w).PreferSmartNIC()
			key := func(n topology.NodeID) int {
				k := int(topo.ServerOf(n)) * 2
				if (topo.Node(n).Kind == topology.SmartNIC) != nicFirst {
					k++
				}
				return k
			}
			first := slices.MinFunc(feasible, func(a, b topology.NodeID) int {
				if ka, kb := key(a), key(b); ka != kb {
					return ka - kb
				}
				return int(a - b)
			})
			if got != first {
				t.Fatalf("source on %s, first fit is %s", topo.Name(got), topo.Name(first))
			}
			return
		}
		from := res.Assignment[up]
		bestLevel, bestHops := topology.NumLevels, 1<<30
		for _, n := range feasible {
			bestLevel = min(bestLevel, topo.Distance(from, n))
			bestHops = min(bestHops, placement.Hops(topo, from, n))
		}
		// Levels order communication mechanisms; in a rack of mixed
		// machines one level can hold hosts with and without ports of
		// their own, a hop apart, so hops are minimal only when every
		// server is of one model.
		uniform := true
		for srv := range topo.Servers() {
			uniform = uniform && topo.Server(srv).Model == topo.Server(0).Model
		}
		lv, h := topo.Distance(from, got), placement.Hops(topo, from, got)
		if lv != bestLevel || (uniform && h != bestHops) {
			t.Fatalf("w at level %s (%d hops) from %s, the closest feasible is at %s (%d hops)", lv, h, topo.Name(from), bestLevel, bestHops)
		}
	})
}
