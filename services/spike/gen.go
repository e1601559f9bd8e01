package spike

import (
	"math/rand/v2"

	"github.com/e3-platform/e3/service"
)

// Generator parameters: room temperatures from 10,000 thermostats, each
// with its own set point and Gaussian sensor noise (σ = 0.3 °C); one
// reading in 200 is a disturbance of 2 to 5 °C (a door opened, a heater
// switched on), which a 3σ detector should flag.
const (
	genStreams   = 10_000
	genNoise     = 0.3
	genSpikeOdds = 200
	genStepNs    = 10_000
	genBaseTime  = 1_700_000_000_000_000_000
	// DefaultSize is the request size used when a generator is asked for
	// size <= 0.
	DefaultSize = 512
)

type generator struct {
	rng     *rand.Rand
	streams uint64
	size    int
	now     int64
	ev      service.Event
}

// NewGenerator returns a deterministic generator of observe events padded
// to size bytes, routed by stream key.
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultSize
	}
	return &generator{rng: rand.New(rand.NewPCG(uint64(seed), 0x5b1c)), streams: genStreams, size: size, now: genBaseTime}
}

// Next appends the next reading to dst[:0].
func (g *generator) Next(dst []byte) ([]byte, uint64) {
	k := g.rng.Uint64N(g.streams)
	g.now += genStepNs
	v := 18 + float64(k%8) + genNoise*g.rng.NormFloat64() // set points 18..25 °C
	if g.rng.IntN(genSpikeOdds) == 0 {
		v += 2 + 3*g.rng.Float64()
	}
	g.ev = service.Event{Op: service.OpObserve, Key: k, Item: 1, Value: v, Time: g.now}
	out, err := service.AppendEvent(dst[:0], &g.ev, g.size)
	if err != nil {
		panic(err) // no variable parts: cannot fail
	}
	return out, k
}
