package topk

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/ranked"
)

// Defaults of the configuration keys (see the package documentation).
const (
	DefaultWindow = 1024
	DefaultK      = 10
	DefaultRank   = "query"
)

// Handler is one topk instance. Its state is guarded by mu, which also
// makes each mutation and its log records one atomic step.
type Handler struct {
	mu    sync.Mutex
	st    *state
	k     int
	every bool     // rank on every request, not only on OpQuery
	buf   []Scored // the copy of ranked that TopK reorders
	reply []byte
}

// New builds a topk instance, attaching its collections to env.Store, which
// must not be nil. The window starts empty.
func New(env service.Env) (service.Handler, error) {
	w, err := env.Int("window", DefaultWindow)
	if err == nil && (w < 1 || w > 1<<24) {
		err = fmt.Errorf("config %q: %d is outside [1, %d]", "window", w, 1<<24)
	}
	var k int
	if err == nil {
		k, err = env.Int("k", DefaultK)
		if err == nil && (k < 1 || k > 1000) {
			err = fmt.Errorf("config %q: %d is outside [1, 1000]", "k", k)
		}
	}
	rank := env.String("rank", DefaultRank)
	if err == nil && rank != "query" && rank != "every" {
		err = fmt.Errorf("config %q: %q; want \"query\" (rank on OpQuery) or \"every\" (rank on every request)", "rank", rank)
	}
	if err != nil {
		return nil, fmt.Errorf("topk: %w", err)
	}
	if env.Store == nil {
		return nil, errors.New("topk: env.Store is nil; a stateful service needs a store")
	}
	st, err := newState(env.Store, w)
	if err != nil {
		return nil, err
	}
	return &Handler{st: st, k: k, every: rank == "every"}, nil
}

// ReplyHeaderLen is the fixed part of a reply; each ranked item adds
// ReplyItemLen.
const (
	ReplyHeaderLen = ranked.HeaderLen
	ReplyItemLen   = ranked.EntryLen
)

// Handle adds a scored item to the window (OpObserve) or ranks the window
// (OpQuery, or every request with rank=every), and passes the event on
// unchanged.
func (h *Handler) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("topk: %w", err)
	}
	var rank bool
	switch ev.Op {
	case service.OpObserve:
		if math.IsNaN(ev.Value) || math.IsInf(ev.Value, 0) {
			return fmt.Errorf("topk: %w: score %v of item %d is not a finite number", service.ErrMalformed, ev.Value, ev.Item)
		}
		rank = h.every
	case service.OpQuery:
		rank = true
	default:
		return fmt.Errorf("topk: %w: op %d; want %d (observe: add a scored item) or %d (query: rank)",
			service.ErrMalformed, ev.Op, service.OpObserve, service.OpQuery)
	}
	h.mu.Lock()
	if ev.Op == service.OpObserve {
		h.st.observe(ev.Item, ev.Value)
	}
	var top []Scored
	if rank {
		top = h.rank()
	}
	h.reply = appendReply(h.reply[:0], h.st.ranked.Len(), top)
	c.Respond(h.reply)
	h.mu.Unlock()
	c.Emit(c.Key, req)
	return nil
}

// rank returns the k best items of the window, best first, in h.buf.
func (h *Handler) rank() []Scored {
	r := h.st.ranked
	n := r.Len()
	if cap(h.buf) < n {
		h.buf = make([]Scored, n, n+n/4)
	}
	buf := h.buf[:n]
	for i := range buf {
		buf[i] = r.Get(i)
	}
	return TopK(buf, h.k)
}

// replyFormat is topk's reply in the ranked wire format: distinct items
// in the window u32, ranked count u16, then per item its id u64 and score
// f64, little endian.
var replyFormat = ranked.Format[Scored]{
	Service: "topk",
	Noun:    "items",
	Split:   func(s Scored) (uint64, float64) { return s.Item, s.Score },
	Join:    func(item uint64, score float64) Scored { return Scored{Item: item, Score: score} },
}

// appendReply encodes a reply of the window's distinct count and top.
func appendReply(dst []byte, distinct int, top []Scored) []byte {
	return replyFormat.Append(dst, uint32(distinct), top)
}

// ParseReply decodes a topk reply, appending the ranking to dst[:0]: the
// number of distinct items in the window and the top items, best first
// (none when the request did not rank).
func ParseReply(b []byte, dst []Scored) (distinct uint32, top []Scored, err error) {
	return replyFormat.Parse(b, dst)
}
