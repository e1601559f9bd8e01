package bm25

import (
	"math"
	"math/rand/v2"
	"slices"
)

// The generated corpus stands in for a real document collection. What makes
// BM25 work hard, and what a ranking benchmark must reproduce, is the shape
// of natural-language text: term frequencies follow Zipf's law (a few words
// such as "the" occur in almost every document and carry little weight, a
// long tail of words occurs in a handful), and document lengths vary around
// a typical size. Both shapes set the lengths of the posting lists a query
// walks and so the cost of a query. The vocabulary is made of pronounceable
// pseudo-words, shortest first, so frequent words are short as in real text.

// consonants and vowels build the pseudo-words of the vocabulary.
const (
	consonants = "bcdfghjklmnprstvwz"
	vowels     = "aeiou"
)

// makeVocabulary returns n distinct lowercase pseudo-words, shortest first,
// drawn deterministically from rng. Words have one to four syllables, each a
// consonant and a vowel, optionally closed by a consonant.
func makeVocabulary(rng *rand.Rand, n int) []string {
	seen := make(map[string]struct{}, n)
	words := make([]string, 0, n)
	var b []byte
	for len(words) < n {
		b = b[:0]
		// Syllable counts grow with the vocabulary so short words run out
		// gracefully: 1-2 syllables give about 8,000 (C)V(C) shapes.
		syl := 1 + rng.IntN(2+len(words)/4000)
		if syl > 4 {
			syl = 2 + rng.IntN(3)
		}
		for range syl {
			b = append(b, consonants[rng.IntN(len(consonants))], vowels[rng.IntN(len(vowels))])
			if rng.IntN(4) == 0 {
				b = append(b, consonants[rng.IntN(len(consonants))])
			}
		}
		if _, dup := seen[string(b)]; dup {
			continue
		}
		w := string(b)
		seen[w] = struct{}{}
		words = append(words, w)
	}
	// Stable sort by length keeps the draw order among equal lengths, so the
	// result depends only on the seed.
	slices.SortStableFunc(words, func(a, b string) int { return len(a) - len(b) })
	return words
}

// zipfWeights returns the unnormalised Zipf weights 1/(r+1)^s for ranks
// 0..n-1.
func zipfWeights(n int, s float64) []float64 {
	w := make([]float64, n)
	for r := range w {
		w[r] = math.Pow(float64(r+1), -s)
	}
	return w
}

// aliasTable samples from a discrete distribution in constant time
// (Walker's alias method, in Vose's numerically stable construction).
type aliasTable struct {
	prob  []float64 // probability of keeping column i
	alias []uint32  // the other outcome of column i
}

func newAliasTable(w []float64) *aliasTable {
	n := len(w)
	t := &aliasTable{prob: make([]float64, n), alias: make([]uint32, n)}
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

// sample draws one outcome using a single 64-bit random number: the high
// half picks the column, the low half decides between it and its alias.
func (t *aliasTable) sample(rng *rand.Rand) uint32 {
	x := rng.Uint64()
	i := uint32((x >> 32) * uint64(len(t.prob)) >> 32)
	if float64(uint32(x))*(1.0/(1<<32)) < t.prob[i] {
		return i
	}
	return t.alias[i]
}

// corpusParams are the knobs of the generated corpus.
type corpusParams struct {
	seed   uint64
	docs   int     // number of documents
	vocab  int     // number of distinct words
	docLen int     // median document length in terms
	zipfS  float64 // Zipf exponent of term frequencies
}

// generateCorpus draws the corpus as a flat stream of term ids (rank in the
// vocabulary) with docStart[d]..docStart[d+1] delimiting document d.
// Lengths are log-normal around docLen (sigma 0.5, as web and news text
// roughly are), at least 8 terms.
func generateCorpus(p corpusParams) (terms []uint32, docStart []uint32) {
	rng := newRand(p.seed, 0xb2500c)
	zipf := newAliasTable(zipfWeights(p.vocab, p.zipfS))
	docStart = make([]uint32, p.docs+1)
	terms = make([]uint32, 0, p.docs*p.docLen*9/8)
	for d := range p.docs {
		n := int(math.Round(float64(p.docLen) * math.Exp(0.5*rng.NormFloat64())))
		n = min(max(n, 8), 16*p.docLen)
		for range n {
			terms = append(terms, zipf.sample(rng))
		}
		docStart[d+1] = uint32(len(terms))
	}
	return terms, docStart
}

// newRand returns a PCG generator; stream separates the uses of one seed.
func newRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }
