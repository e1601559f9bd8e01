package count

import (
	"math/rand/v2"
	"strconv"

	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
)

// Generator parameters. They model a hashtag stream: a million possible
// tags whose popularity follows Zipf's law with exponent 1.1, the skew
// measured for Twitter hashtags, seen by a hundred thousand users at 100k
// events per second of event time.
const (
	genItems    = 1 << 20
	genZipfS    = 1.1
	genUsers    = 100_000
	genStepNs   = 10_000 // 10 µs between events
	genBaseTime = 1_700_000_000_000_000_000
	// DefaultSize is the request size used when a generator is asked for
	// size <= 0.
	DefaultSize = 512
)

type generator struct {
	rng  *rand.Rand
	zipf *rand.Zipf
	size int
	now  int64
	text []byte
	ev   service.Event
}

// NewGenerator returns a deterministic generator of observe events
// padded to size bytes; the routing key is the item id, so that every
// occurrence of an item reaches the same shard.
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultSize
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0xc0a7))
	return &generator{
		rng:  rng,
		zipf: rand.NewZipf(rng, genZipfS, 1, genItems-1),
		size: size,
		now:  genBaseTime,
	}
}

// Next returns the next event. Popular items get low Zipf ranks; the item
// id is the rank mixed so that ids look like hashes of tag strings.
func (g *generator) Next(dst []byte) ([]byte, uint64) {
	rank := g.zipf.Uint64()
	g.now += genStepNs
	g.text = strconv.AppendUint(append(g.text[:0], "#tag"...), rank, 36)
	g.ev = service.Event{
		Op:   service.OpObserve,
		Key:  uint64(g.rng.IntN(genUsers)),
		Item: mix.Murmur3(rank + 1),
		Time: g.now,
		Text: g.text,
	}
	out, err := service.AppendEvent(dst[:0], &g.ev, g.size)
	if err != nil {
		panic(err) // the parts are a few bytes: cannot exceed the limits
	}
	return out, g.ev.Item
}
