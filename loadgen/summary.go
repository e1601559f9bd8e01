package loadgen

import (
	"fmt"
	"time"
)

// Summary is the outcome of a run. Every request the client produced is in
// exactly one of Completed, Failed, TimedOut and Shed, so
// Requests = Completed + Failed + TimedOut + Shed ([Summary.Check]).
//
// Two sets of figures come from the measurement window [WindowStart,
// WindowEnd), which excludes the warm-up and the drain after the run stops:
//   - Throughput counts requests that completed inside the window, divided by
//     its length: the rate the target actually delivered.
//   - Latency holds the latency of every request issued inside the window
//     that completed without error, whenever it completed; counting by issue
//     time keeps the slow requests that straddle the end of the window in
//     the distribution instead of silently cutting them off.
//
// Latency of an open-loop request is measured from its intended arrival
// time, not from when the client got round to sending it, so a client that
// falls behind shows up as latency rather than as a quietly lower load
// (coordinated omission).
type Summary struct {
	// Requests is every request the workload produced (for the open loop,
	// every arrival).
	Requests int64
	// Completed requests got a reply without error.
	Completed int64
	// Failed requests: the target refused them (FailedSend), replied with an
	// error, or the reply failed Options.Verify (FailedReply).
	Failed, FailedSend, FailedReply int64
	// TimedOut requests got no reply within Options.Timeout.
	TimedOut int64
	// Shed open-loop arrivals were not sent because MaxInFlight requests
	// were outstanding.
	Shed int64
	// Late replies arrived after their request had timed out; Duplicate
	// replies were a second Done for one request. Both indicate target
	// trouble; neither changes the counts above.
	Late, Duplicate int64
	// FirstError is the first failure seen, for a message; nil if none.
	FirstError error

	// WindowStart and WindowEnd bound the measurement window on the run's
	// clock (ns).
	WindowStart, WindowEnd int64
	// WindowRequests were issued inside the window; WindowCompleted
	// completed inside it.
	WindowRequests, WindowCompleted int64
	// Throughput is WindowCompleted per second of window; Offered is
	// WindowRequests per second.
	Throughput, Offered float64
	// Latency holds the latencies described above; never nil.
	Latency *Latency
}

// Window returns the length of the measurement window.
func (s *Summary) Window() time.Duration {
	return time.Duration(max(s.WindowEnd-s.WindowStart, 0))
}

// Check reports an error if the counts do not add up. A finished run always
// adds up; Check exists so that callers (and tests) can say so.
func (s *Summary) Check() error {
	if got := s.Completed + s.Failed + s.TimedOut + s.Shed; got != s.Requests {
		return fmt.Errorf("loadgen: accounting: %d requests but %d completed + %d failed + %d timed out + %d shed = %d",
			s.Requests, s.Completed, s.Failed, s.TimedOut, s.Shed, got)
	}
	if s.Failed != s.FailedSend+s.FailedReply {
		return fmt.Errorf("loadgen: accounting: %d failed but %d at send + %d in reply", s.Failed, s.FailedSend, s.FailedReply)
	}
	return nil
}

// ErrorRate is the fraction of requests that did not complete.
func (s *Summary) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Failed+s.TimedOut+s.Shed) / float64(s.Requests)
}

// Point condenses the summary into one point of a latency-throughput curve
// at the given offered load.
func (s *Summary) Point(load float64) Point {
	return Point{
		Load:       load,
		Throughput: s.Throughput,
		Avg:        s.Latency.Mean(),
		P99:        s.Latency.P99(),
		ErrorRate:  s.ErrorRate(),
	}
}

// String is a one-line report.
func (s *Summary) String() string {
	return fmt.Sprintf("requests=%d completed=%d failed=%d timedout=%d shed=%d window=%v throughput=%.0f/s latency: %v",
		s.Requests, s.Completed, s.Failed, s.TimedOut, s.Shed, s.Window(), s.Throughput, s.Latency)
}

// Merge combines the summaries of clients that ran side by side over the
// same period: counts and latency distributions add up, throughputs add up
// (each client's own window is used for its own rate), and the window spans
// all of them. The inputs are not changed.
func Merge(sums ...*Summary) *Summary {
	out := &Summary{Latency: NewLatency()}
	for i, s := range sums {
		out.Requests += s.Requests
		out.Completed += s.Completed
		out.Failed += s.Failed
		out.FailedSend += s.FailedSend
		out.FailedReply += s.FailedReply
		out.TimedOut += s.TimedOut
		out.Shed += s.Shed
		out.Late += s.Late
		out.Duplicate += s.Duplicate
		if out.FirstError == nil {
			out.FirstError = s.FirstError
		}
		if i == 0 || s.WindowStart < out.WindowStart {
			out.WindowStart = s.WindowStart
		}
		if i == 0 || s.WindowEnd > out.WindowEnd {
			out.WindowEnd = s.WindowEnd
		}
		out.WindowRequests += s.WindowRequests
		out.WindowCompleted += s.WindowCompleted
		out.Throughput += s.Throughput
		out.Offered += s.Offered
		out.Latency.Merge(s.Latency)
	}
	return out
}
