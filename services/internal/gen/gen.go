package gen

import (
	"math"
	"math/rand/v2"
)

// NewRand returns a PCG generator seeded with seed; stream separates the
// uses of one seed (the corpus, the vocabulary, the requests), so each is
// drawn independently of how much the others draw.
func NewRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

// ZipfWeights returns the unnormalised Zipf weights 1/(r+1)^s for ranks
// 0..n-1: rank 0 is the most frequent.
func ZipfWeights(n int, s float64) []float64 {
	w := make([]float64, n)
	for r := range w {
		w[r] = math.Pow(float64(r+1), -s)
	}
	return w
}

// LogNormalLen draws a document length log-normally distributed around
// median (sigma 0.5, as the lengths of web, news and mail text roughly
// are), rounded and clamped to [least, 16*median] so that neither empty
// nor runaway documents occur.
func LogNormalLen(rng *rand.Rand, median, least int) int {
	n := int(math.Round(float64(median) * math.Exp(0.5*rng.NormFloat64())))
	return min(max(n, least), 16*median)
}
