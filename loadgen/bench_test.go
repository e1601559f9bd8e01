package loadgen

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/services"
)

// constWorkload sends the same 64-byte payload, so that a benchmark measures
// the client rather than a generator.
type constWorkload []byte

func (w constWorkload) Next(dst []byte) ([]byte, uint64, int) { return append(dst[:0], w...), 1, 0 }

var echoTarget = Inline(func(b []byte, _ uint64, _ int) ([]byte, error) { return b, nil })

func runInline(tb testing.TB, clk Clock, n int64, lanes int, wl Workload) *Summary {
	s, err := ClosedLoop{Options: Options{Target: echoTarget, Workload: wl, Clock: clk, MaxRequests: n},
		Outstanding: lanes}.Run(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if s.Completed != n {
		tb.Fatalf("completed %d of %d", s.Completed, n)
	}
	return s
}

// TestClosedLoopNoAllocsPerRequest: the closed loop allocates nothing per
// request once running; a run of 20,000 more requests allocates no more.
func TestClosedLoopNoAllocsPerRequest(t *testing.T) {
	wl := constWorkload(make([]byte, 64))
	allocs := func(n int64) float64 {
		return testing.AllocsPerRun(3, func() { runInline(t, NewFakeClock(0), n, 2, wl) })
	}
	small, large := allocs(1000), allocs(21000)
	t.Logf("allocations per run: %.0f for 1,000 requests, %.0f for 21,000", small, large)
	if per := (large - small) / 20000; per > 0.001 {
		t.Fatalf("%.4f allocations per request", per)
	}
}

// BenchmarkClosedLoopInline measures the client's cost per request: one
// closed-loop lane against an in-process echo target that answers inside
// Send, on the wall clock. Everything but the echo's copy is client work:
// two clock readings, the workload call, the state transitions, the
// histogram record and the accounting.
func BenchmarkClosedLoopInline(b *testing.B) {
	wl := constWorkload(make([]byte, 64))
	b.ReportAllocs()
	b.ResetTimer()
	runInline(b, WallClock{}, int64(b.N), 1, wl)
}

// BenchmarkClosedLoopInlineEchoGen is the same with the echo service's
// generator producing the requests.
func BenchmarkClosedLoopInlineEchoGen(b *testing.B) {
	wl := echoWorkload(1)
	b.ReportAllocs()
	b.ResetTimer()
	runInline(b, WallClock{}, int64(b.N), 1, wl)
}

// BenchmarkClosedLoopInline4 runs four lanes (four goroutines) sharing the
// client's lock.
func BenchmarkClosedLoopInline4(b *testing.B) {
	wl := constWorkload(make([]byte, 64))
	b.ReportAllocs()
	b.ResetTimer()
	runInline(b, WallClock{}, int64(b.N), 4, wl)
}

// BenchmarkBareLoop is the peer: the same echo called in a plain loop with
// a clock reading on each side and nothing else, the least any client must
// do per request.
func BenchmarkBareLoop(b *testing.B) {
	wl := constWorkload(make([]byte, 64))
	var buf []byte
	var sum int64
	clk := WallClock{}
	b.ReportAllocs()
	for b.Loop() {
		t0 := clk.Now()
		buf, _, _ = wl.Next(buf)
		r, _ := func(p []byte) ([]byte, error) { return p, nil }(buf)
		sum += clk.Now() - t0 + int64(len(r))
	}
	_ = sum
}

func BenchmarkLatencyRecord(b *testing.B) {
	l := NewLatency()
	rng := rand.New(rand.NewPCG(1, 2))
	v := make([]int64, 1024)
	for i := range v {
		v[i] = int64(rng.ExpFloat64() * 20_000)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Record(v[i&1023])
		i++
	}
}

func BenchmarkZipfKey(b *testing.B) {
	k, _ := ZipfKeys(1_000_000, 0.99, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	var s uint64
	for b.Loop() {
		s += k.Key(rng)
	}
	_ = s
}

func BenchmarkAppWorkloadIOTTS(b *testing.B) {
	a, err := app.Builtin("IOT-TS", services.Registry())
	if err != nil {
		b.Fatal(err)
	}
	w, err := NewAppWorkload(a, AppOptions{Seed: 1, Zipf: 0.99})
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _ = w.Next(buf)
	}
}

// BenchmarkSimulatedRun measures how fast a fake-clock run simulates: a
// closed loop of 64 against 48 workers of 50 µs for 10 ms of simulated time
// (about 9,600 requests).
func BenchmarkSimulatedRun(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		clk := NewFakeClock(0)
		srv, _ := NewSimServer(clk, SimConfig{Workers: 48, Service: 50 * time.Microsecond})
		_, err := ClosedLoop{Options: Options{Target: srv, Workload: constWorkload(make([]byte, 64)), Clock: clk,
			Duration: 10 * time.Millisecond}, Outstanding: 64}.Run(context.Background())
		if err != nil {
			b.Fatal(err)
		}
	}
}
