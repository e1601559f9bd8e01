package count

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
)

// Config keys and their defaults.
const (
	// ConfigBits is the log2 of the number of bits in the membership
	// bitmap.
	ConfigBits = "bits"
	// DefaultBits gives a 2^20-bit (128 KiB) bitmap: at a million
	// distinct items about 63 % of the bits are set, so most repeat
	// items still skip nothing, but a new item finds its bit clear with
	// probability about 37 % and is inserted without a map lookup; at the
	// hundred-thousand distinct items of a typical shard it is 91 %.
	DefaultBits = 20
	minBits     = 6
	maxBits     = 32
)

// Reply lengths and flag bits.
const (
	// ObserveReplyLen is the length of the reply to an observation.
	ObserveReplyLen = 9
	// QueryReplyLen is the length of the reply to a query.
	QueryReplyLen = 17
	// FlagNew is set in an observation reply when the item had not been
	// counted before, and in a query reply when the item is unknown.
	FlagNew = 1 << 0
)

// Counter is one count instance. It is safe for concurrent use.
type Counter struct {
	shift uint // 64 - bits: the bitmap index is the top bits of the item hash

	mu     sync.Mutex
	bitmap *collections.Array[uint64]       // 2^bits membership bits, 64 per word
	counts *collections.Map[uint64, uint64] // item -> occurrences
}

// New builds a count instance from env; see the package comment for the
// config keys.
func New(env service.Env) (service.Handler, error) {
	b, err := env.Int(ConfigBits, DefaultBits)
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	if b < minBits || b > maxBits {
		return nil, fmt.Errorf("count: config %q: %d is outside [%d, %d]", ConfigBits, b, minBits, maxBits)
	}
	if env.Store == nil {
		return nil, fmt.Errorf("count: env has no store")
	}
	bm, err := collections.NewArray(env.Store, "count.bitmap", 1<<(b-6), collections.Uint64)
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	cs, err := collections.NewMap(env.Store, "count.counts", collections.Uint64, collections.Uint64)
	if err != nil {
		return nil, fmt.Errorf("count: %w", err)
	}
	return &Counter{shift: uint(64 - b), bitmap: bm, counts: cs}, nil
}

// Handle counts one event; see the package comment for the encoding.
func (h *Counter) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("count: %w", err)
	}
	// Items are often small sequential ids: unmixed, they would all land
	// in the first bitmap words. The finaliser is fixed, so every node
	// maps an item to the same bit.
	bit := mix.Murmur3(ev.Item) >> h.shift
	word, mask := int(bit>>6), uint64(1)<<(bit&63)
	var out [QueryReplyLen]byte
	switch ev.Op {
	case service.OpObserve:
		h.mu.Lock()
		w := h.bitmap.Get(word)
		n := uint64(0)
		if w&mask == 0 {
			// A clear bit proves the item new: no map lookup needed.
			h.bitmap.Set(word, w|mask)
		} else {
			n, _ = h.counts.Get(ev.Item)
		}
		n++
		h.counts.Set(ev.Item, n)
		h.mu.Unlock()
		binary.LittleEndian.PutUint64(out[:], n)
		if n == 1 {
			out[8] = FlagNew
		}
		c.Respond(out[:ObserveReplyLen])
		c.Emit(c.Key, req)
	case service.OpQuery:
		h.mu.Lock()
		n := uint64(0)
		if h.bitmap.Get(word)&mask != 0 {
			n, _ = h.counts.Get(ev.Item)
		}
		distinct := uint64(h.counts.Len())
		h.mu.Unlock()
		binary.LittleEndian.PutUint64(out[:], n)
		if n == 0 {
			out[8] = FlagNew
		}
		binary.LittleEndian.PutUint64(out[9:], distinct)
		c.Respond(out[:QueryReplyLen])
	default:
		return fmt.Errorf("count: %w: op %d (%s) not supported; want observe (%d) or query (%d)",
			service.ErrMalformed, ev.Op, opName(ev.Op), service.OpObserve, service.OpQuery)
	}
	return nil
}

// Distinct returns the number of distinct items counted so far.
func (h *Counter) Distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts.Len()
}

// BitsSet returns the number of set bits in the membership bitmap.
func (h *Counter) BitsSet() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for i := 0; i < h.bitmap.Len(); i++ {
		n += bits.OnesCount64(h.bitmap.Get(i))
	}
	return n
}

func opName(op service.Op) string {
	switch op {
	case service.OpObserve:
		return "observe"
	case service.OpGet:
		return "get"
	case service.OpSet:
		return "set"
	case service.OpDelete:
		return "delete"
	case service.OpQuery:
		return "query"
	}
	return "unknown"
}
