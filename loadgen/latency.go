package loadgen

import (
	"fmt"
	"math"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histogram geometry. Values are nanoseconds of the run's clock:
// emulated requests can take well under a microsecond, so a microsecond
// unit would lose the low end. Three significant digits bound the error of
// any quantile to 0.1 %; the range covers one hour, far above any timeout, at
// the cost of about 180 KB per histogram. Slower values are recorded as the
// maximum and counted in Latency.Clamped.
const (
	histLowest  = 1
	histHighest = int64(time.Hour)
	histDigits  = 3
)

// Latency is a latency distribution in nanoseconds: an HdrHistogram for the
// quantiles plus the exact count, sum, minimum and maximum (the histogram's
// own mean and maximum are bucket approximations). The zero value is not
// usable; use [NewLatency]. It is not safe for concurrent use; a client
// records under its own lock.
type Latency struct {
	h        *hdrhistogram.Histogram
	n        int64
	sum      float64 // ns; float64 cannot overflow where an int64 sum of a long run could
	min, max int64
	clamped  int64
}

// NewLatency returns an empty latency distribution.
func NewLatency() *Latency {
	return &Latency{h: hdrhistogram.New(histLowest, histHighest, histDigits), min: math.MaxInt64}
}

// Record adds one latency of ns nanoseconds. Negative values (a clock
// stepping backwards) count as zero.
func (l *Latency) Record(ns int64) {
	ns = max(ns, 0)
	l.n++
	l.sum += float64(ns)
	l.min = min(l.min, ns)
	l.max = max(l.max, ns)
	if ns > histHighest {
		l.clamped++
		ns = histHighest
	}
	_ = l.h.RecordValue(ns) // cannot fail: ns is within [0, histHighest]
}

// Merge adds every value of o to l, for a run driven by several clients.
func (l *Latency) Merge(o *Latency) {
	if o == nil || o.n == 0 {
		return
	}
	l.h.Merge(o.h) // same geometry, so nothing is dropped
	l.n += o.n
	l.sum += o.sum
	l.min = min(l.min, o.min)
	l.max = max(l.max, o.max)
	l.clamped += o.clamped
}

// Clone returns an independent copy of l.
func (l *Latency) Clone() *Latency {
	c := *l
	c.h = l.h.Clone()
	return &c
}

// Count returns the number of recorded latencies.
func (l *Latency) Count() int64 { return l.n }

// Clamped returns how many recorded latencies exceeded one hour and were
// counted as one hour in the quantiles.
func (l *Latency) Clamped() int64 { return l.clamped }

// Mean returns the exact average, or 0 when nothing was recorded.
func (l *Latency) Mean() time.Duration {
	if l.n == 0 {
		return 0
	}
	return time.Duration(math.Round(l.sum / float64(l.n)))
}

// Min returns the exact minimum, or 0 when nothing was recorded.
func (l *Latency) Min() time.Duration {
	if l.n == 0 {
		return 0
	}
	return time.Duration(l.min)
}

// Max returns the exact maximum, or 0 when nothing was recorded.
func (l *Latency) Max() time.Duration { return time.Duration(l.max) }

// Quantile returns the latency at quantile q in [0, 1] (0.99 for p99): the
// smallest value at least that fraction of requests did not exceed, within
// the histogram's 0.1 %, and never above the exact maximum.
func (l *Latency) Quantile(q float64) time.Duration {
	if l.n == 0 {
		return 0
	}
	v := l.h.ValueAtQuantile(100 * min(max(q, 0), 1))
	return time.Duration(min(v, l.max))
}

// P50 returns the median.
func (l *Latency) P50() time.Duration { return l.Quantile(0.50) }

// P99 returns the 99th percentile.
func (l *Latency) P99() time.Duration { return l.Quantile(0.99) }

// P999 returns the 99.9th percentile.
func (l *Latency) P999() time.Duration { return l.Quantile(0.999) }

// String gives the usual one-line digest.
func (l *Latency) String() string {
	return fmt.Sprintf("n=%d avg=%v p50=%v p99=%v p99.9=%v max=%v",
		l.n, l.Mean(), l.P50(), l.P99(), l.P999(), l.Max())
}
