package bm25

import "github.com/e3-platform/e3/services/internal/gen"

// The generated corpus stands in for a real document collection. What makes
// BM25 work hard, and what a ranking benchmark must reproduce, is the shape
// of natural-language text: term frequencies follow Zipf's law (a few words
// such as "the" occur in almost every document and carry little weight, a
// long tail of words occurs in a handful), and document lengths vary around
// a typical size. Both shapes set the lengths of the posting lists a query
// walks and so the cost of a query. The vocabulary is made of pronounceable
// pseudo-words, shortest first, so frequent words are short as in real text
// (gen.Vocabulary).

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
	rng := gen.NewRand(p.seed, 0xb2500c)
	zipf := gen.NewAlias(gen.ZipfWeights(p.vocab, p.zipfS))
	docStart = make([]uint32, p.docs+1)
	terms = make([]uint32, 0, p.docs*p.docLen*9/8)
	for d := range p.docs {
		for range gen.LogNormalLen(rng, p.docLen, 8) {
			terms = append(terms, zipf.Sample(rng))
		}
		docStart[d+1] = uint32(len(terms))
	}
	return terms, docStart
}
