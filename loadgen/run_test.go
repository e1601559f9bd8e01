package loadgen

import (
	"bytes"
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e3-platform/e3/service"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoWorkload is the echo service's generator: 64-byte requests whose
// first 8 bytes are the key.
func echoWorkload(seed int64) Workload {
	return FromGenerator(service.Echo.NewGenerator(seed, 64))
}

func newSim(t *testing.T, clk Clock, cfg SimConfig) *SimServer {
	t.Helper()
	s, err := NewSimServer(clk, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRun(t *testing.T, x *Run, err error) *Summary {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	s, err := x.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	return s
}

func within(got, want, tol float64) bool { return math.Abs(got-want) <= tol*math.Abs(want) }

// TestClosedLoopLittlesLaw drives a server of 10 workers x 10 µs (capacity
// 1 M req/s) with N outstanding requests on a fake clock. Queueing theory
// gives throughput min(N,10)/10µs and latency max(10µs, N µs) exactly, and
// Little's law throughput x latency = N; the tolerance is 1 %, for the
// requests cut at the window's edges.
func TestClosedLoopLittlesLaw(t *testing.T) {
	const workers, svc = 10, 10 * time.Microsecond
	for _, n := range []int{1, 3, 10, 16, 50} {
		clk := NewFakeClock(0)
		srv := newSim(t, clk, SimConfig{Workers: workers, Service: svc})
		x, err := ClosedLoop{Options: Options{Target: srv, Workload: echoWorkload(1), Clock: clk,
			Warmup: time.Millisecond, Duration: 10 * time.Millisecond}, Outstanding: n}.Start()
		s := mustRun(t, x, err)
		wantX := float64(min(n, workers)) / svc.Seconds()
		wantR := max(svc, time.Duration(n)*svc/workers)
		t.Logf("N=%d: %v", n, s)
		if !within(s.Throughput, wantX, 0.01) {
			t.Errorf("N=%d: throughput %.0f/s, want %.0f/s", n, s.Throughput, wantX)
		}
		if !within(float64(s.Latency.Mean()), float64(wantR), 0.01) {
			t.Errorf("N=%d: mean latency %v, want %v", n, s.Latency.Mean(), wantR)
		}
		if little := s.Throughput * s.Latency.Mean().Seconds(); !within(little, float64(n), 0.01) {
			t.Errorf("N=%d: throughput x latency = %.3f, want %d (Little's law)", n, little, n)
		}
		if s.Failed+s.TimedOut+s.Shed != 0 || s.Late+s.Duplicate != 0 {
			t.Errorf("N=%d: unexpected failures: %v", n, s)
		}
		if got := srv.Stats().Received; int64(got) != s.Requests {
			t.Errorf("N=%d: server received %d, client issued %d", n, got, s.Requests)
		}
	}
}

// TestClosedLoopDeterministic: the same configuration on a fake clock gives
// the same summary, to the request.
func TestClosedLoopDeterministic(t *testing.T) {
	run := func() *Summary {
		clk := NewFakeClock(12345)
		srv := newSim(t, clk, SimConfig{Workers: 3, Service: 7 * time.Microsecond, FailEvery: 13})
		x, err := ClosedLoop{Options: Options{Target: srv, Workload: echoWorkload(9), Clock: clk,
			Warmup: 100 * time.Microsecond, Duration: time.Millisecond}, Outstanding: 5}.Start()
		return mustRun(t, x, err)
	}
	a, b := run(), run()
	if a.String() != b.String() || a.Latency.P999() != b.Latency.P999() {
		t.Fatalf("runs differ:\n%v\n%v", a, b)
	}
}

// TestAccountingWithFaults: a server that refuses, fails and drops requests;
// every request ends up in exactly one bucket, and the buckets match what
// the server did.
func TestAccountingWithFaults(t *testing.T) {
	cfg := SimConfig{Workers: 2, Service: 5 * time.Microsecond, RefuseEvery: 7, FailEvery: 5, DropEvery: 11}
	check := func(t *testing.T, s *Summary, srv *SimServer) {
		st := srv.Stats()
		t.Logf("%v; server %+v", s, st)
		if s.FailedSend != int64(st.Refused) || s.FailedReply != int64(st.Failed) ||
			s.TimedOut != int64(st.Dropped) || s.Completed != int64(st.Served) {
			t.Errorf("client %+v does not match server %+v", s, st)
		}
		if s.Completed == 0 || s.FailedSend == 0 || s.FailedReply == 0 || s.TimedOut == 0 {
			t.Errorf("a fault class is missing: %v", s)
		}
		if s.Late != 0 || s.Duplicate != 0 {
			t.Errorf("late %d, duplicate %d; want none", s.Late, s.Duplicate)
		}
		if !errors.Is(s.FirstError, ErrSimRefused) && !errors.Is(s.FirstError, ErrSimFailed) && !errors.Is(s.FirstError, ErrTimeout) {
			t.Errorf("first error %v", s.FirstError)
		}
	}
	t.Run("closed", func(t *testing.T) {
		clk := NewFakeClock(0)
		srv := newSim(t, clk, cfg)
		x, err := ClosedLoop{Options: Options{Target: srv, Workload: echoWorkload(2), Clock: clk,
			Duration: 2 * time.Millisecond, Timeout: 100 * time.Microsecond}, Outstanding: 6}.Start()
		check(t, mustRun(t, x, err), srv)
	})
	t.Run("open", func(t *testing.T) {
		clk := NewFakeClock(0)
		srv := newSim(t, clk, cfg)
		arr, _ := Poisson(200_000, 3)
		x, err := OpenLoop{Options: Options{Target: srv, Workload: echoWorkload(2), Clock: clk,
			Duration: 2 * time.Millisecond, Timeout: 100 * time.Microsecond}, Arrivals: arr}.Start()
		s := mustRun(t, x, err)
		check(t, s, srv)
		if s.Requests != int64(srv.Stats().Received) {
			t.Errorf("issued %d, server received %d", s.Requests, srv.Stats().Received)
		}
	})
}

// slowTarget answers on the fake clock after a delay chosen per request,
// and can answer twice.
type slowTarget struct {
	clk    *FakeClock
	delay  func(n int) time.Duration // < 0: never answer
	twice  func(n int) bool
	n      int
	mu     sync.Mutex
	sendAt []int64
}

func (s *slowTarget) Send(c Request) error {
	s.mu.Lock()
	s.n++
	n := s.n
	s.sendAt = append(s.sendAt, s.clk.Now())
	s.mu.Unlock()
	d := s.delay(n)
	if d < 0 {
		return nil
	}
	s.clk.AfterFunc(d, func() {
		c.Done(nil, nil)
		if s.twice != nil && s.twice(n) {
			c.Done(nil, nil)
		}
	})
	return nil
}

// TestLateAndDuplicateReplies: replies after the timeout are counted late
// and not completed; a second reply is counted as a duplicate.
func TestLateAndDuplicateReplies(t *testing.T) {
	clk := NewFakeClock(0)
	const timeout = 80 * time.Microsecond
	tg := &slowTarget{clk: clk,
		delay: func(n int) time.Duration {
			if n%4 == 0 {
				return 3 * timeout // late: after the sweep gave up
			}
			return 10 * time.Microsecond
		},
		twice: func(n int) bool { return n%4 == 1 },
	}
	// A single lane makes the request numbering (and so the expected counts)
	// easy: requests go out one after another.
	x, err := ClosedLoop{Options: Options{Target: tg, Workload: echoWorkload(1), Clock: clk,
		MaxRequests: 400, Timeout: timeout}, Outstanding: 1}.Start()
	s := mustRun(t, x, err)
	t.Log(s)
	if s.TimedOut != 100 || s.Completed != 300 {
		t.Errorf("timed out %d, completed %d; want 100 and 300", s.TimedOut, s.Completed)
	}
	// The run finishes once the last request times out, so the late replies
	// to requests 396 and 400 (due 240 µs after sending) come after the
	// summary was taken.
	if s.Late != 98 {
		t.Errorf("late %d, want 98", s.Late)
	}
	if s.Duplicate != 100 {
		t.Errorf("duplicates %d, want 100", s.Duplicate)
	}
	clk.Run() // the remaining late replies are recognised as late, nothing else
	if l, d := x.r.late.Load(), x.r.dup.Load(); l != 100 || d != 100 {
		t.Errorf("after the run: late %d, duplicates %d; want 100 and 100", l, d)
	}
	if s2, _ := x.Summary(); s2.Completed != 300 || s2.Late != 98 {
		t.Errorf("summary changed after the run: %v", s2)
	}
}

// TestOpenLoopPoissonArrivals: the open loop sends exactly at the Poisson
// process's times; the gaps have the exponential mean 1/λ and variance
// 1/λ² (tolerances 1 % and 3 %, about 4.5 standard errors at this sample
// size), and counts per interval have variance equal to their mean.
func TestOpenLoopPoissonArrivals(t *testing.T) {
	const rate, seed, n = 100_000.0, 42, 200_000
	t.Logf("rate %v/s, seed %d, %d arrivals", rate, seed, n)
	clk := NewFakeClock(1_000_000)
	tg := &slowTarget{clk: clk, delay: func(int) time.Duration { return time.Microsecond }}
	arr, err := Poisson(rate, seed)
	if err != nil {
		t.Fatal(err)
	}
	x, err := OpenLoop{Options: Options{Target: tg, Workload: echoWorkload(1), Clock: clk, MaxRequests: n}, Arrivals: arr}.Start()
	s := mustRun(t, x, err)
	if s.Completed != n || len(tg.sendAt) != n {
		t.Fatalf("completed %d, sent %d; want %d", s.Completed, len(tg.sendAt), n)
	}
	// Send times are the process's arrival times exactly.
	ref, _ := Poisson(rate, seed)
	for i, at := range tg.sendAt {
		off, _ := ref.Next()
		if at != 1_000_000+int64(off) {
			t.Fatalf("request %d sent at %d, scheduled at %d", i, at, 1_000_000+int64(off))
		}
	}
	var sum, sum2 float64
	for i := 1; i < n; i++ {
		g := float64(tg.sendAt[i]-tg.sendAt[i-1]) / 1e9
		sum += g
		sum2 += g * g
	}
	m := sum / (n - 1)
	v := sum2/(n-1) - m*m
	t.Logf("gap mean %.4g s (want %.4g), variance %.4g s² (want %.4g)", m, 1/rate, v, 1/(rate*rate))
	if !within(m, 1/rate, 0.01) {
		t.Errorf("mean gap %g, want %g", m, 1/rate)
	}
	if !within(v, 1/(rate*rate), 0.03) {
		t.Errorf("gap variance %g, want %g", v, 1/(rate*rate))
	}
	// Counts per 100 µs interval (mean 10): index of dispersion 1.
	counts := map[int64]float64{}
	for _, at := range tg.sendAt {
		counts[(at-1_000_000)/100_000]++
	}
	k := float64(len(counts))
	var cs, cs2 float64
	for _, c := range counts {
		cs += c
		cs2 += c * c
	}
	cm, cv := cs/k, cs2/k-(cs/k)*(cs/k)
	t.Logf("per-100µs counts: mean %.3f variance %.3f", cm, cv)
	if !within(cv/cm, 1, 0.05) {
		t.Errorf("index of dispersion %.3f, want 1", cv/cm)
	}
	// Offered rate over the whole run matches.
	if !within(s.Offered, rate, 0.01) {
		t.Errorf("offered %.0f/s, want %.0f/s", s.Offered, rate)
	}
}

// TestOpenLoopLatencyFromIntendedTime: an overloaded server makes queueing
// delay grow; the open loop's latency includes it (measured from the
// scheduled arrival), and arrivals beyond MaxInFlight are shed, not lost.
func TestOpenLoopOverloadShedsAndCounts(t *testing.T) {
	clk := NewFakeClock(0)
	srv := newSim(t, clk, SimConfig{Workers: 1, Service: 10 * time.Microsecond}) // 100 K/s
	arr, _ := Periodic(200_000)                                                  // twice capacity
	x, err := OpenLoop{Options: Options{Target: srv, Workload: echoWorkload(1), Clock: clk,
		Duration: 5 * time.Millisecond, Timeout: time.Second}, Arrivals: arr, MaxInFlight: 50}.Start()
	s := mustRun(t, x, err)
	t.Log(s)
	if s.Shed == 0 || !errors.Is(s.FirstError, ErrShed) {
		t.Errorf("no arrivals shed: %v", s)
	}
	if !within(s.Throughput, 100_000, 0.02) {
		t.Errorf("throughput %.0f/s, want the capacity 100000/s", s.Throughput)
	}
	// 50 in flight at 10 µs each: about 500 µs of queueing.
	if s.Latency.P99() < 400*time.Microsecond {
		t.Errorf("p99 %v; queueing delay missing", s.Latency.P99())
	}
}

// TestClosedLoopRateLimit: a token bucket well below capacity sets the
// throughput; latency stays at the unloaded service time.
func TestClosedLoopRateLimit(t *testing.T) {
	clk := NewFakeClock(0)
	srv := newSim(t, clk, SimConfig{Workers: 4, Service: 10 * time.Microsecond}) // 400 K/s
	for _, rate := range []float64{1_000, 50_000, 300_000} {
		x, err := ClosedLoop{Options: Options{Target: srv, Workload: echoWorkload(1), Clock: clk,
			Warmup: time.Millisecond, Duration: 20 * time.Millisecond}, Outstanding: 16, Rate: rate, Burst: 1}.Start()
		s := mustRun(t, x, err)
		t.Logf("rate %.0f: %v", rate, s)
		if !within(s.Throughput, rate, 0.02) {
			t.Errorf("rate %.0f: throughput %.0f/s", rate, s.Throughput)
		}
		if s.Latency.P99() != 10*time.Microsecond {
			t.Errorf("rate %.0f: p99 %v, want the bare service time", rate, s.Latency.P99())
		}
	}
}

func TestTokenBucket(t *testing.T) {
	b, err := NewTokenBucket(1000, 3) // one per ms, bursts of 3
	if err != nil {
		t.Fatal(err)
	}
	const ms = int64(time.Millisecond)
	got := []int64{b.Take(0), b.Take(0), b.Take(0), b.Take(0), b.Take(0)}
	want := []int64{0, 0, 0, ms, 2 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("takes at 0: %v, want %v", got, want)
		}
	}
	// After idling 10 ms the burst is available again, and only the burst.
	if a, b2, c, d := b.Take(12*ms), b.Take(12*ms), b.Take(12*ms), b.Take(12*ms); a != 12*ms || b2 != 12*ms || c != 12*ms || d != 13*ms {
		t.Fatalf("after idle: %d %d %d %d", a, b2, c, d)
	}
	inf, _ := NewTokenBucket(math.Inf(1), 1)
	if inf.Take(5) != 5 || inf.Take(5) != 5 {
		t.Fatal("infinite rate must not delay")
	}
	for _, bad := range []struct {
		rate  float64
		burst int
	}{{0, 1}, {-1, 1}, {math.NaN(), 1}, {10, 0}} {
		if _, err := NewTokenBucket(bad.rate, bad.burst); err == nil {
			t.Errorf("NewTokenBucket(%v, %d) accepted", bad.rate, bad.burst)
		}
	}
}

// TestInlineTargetRealClock runs a synchronous target on the wall clock:
// lanes run in their own goroutines, replies are verified, and nothing
// leaks.
func TestInlineTargetRealClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	echo := Inline(func(req []byte, _ uint64, _ int) ([]byte, error) { return req, nil })
	var bad int
	x, err := ClosedLoop{Options: Options{Target: echo, Workload: echoWorkload(5), MaxRequests: 20_000,
		Verify: func(c Request, resp []byte) error {
			if !bytes.Equal(c.Payload, resp) {
				bad++
				return errors.New("reply differs from request")
			}
			return nil
		}}, Outstanding: 4}.Start()
	s := mustRun(t, x, err)
	if s.Requests != 20_000 || s.Completed != 20_000 || bad != 0 {
		t.Fatalf("%v (bad %d)", s, bad)
	}
}

// TestVerifyFails: a reply that fails verification counts as failed.
func TestVerifyFails(t *testing.T) {
	clk := NewFakeClock(0)
	srv := newSim(t, clk, SimConfig{Workers: 1, Service: time.Microsecond})
	errOdd := errors.New("odd key")
	x, err := ClosedLoop{Options: Options{Target: srv, Workload: echoWorkload(5), Clock: clk, MaxRequests: 1000,
		Verify: func(c Request, _ []byte) error {
			if c.Key%2 == 1 {
				return errOdd
			}
			return nil
		}}, Outstanding: 2}.Start()
	s := mustRun(t, x, err)
	if s.FailedReply == 0 || s.Completed == 0 || !errors.Is(s.FirstError, errOdd) {
		t.Fatalf("%v first error %v", s, s.FirstError)
	}
}

// asyncTarget answers from its own goroutines after a wall-clock delay, as
// a network would.
type asyncTarget struct {
	wg      sync.WaitGroup
	delay   time.Duration
	drop    func(key uint64) bool
	dropped atomic.Int64
}

func (a *asyncTarget) Send(c Request) error {
	if a.drop != nil && a.drop(c.Key) {
		a.dropped.Add(1)
		return nil
	}
	a.wg.Add(1)
	time.AfterFunc(a.delay, func() {
		defer a.wg.Done()
		c.Done(c.Payload, nil)
	})
	return nil
}

// TestStopAndCancelRealClock: an unbounded run stops when its context ends,
// drains (timing out dropped requests) and leaks no goroutine.
func TestStopAndCancelRealClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	tg := &asyncTarget{delay: 20 * time.Microsecond, drop: func(k uint64) bool { return k%10 == 0 }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	s, err := ClosedLoop{Options: Options{Target: tg, Workload: echoWorkload(7), Timeout: 200 * time.Millisecond},
		Outstanding: 8}.Run(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the context's", err)
	}
	tg.wg.Wait()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	// Every dropped request times out, every other one completes.
	if s.TimedOut != tg.dropped.Load() || s.Completed != s.Requests-s.TimedOut || s.Completed == 0 {
		t.Fatalf("%v; %d dropped", s, tg.dropped.Load())
	}
	t.Log(s)
}

// TestOpenLoopRealClock: a Poisson open loop on the wall clock against an
// asynchronous target, with -race this checks the concurrent paths.
func TestOpenLoopRealClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	tg := &asyncTarget{delay: 50 * time.Microsecond}
	arr, _ := Poisson(20_000, 1)
	s, err := OpenLoop{Options: Options{Target: tg, Workload: echoWorkload(7), Warmup: 5 * time.Millisecond,
		Duration: 20 * time.Millisecond}, Arrivals: arr}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tg.wg.Wait()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.Completed == 0 || s.Latency.Count() == 0 || s.Latency.Min() < 50*time.Microsecond {
		t.Fatalf("%v", s)
	}
	t.Log(s)
}

// TestDilatedClock: emulated time runs Factor times slower, and a run on it
// reports emulated figures.
func TestDilatedClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	if _, err := NewDilatedClock(0); err == nil {
		t.Fatal("factor 0 accepted")
	}
	clk, err := NewDilatedClock(10)
	if err != nil {
		t.Fatal(err)
	}
	tg := &asyncTarget{delay: 2 * time.Millisecond} // wall time: 200 µs emulated
	s, err := ClosedLoop{Options: Options{Target: tg, Workload: echoWorkload(7), Clock: clk, MaxRequests: 20},
		Outstanding: 1}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tg.wg.Wait()
	// At least 200 µs; the upper bound only guards against a clock that
	// does not dilate (2 ms), with room for a loaded machine's timer delays.
	if m := s.Latency.Min(); m < 200*time.Microsecond || m >= 2*time.Millisecond {
		t.Fatalf("min latency %v emulated; want about 200µs for a 2 ms wall delay at factor 10", m)
	}
}

func TestConfigErrors(t *testing.T) {
	srv := Inline(func(b []byte, _ uint64, _ int) ([]byte, error) { return b, nil })
	wl := echoWorkload(1)
	arr, _ := Periodic(1)
	for _, c := range []struct {
		name  string
		start func() (*Run, error)
	}{
		{"no target", ClosedLoop{Options: Options{Workload: wl}, Outstanding: 1}.Start},
		{"no workload", ClosedLoop{Options: Options{Target: srv}, Outstanding: 1}.Start},
		{"zero outstanding", ClosedLoop{Options: Options{Target: srv, Workload: wl}}.Start},
		{"negative rate", ClosedLoop{Options: Options{Target: srv, Workload: wl}, Outstanding: 1, Rate: -1}.Start},
		{"negative timeout", ClosedLoop{Options: Options{Target: srv, Workload: wl, Timeout: -1}, Outstanding: 1}.Start},
		{"no arrivals", OpenLoop{Options: Options{Target: srv, Workload: wl}}.Start},
		{"too many in flight", OpenLoop{Options: Options{Target: srv, Workload: wl}, Arrivals: arr, MaxInFlight: MaxOutstanding + 1}.Start},
	} {
		if _, err := c.start(); err == nil {
			t.Errorf("%s: accepted", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
	if _, err := Poisson(0, 1); err == nil {
		t.Error("Poisson(0) accepted")
	}
	if _, err := NewSimServer(NewFakeClock(0), SimConfig{Workers: 0, Service: 1}); err == nil {
		t.Error("SimServer with no workers accepted")
	}
}

func TestMergeSummaries(t *testing.T) {
	var sums []*Summary
	for i := range 3 {
		clk := NewFakeClock(0)
		srv := newSim(t, clk, SimConfig{Workers: 1, Service: time.Duration(i+1) * time.Microsecond})
		x, err := ClosedLoop{Options: Options{Target: srv, Workload: echoWorkload(int64(i)), Clock: clk,
			Duration: time.Millisecond}, Outstanding: 1}.Start()
		sums = append(sums, mustRun(t, x, err))
	}
	m := Merge(sums...)
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	// 1 ms at 1, 2 and 3 µs per request: 1000 + 500 + 333 per ms.
	if !within(m.Throughput, 1e6+5e5+1e6/3, 0.01) {
		t.Errorf("merged throughput %.0f", m.Throughput)
	}
	if m.Latency.Count() != sums[0].Latency.Count()+sums[1].Latency.Count()+sums[2].Latency.Count() {
		t.Error("merged latency count")
	}
	if m.Latency.Min() != time.Microsecond || m.Latency.Max() != 3*time.Microsecond {
		t.Errorf("merged min %v max %v", m.Latency.Min(), m.Latency.Max())
	}
}

// TestTimeoutDuringSend: a synchronous target whose Send sometimes takes
// three timeouts (it advances the fake clock inside Send, as a blocking
// call would let time pass). The sweep times those requests out while Send
// is still running; their replies, when Send finally gives them, count as
// late, and the lane carries on with a fresh slot.
func TestTimeoutDuringSend(t *testing.T) {
	clk := NewFakeClock(0)
	const timeout = 100 * time.Microsecond
	n := 0
	tg := TargetFunc(func(r Request) error {
		n++
		if n%20 == 0 {
			clk.Advance(3 * timeout)
		}
		r.Done(r.Payload, nil)
		return nil
	})
	x, err := ClosedLoop{Options: Options{Target: tg, Workload: echoWorkload(1), Clock: clk,
		MaxRequests: 200, Timeout: timeout}, Outstanding: 1}.Start()
	s := mustRun(t, x, err)
	t.Log(s)
	if s.TimedOut != 10 || s.Late != 10 || s.Completed != 190 || s.Duplicate != 0 {
		t.Fatalf("timed out %d, late %d, completed %d, duplicates %d; want 10, 10, 190, 0", s.TimedOut, s.Late, s.Completed, s.Duplicate)
	}
	// Request 200 timed out too, and the lane ended without a new slot.
	if got := len(x.r.calls); got != 0 {
		t.Errorf("%d calls registered; timed-out slots must be retired", got)
	}
}

func TestCallbackTarget(t *testing.T) {
	clk := NewFakeClock(0)
	errEven := errors.New("even")
	tg := Callback(func(p []byte, key uint64, _ int, done func([]byte, error)) error {
		if key%2 == 0 {
			clk.AfterFunc(time.Microsecond, func() { done(nil, errEven) })
		} else {
			clk.AfterFunc(time.Microsecond, func() { done(p, nil) })
		}
		return nil
	})
	x, err := ClosedLoop{Options: Options{Target: tg, Workload: echoWorkload(3), Clock: clk, MaxRequests: 1000}, Outstanding: 3}.Start()
	s := mustRun(t, x, err)
	if s.Completed == 0 || s.FailedReply == 0 || s.Completed+s.FailedReply != 1000 {
		t.Fatal(s)
	}
}
