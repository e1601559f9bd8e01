package annealing_test

import (
	"math/rand/v2"
	"testing"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/annealing"
)

// allApps builds one problem holding the eight applications of Table 3,
// each at rps requests/s, on an empty c: the whole of experiment X8's
// workload placed at once.
func allApps(b testing.TB, c *placement.Cluster, rps float64) *placement.Problem {
	b.Helper()
	p := placement.NewProblem(placement.NewLoad(c))
	for _, a := range builtins(b) {
		q, err := placement.FromApp(a, placement.NewLoad(c), rps)
		if err != nil {
			b.Fatal(err)
		}
		base := placement.InstanceID(p.NumInstances())
		for i := range q.NumInstances() {
			in := *q.Instance(placement.InstanceID(i))
			if in.IsBackup() {
				p.AddBackup(base+in.Primary, in)
			} else {
				p.AddInstance(in)
			}
		}
		for e := range q.NumEdges() {
			ed := q.Edge(placement.EdgeID(e))
			p.AddEdge(base+ed.From, base+ed.To, ed.RPS, ed.Bytes)
		}
	}
	if err := p.Err(); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkAnnealing places on 3xType1-SmartNIC with Service Fabric's
// budgets: each application of Table 3 alone at 10,000 requests/s, and
// all eight at once ("all8", 672 instances) at 1,000 requests/s each. One
// op is one Place call; rounds/op and transitions/op say how much search
// the exit rule allowed.
func BenchmarkAnnealing(b *testing.B) {
	c := clusterOf(b, "3xType1-SmartNIC")
	type tc struct {
		name string
		p    *placement.Problem
	}
	var cases []tc
	for _, a := range builtins(b) {
		p, err := placement.FromApp(a, placement.NewLoad(c), 1e4)
		if err != nil {
			b.Fatal(err)
		}
		cases = append(cases, tc{a.Name, p})
	}
	cases = append(cases, tc{"all8", allApps(b, c, 1e3)})
	for _, k := range cases {
		b.Run(k.name, func(b *testing.B) {
			pl := annealing.New(annealing.Options{})
			rng := rand.New(rand.NewPCG(1, 2))
			var rounds, transitions, unplaced int
			b.ReportAllocs()
			for b.Loop() {
				res, st, err := pl.PlaceStats(k.p, rng)
				if err != nil {
					b.Fatal(err)
				}
				rounds += st.Rounds
				transitions += st.Transitions
				unplaced += len(res.Unplaced)
			}
			b.ReportMetric(float64(rounds)/float64(b.N), "rounds/op")
			b.ReportMetric(float64(transitions)/float64(b.N), "transitions/op")
			b.ReportMetric(float64(unplaced)/float64(b.N), "unplaced/op")
		})
	}
}
