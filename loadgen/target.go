package loadgen

import (
	"errors"
	"sync/atomic"
)

// Target is what a client drives: an application ingress on the emulated
// cluster, a real deployment, or a fake in tests.
//
// Send starts one request and returns without waiting for the reply. The
// target answers by calling r.Done exactly once, from any goroutine,
// possibly before Send returns. If Send returns an error the request has
// failed, and the target must not call Done for it.
//
// Contract on buffers: r.Payload belongs to the target from Send until it
// calls Done (so an asynchronous target may queue it without copying); the
// target must not read it after Done. The resp passed to Done need only be
// valid during the call.
//
// Send must not block on the goroutine that calls Done: a closed-loop client
// sends its next request from inside Done, on the caller's goroutine.
type Target interface {
	Send(r Request) error
}

// TargetFunc adapts a function to [Target].
type TargetFunc func(r Request) error

// Send calls f(r).
func (f TargetFunc) Send(r Request) error { return f(r) }

// Inline returns a synchronous [Target] that answers every request by
// calling handle in Send: an in-process service, or an echo for measuring
// the client itself. handle's error fails the request.
func Inline(handle func(payload []byte, key uint64, source int) ([]byte, error)) Target {
	return TargetFunc(func(r Request) error {
		resp, err := handle(r.Payload, r.Key, r.Source)
		r.Done(resp, err)
		return nil
	})
}

// Callback adapts a target written in callback style, send(payload, key,
// source, done), to [Target]; done has the contract of [Request.Done]. It
// costs one closure allocation per request, which Target avoids.
func Callback(send func(payload []byte, key uint64, source int, done func(resp []byte, err error)) error) Target {
	return TargetFunc(func(r Request) error { return send(r.Payload, r.Key, r.Source, r.Done) })
}

// Request is one request of a run, handed to [Target.Send] by value. It is
// a handle rather than a (payload, key, done func) triple because a handle
// keeps the hot path free of allocation (no closure per request), carries
// the ingress index an application with several sources needs, and carries
// a generation number, so that a reply to a request that already finished
// (a late reply after a timeout, or a second reply) is recognised as such
// even though the client has reused its internal slot for a newer request.
type Request struct {
	// Payload is the request's bytes.
	Payload []byte
	// Key is the routing key (app.ShardOf(Key, shards) picks a shard).
	Key uint64
	// Source is the workload's ingress index: for an [AppWorkload] the
	// index into app.App.Sources(); 0 for single-service workloads.
	Source int

	c   *call
	gen uint64
}

// Done reports the reply to r: resp on success, or err. A reply after the
// request timed out is counted as late, a second reply as a duplicate;
// neither changes the run's accounting.
func (r Request) Done(resp []byte, err error) {
	c := r.c
	for {
		w := c.state.Load()
		switch {
		case w>>2 != r.gen:
			// The slot moved on to a newer request. Timed-out slots are
			// never reused, so this request had already been answered.
			c.r.dup.Add(1)
			return
		case w&3 == stPending:
			if c.state.CompareAndSwap(w, w&^3|stDone) {
				c.r.finish(c, finReply, resp, err)
				return
			}
		case w&3 == stTimedOut:
			c.r.late.Add(1)
			return
		default:
			c.r.dup.Add(1)
			return
		}
	}
}

// call is the client's slot for one request at a time. Closed-loop lanes and
// the open loop's free list reuse calls; a call that timed out is retired,
// because its target may still hold the payload.
type call struct {
	buf    []byte
	key    uint64
	source int

	r    *run
	lane *lane // closed loop only

	// state is gen<<2 | status. Every request issued on the call gets a new
	// generation, so compare-and-swaps by the timeout sweep and by Done of
	// a stale Request fail once the request they meant has finished.
	state atomic.Uint64
	// phase lets a synchronous Done hand the next request back to the
	// closed-loop sender instead of recursing (see lane.run).
	phase atomic.Uint32
	// start is the intended send time on the run's clock.
	start atomic.Int64

	measured bool // issued inside the measurement window; guarded by run.mu
	reg      int  // index in run.calls; -1 once retired
}

// request returns the handle of the call's current request.
func (c *call) request() Request {
	return Request{Payload: c.buf, Key: c.key, Source: c.source, c: c, gen: c.state.Load() >> 2}
}

// Call status, the low two bits of call.state.
const (
	stIdle     = 0 // being prepared, not in flight
	stPending  = 1 // handed to the target
	stDone     = 2 // completed or failed
	stTimedOut = 3 // given up on; the call is retired and never reused
)

// Closed-loop send phases (call.phase).
const (
	phSending = iota // inside Target.Send
	phWaiting        // Send returned, reply outstanding
	phEarly          // finished while Send was still running
)

// Errors a run reports in its Summary.FirstError.
var (
	// ErrTimeout is recorded for a request with no reply within the run's
	// timeout.
	ErrTimeout = errors.New("loadgen: no reply within the timeout")
	// ErrShed is recorded for an open-loop arrival that found MaxInFlight
	// requests outstanding and was not sent.
	ErrShed = errors.New("loadgen: arrival shed, too many requests outstanding")
)
