package experiments

import "testing"

// The targets, measured with the benchmarks below on the 2-core
// build machine (docs/experiments.md, "Speed"):
//
//	go test ./experiments -run '^$' -bench 'X9|X10At|X11At' -benchtime 1x
//
// X9 (5 clusters x 3 applications) under 10 s; X10 at 1,000 servers and
// X11 at 50,000 servers under 60 s each.

// BenchmarkX9 runs X9 at full scale.
func BenchmarkX9(b *testing.B) {
	e, err := ByID("X9")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := e.Run(Options{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkX10At1000 runs X10's largest size: 10,000 microservices into
// 1,000 servers, HCM on all, the baselines sampled.
func BenchmarkX10At1000(b *testing.B) {
	for b.Loop() {
		if _, err := x10Size(1, 1000, x10Microservices, x10EveryAnneal, x10EveryILP, []string{"hcm", "annealing", "ilp"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkX11At50000 runs X11's largest size: 50,000 servers, 8
// microservices each, 38 heartbeat periods.
func BenchmarkX11At50000(b *testing.B) {
	for b.Loop() {
		if _, err := x11Run(1, 50000, x11Default); err != nil {
			b.Fatal(err)
		}
	}
}
