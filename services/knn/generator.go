package knn

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
)

// DefaultRequestSize is the request size of the paper's benchmarks.
const DefaultRequestSize = 512

type generator struct {
	rng      *rand.Rand
	size     int
	m        *mixture
	now      int64
	point    []float32
	features []byte
}

// NewGenerator returns a deterministic generator of feature vectors drawn
// from the same Gaussian mixture as the default dataset: each request is an
// OpObserve event whose Key is a device id among 10,000, whose Item is the
// label of the cluster the point was drawn from (for accuracy tests; the
// service ignores it) and whose Features are the 16 float32 coordinates,
// padded to size bytes (512 when size is 0 or less; a request is never
// shorter than its 112 bytes of content).
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultRequestSize
	}
	return &generator{
		rng:  rand.New(rand.NewPCG(uint64(seed), 0x4e4)),
		size: size,
		m:    newMixture(DefaultSeed, DefaultDims, DefaultClusters, DefaultLabels, DefaultSigma),
		now:  1_700_000_000_000_000_000,
	}
}

func (g *generator) Next(dst []byte) ([]byte, uint64) {
	var label uint16
	g.point, label = g.m.draw(g.rng, g.point[:0])
	g.features = g.features[:0]
	for _, x := range g.point {
		g.features = binary.LittleEndian.AppendUint32(g.features, math.Float32bits(x))
	}
	g.now += 1_000_000
	ev := service.Event{Op: service.OpObserve, Key: g.rng.Uint64N(10_000), Item: uint64(label), Time: g.now, Features: g.features}
	out, _ := service.AppendEvent(dst[:0], &ev, g.size) // parts are far below the format's limits
	return out, mix.SplitMix64(ev.Key)
}
