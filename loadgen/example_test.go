package loadgen_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/loadgen"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
)

// A closed loop of 8 outstanding requests against a simulated server with 4
// workers of 20 µs each: the server is saturated, so throughput is its
// capacity and each request waits for one other (Little's law: 8 = 200,000/s
// x 40 µs).
func ExampleClosedLoop() {
	clk := loadgen.NewFakeClock(0)
	srv, _ := loadgen.NewSimServer(clk, loadgen.SimConfig{Workers: 4, Service: 20 * time.Microsecond})
	wl, _ := loadgen.ForService(&service.Echo, 1, 64)
	s, err := loadgen.ClosedLoop{Options: loadgen.Options{
		Target: srv, Workload: wl, Clock: clk,
		Warmup: time.Millisecond, Duration: 10 * time.Millisecond,
	}, Outstanding: 8}.Run(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Printf("throughput %.0f/s, avg %v, p99 %v, accounting: %v\n",
		s.Throughput, s.Latency.Mean(), s.Latency.P99(), s.Check())
	// Output: throughput 200000/s, avg 40µs, p99 40µs, accounting: <nil>
}

// The knee of the same server: the search raises the outstanding count until
// throughput stops rising, then finds the lowest count that reaches the
// peak.
func ExampleFindKnee() {
	clk := loadgen.NewFakeClock(0)
	srv, _ := loadgen.NewSimServer(clk, loadgen.SimConfig{Workers: 4, Service: 20 * time.Microsecond})
	wl, _ := loadgen.ForService(&service.Echo, 1, 64)
	base := loadgen.ClosedLoop{Options: loadgen.Options{
		Target: srv, Workload: wl, Clock: clk,
		Warmup: time.Millisecond, Duration: 10 * time.Millisecond,
	}}
	res, err := loadgen.FindKnee(loadgen.KneeConfig{Start: 1, Integer: true},
		loadgen.MeasureOutstanding(context.Background(), base))
	if err != nil {
		panic(err)
	}
	for _, p := range res.Curve {
		fmt.Printf("%3.0f outstanding: %6.0f/s avg %v\n", p.Load, p.Throughput, p.Avg)
	}
	fmt.Printf("knee: %.0f outstanding, %.0f/s (%v after %d measurements)\n",
		res.Knee.Load, res.Knee.Throughput, res.Outcome, res.Steps)
	// Output:
	//   1 outstanding:  50000/s avg 20µs
	//   2 outstanding: 100000/s avg 20µs
	//   3 outstanding: 150000/s avg 20µs
	//   4 outstanding: 200000/s avg 20µs
	//   8 outstanding: 200000/s avg 40µs
	// knee: 4 outstanding, 200000/s (found after 5 measurements)
}

// An application workload: IOT-TS requests enter at the API gateway with
// keys drawn from the spec's key space, Zipf-skewed.
func ExampleNewAppWorkload() {
	a, err := app.Builtin("IOT-TS", services.Registry())
	if err != nil {
		panic(err)
	}
	w, err := loadgen.NewAppWorkload(a, loadgen.AppOptions{Seed: 1, Zipf: 0.99})
	if err != nil {
		panic(err)
	}
	req, key, src := w.Next(nil)
	fmt.Printf("%d-byte request for %s, key below %d: %v\n", len(req), w.Source(src).Name, a.Workload.KeySpace, key < uint64(a.Workload.KeySpace))
	// Output: 512-byte request for apigw, key below 100000: true
}

// A trace with an error reports the file and line.
func ExampleParseTrace() {
	_, err := loadgen.ParseTrace("burst.csv", strings.NewReader("offset,key,size\n0,1,512\n10us,2,70000\n"))
	fmt.Println(err)
	// Output: burst.csv:3: size: 70000 bytes is out of range; a request is 1 to 65507 bytes
}
