package bm25

import (
	"errors"
	"fmt"
	"math"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/ranked"
	"github.com/e3-platform/e3/services/internal/terms"
)

// Hit is one ranked document.
type Hit struct {
	Doc   uint64
	Score float64
}

// worse orders hits: lower score first, and among equal scores the higher
// document id, so rankings are total and deterministic.
func worse(a, b Hit) bool {
	return a.Score < b.Score || (a.Score == b.Score && a.Doc > b.Doc)
}

// scratch is the per-call working memory of a search. acc is all zeros
// between calls; a search resets what it touched.
type scratch struct {
	acc     []float64
	touched []uint32
	ids     []uint32
	top     []Hit
	reply   []byte
}

// errTooManyTerms is wrapped with the counts when a query is too long.
var errTooManyTerms = errors.New("query has too many terms")

// denseFraction decides between the two ways of accumulating scores. When
// the posting lists of a query hold fewer than ndocs/denseFraction entries,
// the documents touched are remembered in a list and only they are ranked
// and reset. Beyond that the list costs more than it saves (the test for a
// first touch is an unpredictable branch per posting), so the scores are
// accumulated blindly and the whole accumulator is scanned and cleared.
const denseFraction = 4

// search scores every document containing a query term and keeps the k best
// in s.top, best first. It returns the number of documents that matched.
// Query terms that are not in the vocabulary are skipped; a term given
// twice counts twice, as in the BM25 sum over query terms.
func (ix *Index) search(query []byte, k, maxTerms int, s *scratch) (int, error) {
	var buf [terms.MaxLen]byte
	ids, nterms, postings := s.ids[:0], 0, 0
	for i := 0; ; {
		term, next, ok := terms.Next(query, i, &buf)
		if !ok {
			break
		}
		i = next
		if nterms++; nterms > maxTerms {
			return 0, fmt.Errorf("%w: %w (more than %d)", service.ErrMalformed, errTooManyTerms, maxTerms)
		}
		if id, ok := ix.vocab[string(term)]; ok {
			ids = append(ids, id)
			postings += int(ix.start[id+1] - ix.start[id])
		}
	}
	s.ids = ids
	if postings >= ix.denseMin {
		return ix.searchDense(ids, k, s), nil
	}
	return ix.searchSparse(ids, k, s), nil
}

// searchSparse accumulates scores and remembers the documents it touches.
func (ix *Index) searchSparse(ids []uint32, k int, s *scratch) int {
	acc, touched := s.acc, s.touched[:0]
	for _, id := range ids {
		idf := ix.idf[id]
		lo, hi := ix.start[id], ix.start[id+1]
		docs, w := ix.docs[lo:hi], ix.weights[lo:hi]
		w = w[:len(docs)]
		for p, d := range docs {
			// Every contribution is positive (IDF > 0, weight > 0), so a
			// zero accumulator means the document is not yet touched.
			if acc[d] == 0 {
				touched = append(touched, d)
			}
			acc[d] += idf * w[p]
		}
	}
	top := s.top[:0]
	for _, d := range touched {
		h := Hit{Doc: uint64(d), Score: acc[d]}
		acc[d] = 0
		if len(top) < k {
			top = pushTop(top, k, h)
		} else if worse(top[0], h) {
			top[0] = h
			siftDown(top, 0)
		}
	}
	s.top, s.touched = sortTop(top), touched
	return len(touched)
}

// searchDense accumulates scores blindly, then scans every document.
func (ix *Index) searchDense(ids []uint32, k int, s *scratch) int {
	acc := s.acc
	for _, id := range ids {
		idf := ix.idf[id]
		lo, hi := ix.start[id], ix.start[id+1]
		docs, w := ix.docs[lo:hi], ix.weights[lo:hi]
		w = w[:len(docs)]
		for p, d := range docs {
			acc[d] += idf * w[p]
		}
	}
	// Fill the heap with the first k matching documents, then scan the
	// rest against the worst kept score. Documents are scanned in
	// increasing order, so among equal scores the one already kept has the
	// lower id and wins: only a strictly greater score gets in, and that
	// branch is rarely taken, so it predicts well.
	top, d := s.top[:0], 0
	for ; d < len(acc) && len(top) < k; d++ {
		if a := acc[d]; a != 0 {
			top = pushTop(top, k, Hit{Doc: uint64(d), Score: a})
		}
	}
	if len(top) == k {
		threshold := top[0].Score
		for ; d < len(acc); d++ {
			if a := acc[d]; a > threshold {
				top[0] = Hit{Doc: uint64(d), Score: a}
				siftDown(top, 0)
				threshold = top[0].Score
			}
		}
	}
	// Count the matches without a branch: bits|-bits has its top bit set
	// exactly when bits (a non-negative score) is not zero.
	matched := 0
	for _, a := range acc {
		b := math.Float64bits(a)
		matched += int((b | -b) >> 63)
	}
	clear(acc)
	s.top = sortTop(top)
	return matched
}

// sortTop turns the min-heap top into a list best first: heap sort moves the
// worst to the end until the heap is empty.
func sortTop(top []Hit) []Hit {
	for n := len(top) - 1; n > 0; n-- {
		top[0], top[n] = top[n], top[0]
		siftDown(top[:n], 0)
	}
	return top
}

// pushTop offers x to the min-heap h (worst hit at the root) of at most k
// hits.
func pushTop(h []Hit, k int, x Hit) []Hit {
	if len(h) < k {
		h = append(h, x)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !worse(h[i], h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
		return h
	}
	if k > 0 && worse(h[0], x) {
		h[0] = x
		siftDown(h, 0)
	}
	return h
}

func siftDown(h []Hit, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && worse(h[r], h[l]) {
			m = r
		}
		if !worse(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// ReplyHeaderLen is the fixed part of a reply; each hit adds ReplyHitLen.
const (
	ReplyHeaderLen = ranked.HeaderLen
	ReplyHitLen    = ranked.EntryLen
)

// replyFormat is bm25's reply in the ranked wire format: matched
// documents u32, hit count u16, then per hit the document id u64 and
// score f64, little endian.
var replyFormat = ranked.Format[Hit]{
	Service: "bm25",
	Noun:    "hits",
	Split:   func(h Hit) (uint64, float64) { return h.Doc, h.Score },
	Join:    func(doc uint64, score float64) Hit { return Hit{Doc: doc, Score: score} },
}

// appendReply encodes a reply of matched documents and the hits top.
func appendReply(dst []byte, matched int, top []Hit) []byte {
	return replyFormat.Append(dst, uint32(matched), top)
}

// ParseReply decodes a bm25 reply, appending the hits to dst[:0]. It
// returns the number of documents that matched the query and the ranked
// hits, best first.
func ParseReply(b []byte, dst []Hit) (matched uint32, hits []Hit, err error) {
	return replyFormat.Parse(b, dst)
}
