package bm25

import (
	"math/rand/v2"
	"sync"

	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/gen"
	"github.com/e3-platform/e3/services/internal/terms"
)

// DefaultRequestSize is the request size of the paper's benchmarks.
const DefaultRequestSize = 512

// stopWords is the number of most frequent vocabulary words the generator
// never puts in a query: users rarely type "the" or "of", and search front
// ends drop them.
const stopWords = 20

// queryLenWeights gives the distribution of query lengths 1..5 terms, about
// that of web search logs (mean near 2.4 terms).
var queryLenWeights = [...]int{25, 30, 25, 12, 8}

// generator produces query events against the default generated corpus.
type generator struct {
	rng   *rand.Rand
	size  int
	words []string
	zipf  *gen.Alias
	now   int64
	text  []byte
	word  [terms.MaxLen]byte
}

// NewGenerator returns a deterministic generator of search requests for an
// instance with the default configuration. Each request is an OpQuery event
// whose Key is a user id and whose Text holds one to five terms drawn with
// the corpus's Zipf frequencies (stop words excluded, one term in twenty a
// misspelling not in the vocabulary), padded to size bytes (512 when size
// is 0 or less). The text always fits in size: terms that would overflow it
// are left out, though a request keeps at least one term.
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultRequestSize
	}
	return &generator{
		rng:   gen.NewRand(uint64(seed), 0x9e4),
		size:  size,
		words: vocabulary(),
		zipf:  gen.NewAlias(gen.ZipfWeights(DefaultVocab, DefaultZipfS)),
		now:   1_700_000_000_000_000_000,
	}
}

var (
	vocabOnce  sync.Once
	vocabWords []string
)

// vocabulary returns the words of the default generated corpus.
func vocabulary() []string {
	vocabOnce.Do(func() {
		vocabWords = gen.Vocabulary(gen.NewRand(DefaultCorpusSeed, 0x70cab), DefaultVocab)
	})
	return vocabWords
}

func (g *generator) Next(dst []byte) ([]byte, uint64) {
	n, r := 0, g.rng.IntN(100)
	for n < len(queryLenWeights)-1 && r >= queryLenWeights[n] {
		r -= queryLenWeights[n]
		n++
	}
	n++
	room := g.size - service.EventHeaderLen
	g.text = g.text[:0]
	for i := range n {
		var w []byte
		if g.rng.IntN(20) == 0 {
			w = g.misspelling()
		} else {
			var t uint32
			for t = g.zipf.Sample(g.rng); t < stopWords; t = g.zipf.Sample(g.rng) {
			}
			w = append(g.word[:0], g.words[t]...)
		}
		if i > 0 && len(g.text)+1+len(w) > room {
			break
		}
		if i > 0 {
			g.text = append(g.text, ' ')
		}
		g.text = append(g.text, w...)
	}
	g.now += 1_000_000
	ev := service.Event{Op: service.OpQuery, Key: g.rng.Uint64N(100_000), Time: g.now, Text: g.text}
	out, _ := service.AppendEvent(dst[:0], &ev, g.size) // parts are far below the format's limits
	return out, mix.SplitMix64(ev.Key)
}

// misspelling returns a short random string of letters; with the
// vocabulary's syllable structure it is almost never a word.
func (g *generator) misspelling() []byte {
	b := g.word[:4+g.rng.IntN(6)]
	for i := range b {
		b[i] = byte('a' + g.rng.IntN(26))
	}
	return b
}
