package gen

import "math/rand/v2"

// Alias samples from a discrete distribution in constant time: Walker's
// alias method, in Vose's numerically stable construction. Each of the n
// outcomes owns a column of probability 1/n, split between itself (prob)
// and one other outcome (alias). An Alias is read-only once built and
// safe for concurrent use; the caller's *rand.Rand is not.
type Alias struct {
	prob  []float64 // probability of keeping column i
	alias []uint32  // the other outcome of column i
}

// NewAlias builds the table for outcomes 0..len(w)-1 with probabilities
// proportional to the weights w, which must be non-negative with a
// positive sum; w is not kept.
func NewAlias(w []float64) *Alias {
	n := len(w)
	t := &Alias{prob: make([]float64, n), alias: make([]uint32, n)}
	var sum float64
	for _, x := range w {
		sum += x
	}
	scaled := make([]float64, n)
	small := make([]uint32, 0, n)
	large := make([]uint32, 0, n)
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
	for _, i := range small { // only left by rounding error
		t.prob[i], t.alias[i] = 1, i
	}
	return t
}

// Len returns the number of outcomes.
func (t *Alias) Len() int { return len(t.prob) }

// Sample draws one outcome using a single 64-bit random number: the high
// half picks the column, the low half decides between it and its alias.
func (t *Alias) Sample(rng *rand.Rand) uint32 {
	x := rng.Uint64()
	i := uint32((x >> 32) * uint64(len(t.prob)) >> 32)
	if float64(uint32(x))*(1.0/(1<<32)) < t.prob[i] {
		return i
	}
	return t.alias[i]
}
