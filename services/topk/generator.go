package topk

import (
	"math"
	"math/rand/v2"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/mix"
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
	pop    *aliasTable
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
	w := make([]float64, genItems)
	for r := range w {
		w[r] = math.Pow(float64(r+1), -genZipfS)
	}
	return &generator{
		rng:    rand.New(rand.NewPCG(uint64(seed), 0x70c)),
		size:   size,
		pop:    newAliasTable(w),
		counts: make([]uint32, genItems),
		now:    1_700_000_000_000_000_000,
	}
}

func (g *generator) Next(dst []byte) ([]byte, uint64) {
	g.now += 1_000_000
	ev := service.Event{Op: service.OpQuery, Time: g.now}
	if g.rng.IntN(queryEvery) != 0 {
		i := g.pop.sample(g.rng)
		g.counts[i]++
		ev.Op, ev.Key, ev.Item, ev.Value = service.OpObserve, uint64(i), uint64(i), float64(g.counts[i])
	}
	out, _ := service.AppendEvent(dst[:0], &ev, g.size) // no variable parts
	return out, mix.SplitMix64(ev.Key)
}

// aliasTable samples from a discrete distribution in constant time
// (Walker's alias method, in Vose's construction).
type aliasTable struct {
	prob  []float64
	alias []uint32
}

func newAliasTable(w []float64) *aliasTable {
	n := len(w)
	t := &aliasTable{prob: make([]float64, n), alias: make([]uint32, n)}
	var sum float64
	for _, x := range w {
		sum += x
	}
	scaled := make([]float64, n)
	var small, large []uint32
	for i, x := range w {
		scaled[i] = x * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, uint32(i))
		} else {
			large = append(large, uint32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t.prob[s], t.alias[s] = scaled[s], l
		scaled[l] += scaled[s] - 1
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range large {
		t.prob[i], t.alias[i] = 1, i
	}
	for _, i := range small {
		t.prob[i], t.alias[i] = 1, i
	}
	return t
}

func (t *aliasTable) sample(rng *rand.Rand) uint32 {
	x := rng.Uint64()
	i := uint32((x >> 32) * uint64(len(t.prob)) >> 32)
	if float64(uint32(x))*(1.0/(1<<32)) < t.prob[i] {
		return i
	}
	return t.alias[i]
}
