package annealing

import (
	"math"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// TestIncrementalEnergy drives random moves and swaps, accepting or
// reverting each at random, and checks after every one that the scorer's
// incrementally kept energy equals the energy recomputed from the state
// from scratch, and that the state satisfies every constraint.
func TestIncrementalEnergy(t *testing.T) {
	checked := 0
	defer func() {
		if checked < 100 {
			t.Errorf("only %d moves checked", checked)
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		var b topology.Builder
		for range rapid.IntRange(1, 4).Draw(t, "servers") {
			b.AddServer(hwmodel.ServerSpec(rapid.SampledFrom([]hwmodel.Machine{hwmodel.Type1SmartNIC, hwmodel.Type2SmartNIC, hwmodel.Beefy}).Draw(t, "m")))
		}
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		c, err := placement.NewCluster(topo)
		if err != nil {
			t.Fatal(err)
		}
		p := placement.NewProblem(placement.NewLoad(c))
		var prim []placement.InstanceID
		for k := range rapid.IntRange(2, 9).Draw(t, "instances") {
			svc := rapid.SampledFrom([]string{"kvs", "ema", "count", "topk", "sql"}).Draw(t, "svc")
			rps := rapid.SampledFrom([]float64{0, 1e4, 2e5}).Draw(t, "rps")
			in := placement.Instance{Name: svc, Service: svc, RPS: rps, Bytes: 512, MemoryMB: 256, NonMigratable: svc == "sql"}
			id := p.AddInstance(in)
			if k > 0 && rps > 0 {
				from := prim[rapid.IntRange(0, len(prim)-1).Draw(t, "from")]
				if p.Instance(from).RPS > 0 {
					p.AddEdge(from, id, rps, 512)
				}
			}
			prim = append(prim, id)
			if rapid.Bool().Draw(t, "backup") {
				in.RPS = 0
				p.AddBackup(id, in)
			}
		}
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
		s := placement.NewState(p)
		for i := range p.NumInstances() {
			firstFit(s, placement.InstanceID(i))
		}
		r := &run{o: Options{}.filled(), p: p, s: s, t: topo, rng: rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 3))}
		for i := range p.NumInstances() {
			if s.Node(placement.InstanceID(i)) >= 0 {
				r.movable = append(r.movable, placement.InstanceID(i))
			}
		}
		if len(r.movable) == 0 {
			return
		}
		r.sc = newScorer(s, DefaultWeights)
		for range 40 {
			if !r.propose() {
				continue
			}
			if rapid.Bool().Draw(t, "revert") {
				r.revert()
			}
			checked++
			got := r.sc.energy()
			want := newScorer(s, DefaultWeights).energy()
			for _, f := range []struct {
				name string
				g, w float64
			}{{"cpu", got.CPU, want.CPU}, {"memory", got.Memory, want.Memory}, {"interference", got.Interference, want.Interference},
				{"communication", got.Communication, want.Communication}, {"total", got.Total, want.Total}} {
				if math.Abs(f.g-f.w) > 1e-9*max(1, math.Abs(f.w)) {
					t.Fatalf("%s: incremental %v, from scratch %v", f.name, f.g, f.w)
				}
			}
			if v := placement.Validate(p, s.Assignment()); v != nil {
				t.Fatalf("a move broke %v", v)
			}
		}
	})
}

// TestEnergyByHand checks each term on a case worked out by hand: two
// Beefy servers (hosts with 12 cores, 64 GB, their own ports: 1 hop apart),
// three active instances on the first host and one on the second.
func TestEnergyByHand(t *testing.T) {
	topo, err := topology.New(hwmodel.ServerSpec(hwmodel.Beefy), hwmodel.ServerSpec(hwmodel.Beefy))
	if err != nil {
		t.Fatal(err)
	}
	c, err := placement.NewCluster(topo)
	if err != nil {
		t.Fatal(err)
	}
	p := placement.NewProblem(placement.NewLoad(c))
	// Demand fixed by hand: 1 core on any core kind at 1 message/s.
	var d placement.CoreDemand
	for k := range d {
		d[k] = 1
	}
	add := func(cores, mem float64) placement.InstanceID {
		return p.AddInstance(placement.Instance{Name: "i", Service: "x", RPS: cores, Demand: d, MemoryMB: mem, Bytes: 1})
	}
	a, b, cc, e := add(1, 1024), add(2, 1024), add(1, 1024), add(2, 1024)
	p.AddEdge(a, b, 1e9/8, 1)  // 1 Gb/s, same node: 0 hops
	p.AddEdge(b, e, 3e9/8, 1)  // 3 Gb/s, across servers: 1 hop
	p.AddEdge(cc, e, 1e9/8, 1) // 1 Gb/s, across: 1 hop
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	h0, h1 := topo.Server(0).Host, topo.Server(1).Host
	got, err := Cost(p, placement.Assignment{h0, h0, h0, h1}, DefaultWeights)
	if err != nil {
		t.Fatal(err)
	}
	// CPU: 4/12 and 2/12 busy: mean 0.25, sd 1/12, normalised 1/3.
	// Memory: 3072/65536 and 1024/65536: normalised sd 0.5.
	// Interference: 3 pairs on h0 of 6 possible.
	// Communication: (0*1 + 1*3 + 1*1) Gb/s*hops over 5 Gb/s x max 1 hop.
	wantCPU, wantMem := 1.0/3, 0.5
	wantBal := (1*wantCPU + 0.3*wantMem) / 1.3
	want := Energy{CPU: wantCPU, Memory: wantMem, Balance: wantBal, Interference: 0.5, Communication: 0.8,
		Total: wantBal + 0.5 + 0.3*0.8}
	for _, f := range []struct {
		name string
		g, w float64
	}{{"cpu", got.CPU, want.CPU}, {"memory", got.Memory, want.Memory}, {"balance", got.Balance, want.Balance},
		{"interference", got.Interference, want.Interference}, {"communication", got.Communication, want.Communication}, {"total", got.Total, want.Total}} {
		if math.Abs(f.g-f.w) > 1e-12 {
			t.Errorf("%s = %v, want %v", f.name, f.g, f.w)
		}
	}
	if _, err := Cost(p, placement.Assignment{h0}, Weights{}); err == nil {
		t.Error("Cost accepted an assignment of the wrong length")
	}
}
