package bayes

import (
	"math/rand/v2"
	"sync"

	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/gen"
)

// DefaultRequestSize is the request size of the paper's benchmarks.
const DefaultRequestSize = 512

type generator struct {
	rng  *rand.Rand
	size int
	lang *language
	now  int64
	text []byte
}

var (
	langOnce    sync.Once
	defaultLang *language
)

func defaultParams() corpusParams {
	return corpusParams{seed: DefaultCorpusSeed, classes: DefaultClasses, vocab: DefaultVocab,
		docs: DefaultTrainDocs, docLen: DefaultDocLen, zipfS: DefaultZipfS}
}

// NewGenerator returns a deterministic generator of messages to classify,
// drawn from the same language as the default training corpus: each request
// is an OpObserve event whose Key is a sender id among 100,000, whose Item
// is the class the message was drawn from (the label a test can check
// against; the service ignores it) and whose Text is words of that class,
// filling the request up to size bytes (512 when size is 0 or less).
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultRequestSize
	}
	langOnce.Do(func() { defaultLang = newLanguage(defaultParams()) })
	return &generator{
		rng:  gen.NewRand(uint64(seed), 0x6e4),
		size: size,
		lang: defaultLang,
		now:  1_700_000_000_000_000_000,
	}
}

func (g *generator) Next(dst []byte) ([]byte, uint64) {
	c := g.lang.byProb.Sample(g.rng)
	room := g.size - service.EventHeaderLen
	g.text = g.text[:0]
	for {
		w := g.lang.words[g.lang.class[c].Sample(g.rng)]
		if len(g.text) > 0 && len(g.text)+1+len(w) > room {
			break
		}
		if len(g.text) > 0 {
			g.text = append(g.text, ' ')
		}
		g.text = append(g.text, w...)
		if len(g.text) >= room {
			break
		}
	}
	g.now += 1_000_000
	ev := service.Event{Op: service.OpObserve, Key: g.rng.Uint64N(100_000), Item: uint64(c), Time: g.now, Text: g.text}
	out, _ := service.AppendEvent(dst[:0], &ev, g.size) // parts are far below the format's limits
	return out, mix.SplitMix64(ev.Key)
}
