package hcm_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/hcm"
	"github.com/e3-platform/e3/services"
)

// scaleServices is the scale experiment's mix: the 16 microservices of
// Table 2 with their descriptors' memory, as `e3 place scale` uses.
func scaleServices() []placement.ScaleService {
	var out []placement.ScaleService
	for _, d := range services.Descriptors() {
		out = append(out, placement.ScaleService{Name: d.Name, MemoryMB: float64(d.MemoryMB), NonMigratable: !d.Migratable})
	}
	return out
}

// BenchmarkHCMDeployOne deploys microservices one at a time into a fat
// tree of Type2-SmartNIC servers (experiment X10); one op is one
// microservice: building its problem, placing it and committing it. The
// cluster fills as b.N grows, up to 10,000 microservices, after which a
// fresh cluster is built (outside the timer).
func BenchmarkHCMDeployOne(b *testing.B) { benchDeploy(b, 0.01, 0.1) }

// BenchmarkHCMDeployOneHeavy is BenchmarkHCMDeployOne with microservices
// ten times heavier (0.1 to 1 host cores each, `e3 place scale --cores
// 0.1,1`): the first racks fill, consumers spill to the pod and cluster
// levels, and some cannot be placed at all.
func BenchmarkHCMDeployOneHeavy(b *testing.B) { benchDeploy(b, 0.1, 1) }

func benchDeploy(b *testing.B, minCores, maxCores float64) {
	for _, servers := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("servers=%d", servers), func(b *testing.B) {
			const perCluster = 10000
			placer := hcm.New(hcm.Options{})
			rng := rand.New(rand.NewPCG(1, 2))
			var sc *placement.Scale
			fresh := func() {
				var err error
				sc, err = placement.NewScale(placement.ScaleOptions{Servers: servers, Services: scaleServices(), Seed: 1, MinCores: minCores, MaxCores: maxCores})
				if err != nil {
					b.Fatal(err)
				}
			}
			fresh()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i > 0 && i%perCluster == 0 {
					b.StopTimer()
					fresh()
					b.StartTimer()
				}
				p := sc.Next()
				res, err := placer.Place(p, rng)
				if err != nil {
					b.Fatal(err)
				}
				if err := sc.Commit(p, res); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			c, placed := sc.Deployed()
			b.ReportMetric(float64(c-placed), "unplaced")
		})
	}
}
