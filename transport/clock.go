package transport

import (
	"container/heap"
	"sync"
	"time"
)

// Clock is the source of time for everything in this package that waits:
// retransmission timers, injected link delays, host-link latency. Production
// code uses [RealClock]; tests use a [ManualClock] and move time by hand, so
// that a retransmission or a delayed packet happens exactly when the test
// says and not when the machine gets round to it.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine (RealClock) or in the goroutine
	// that advances time (ManualClock) once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by [Clock.AfterFunc].
type Timer interface {
	// Stop cancels the call; it reports whether the call was still pending.
	Stop() bool
	// Reset reschedules the call to d from now; it reports whether the call
	// was still pending.
	Reset(d time.Duration) bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// ManualClock is a [Clock] whose time moves only when [ManualClock.Advance]
// or [ManualClock.Set] is called. Timers due at or before the new time fire
// in order of their deadline (ties in order of creation), in the goroutine
// that advanced the clock, with the clock already showing the timer's
// deadline, so the same sequence of calls always gives the same run.
// It is safe for concurrent use.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers manualHeap
	seq    uint64
}

// NewManualClock returns a ManualClock that shows start.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f to run when the clock has advanced by d.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, f: f, index: -1}
	c.schedule(t, d)
	return t
}

func (c *ManualClock) schedule(t *manualTimer, d time.Duration) {
	c.seq++
	t.when = c.now.Add(d)
	t.seq = c.seq
	heap.Push(&c.timers, t)
}

// Advance moves the clock forward by d, firing due timers on the way.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	c.Set(target)
}

// Set moves the clock to t (never backwards), firing due timers on the way.
func (c *ManualClock) Set(t time.Time) {
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].when.After(t) {
			if t.After(c.now) {
				c.now = t
			}
			c.mu.Unlock()
			return
		}
		next := heap.Pop(&c.timers).(*manualTimer)
		if next.when.After(c.now) {
			c.now = next.when
		}
		f := next.f
		c.mu.Unlock()
		f() // outside the lock: f may use the clock
	}
}

// Pending returns how many timers are waiting to fire.
func (c *ManualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// NextDeadline returns the deadline of the earliest pending timer, if any.
// A test driver can jump straight to it instead of stepping blindly.
func (c *ManualClock) NextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return time.Time{}, false
	}
	return c.timers[0].when, true
}

type manualTimer struct {
	c     *ManualClock
	f     func()
	when  time.Time
	seq   uint64
	index int // position in the heap, -1 when not scheduled
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.index)
	return true
}

func (t *manualTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	pending := t.index >= 0
	if pending {
		heap.Remove(&t.c.timers, t.index)
	}
	t.c.schedule(t, d)
	return pending
}

// manualHeap orders timers by deadline, then by creation, so firing order
// never depends on map iteration or scheduling.
type manualHeap []*manualTimer

func (h manualHeap) Len() int { return len(h) }
func (h manualHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h manualHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *manualHeap) Push(x any) {
	t := x.(*manualTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *manualHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
