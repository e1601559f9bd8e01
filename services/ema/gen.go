package ema

import (
	"math"
	"math/rand/v2"

	"github.com/e3-platform/e3/service"
)

// Generator parameters: server-health metrics (CPU temperature) from ten
// thousand machines, each with its own baseline, a slow daily-like swing
// and Gaussian noise, at 100k events per second of event time.
const (
	genStreams  = 10_000
	genStepNs   = 10_000
	genBaseTime = 1_700_000_000_000_000_000
	genPeriodNs = 600e9 // a 10-minute swing keeps the sine moving in short runs
	// DefaultSize is the request size used when a generator is asked for
	// size <= 0.
	DefaultSize = 512
)

type generator struct {
	rng  *rand.Rand
	size int
	now  int64
	ev   service.Event
}

// NewGenerator returns a deterministic generator of observe events padded
// to size bytes, routed by stream key.
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultSize
	}
	return &generator{rng: rand.New(rand.NewPCG(uint64(seed), 0xe3a)), size: size, now: genBaseTime}
}

// Next appends the next reading to dst[:0].
func (g *generator) Next(dst []byte) ([]byte, uint64) {
	k := g.rng.Uint64N(genStreams)
	g.now += genStepNs
	base := 40 + float64((k*2654435761)%30) // 40..69 °C, fixed per machine
	swing := 5 * math.Sin(2*math.Pi*float64(g.now%int64(genPeriodNs))/genPeriodNs+float64(k))
	g.ev = service.Event{
		Op:    service.OpObserve,
		Key:   k,
		Item:  1, // metric id: CPU temperature
		Value: base + swing + 1.5*g.rng.NormFloat64(),
		Time:  g.now,
	}
	out, err := service.AppendEvent(dst[:0], &g.ev, g.size)
	if err != nil {
		panic(err) // no variable parts: cannot fail
	}
	return out, k
}
