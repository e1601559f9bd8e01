package bayes

import (
	"math"
	"math/rand/v2"
	"slices"
)

// The generated training corpus stands in for a mail or message stream
// labelled by class (ham and spam by default). Each class draws its words
// from a mixture: nine tenths from a Zipf distribution over the whole
// vocabulary that all classes share (the function words every message
// uses), one tenth from a Zipf distribution over a class-specific
// permutation of the vocabulary (its topic words). Classes thus overlap
// heavily in their common words and differ in a tail, which is what makes
// naive Bayes both necessary and good at this: single words rarely decide,
// their evidence summed over a message does.

const (
	consonants = "bcdfghjklmnprstvwz"
	vowels     = "aeiou"
)

// makeVocabulary returns n distinct lowercase pseudo-words, shortest first,
// drawn deterministically from rng.
func makeVocabulary(rng *rand.Rand, n int) []string {
	seen := make(map[string]struct{}, n)
	words := make([]string, 0, n)
	var b []byte
	for len(words) < n {
		b = b[:0]
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
	slices.SortStableFunc(words, func(a, b string) int { return len(a) - len(b) })
	return words
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

func newRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

// corpusParams are the knobs of the generated training corpus.
type corpusParams struct {
	seed    uint64
	classes int
	vocab   int
	docs    int     // training messages over all classes
	docLen  int     // median message length in words
	zipfS   float64 // Zipf exponent
}

// sharedShare is the part of a class's word distribution drawn from the
// vocabulary-wide Zipf law; the rest comes from the class's own ranking.
const sharedShare = 0.9

// language holds what the generated corpus is drawn from.
type language struct {
	words  []string
	prior  []float64     // class probabilities
	byProb *aliasTable   // draws a class
	class  []*aliasTable // per class, draws a word id
}

// newLanguage builds the vocabulary and the class distributions of p.
// Class c has prior weight classes-c (2/3 ham, 1/3 spam by default: a
// spam filter sees a skewed stream).
func newLanguage(p corpusParams) *language {
	rng := newRand(p.seed, 0x1a9)
	l := &language{words: makeVocabulary(rng, p.vocab)}
	zipf := make([]float64, p.vocab)
	var z float64
	for r := range zipf {
		zipf[r] = math.Pow(float64(r+1), -p.zipfS)
		z += zipf[r]
	}
	for r := range zipf {
		zipf[r] /= z
	}
	pw := make([]float64, p.classes)
	for c := range pw {
		pw[c] = float64(p.classes - c)
	}
	l.byProb = newAliasTable(pw)
	var sum float64
	for _, w := range pw {
		sum += w
	}
	l.prior = make([]float64, p.classes)
	for c := range pw {
		l.prior[c] = pw[c] / sum
	}
	w := make([]float64, p.vocab)
	for range p.classes {
		perm := rng.Perm(p.vocab)
		for id := range w {
			w[id] = sharedShare*zipf[id] + (1-sharedShare)*zipf[perm[id]]
		}
		l.class = append(l.class, newAliasTable(w))
	}
	return l
}

// message draws a message length from the log-normal law of p (sigma 0.5,
// at least 4 words).
func messageLen(rng *rand.Rand, median int) int {
	n := int(math.Round(float64(median) * math.Exp(0.5*rng.NormFloat64())))
	return min(max(n, 4), 16*median)
}

// generateTraining draws the labelled training corpus of p as a flat stream
// of word ids with docStart delimiting messages and labels their classes.
func (l *language) generateTraining(p corpusParams) (terms, docStart []uint32, labels []uint16) {
	rng := newRand(p.seed, 0x7ea1)
	docStart = make([]uint32, 1, p.docs+1)
	labels = make([]uint16, p.docs)
	for d := range p.docs {
		c := l.byProb.sample(rng)
		labels[d] = uint16(c)
		for range messageLen(rng, p.docLen) {
			terms = append(terms, l.class[c].sample(rng))
		}
		docStart = append(docStart, uint32(len(terms)))
	}
	return terms, docStart, labels
}
