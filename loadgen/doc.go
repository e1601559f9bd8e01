// Package loadgen drives E3 applications with requests and measures what
// comes back: workloads, closed- and open-loop clients, latency histograms,
// and the knee search that finds a system's throughput at peak utilisation.
//
// It knows nothing of the runtime or the cluster. A client sends to a
// [Target] (the emulated cluster's ingress, a real deployment, or a fake)
// and reads time from a [Clock] (the wall clock, the cluster's dilated
// clock, or a [FakeClock] in tests), so the same client measures every mode
// and every figure is in the clock's time.
//
// # Workloads
//
// A [Workload] yields (payload, routing key, ingress index). [ForService]
// wraps one microservice's deterministic generator (the paper's Table 1
// runs). [NewAppWorkload] feeds a whole application: each request enters at
// a source node chosen by the spec's mix, carries a payload from that node's
// service generator and a key drawn from the spec's key space, uniformly or
// with Zipf skew ([ZipfKeys]). [ParseTrace] reads (offset, key, size) records
// from a CSV file and a [Replay] plays them back through an open loop.
//
// # Clients
//
// [ClosedLoop] keeps N requests outstanding; with a Rate it is paced by a
// [TokenBucket], which sweeps offered load from idle to peak. [OpenLoop]
// sends at the times of its [Arrivals] ([Poisson], [Periodic], a [Replay])
// whatever the replies do, and measures latency from the intended send
// time, so a client that falls behind cannot hide queueing (coordinated
// omission). Every request ends in exactly one of completed, failed, timed
// out or shed, and the [Summary] of a run adds up ([Summary.Check]). Warm-up
// is excluded from the measurement window; latencies go into an HdrHistogram
// in nanoseconds ([Latency]), and summaries of clients that ran side by side
// [Merge].
//
// Targets get a [Request] by value and answer with its Done method from any
// goroutine. The request carries a generation, so a reply that arrives after
// its request timed out, or a second reply, is recognised and counted rather
// than credited to whichever request reuses the client's slot. A closed-loop
// client sends its next request from inside Done; a synchronous target (one
// that calls Done inside Send, like [Inline]) costs a loop iteration, not a
// stack frame, per request.
//
// # Knee search
//
// [FindKnee] is a pure function over a measure(load) callback, so the
// simulator can reuse it: it grows the load geometrically until throughput
// stops rising (the gain falls below MinGain of the load step), p99 latency
// exceeds LatencyFactor times its low-load value, or errors exceed
// MaxErrorRate; bisects to the edge; then moves down to the lowest load whose
// throughput is within Plateau of the best, where queueing delay is least.
// It returns that knee, its peak throughput and the whole curve, in a
// bounded number of measurements. [MeasureOutstanding], [MeasureRate] and
// [MeasurePoisson] turn a client into a measure function.
//
// Defaults and why: Growth 2 reaches the knee in log2(knee/start)
// measurements without overshooting it by more than a factor of two;
// MinGain 0.5 (half of the added load must come out as added throughput)
// stops on a flattening curve without being fooled by measurement noise on
// a steep one; LatencyFactor 3, because a system's low-load p99 varies by
// tens of percent from run to run while queueing past the knee multiplies
// it; MaxErrorRate 1 %; Plateau 2 % and Resolution 5 %, the precision a
// few-second measurement of a real system supports.
//
// # Fakes
//
// [SimServer] is a target with an exact capacity (Workers x 1/Service) on a
// clock, with optional refusals, failures and dropped replies. With a
// FakeClock the client, the server and the test form a single-threaded
// discrete-event simulation, and [Run.Wait] drives it: runs are
// deterministic to the nanosecond and take no wall time to speak of.
//
// # Example
//
//	clk := loadgen.NewFakeClock(0)
//	srv, _ := loadgen.NewSimServer(clk, loadgen.SimConfig{Workers: 4, Service: 20 * time.Microsecond})
//	wl, _ := loadgen.ForService(&service.Echo, 1, 64)
//	base := loadgen.ClosedLoop{Options: loadgen.Options{
//		Target: srv, Workload: wl, Clock: clk,
//		Warmup: time.Millisecond, Duration: 10 * time.Millisecond,
//	}}
//	res, err := loadgen.FindKnee(loadgen.KneeConfig{Start: 1, Integer: true},
//		loadgen.MeasureOutstanding(ctx, base))
//	// res.Knee.Throughput is 200000 requests/s at 4 outstanding.
//
// Against the emulated cluster, Target is its ingress and Clock its dilated
// clock; nothing else changes.
package loadgen
