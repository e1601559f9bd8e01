package bayes

import "github.com/e3-platform/e3/services/internal/gen"

// The generated training corpus stands in for a mail or message stream
// labelled by class (ham and spam by default). Each class draws its words
// from a mixture: nine tenths from a Zipf distribution over the whole
// vocabulary that all classes share (the function words every message
// uses), one tenth from a Zipf distribution over a class-specific
// permutation of the vocabulary (its topic words). Classes thus overlap
// heavily in their common words and differ in a tail, which is what makes
// naive Bayes both necessary and good at this: single words rarely decide,
// their evidence summed over a message does.

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
	prior  []float64    // class probabilities
	byProb *gen.Alias   // draws a class
	class  []*gen.Alias // per class, draws a word id
}

// newLanguage builds the vocabulary and the class distributions of p.
// Class c has prior weight classes-c (2/3 ham, 1/3 spam by default: a
// spam filter sees a skewed stream).
func newLanguage(p corpusParams) *language {
	rng := gen.NewRand(p.seed, 0x1a9)
	l := &language{words: gen.Vocabulary(rng, p.vocab)}
	zipf := gen.ZipfWeights(p.vocab, p.zipfS)
	var z float64
	for _, x := range zipf {
		z += x
	}
	for r := range zipf {
		zipf[r] /= z
	}
	pw := make([]float64, p.classes)
	for c := range pw {
		pw[c] = float64(p.classes - c)
	}
	l.byProb = gen.NewAlias(pw)
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
		l.class = append(l.class, gen.NewAlias(w))
	}
	return l
}

// generateTraining draws the labelled training corpus of p as a flat stream
// of word ids with docStart delimiting messages and labels their classes.
// Message lengths are log-normal around p.docLen (sigma 0.5), at least 4
// words.
func (l *language) generateTraining(p corpusParams) (terms, docStart []uint32, labels []uint16) {
	rng := gen.NewRand(p.seed, 0x7ea1)
	docStart = make([]uint32, 1, p.docs+1)
	labels = make([]uint16, p.docs)
	for d := range p.docs {
		c := l.byProb.Sample(rng)
		labels[d] = uint16(c)
		for range gen.LogNormalLen(rng, p.docLen, 4) {
			terms = append(terms, l.class[c].Sample(rng))
		}
		docStart = append(docStart, uint32(len(terms)))
	}
	return terms, docStart, labels
}
