package loadgen

import (
	"container/heap"
	"fmt"
	"sync"
	"time"
)

// Clock is the time base of a run. Every figure a run reports (latency,
// throughput, window lengths) is in the clock's nanoseconds, so a client
// driven by a dilated clock reports emulated time and one driven by a
// [FakeClock] reports the simulated time of a test.
//
// Besides reading the time, a client needs to be woken up: at the end of the
// run, for the next open-loop arrival, when a rate-limit token becomes
// available, and to look for timed-out requests. It asks the clock for that
// with AfterFunc, so a fake clock can run the whole client on its own
// goroutine, deterministically, with no sleeping.
type Clock interface {
	// Now returns the current time in nanoseconds. Only differences are
	// meaningful; the origin is the clock's own.
	Now() int64
	// AfterFunc calls f once the clock has advanced by d, in a goroutine of
	// the clock's choosing (a new one for [WallClock], the driver's for
	// [FakeClock]).
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call. *time.Timer satisfies it.
type Timer interface {
	// Stop cancels the call and reports whether it was still pending.
	Stop() bool
}

// wallOrigin anchors WallClock readings to the monotonic clock: differences
// of time.Since are immune to wall-clock steps.
var wallOrigin = time.Now()

// WallClock is the machine's monotonic clock, in nanoseconds since the
// process started. It is the clock of a real deployment.
type WallClock struct{}

// Now returns the monotonic time since the process started.
func (WallClock) Now() int64 { return int64(time.Since(wallOrigin)) }

// AfterFunc wraps time.AfterFunc.
func (WallClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// DilatedClock runs Factor times slower than the wall clock: one emulated
// nanosecond lasts Factor wall nanoseconds. The emulated cluster stretches
// service times, link latencies and everything else by the same factor so
// that one small machine can stand in for many cores; a client driven by the
// same clock then reports every figure in emulated time.
type DilatedClock struct {
	factor float64
	origin time.Time
}

// NewDilatedClock returns a clock that runs factor times slower than the
// wall clock (factor 1 is the wall clock; below 1 speeds time up). The
// factor must be in (0, 1e9].
func NewDilatedClock(factor float64) (*DilatedClock, error) {
	if !(factor > 0) || factor > 1e9 {
		return nil, fmt.Errorf("loadgen: dilation factor %v is out of range; use a number in (0, 1e9]", factor)
	}
	return &DilatedClock{factor: factor, origin: time.Now()}, nil
}

// Factor returns the dilation factor.
func (c *DilatedClock) Factor() float64 { return c.factor }

// Now returns the emulated nanoseconds since the clock was made.
func (c *DilatedClock) Now() int64 { return int64(float64(time.Since(c.origin)) / c.factor) }

// AfterFunc calls f after d of emulated time, that is d*Factor of wall time.
func (c *DilatedClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(time.Duration(float64(d)*c.factor), f)
}

// FakeClock is a [Clock] whose time moves only when its driver says so.
// Timers fire in order of their deadline (ties in order of creation) in the
// goroutine that moves the clock, with the clock showing the deadline. A
// client, a [SimServer] and the test all driven by one FakeClock form a
// single-threaded discrete-event simulation: the same calls give the same
// run, to the nanosecond. It is safe for concurrent use, but determinism
// needs the callbacks to be the only thing running.
type FakeClock struct {
	mu     sync.Mutex
	now    int64
	timers fakeHeap
	seq    uint64
}

// NewFakeClock returns a fake clock that shows start.
func NewFakeClock(start int64) *FakeClock { return &FakeClock{now: start} }

// Now returns the clock's current time.
func (c *FakeClock) Now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run when the clock reaches Now()+d. A negative d
// counts as zero.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, f: f, when: c.now + max(int64(d), 0), seq: c.seq, index: -1}
	heap.Push(&c.timers, t)
	return t
}

// Step moves the clock to the earliest pending timer and fires it. It
// reports false when no timer is pending.
func (c *FakeClock) Step() bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	t := heap.Pop(&c.timers).(*fakeTimer)
	if t.when > c.now {
		c.now = t.when
	}
	f := t.f
	c.mu.Unlock()
	f() // outside the lock: f may use the clock
	return true
}

// Run fires timers in order until none is pending and returns how many it
// fired. A callback that always re-arms itself makes Run loop forever; use
// Step or Advance to bound such a simulation.
func (c *FakeClock) Run() int {
	n := 0
	for c.Step() {
		n++
	}
	return n
}

// Advance moves the clock forward by d, firing the timers that fall due on
// the way.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now + max(int64(d), 0)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].when > target {
			c.now = max(c.now, target)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.Step()
	}
}

// Pending returns the number of timers waiting to fire.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type fakeTimer struct {
	c     *FakeClock
	f     func()
	when  int64
	seq   uint64
	index int // position in the heap; -1 once fired or stopped
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.index)
	return true
}

// fakeHeap orders timers by deadline, then by creation.
type fakeHeap []*fakeTimer

func (h fakeHeap) Len() int { return len(h) }
func (h fakeHeap) Less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when < h[j].when
	}
	return h[i].seq < h[j].seq
}
func (h fakeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *fakeHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *fakeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
