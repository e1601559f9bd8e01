package bm25

import (
	"fmt"
	"math"
	"slices"

	"github.com/e3-platform/e3/services/internal/terms"
)

// Index is an immutable BM25 inverted index. Everything that does not
// depend on the query is computed when it is built: the IDF of every term
// and, for every posting, the term-frequency part of the BM25 sum with the
// document's length norm folded in. A query then costs one multiply-add per
// posting it touches.
type Index struct {
	vocab map[string]uint32 // term -> term id
	words []string          // term id -> term
	idf   []float64         // per term id
	// Postings in compressed sparse row form: the postings of term t are
	// docs[start[t]:start[t+1]], in increasing document order, with
	// weights[p] = tf*(k1+1) / (tf + k1*(1-b+b*len(d)/avgdl)).
	start   []uint32
	docs    []uint32
	weights []float64
	ndocs   int
	avgdl   float64
	// denseMin is the number of postings from which a query accumulates
	// densely (see denseFraction).
	denseMin int
	k1, b    float64
}

// buildIndex indexes a corpus given as a flat stream of term ids with
// docStart delimiting documents; words names the term ids.
func buildIndex(words []string, ids, docStart []uint32, k1, b float64) (*Index, error) {
	ndocs := len(docStart) - 1
	if ndocs < 1 {
		return nil, fmt.Errorf("bm25: corpus has no documents")
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("bm25: corpus of %d documents has no terms", ndocs)
	}
	ix := &Index{
		vocab:    make(map[string]uint32, len(words)),
		words:    words,
		idf:      make([]float64, len(words)),
		start:    make([]uint32, len(words)+1),
		ndocs:    ndocs,
		denseMin: ndocs / denseFraction,
		avgdl:    float64(len(ids)) / float64(ndocs),
		k1:       k1,
		b:        b,
	}
	for id, w := range words {
		ix.vocab[w] = uint32(id)
	}
	// Pass 1: document frequencies. last[t] is one more than the last
	// document term t was seen in, so each document counts a term once.
	// Counting with arrays indexed by term id is linear in the corpus;
	// sorting each document's terms would cost a log factor more.
	df := make([]uint32, len(words))
	last := make([]uint32, len(words))
	for d := range ndocs {
		for _, t := range ids[docStart[d]:docStart[d+1]] {
			if last[t] != uint32(d)+1 {
				last[t] = uint32(d) + 1
				df[t]++
			}
		}
	}
	var total uint32
	for t, n := range df {
		ix.start[t] = total
		total += n
	}
	ix.start[len(words)] = total
	ix.docs = make([]uint32, total)
	ix.weights = make([]float64, total)
	// Pass 2: count term frequencies per document in tf (reset after each
	// document) and fill the postings; documents are visited in order, so
	// every posting list comes out sorted by document.
	next := slices.Clone(ix.start[:len(words)])
	tf := last // reuse: all of last is rewritten before it is read again
	clear(tf)
	var distinct []uint32
	for d := range ndocs {
		doc := ids[docStart[d]:docStart[d+1]]
		distinct = distinct[:0]
		for _, t := range doc {
			if tf[t] == 0 {
				distinct = append(distinct, t)
			}
			tf[t]++
		}
		norm := k1 * (1 - b + b*float64(len(doc))/ix.avgdl)
		for _, t := range distinct {
			f := float64(tf[t])
			tf[t] = 0
			p := next[t]
			next[t]++
			ix.docs[p] = uint32(d)
			ix.weights[p] = f * (k1 + 1) / (f + norm)
		}
	}
	// Lucene's IDF, ln(1 + (N - n + 0.5)/(n + 0.5)): unlike the classic
	// Robertson-Sparck Jones form it never goes negative for terms in more
	// than half the documents, so a common word can only add to a score.
	for t, n := range df {
		ix.idf[t] = math.Log(1 + (float64(ndocs)-float64(n)+0.5)/(float64(n)+0.5))
	}
	return ix, nil
}

// indexTexts tokenises documents with the query tokeniser and indexes them.
// Term ids are given in order of first appearance.
func indexTexts(texts [][]byte, k1, b float64) (*Index, error) {
	words, ids, docStart := terms.Tokenise(texts)
	return buildIndex(words, ids, docStart, k1, b)
}

// NumDocs returns the number of indexed documents.
func (ix *Index) NumDocs() int { return ix.ndocs }

// NumTerms returns the size of the vocabulary.
func (ix *Index) NumTerms() int { return len(ix.words) }

// NumPostings returns the number of (term, document) pairs.
func (ix *Index) NumPostings() int { return len(ix.docs) }

// AvgDocLen returns the average document length in terms.
func (ix *Index) AvgDocLen() float64 { return ix.avgdl }
