package ilp_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/ilp"
	"github.com/e3-platform/e3/services"
)

// chain draws an application-like problem of n primaries on c: services
// of Table 2 at rates that keep 0.05 to 0.5 host cores busy, each fed by
// one to two earlier ones, the first a source, and one backup for every
// third primary.
func chain(g *rand.Rand, c *placement.Cluster, n int) *placement.Problem {
	svcs := []string{"kvs", "ema", "count", "flowmon", "spike", "nids", "topk", "sql", "apigw", "knn"}
	p := placement.NewProblem(placement.NewLoad(c))
	var ids []placement.InstanceID
	for k := range n {
		svc := svcs[g.IntN(len(svcs))]
		d, err := placement.DemandOf(svc)
		if err != nil {
			panic(err)
		}
		rps := (0.05 + 0.45*g.Float64()) / d[c.CoreKind(0)]
		in := placement.Instance{Name: fmt.Sprintf("%s.%d", svc, k), Service: svc, RPS: rps, Bytes: 512, MemoryMB: 256, NonMigratable: svc == "sql"}
		if k == 0 {
			in.IngressRPS = rps
		}
		id := p.AddInstance(in)
		for j := range min(k, 1+g.IntN(2)) {
			_ = j
			p.AddEdge(ids[g.IntN(k)], id, rps/2, 512)
		}
		ids = append(ids, id)
		if k%3 == 0 {
			b := in
			b.Name += ".b"
			b.RPS, b.IngressRPS = 0, 0
			p.AddBackup(id, b)
		}
	}
	return p
}

// BenchmarkILPSolve times solving application-like problems of growing
// size on 3xType1-SmartNIC to proven optimality, cbc's start included
// (one op is one Solve: build, write, run cbc, parse, check). optimal/op
// is the share of runs cbc proved optimal within the 60 s limit.
func BenchmarkILPSolve(b *testing.B) {
	needCBC(b)
	c := clusterOf(b, "3xType1-SmartNIC")
	for _, n := range []int{4, 8, 12, 16, 20, 24} {
		b.Run(fmt.Sprintf("primaries=%d", n), func(b *testing.B) {
			pl := ilp.New(ilp.Options{TimeLimit: 60})
			var optimal, instances, bin int
			k := uint64(0)
			for b.Loop() {
				b.StopTimer()
				p := chain(rand.New(rand.NewPCG(k, 17)), c, n)
				k++
				b.StartTimer()
				_, rep, err := pl.Solve(p)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Status == ilp.StatusOptimal {
					optimal++
				}
				instances += p.NumInstances()
				bin += rep.Binaries
			}
			b.ReportMetric(float64(optimal)/float64(b.N), "optimal/op")
			b.ReportMetric(float64(instances)/float64(b.N), "instances/op")
			b.ReportMetric(float64(bin)/float64(b.N), "binaries/op")
		})
	}
}

// BenchmarkILPApps solves the eight applications of Table 3 on
// 3xType1-SmartNIC at 10,000 requests/s with the default time limit and
// reports whether cbc proved optimality, its gap, and the objective.
func BenchmarkILPApps(b *testing.B) {
	needCBC(b)
	c := clusterOf(b, "3xType1-SmartNIC")
	apps, err := app.Builtins(services.Registry())
	if err != nil {
		b.Fatal(err)
	}
	for _, a := range apps {
		b.Run(a.Name, func(b *testing.B) {
			p, err := placement.FromApp(a, placement.NewLoad(c), 1e4)
			if err != nil {
				b.Fatal(err)
			}
			pl := ilp.New(ilp.Options{})
			var optimal int
			var gap, obj float64
			for b.Loop() {
				_, rep, err := pl.Solve(p)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Status == ilp.StatusOptimal {
					optimal++
				}
				if g := rep.Run.Gap; !math.IsNaN(g) {
					gap += g
				}
				obj += rep.Objective
			}
			b.ReportMetric(float64(optimal)/float64(b.N), "optimal/op")
			b.ReportMetric(gap/float64(b.N), "gap/op")
			b.ReportMetric(obj/float64(b.N), "objective/op")
		})
	}
}
