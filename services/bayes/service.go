package bayes

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/envcfg"
)

// Defaults of the configuration keys (see the package documentation).
const (
	DefaultClasses    = 2
	DefaultVocab      = 10000
	DefaultTrainDocs  = 4000
	DefaultDocLen     = 60
	DefaultAlpha      = 1.0
	DefaultZipfS      = 1.0
	DefaultCorpusSeed = 0xe3ba7e5
)

// defaultClassNames name the classes of the generated corpus when there
// are two; more classes are called c0, c1 and so on.
var defaultClassNames = []string{"ham", "spam"}

type config struct {
	alpha     float64
	corpus    corpusParams
	trainFile string
}

func parseConfig(env service.Env) (config, error) {
	var c config
	r := envcfg.NewReader(env)
	c.alpha = r.Float("alpha", DefaultAlpha, 1e-9, 100)
	c.corpus.classes = r.Int("classes", DefaultClasses, 2, maxClasses)
	c.corpus.vocab = r.Int("vocab", DefaultVocab, 1, 1_000_000)
	c.corpus.docs = r.Int("train_docs", DefaultTrainDocs, 1, 1_000_000)
	c.corpus.docLen = r.Int("doc_len", DefaultDocLen, 1, 10_000)
	c.corpus.zipfS = r.Float("zipf_s", DefaultZipfS, 0.1, 5)
	seed := r.Int("corpus_seed", DefaultCorpusSeed, math.MinInt, math.MaxInt)
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("bayes: %w", err)
	}
	c.corpus.seed = uint64(seed)
	if c.corpus.docs < c.corpus.classes {
		return c, fmt.Errorf("bayes: config train_docs %d is fewer than classes %d", c.corpus.docs, c.corpus.classes)
	}
	if c.corpus.docs*c.corpus.docLen > 100_000_000 {
		return c, fmt.Errorf("bayes: config train_docs %d x doc_len %d is over 100 million words", c.corpus.docs, c.corpus.docLen)
	}
	c.trainFile = env.String("training_file", "")
	return c, nil
}

// classNames names n generated classes.
func classNames(n int) []string {
	if n == len(defaultClassNames) {
		return defaultClassNames
	}
	names := make([]string, n)
	for i := range names {
		names[i] = "c" + strconv.Itoa(i)
	}
	return names
}

// cacheKey identifies a model trained on the generated corpus; instances
// of one configuration in one process share it (it is read-only).
type cacheKey struct {
	p     corpusParams
	alpha float64
}

var (
	cacheMu sync.Mutex
	cache   = map[cacheKey]*Model{}
)

func generatedModel(p corpusParams, alpha float64) (*Model, error) {
	key := cacheKey{p, alpha}
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if m, ok := cache[key]; ok {
		return m, nil
	}
	l := newLanguage(p)
	terms, docStart, labels := l.generateTraining(p)
	counts := make([]int, p.classes)
	for _, c := range labels {
		counts[c]++
	}
	for c, n := range counts {
		if n == 0 {
			return nil, fmt.Errorf("bayes: generated training set has no message of class %d; raise train_docs", c)
		}
	}
	m, err := train(l.words, classNames(p.classes), terms, docStart, labels, alpha)
	if err != nil {
		return nil, err
	}
	cache[key] = m
	return m, nil
}

// fileModel trains on a file of labelled messages, one per line: the class
// name, a tab, the text. Class ids are given in order of first appearance.
func fileModel(path string, alpha float64) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bayes: config \"training_file\": %w", err)
	}
	var classes []string
	ids := map[string]uint16{}
	var texts [][]byte
	var labels []uint16
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		label, text, ok := bytes.Cut(line, []byte("\t"))
		if !ok || len(label) == 0 {
			return nil, fmt.Errorf("bayes: %s:%d: want a class name, a tab and the message text", path, n+1)
		}
		id, seen := ids[string(label)]
		if !seen {
			if len(classes) == maxClasses {
				return nil, fmt.Errorf("bayes: %s:%d: class %q is one more than the %d allowed", path, n+1, label, maxClasses)
			}
			id = uint16(len(classes))
			ids[string(label)] = id
			classes = append(classes, string(label))
		}
		texts = append(texts, text)
		labels = append(labels, id)
	}
	m, err := trainTexts(classes, texts, labels, alpha)
	if err != nil {
		return nil, fmt.Errorf("%w (training file %s)", err, path)
	}
	return m, nil
}

// Handler classifies the text of each event with a read-only model; it is
// safe for concurrent use and allocates nothing per request.
type Handler struct {
	m *Model
}

// New builds a bayes instance from env.Config (see the package
// documentation for the keys).
func New(env service.Env) (service.Handler, error) {
	c, err := parseConfig(env)
	if err != nil {
		return nil, err
	}
	var m *Model
	if c.trainFile != "" {
		m, err = fileModel(c.trainFile, c.alpha)
	} else {
		m, err = generatedModel(c.corpus, c.alpha)
	}
	if err != nil {
		return nil, err
	}
	return NewHandler(m), nil
}

// NewHandler returns a handler classifying with m.
func NewHandler(m *Model) *Handler { return &Handler{m: m} }

// Model returns the handler's model.
func (h *Handler) Model() *Model { return h.m }

// ReplyLen is the length of a reply.
const ReplyLen = 20

// Handle classifies one event and passes it on unchanged.
func (h *Handler) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("bayes: %w", err)
	}
	r := h.m.classify(ev.Text)
	var b [ReplyLen]byte
	binary.LittleEndian.PutUint16(b[0:], r.Class)
	binary.LittleEndian.PutUint16(b[2:], r.Words)
	binary.LittleEndian.PutUint64(b[4:], math.Float64bits(r.Margin))
	binary.LittleEndian.PutUint64(b[12:], math.Float64bits(r.LogPosterior))
	c.Respond(b[:])
	c.Emit(c.Key, req)
	return nil
}

// ParseReply decodes a bayes reply.
func ParseReply(b []byte) (Result, error) {
	if len(b) != ReplyLen {
		return Result{}, fmt.Errorf("bayes: reply is %d bytes, want %d", len(b), ReplyLen)
	}
	return Result{
		Class:        binary.LittleEndian.Uint16(b[0:]),
		Words:        binary.LittleEndian.Uint16(b[2:]),
		Margin:       math.Float64frombits(binary.LittleEndian.Uint64(b[4:])),
		LogPosterior: math.Float64frombits(binary.LittleEndian.Uint64(b[12:])),
	}, nil
}
