package bm25

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/envcfg"
	"github.com/e3-platform/e3/services/internal/gen"
)

// Defaults of the configuration keys (see the package documentation).
const (
	DefaultK1         = 1.2
	DefaultB          = 0.75
	DefaultTopK       = 10
	DefaultMaxTerms   = 64
	DefaultDocs       = 10000
	DefaultVocab      = 20000
	DefaultDocLen     = 120
	DefaultZipfS      = 1.0
	DefaultCorpusSeed = 0xe3b25
)

type config struct {
	k1, b      float64
	topK       int
	maxTerms   int
	corpus     corpusParams
	corpusFile string
}

// parseConfig reads and checks the configuration, filling defaults.
func parseConfig(env service.Env) (config, error) {
	var c config
	r := envcfg.NewReader(env)
	c.k1 = r.Float("k1", DefaultK1, 0, 100)
	c.b = r.Float("b", DefaultB, 0, 1)
	c.topK = r.Int("top_k", DefaultTopK, 1, 1000)
	c.maxTerms = r.Int("max_query_terms", DefaultMaxTerms, 1, 4096)
	c.corpus.docs = r.Int("docs", DefaultDocs, 1, 2_000_000)
	c.corpus.vocab = r.Int("vocab", DefaultVocab, 1, 1_000_000)
	c.corpus.docLen = r.Int("doc_len", DefaultDocLen, 1, 10_000)
	c.corpus.zipfS = r.Float("zipf_s", DefaultZipfS, 0.1, 5)
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("bm25: %w", err)
	}
	seed, err := env.Int("corpus_seed", DefaultCorpusSeed)
	if err != nil {
		return c, fmt.Errorf("bm25: %w", err)
	}
	c.corpus.seed = uint64(seed)
	if c.corpus.docs*c.corpus.docLen > 200_000_000 {
		return c, fmt.Errorf("bm25: config docs %d x doc_len %d is over 200 million terms", c.corpus.docs, c.corpus.docLen)
	}
	c.corpusFile = env.String("corpus_file", "")
	return c, nil
}

// cacheKey identifies a generated index. Instances with the same corpus
// parameters share one index: it is read-only after it is built, every
// replica and shard of the service must rank alike anyway, and tests and
// the emulated cluster create many instances.
type cacheKey struct {
	p     corpusParams
	k1, b float64
}

var (
	cacheMu sync.Mutex
	cache   = map[cacheKey]*Index{}
)

// generatedIndex returns the index of the generated corpus for p, building
// it on first use.
func generatedIndex(p corpusParams, k1, b float64) (*Index, error) {
	key := cacheKey{p, k1, b}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if ix, ok := cache[key]; ok {
		return ix, nil
	}
	words := gen.Vocabulary(gen.NewRand(p.seed, 0x70cab), p.vocab)
	terms, docStart := generateCorpus(p)
	ix, err := buildIndex(words, terms, docStart, k1, b)
	if err != nil {
		return nil, err
	}
	cache[key] = ix
	return ix, nil
}

// fileIndex indexes a text file holding one document per line; document ids
// are line numbers counted from 0.
func fileIndex(path string, k1, b float64) (*Index, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bm25: config \"corpus_file\": %w", err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	ix, err := indexTexts(lines, k1, b)
	if err != nil {
		return nil, fmt.Errorf("bm25: corpus file %s: %w", path, err)
	}
	return ix, nil
}

// Handler ranks the documents of its index for the query text of each
// event. It is safe for concurrent use: the index is read-only and every
// call takes its working memory from a pool.
type Handler struct {
	ix       *Index
	topK     int
	maxTerms int
	pool     sync.Pool
}

// New builds a bm25 instance from env.Config (see the package
// documentation for the keys). The generated corpus is built once per
// process and configuration and shared.
func New(env service.Env) (service.Handler, error) {
	c, err := parseConfig(env)
	if err != nil {
		return nil, err
	}
	var ix *Index
	if c.corpusFile != "" {
		ix, err = fileIndex(c.corpusFile, c.k1, c.b)
	} else {
		ix, err = generatedIndex(c.corpus, c.k1, c.b)
	}
	if err != nil {
		return nil, err
	}
	return NewHandler(ix, c.topK, c.maxTerms), nil
}

// NewHandler returns a handler over ix that replies with the topK best
// documents and rejects queries of more than maxTerms terms.
func NewHandler(ix *Index, topK, maxTerms int) *Handler {
	h := &Handler{ix: ix, topK: topK, maxTerms: maxTerms}
	h.pool.New = func() any {
		return &scratch{
			acc:   make([]float64, ix.ndocs),
			ids:   make([]uint32, 0, maxTerms),
			top:   make([]Hit, 0, topK),
			reply: make([]byte, 0, ReplyHeaderLen+topK*ReplyHitLen),
		}
	}
	return h
}

// Index returns the handler's index.
func (h *Handler) Index() *Index { return h.ix }

// Handle answers one query event and passes the event on unchanged.
func (h *Handler) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("bm25: %w", err)
	}
	s := h.pool.Get().(*scratch)
	matched, err := h.ix.search(ev.Text, h.topK, h.maxTerms, s)
	if err != nil {
		h.pool.Put(s)
		return fmt.Errorf("bm25: text: %w", err)
	}
	s.reply = appendReply(s.reply[:0], matched, s.top)
	c.Respond(s.reply)
	h.pool.Put(s)
	c.Emit(c.Key, req)
	return nil
}
