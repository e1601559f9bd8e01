package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the settings closed- and open-loop clients share. Durations
// are in the clock's time (emulated time under a [DilatedClock]).
type Options struct {
	// Target receives the requests. Required.
	Target Target
	// Workload produces them. Required.
	Workload Workload
	// Clock is the run's time base; nil means [WallClock].
	Clock Clock
	// Warmup is sent but not measured: the window starts after it.
	Warmup time.Duration
	// Duration is the length of the measurement window; the run stops
	// issuing requests at Warmup+Duration. 0 means no time limit (the run
	// ends by MaxRequests, the end of its arrivals, or Stop).
	Duration time.Duration
	// MaxRequests stops the run once it has produced that many requests;
	// 0 means no limit.
	MaxRequests int64
	// Timeout is how long a request may go without a reply, from its
	// intended send time, before it is counted as timed out (default 1 s).
	// A run ends at most Timeout (plus an eighth of it, the sweep period)
	// after it stops issuing.
	Timeout time.Duration
	// Verify, if set, checks each reply; an error fails the request. It
	// runs in Done, with r.Payload still valid.
	Verify func(r Request, resp []byte) error
}

// DefaultTimeout is the request timeout when Options.Timeout is zero.
const DefaultTimeout = time.Second

func (o *Options) validate(what string) error {
	switch {
	case o.Target == nil:
		return fmt.Errorf("loadgen: %s: no Target", what)
	case o.Workload == nil:
		return fmt.Errorf("loadgen: %s: no Workload", what)
	case o.Warmup < 0:
		return fmt.Errorf("loadgen: %s: Warmup %v is negative", what, o.Warmup)
	case o.Duration < 0:
		return fmt.Errorf("loadgen: %s: Duration %v is negative", what, o.Duration)
	case o.MaxRequests < 0:
		return fmt.Errorf("loadgen: %s: MaxRequests %d is negative", what, o.MaxRequests)
	case o.Timeout < 0:
		return fmt.Errorf("loadgen: %s: Timeout %v is negative", what, o.Timeout)
	}
	return nil
}

// ClosedLoop keeps Outstanding requests in flight: each reply (or failure,
// or timeout) releases the next request, so the offered load adapts to what
// the target delivers. With a Rate it is also paced by a token bucket, which
// sweeps offered load from idle (low Rate) to peak (a Rate above capacity).
type ClosedLoop struct {
	Options
	// Outstanding is the number of requests kept in flight, 1 to 1<<20.
	Outstanding int
	// Rate, if positive, limits sending to Rate requests per second with
	// bursts of Burst (default 1).
	Rate  float64
	Burst int
}

// MaxOutstanding bounds ClosedLoop.Outstanding and OpenLoop.MaxInFlight.
const MaxOutstanding = 1 << 20

// OpenLoop sends at the times its Arrivals give, whether or not earlier
// requests have been answered ([Poisson] arrivals model many independent
// users; a [Replay] replays a trace).
type OpenLoop struct {
	Options
	// Arrivals gives the send times. Required.
	Arrivals Arrivals
	// MaxInFlight bounds the requests outstanding at once (default 65,536);
	// an arrival beyond it is counted as shed rather than sent, so an
	// overloaded target cannot make the client grow without bound.
	MaxInFlight int
}

// DefaultMaxInFlight is OpenLoop.MaxInFlight when zero.
const DefaultMaxInFlight = 1 << 16

// Run is a client at work. Its methods are safe for concurrent use.
type Run struct{ r *run }

// Start validates the configuration and starts the client; requests start
// flowing when the clock next fires timers (at once on a real clock).
func (c ClosedLoop) Start() (*Run, error) {
	if err := c.validate("closed loop"); err != nil {
		return nil, err
	}
	if c.Outstanding < 1 || c.Outstanding > MaxOutstanding {
		return nil, fmt.Errorf("loadgen: closed loop: Outstanding %d is out of range; use 1 to %d", c.Outstanding, MaxOutstanding)
	}
	r := newRun(c.Options)
	r.closed = true
	if c.Rate < 0 || math.IsNaN(c.Rate) {
		return nil, fmt.Errorf("loadgen: closed loop: Rate %v is negative; use 0 for no limit", c.Rate)
	}
	if c.Rate > 0 {
		b, err := NewTokenBucket(c.Rate, max(c.Burst, 1))
		if err != nil {
			return nil, fmt.Errorf("loadgen: closed loop: %w", err)
		}
		r.bucket = b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startLocked()
	r.active = c.Outstanding
	for range c.Outstanding {
		l := &lane{r: r}
		l.call = r.newCallLocked(l)
		r.lanes = append(r.lanes, l)
		// Each lane starts from a timer of its own: on a real clock in a
		// goroutine of its own (a synchronous target keeps a lane busy for
		// the whole run), on a fake clock in order, deterministically.
		l.timer = r.afterFuncLocked(0, l.wake)
	}
	return &Run{r}, nil
}

// Start validates the configuration and starts the client.
func (o OpenLoop) Start() (*Run, error) {
	if err := o.validate("open loop"); err != nil {
		return nil, err
	}
	if o.Arrivals == nil {
		return nil, fmt.Errorf("loadgen: open loop: no Arrivals")
	}
	if o.MaxInFlight < 0 || o.MaxInFlight > MaxOutstanding {
		return nil, fmt.Errorf("loadgen: open loop: MaxInFlight %d is out of range; use 1 to %d (0 for %d)", o.MaxInFlight, MaxOutstanding, DefaultMaxInFlight)
	}
	r := newRun(o.Options)
	r.arrivals = o.Arrivals
	r.maxInFlight = o.MaxInFlight
	if r.maxInFlight == 0 {
		r.maxInFlight = DefaultMaxInFlight
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startLocked()
	off, ok := r.arrivals.Next()
	if !ok {
		r.stopLocked(r.origin)
		r.maybeFinishLocked()
		return &Run{r}, nil
	}
	r.nextAt = r.origin + int64(off)
	r.pacer = r.afterFuncLocked(time.Duration(r.nextAt-r.origin), r.pace)
	return &Run{r}, nil
}

// Stop ends the run early: no new requests are issued, and the window ends
// now. Requests in flight are still waited for (up to the timeout).
func (x *Run) Stop() {
	r := x.r
	now := r.clk.Now()
	r.mu.Lock()
	r.stopLocked(now)
	r.mu.Unlock()
}

// Done is closed when the run has finished: stopped, and every request
// answered or timed out.
func (x *Run) Done() <-chan struct{} { return x.r.done }

// Summary returns the run's summary once it has finished; ok is false
// before.
func (x *Run) Summary() (s *Summary, ok bool) {
	select {
	case <-x.r.done:
		return x.r.sum, true
	default:
		return nil, false
	}
}

// ErrFakeClockIdle is returned by Wait when a run on a [FakeClock] cannot
// finish because no timer is left to fire: a bug in a fake target, which
// must complete its requests through the clock.
var ErrFakeClockIdle = errors.New("loadgen: fake clock has no pending timers but the run has not finished")

// Wait waits for the run to finish and returns its summary. On a [FakeClock]
// Wait is the driver: it fires the clock's timers until the run finishes, so
// the run must be bounded by Duration, MaxRequests or its arrivals (or ctx).
// If ctx ends first, Wait stops the run, still waits for it to drain, and
// returns the summary with ctx's error.
func (x *Run) Wait(ctx context.Context) (*Summary, error) {
	r := x.r
	if fc, ok := r.clk.(*FakeClock); ok {
		for {
			select {
			case <-r.done:
				return r.sum, nil
			default:
			}
			if ctx.Err() != nil {
				x.Stop()
				for fc.Step() {
					if s, ok := x.Summary(); ok {
						return s, ctx.Err()
					}
				}
				return nil, ErrFakeClockIdle
			}
			if !fc.Step() {
				return nil, ErrFakeClockIdle
			}
		}
	}
	select {
	case <-r.done:
		return r.sum, nil
	case <-ctx.Done():
		x.Stop()
		<-r.done
		return r.sum, ctx.Err()
	}
}

// Run starts the closed loop, waits for it to finish and returns its
// summary.
func (c ClosedLoop) Run(ctx context.Context) (*Summary, error) {
	x, err := c.Start()
	if err != nil {
		return nil, err
	}
	return x.Wait(ctx)
}

// Run starts the open loop, waits for it to finish and returns its summary.
func (o OpenLoop) Run(ctx context.Context) (*Summary, error) {
	x, err := o.Start()
	if err != nil {
		return nil, err
	}
	return x.Wait(ctx)
}

// run is the machinery both clients share.
type run struct {
	clk     Clock
	target  Target
	wl      Workload
	verify  func(Request, []byte) error
	timeout int64
	maxReq  int64
	warmup  int64
	dur     int64

	late, dup atomic.Int64
	done      chan struct{}
	sum       *Summary // set once, before done is closed

	mu       sync.Mutex
	origin   int64
	stopped  bool
	finished bool
	winStart int64
	winEnd   int64 // planned end (MaxInt64 without a Duration), lowered by an early stop
	s        Summary
	calls    []*call // calls that may be pending: the timeout sweep's domain
	armed    int     // our timers that may still fire
	endTimer Timer
	sweeper  Timer
	expired  []*call // sweep scratch
	expWords []uint64

	// closed loop
	closed bool
	lanes  []*lane
	active int // lanes that have not ended
	bucket *TokenBucket

	// open loop
	arrivals    Arrivals
	nextAt      int64
	pacer       Timer
	inflight    int
	maxInFlight int
	free        []*call
}

func newRun(o Options) *run {
	r := &run{
		clk:     o.Clock,
		target:  o.Target,
		wl:      o.Workload,
		verify:  o.Verify,
		timeout: int64(o.Timeout),
		maxReq:  o.MaxRequests,
		warmup:  int64(o.Warmup),
		dur:     int64(o.Duration),
		done:    make(chan struct{}),
	}
	if r.clk == nil {
		r.clk = WallClock{}
	}
	if r.timeout == 0 {
		r.timeout = int64(DefaultTimeout)
	}
	r.s.Latency = NewLatency()
	return r
}

func (r *run) startLocked() {
	r.origin = r.clk.Now()
	r.winStart = r.origin + r.warmup
	r.winEnd = math.MaxInt64
	if r.dur > 0 {
		r.winEnd = r.winStart + r.dur
		r.endTimer = r.afterFuncLocked(time.Duration(r.winEnd-r.origin), r.end)
	}
	r.sweeper = r.afterFuncLocked(r.sweepPeriod(), r.sweep)
}

// sweepPeriod is how often the run looks for timed-out requests: an eighth
// of the timeout, so a timeout is detected at most 12.5 % late.
func (r *run) sweepPeriod() time.Duration { return time.Duration(max(r.timeout/8, 1)) }

func (r *run) end() {
	now := r.clk.Now()
	r.mu.Lock()
	r.endTimer = nil
	r.stopLocked(now)
	r.mu.Unlock()
}

// afterFuncLocked arms a timer and counts it in r.armed until it has run or
// been stopped, so that the run finishes only once no callback of ours can
// still be running.
func (r *run) afterFuncLocked(d time.Duration, f func()) Timer {
	r.armed++
	return r.clk.AfterFunc(d, func() {
		f()
		r.mu.Lock()
		r.armed--
		r.maybeFinishLocked()
		r.mu.Unlock()
	})
}

// stopTimerLocked cancels t; it reports false if t's callback is already
// running or done (its wrapper then accounts for it).
func (r *run) stopTimerLocked(t Timer) bool {
	if t != nil && t.Stop() {
		r.armed--
		return true
	}
	return false
}

// stopLocked stops issuing. Lanes waiting for a token and the pacer are
// cancelled; requests in flight drain.
func (r *run) stopLocked(now int64) {
	if r.stopped {
		return
	}
	r.stopped = true
	r.winEnd = min(r.winEnd, max(now, r.winStart))
	if r.stopTimerLocked(r.endTimer) {
		r.endTimer = nil
	}
	if r.stopTimerLocked(r.pacer) {
		r.pacer = nil
	}
	for _, l := range r.lanes {
		if l.timer != nil && r.stopTimerLocked(l.timer) {
			l.timer = nil
			r.active--
		}
	}
	r.maybeFinishLocked()
}

func (r *run) busyLocked() int {
	if r.closed {
		return r.active
	}
	return r.inflight
}

// maybeFinishLocked finishes the run once it is stopped, drained, and no
// callback of ours is left.
func (r *run) maybeFinishLocked() {
	if r.finished || !r.stopped || r.busyLocked() > 0 {
		return
	}
	if r.stopTimerLocked(r.sweeper) {
		r.sweeper = nil
	}
	if r.armed > 0 {
		return // a callback is running; its wrapper calls us again
	}
	r.finished = true
	s := r.s
	s.Late, s.Duplicate = r.late.Load(), r.dup.Load()
	s.WindowStart, s.WindowEnd = r.winStart, max(r.winEnd, r.winStart)
	if w := float64(s.WindowEnd-s.WindowStart) / 1e9; w > 0 {
		s.Throughput = float64(s.WindowCompleted) / w
		s.Offered = float64(s.WindowRequests) / w
	}
	r.sum = &s
	close(r.done)
}

func (r *run) newCallLocked(l *lane) *call {
	c := &call{r: r, lane: l, reg: len(r.calls)}
	r.calls = append(r.calls, c)
	return c
}

// retireLocked drops a timed-out call from the registry; it is never reused,
// because the target may still hold its buffer.
func (r *run) retireLocked(c *call) {
	if c.reg < 0 {
		return
	}
	last := r.calls[len(r.calls)-1]
	r.calls[c.reg] = last
	last.reg = c.reg
	r.calls = r.calls[:len(r.calls)-1]
	c.reg = -1
}

// issueLocked fills c with the next request, intended for time at, and marks
// it pending.
func (r *run) issueLocked(c *call, at, now int64) {
	c.buf, c.key, c.source = r.wl.Next(c.buf[:0])
	r.s.Requests++
	c.measured = at >= r.winStart && at < r.winEnd
	if c.measured {
		r.s.WindowRequests++
	}
	c.start.Store(at)
	w := c.state.Load()
	c.state.Store((w>>2+1)<<2 | stPending)
	if r.maxReq > 0 && r.s.Requests >= r.maxReq {
		r.stopLocked(now)
	}
}

type finKind uint8

const (
	finReply   finKind = iota // Done
	finSend                   // Send returned an error
	finTimeout                // the sweep gave up
)

// finish accounts for a call whose state the caller has just moved out of
// pending, and for the closed loop carries on with the call's lane.
func (r *run) finish(c *call, kind finKind, resp []byte, err error) {
	now := r.clk.Now()
	if kind == finReply && err == nil && r.verify != nil {
		if verr := r.verify(c.request(), resp); verr != nil {
			err = fmt.Errorf("loadgen: reply rejected: %w", verr)
		}
	}
	r.mu.Lock()
	switch {
	case kind == finTimeout:
		r.s.TimedOut++
		r.noteErrLocked(ErrTimeout)
		r.retireLocked(c)
	case err != nil:
		r.s.Failed++
		if kind == finSend {
			r.s.FailedSend++
		} else {
			r.s.FailedReply++
		}
		r.noteErrLocked(err)
	default:
		r.s.Completed++
		if c.measured {
			r.s.Latency.Record(now - c.start.Load())
		}
		if now >= r.winStart && now < r.winEnd {
			r.s.WindowCompleted++
		}
	}
	if !r.closed {
		r.inflight--
		if kind != finTimeout {
			r.free = append(r.free, c)
		}
		r.maybeFinishLocked()
	}
	r.mu.Unlock()
	switch {
	case !r.closed || kind == finSend:
		// The open loop has no continuation; after a Send error the
		// sending loop carries on by itself.
	case kind == finTimeout:
		c.lane.resumeLater(c)
	default:
		c.lane.resume(c)
	}
}

func (r *run) noteErrLocked(err error) {
	if r.s.FirstError == nil {
		r.s.FirstError = err
	}
}

// sweep times out requests pending for longer than the timeout.
func (r *run) sweep() {
	now := r.clk.Now()
	r.mu.Lock()
	r.sweeper = nil
	exp, words := r.expired[:0], r.expWords[:0]
	for _, c := range r.calls {
		if w := c.state.Load(); w&3 == stPending && now-c.start.Load() >= r.timeout {
			exp, words = append(exp, c), append(words, w)
		}
	}
	r.mu.Unlock()
	for i, c := range exp {
		// Fails if the reply came in meanwhile, even if the call was
		// reused since: the generation in the state word differs.
		if c.state.CompareAndSwap(words[i], words[i]&^3|stTimedOut) {
			r.finish(c, finTimeout, nil, nil)
		}
	}
	r.mu.Lock()
	clear(exp)
	r.expired, r.expWords = exp[:0], words[:0]
	if !r.finished && !(r.stopped && r.busyLocked() == 0) {
		r.sweeper = r.afterFuncLocked(r.sweepPeriod(), r.sweep)
	}
	r.mu.Unlock()
}

// lane is one closed-loop request slot: a chain of requests, each sent when
// the previous one finished.
type lane struct {
	r        *run
	call     *call // reused until it times out
	timer    Timer // pending start or token wait; guarded by r.mu
	hasToken bool  // a token was reserved before waiting for it
}

// wake starts (or, after a token wait, continues) the lane.
func (l *lane) wake() {
	l.r.mu.Lock()
	l.timer = nil
	l.r.mu.Unlock()
	l.run()
}

// resume continues the lane after its call c finished. If Send is still on
// the stack (a synchronous target, or a timeout during a slow Send), the
// sending loop continues instead, so a synchronous target costs a loop
// iteration rather than a stack frame per request.
func (l *lane) resume(c *call) {
	if c.phase.CompareAndSwap(phSending, phEarly) {
		return
	}
	l.run()
}

// resumeLater continues the lane from a timer of its own rather than on the
// caller's stack: the timeout sweep calls it, and must not turn into the
// lane's sender (with a synchronous target that would be for the rest of the
// run, and no other timeout would be seen meanwhile).
func (l *lane) resumeLater(c *call) {
	if c.phase.CompareAndSwap(phSending, phEarly) {
		return
	}
	r := l.r
	r.mu.Lock()
	l.timer = r.afterFuncLocked(0, l.wake)
	r.mu.Unlock()
}

// run issues and sends requests until one is left outstanding, the lane has
// to wait for a token, or the run stops.
func (l *lane) run() {
	r := l.r
	for {
		if !l.prepare() {
			return
		}
		c := l.call
		c.phase.Store(phSending)
		if err := r.target.Send(c.request()); err != nil {
			// The state may have moved on: the sweep timed the call out
			// during a slow Send, or a faulty target called Done anyway.
			if w := c.state.Load(); w&3 == stPending && c.state.CompareAndSwap(w, w&^3|stDone) {
				r.finish(c, finSend, nil, err)
			}
			continue
		}
		if c.phase.CompareAndSwap(phSending, phWaiting) {
			return // the reply will resume the lane
		}
	}
}

// prepare readies the lane's next request. It returns false if the lane
// ended (the run stopped) or must wait for a rate-limit token.
func (l *lane) prepare() bool {
	r := l.r
	now := r.clk.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		r.active--
		r.maybeFinishLocked()
		return false
	}
	if l.call.state.Load()&3 == stTimedOut {
		l.call = r.newCallLocked(l)
	}
	if r.bucket != nil && !l.hasToken {
		if at := r.bucket.Take(now); at > now {
			l.hasToken = true
			l.timer = r.afterFuncLocked(time.Duration(at-now), l.wake)
			return false
		}
	}
	l.hasToken = false
	r.issueLocked(l.call, now, now)
	return true
}

// pace is the open loop's sender: it issues every arrival that is due, in
// batches sent outside the lock, then sleeps until the next one.
func (r *run) pace() {
	var batch [64]*call
	for {
		now := r.clk.Now()
		r.mu.Lock()
		r.pacer = nil
		n := 0
		for !r.stopped && n < len(batch) && r.nextAt <= now {
			at := r.nextAt
			if r.inflight >= r.maxInFlight {
				r.s.Requests++
				r.s.Shed++
				if at >= r.winStart && at < r.winEnd {
					r.s.WindowRequests++
				}
				r.noteErrLocked(ErrShed)
				if r.maxReq > 0 && r.s.Requests >= r.maxReq {
					r.stopLocked(now)
				}
			} else {
				var c *call
				if k := len(r.free); k > 0 {
					c, r.free = r.free[k-1], r.free[:k-1]
				} else {
					c = r.newCallLocked(nil)
				}
				r.inflight++
				r.issueLocked(c, at, now)
				batch[n] = c
				n++
			}
			// The next arrival is drawn after this one was issued: a Replay's
			// workload describes the arrival drawn last.
			off, more := r.arrivals.Next()
			if more {
				r.nextAt = max(r.origin+int64(off), at)
			}
			if !more {
				r.stopLocked(now)
			}
		}
		if n == 0 {
			if !r.stopped {
				r.pacer = r.afterFuncLocked(time.Duration(r.nextAt-now), r.pace)
			}
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		for _, c := range batch[:n] {
			if err := r.target.Send(c.request()); err != nil {
				if w := c.state.Load(); w&3 == stPending && c.state.CompareAndSwap(w, w&^3|stDone) {
					r.finish(c, finSend, nil, err)
				}
			}
		}
		clear(batch[:n])
	}
}
