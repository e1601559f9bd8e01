package sql

import (
	"math/rand/v2"

	"github.com/e3-platform/e3/service"
)

// Generator parameters: 10,000 thermostats each reporting about every
// 10 s (one event per millisecond in all): mostly room temperatures,
// some set points; one request in 20 is a dashboard query for a
// thermostat's temperatures over the last five minutes.
const (
	genSensors    = 10_000
	genStepNs     = 1_000_000
	genBaseTime   = 1_700_000_000_000_000_000
	genQueryOdds  = 20
	genWindowSecs = 300
	// Metric ids.
	MetricTemperature = 1
	MetricSetPoint    = 2
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

// NewGenerator returns a deterministic generator of readings and queries
// padded to size bytes, routed by sensor id (Event.Key), the key the
// IoT applications shard the SQL store by.
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultSize
	}
	return &generator{rng: rand.New(rand.NewPCG(uint64(seed), 0x5a1)), size: size, now: genBaseTime}
}

// Next appends the next reading or query to dst[:0].
func (g *generator) Next(dst []byte) ([]byte, uint64) {
	k := g.rng.Uint64N(genSensors)
	g.now += genStepNs
	g.ev = service.Event{Op: service.OpObserve, Key: k, Item: MetricTemperature, Time: g.now}
	switch r := g.rng.IntN(genQueryOdds * 5); {
	case r < 5:
		g.ev.Op, g.ev.Value = service.OpQuery, genWindowSecs
	case r < 10:
		g.ev.Item, g.ev.Value = MetricSetPoint, float64(18+g.rng.IntN(8))
	default:
		g.ev.Value = 17 + float64(k%6) + 0.5*g.rng.NormFloat64()
	}
	out, err := service.AppendEvent(dst[:0], &g.ev, g.size)
	if err != nil {
		panic(err) // no variable parts: cannot fail
	}
	return out, k
}
