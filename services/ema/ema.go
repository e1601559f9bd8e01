package ema

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
)

// Config keys and defaults.
const (
	// ConfigAlpha is the smoothing factor of the per-event EMA.
	ConfigAlpha = "alpha"
	// ConfigHalfLife switches to time-aware decay: a Go duration after
	// which an old average has lost half its weight.
	ConfigHalfLife = "halflife"
	// DefaultAlpha weights a new value by 10 %: an average over roughly
	// the last 2/alpha - 1 = 19 events.
	DefaultAlpha = 0.1
)

// ReplyLen is the length of every reply.
const ReplyLen = 16

// State is the per-stream state kept in the ema.streams map.
type State struct {
	EMA   float64 // current average
	Count uint64  // values folded in
	Last  int64   // newest event time seen, ns (time-aware mode)
}

// StateCodec encodes a State as 24 little-endian bytes: EMA as float64
// bits, Count, Last.
var StateCodec collections.Codec[State] = stateCodec{}

type stateCodec struct{}

// Append appends the 24-byte encoding of s.
func (stateCodec) Append(dst []byte, s State) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.EMA))
	dst = binary.LittleEndian.AppendUint64(dst, s.Count)
	return binary.LittleEndian.AppendUint64(dst, uint64(s.Last))
}

// Decode decodes a State from exactly 24 bytes.
func (stateCodec) Decode(b []byte) (State, error) {
	if len(b) != 24 {
		return State{}, fmt.Errorf("ema: state of %d bytes, want 24", len(b))
	}
	return State{
		EMA:   math.Float64frombits(binary.LittleEndian.Uint64(b)),
		Count: binary.LittleEndian.Uint64(b[8:]),
		Last:  int64(binary.LittleEndian.Uint64(b[16:])),
	}, nil
}

// EMA is one ema instance. It is safe for concurrent use.
type EMA struct {
	alpha    float64
	halfLife float64 // ns; 0 means per-event alpha

	mu      sync.Mutex
	streams *collections.Map[uint64, State]
}

// New builds an ema instance; see the package comment for config keys.
func New(env service.Env) (service.Handler, error) {
	alpha, err := env.Float(ConfigAlpha, DefaultAlpha)
	if err != nil {
		return nil, fmt.Errorf("ema: %w", err)
	}
	if !(alpha > 0 && alpha <= 1) {
		return nil, fmt.Errorf("ema: config %q: %v is outside (0, 1]", ConfigAlpha, alpha)
	}
	var hl time.Duration
	if s := env.String(ConfigHalfLife, ""); s != "" {
		hl, err = time.ParseDuration(s)
		if err != nil || hl <= 0 {
			return nil, fmt.Errorf("ema: config %q: %q is not a positive duration such as 30s", ConfigHalfLife, s)
		}
	}
	if env.Store == nil {
		return nil, fmt.Errorf("ema: env has no store")
	}
	m, err := collections.NewMap(env.Store, "ema.streams", collections.Uint64, StateCodec)
	if err != nil {
		return nil, fmt.Errorf("ema: %w", err)
	}
	return &EMA{alpha: alpha, halfLife: float64(hl), streams: m}, nil
}

// step folds x observed at time t into s.
func (h *EMA) step(s State, x float64, t int64) State {
	if s.Count == 0 {
		return State{EMA: x, Count: 1, Last: t}
	}
	w := h.alpha
	if h.halfLife > 0 {
		// Irregularly spaced events: the old average decays by
		// 2^(-dt/halflife). A value not newer than the newest one seen
		// gets weight 0 (it is counted, but time does not run back).
		w = 0
		if dt := t - s.Last; dt > 0 {
			w = -math.Expm1(-float64(dt) * math.Ln2 / h.halfLife)
			s.Last = t
		}
	}
	s.EMA = blend(s.EMA, x, w)
	s.Count++
	return s
}

// blend returns a + w(x - a) for w in [0, 1], kept within [a, x] so that
// finite inputs give a finite average: x - a alone overflows when the two
// are near ±MaxFloat64 with opposite signs, and the rounded sum may step
// just outside the interval.
func blend(a, x, w float64) float64 {
	d := x - a
	var r float64
	if math.IsInf(d, 0) {
		r = a*(1-w) + x*w
	} else {
		r = a + w*d
	}
	lo, hi := min(a, x), max(a, x)
	return min(max(r, lo), hi)
}

// Handle folds one event into its stream's average; see the package
// comment for the encoding.
func (h *EMA) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("ema: %w", err)
	}
	var s State
	switch ev.Op {
	case service.OpObserve:
		if math.IsNaN(ev.Value) || math.IsInf(ev.Value, 0) {
			return fmt.Errorf("ema: %w: value %v of stream %d is not finite", service.ErrMalformed, ev.Value, ev.Key)
		}
		h.mu.Lock()
		s, _ = h.streams.Get(ev.Key)
		s = h.step(s, ev.Value, ev.Time)
		h.streams.Set(ev.Key, s)
		h.mu.Unlock()
	case service.OpQuery:
		h.mu.Lock()
		s, _ = h.streams.Get(ev.Key)
		h.mu.Unlock()
	default:
		return fmt.Errorf("ema: %w: op %d not supported; want observe (%d) or query (%d)",
			service.ErrMalformed, ev.Op, service.OpObserve, service.OpQuery)
	}
	var out [ReplyLen]byte
	binary.LittleEndian.PutUint64(out[:], math.Float64bits(s.EMA))
	binary.LittleEndian.PutUint64(out[8:], s.Count)
	c.Respond(out[:])
	if ev.Op == service.OpObserve {
		c.Emit(c.Key, req)
	}
	return nil
}

// Streams returns the number of streams with state.
func (h *EMA) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams.Len()
}
