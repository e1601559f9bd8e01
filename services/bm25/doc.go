// Package bm25 is the bm25 microservice of E3: Okapi BM25 search ranking
// over an inverted index, the ranking function of Lucene and Elasticsearch.
//
// # What it does
//
// At New the service builds an inverted index over a corpus and keeps it
// read-only, so the service is stateless and any number of instances can
// answer in parallel. Each request is a query; the reply ranks the
// documents that contain any query term by
//
//	score(D, Q) = sum over terms q of Q of
//	              IDF(q) * tf(q,D)*(k1+1) / (tf(q,D) + k1*(1 - b + b*|D|/avgdl))
//	IDF(q)      = ln(1 + (N - n(q) + 0.5) / (n(q) + 0.5))
//
// with N documents, n(q) of them containing q, |D| the length of D in terms
// and avgdl the average length. This IDF is Lucene's: it stays positive for
// terms in more than half the documents, where the classic
// Robertson-Sparck Jones form turns negative. A term repeated in the query
// counts once per occurrence. The k best documents come back, ties broken
// by the lower document id.
//
// Everything that does not depend on the query is computed once: the IDF of
// each term, and per posting the term-frequency part of the sum with the
// document's length norm folded in, so a query costs one multiply-add per
// posting. Terms are found by a map lookup on the bytes of the request
// (string(b) in a map index does not allocate), scores accumulate in a
// per-call array from a pool, and a heap of k entries keeps the best. A
// query whose posting lists are short remembers the documents it touched
// and resets only those; a query with long lists (a quarter of the corpus
// or more) accumulates blindly and scans the whole array, which is cheaper
// than the unpredictable first-touch test per posting. A request allocates
// nothing.
//
// # Corpus
//
// By default the corpus is generated from a fixed seed: 10,000 documents
// whose lengths are log-normal around a median of 120 terms (sigma 0.5,
// mean about 136), over a vocabulary of 20,000 pronounceable pseudo-words
// drawn with Zipf frequencies (exponent 1). Zipf's law is what natural
// language looks like and what sets the cost of a query: the commonest
// words sit in nearly every document (long posting lists, low IDF), and most
// words in a few. The vocabulary is ordered shortest first, so frequent
// words are short as in real text. The index holds about 985,000 postings
// (12 bytes each, about 12 MB). The seed is fixed rather than taken from
// the instance so that every replica and shard ranks alike; instances of
// one configuration in one process share one index. Building it takes
// about 60 ms of CPU.
//
// A real corpus can be given instead with corpus_file: a text file with one
// document per line, document ids being line numbers from 0.
//
// # Tokens
//
// Queries and file corpora are split into terms the same way: a term is a
// maximal run of ASCII letters and digits and bytes >= 0x80 (so UTF-8 words
// stay whole); everything else separates terms; ASCII letters are
// lowercased. Terms longer than 64 bytes are ignored.
//
// # Request
//
// A [service.Event] (see [service.DecodeEvent]). The service reads only
// Text, the query; the other fields (Op, Key, Item, Value, Time, Token,
// Features) are ignored. Terms not in the vocabulary are skipped. A request
// that does not decode, or whose query has more than max_query_terms terms,
// is rejected with an error wrapping [service.ErrMalformed] and is not
// passed on.
//
// # Reply
//
// Little endian, 6 + 16*n bytes (decoded by [ParseReply]):
//
//	0  matched   u32  documents containing at least one query term
//	4  n         u16  hits that follow, at most top_k, best first
//	6  n times:  doc u64 (document id), score f64
//
// # Downstream
//
// The request event is emitted unchanged with the key it was routed by, so
// the next stage of the DAG sees the query.
//
// # Configuration
//
//	k1               term-frequency saturation, default 1.2, in [0, 100]
//	b                length normalisation, default 0.75, in [0, 1]
//	top_k            hits per reply, default 10, in [1, 1000]
//	max_query_terms  longest query accepted, default 64
//	docs             generated documents, default 10000
//	vocab            generated vocabulary size, default 20000
//	doc_len          median generated document length, default 120
//	zipf_s           Zipf exponent of term frequencies, default 1.0
//	corpus_seed      seed of the generated corpus, default 0xe3b25
//	corpus_file      index this file (one document per line) instead
//
// # Requests for tests and benchmarks
//
// [NewGenerator] draws queries against the default corpus: OpQuery events
// whose Key is a user id among 100,000 and whose Text holds one to five
// terms (mean 2.5, about the length of web search queries), drawn with the
// corpus's Zipf frequencies but never among the 20 commonest words (stop
// words users rarely type), one term in twenty a misspelling. Requests are
// padded to the requested size (512 bytes by default) with the text always
// inside it; the routing key is a hash of the user id.
package bm25
