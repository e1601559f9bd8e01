package topk

import (
	"math/rand/v2"

	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/gen"
)

// DefaultRequestSize is the request size of the paper's benchmarks.
const DefaultRequestSize = 512

// Generated streams: items are hashtags of a trending-topics pipeline (the
// RTA-PTC application: count, then rank, then classify), drawn with Zipf
// popularity over genItems ids, and each observation carries the item's
// running count in the stream as its score, as an upstream counter would
// emit. One request in queryEvery asks for the ranking.
const (
	genItems   = 10000
	genZipfS   = 1.1
	queryEvery = 8
)

type generator struct {
	rng    *rand.Rand
	size   int
	pop    *gen.Alias
	counts []uint32
	now    int64
}

// NewGenerator returns a deterministic generator of topk requests: seven
// in eight are OpObserve events with Item a hashtag id drawn with Zipf
// popularity (exponent 1.1) among 10,000 and Value the number of times the
// generator has produced that item so far; one in eight is an OpQuery.
// Key is the item (a query's Key is 0), so sharding by key splits the items
// among partial rankers. Requests are padded to size bytes (512 when size
// is 0 or less).
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultRequestSize
	}
	return &generator{
		rng:    rand.New(rand.NewPCG(uint64(seed), 0x70c)),
		size:   size,
		pop:    gen.NewAlias(gen.ZipfWeights(genItems, genZipfS)),
		counts: make([]uint32, genItems),
		now:    1_700_000_000_000_000_000,
	}
}

func (g *generator) Next(dst []byte) ([]byte, uint64) {
	g.now += 1_000_000
	ev := service.Event{Op: service.OpQuery, Time: g.now}
	if g.rng.IntN(queryEvery) != 0 {
		i := g.pop.Sample(g.rng)
		g.counts[i]++
		ev.Op, ev.Key, ev.Item, ev.Value = service.OpObserve, uint64(i), uint64(i), float64(g.counts[i])
	}
	out, _ := service.AppendEvent(dst[:0], &ev, g.size) // no variable parts
	return out, mix.SplitMix64(ev.Key)
}
