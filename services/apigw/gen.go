package apigw

import (
	"math/rand/v2"
	"strconv"

	"github.com/e3-platform/e3/service"
)

// Generator parameters: 1,024 thermostats, each holding a token valid for
// a day, reporting temperatures through the gateway at 100k events per
// second in all (about 98 per second per device, under the default rate).
const (
	genClients  = 1024
	genStepNs   = 10_000
	genBaseSec  = 1_700_000_000
	genValidSec = 86_400
	// DefaultSize is the request size used when a generator is asked for
	// size <= 0.
	DefaultSize = 512
)

type generator struct {
	rng    *rand.Rand
	size   int
	now    int64
	tokens [][]byte
	ev     service.Event
}

// NewGenerator returns a deterministic generator of thermostat readings,
// each carrying its device's token signed with DeriveKey(seed), padded to
// size bytes and routed by device id (Event.Key).
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultSize
	}
	key := DeriveKey(seed)
	g := &generator{rng: rand.New(rand.NewPCG(uint64(seed), 0xa9)), size: size, now: genBaseSec * 1e9}
	var claims []byte
	for i := 0; i < genClients; i++ {
		claims = append(claims[:0], `{"sub":"thermostat-`...)
		claims = appendPadded(claims, i, 5)
		claims = append(claims, `","iss":"e3-iot-hub","aud":"iot-ts","scope":"telemetry:write","iat":`...)
		claims = strconv.AppendInt(claims, genBaseSec-int64(g.rng.IntN(3600)), 10)
		claims = append(claims, `,"exp":`...)
		claims = strconv.AppendInt(claims, genBaseSec+genValidSec, 10)
		claims = append(claims, '}')
		g.tokens = append(g.tokens, AppendToken(nil, key, claims))
	}
	return g
}

func appendPadded(dst []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// Next appends the next reading, with its device's token, to dst[:0].
func (g *generator) Next(dst []byte) ([]byte, uint64) {
	id := g.rng.IntN(genClients)
	g.now += genStepNs
	g.ev = service.Event{
		Op:    service.OpObserve,
		Key:   uint64(id),
		Item:  1, // metric: room temperature
		Value: 17 + 8*g.rng.Float64(),
		Time:  g.now,
		Token: g.tokens[id],
	}
	out, err := service.AppendEvent(dst[:0], &g.ev, g.size)
	if err != nil {
		panic(err) // tokens are a few hundred bytes
	}
	return out, g.ev.Key
}
