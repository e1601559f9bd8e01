package recommend

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/envcfg"
	"github.com/e3-platform/e3/services/internal/ranked"
)

// Defaults of the configuration keys (see the package documentation).
const (
	DefaultUsers          = 1000
	DefaultItems          = 500
	DefaultRatingsPerUser = 20
	DefaultTopN           = 10
	DefaultBaseline       = 3.0
	DefaultSeed           = 0xe3ec0
)

// maxAbsRating bounds ratings so that sums of products stay far from
// overflow.
const maxAbsRating = 1e9

type config struct {
	users, items, perUser, topN int
	baseline                    float64
	seed                        uint64
}

func parseConfig(env service.Env) (config, error) {
	var c config
	r := envcfg.NewReader(env)
	c.users = r.Int("users", DefaultUsers, 0, 10_000_000)
	c.items = r.Int("items", DefaultItems, 1, 10_000_000)
	c.perUser = r.Int("ratings_per_user", DefaultRatingsPerUser, 1, 10_000)
	c.topN = r.Int("top_n", DefaultTopN, 1, 1000)
	seed := r.Int("seed", DefaultSeed, math.MinInt, math.MaxInt)
	err := r.Err()
	if err == nil {
		c.baseline, err = env.Float("baseline", DefaultBaseline)
		if err == nil && !(math.Abs(c.baseline) <= maxAbsRating) {
			err = fmt.Errorf("config %q: %v is not within ±%g", "baseline", c.baseline, maxAbsRating)
		}
	}
	if err != nil {
		return c, fmt.Errorf("recommend: %w", err)
	}
	c.seed = uint64(seed)
	if c.perUser > c.items {
		c.perUser = c.items
	}
	if int64(c.users)*int64(c.perUser) > 50_000_000 {
		return c, fmt.Errorf("recommend: config users %d x ratings_per_user %d is over 50 million seed ratings", c.users, c.perUser)
	}
	return c, nil
}

// Rec is one recommended item.
type Rec struct {
	Item  uint64
	Score float64
}

// worse orders recommendations: lower score first, then the higher item
// id, so rankings are total and deterministic.
func worse(a, b Rec) bool {
	return a.Score < b.Score || (a.Score == b.Score && a.Item > b.Item)
}

// Handler is one recommend instance. Its state is guarded by mu, which
// also makes each mutation and its log records one atomic step.
type Handler struct {
	mu   sync.Mutex
	st   *state
	topN int
	// Per-call working memory, indexed by dense item, reused under mu.
	// An entry is current when its stamp equals gen; bumping gen clears
	// all of them at once.
	gen     uint32
	rated   []uint32
	seen    []uint32
	acc     []float64
	touched []uint32
	top     []Rec
	reply   []byte
}

// New builds a recommend instance: it attaches its collections to
// env.Store and, unless users is 0, seeds them with generated ratings.
// env.Store must not be nil.
func New(env service.Env) (service.Handler, error) {
	c, err := parseConfig(env)
	if err != nil {
		return nil, err
	}
	if env.Store == nil {
		return nil, errors.New("recommend: env.Store is nil; a stateful service needs a store")
	}
	st, err := newState(env.Store, c.baseline)
	if err != nil {
		return nil, err
	}
	h := &Handler{st: st, topN: c.topN}
	if c.users > 0 {
		seedRatings(st, c)
	}
	return h, nil
}

// ReplyHeaderLen is the fixed part of a reply; each recommendation adds
// ReplyRecLen.
const (
	ReplyHeaderLen = ranked.HeaderLen
	ReplyRecLen    = ranked.EntryLen
)

// Handle rates (OpObserve) or recommends (OpQuery) and passes the event on
// unchanged.
func (h *Handler) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("recommend: %w", err)
	}
	switch ev.Op {
	case service.OpObserve:
		if math.IsNaN(ev.Value) || math.Abs(ev.Value) > maxAbsRating {
			return fmt.Errorf("recommend: %w: rating %v of item %d by user %d is not a number within ±%g",
				service.ErrMalformed, ev.Value, ev.Item, ev.Key, maxAbsRating)
		}
		h.mu.Lock()
		n := h.st.observe(ev.Key, ev.Item, ev.Value)
		h.reply = appendReply(h.reply[:0], n, nil)
		c.Respond(h.reply)
		h.mu.Unlock()
	case service.OpQuery:
		h.mu.Lock()
		n := h.recommend(ev.Key)
		h.reply = appendReply(h.reply[:0], n, h.top)
		c.Respond(h.reply)
		h.mu.Unlock()
	default:
		return fmt.Errorf("recommend: %w: op %d; want %d (observe: rate) or %d (query: recommend)",
			service.ErrMalformed, ev.Op, service.OpObserve, service.OpQuery)
	}
	c.Emit(c.Key, req)
	return nil
}

// recommend fills h.top with up to topN items the user has not rated,
// best first, scored by
//
//	score(j) = sum over items i the user rated of sim(i, j) * (r(user, i) - baseline)
//	sim(i, j) = dot[i][j] / sqrt(norm2[i] * norm2[j])   (cosine of centred ratings)
//
// so items like those the user liked gain and items like those the user
// disliked lose. Only items with a positive score are recommended. It returns how many
// items the user has rated.
func (h *Handler) recommend(user uint64) int {
	st := h.st
	list, _ := st.users.Get(user)
	n := st.itemIDs.Len()
	if len(h.rated) < n {
		h.rated = append(h.rated, make([]uint32, n-len(h.rated))...)
		h.seen = append(h.seen, make([]uint32, n-len(h.seen))...)
		h.acc = append(h.acc, make([]float64, n-len(h.acc))...)
	}
	h.gen++
	if h.gen == 0 { // wrapped: old stamps could collide, so clear them
		clear(h.rated)
		clear(h.seen)
		h.gen = 1
	}
	gen, rated, seen, acc := h.gen, h.rated, h.seen, h.acc
	for _, x := range list {
		rated[x.item] = gen
	}
	touched := h.touched[:0]
	for _, x := range list {
		ni := st.norm2.Get(int(x.item))
		if ni <= 0 {
			continue
		}
		w := (x.r - st.baseline) / math.Sqrt(ni) // centred r(user,i) / |i|, common to the list
		m := st.rows.Get(int(x.item))
		for b, left := m.head, m.n; left > 0; b = st.next.Get(int(b)) {
			cnt := min(left, blockLen)
			left -= cnt
			for p := b * blockLen; p < b*blockLen+cnt; p++ {
				e := st.co.Get(int(p))
				if rated[e.item] == gen {
					continue
				}
				if seen[e.item] != gen {
					seen[e.item] = gen
					acc[e.item] = 0
					touched = append(touched, e.item)
				}
				acc[e.item] += w * e.dot
			}
		}
	}
	// 1/|j| is common to every term of score(j), so it is applied once
	// per candidate rather than once per co-rating.
	for _, j := range touched {
		if nj := st.norm2.Get(int(j)); nj > 0 {
			acc[j] /= math.Sqrt(nj)
		} else {
			acc[j] = 0 // every rating of j sits at the baseline
		}
	}
	top := h.top[:0]
	for _, j := range touched {
		r := Rec{Item: st.itemIDs.Get(int(j)), Score: acc[j]}
		if r.Score <= 0 {
			continue
		}
		if len(top) < h.topN {
			top = append(top, r)
			for i := len(top) - 1; i > 0; {
				p := (i - 1) / 2
				if !worse(top[i], top[p]) {
					break
				}
				top[i], top[p] = top[p], top[i]
				i = p
			}
		} else if worse(top[0], r) {
			top[0] = r
			siftDown(top)
		}
	}
	for m := len(top) - 1; m > 0; m-- {
		top[0], top[m] = top[m], top[0]
		siftDown(top[:m])
	}
	h.top, h.touched = top, touched
	return len(list)
}

func siftDown(h []Rec) {
	for i := 0; ; {
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

// replyFormat is recommend's reply in the ranked wire format: rated count
// u32, recommendation count u16, then per recommendation the item id u64
// and score f64, little endian.
var replyFormat = ranked.Format[Rec]{
	Service: "recommend",
	Noun:    "recommendations",
	Split:   func(r Rec) (uint64, float64) { return r.Item, r.Score },
	Join:    func(item uint64, score float64) Rec { return Rec{Item: item, Score: score} },
}

// appendReply encodes a reply of the user's rated count and recs.
func appendReply(dst []byte, rated int, recs []Rec) []byte {
	return replyFormat.Append(dst, uint32(rated), recs)
}

// ParseReply decodes a recommend reply, appending the recommendations to
// dst[:0]: the number of items the user has rated, and the recommendations
// best first (none for an OpObserve reply).
func ParseReply(b []byte, dst []Rec) (rated uint32, recs []Rec, err error) {
	return replyFormat.Parse(b, dst)
}
