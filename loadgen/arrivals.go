package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Arrivals says when an open-loop client sends: the offsets of successive
// requests from the start of the run, non-decreasing. ok = false ends the
// run after the requests already scheduled.
type Arrivals interface {
	Next() (offset time.Duration, ok bool)
}

// Poisson returns arrivals of a Poisson process with the given rate in
// requests per second of the run's clock: exponentially distributed gaps
// with mean 1/rate, drawn from a generator seeded with seed. Times are kept
// in float64 and rounded per arrival, so rounding does not accumulate.
func Poisson(rate float64, seed int64) (Arrivals, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("loadgen: Poisson rate %v is not a positive number of requests per second", rate)
	}
	return &poisson{mean: 1e9 / rate, rng: rand.New(rand.NewPCG(uint64(seed), 0x706f6973))}, nil // "pois"
}

type poisson struct {
	mean float64 // ns
	t    float64 // ns since start
	rng  *rand.Rand
}

func (p *poisson) Next() (time.Duration, bool) {
	p.t += p.rng.ExpFloat64() * p.mean
	if p.t >= math.MaxInt64/2 {
		return 0, false // centuries of arrivals: end rather than overflow
	}
	return time.Duration(math.Round(p.t)), true
}

// Periodic returns evenly spaced arrivals at the given rate (requests per
// second), the first one period after the start.
func Periodic(rate float64) (Arrivals, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("loadgen: periodic rate %v is not a positive number of requests per second", rate)
	}
	return &periodic{gap: 1e9 / rate}, nil
}

type periodic struct {
	gap float64
	k   float64
}

func (p *periodic) Next() (time.Duration, bool) {
	p.k++
	t := p.k * p.gap
	if t >= math.MaxInt64/2 {
		return 0, false
	}
	return time.Duration(math.Round(t)), true
}

// TokenBucket is a client-side rate limiter: it admits Rate requests per
// second on average and up to Burst at once after an idle spell. A closed-
// loop client behind one offers min(Rate, what its outstanding requests can
// carry), which sweeps offered load from idle up to the target's peak.
//
// It is the generic cell-rate algorithm: the bucket keeps the theoretical
// arrival time of the next token and admits a request no earlier than that
// time minus the burst allowance. Times are float64 nanoseconds relative to
// the first request, exact enough for days of run. It is not safe for
// concurrent use; the client calls it under its lock.
type TokenBucket struct {
	interval float64 // ns per token
	tol      float64 // (burst-1) * interval
	origin   int64
	tat      float64 // theoretical arrival time, ns since origin
	started  bool
}

// NewTokenBucket returns a bucket admitting rate requests per second with a
// burst of burst requests (at least 1). A rate of +Inf admits everything.
func NewTokenBucket(rate float64, burst int) (*TokenBucket, error) {
	if !(rate > 0) {
		return nil, fmt.Errorf("loadgen: rate limit %v is not a positive number of requests per second", rate)
	}
	if burst < 1 {
		return nil, fmt.Errorf("loadgen: rate-limit burst %d; need at least 1", burst)
	}
	iv := 1e9 / rate
	return &TokenBucket{interval: iv, tol: float64(burst-1) * iv}, nil
}

// Take reserves one token at time now and returns the time at which the
// request it admits may be sent (now, or later when the bucket is empty).
// Reservations are granted in call order.
func (b *TokenBucket) Take(now int64) int64 {
	if b.interval == 0 {
		return now
	}
	if !b.started {
		b.started, b.origin = true, now
	}
	n := float64(now - b.origin)
	tat := max(b.tat, n)
	at := tat - b.tol
	b.tat = tat + b.interval
	if at <= n {
		return now
	}
	return b.origin + int64(math.Ceil(at))
}
