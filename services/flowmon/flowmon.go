package flowmon

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// ReportRequest is the request that asks for the heavy-hitter report
// instead of counting a packet. Its first byte, 'r' (0x72), has version
// nibble 7, so no IPv4 packet can be mistaken for it.
var ReportRequest = []byte("report")

// Defaults of the config keys.
const (
	DefaultDepth     = 4    // delta = e^-4, about 1.8%
	DefaultWidth     = 2048 // eps = e/2048, about 0.13% of the stream
	DefaultThreshold = 0.01 // heavy hitter: at least 1% of the stream
)

// Config is the parsed configuration of a flowmon instance.
type Config struct {
	Depth, Width int     // sketch rows and counters per row (a power of two)
	Conservative bool    // conservative update
	Threshold    float64 // heavy-hitter fraction phi
	Capacity     int     // heavy-hitter candidates kept
	Bytes        bool    // count bytes instead of packets
	HashSeed     uint64  // seeds the row hashes; equal on every instance
}

// ParseConfig reads an instance's config map, fills defaults and
// validates.
//
//	depth         sketch rows, 1..16                     (4)
//	width         counters per row, a power of two       (2048)
//	conservative  conservative update: true|false        (false)
//	hh_threshold  heavy-hitter fraction of the stream    (0.01)
//	hh_capacity   candidates kept                        (2/hh_threshold)
//	unit          packets | bytes                        (packets)
//	hash_seed     seed of the row hash functions         (1)
func ParseConfig(m map[string]string) (Config, error) {
	env := service.Env{Config: m}
	c := Config{}
	var err error
	if c.Depth, err = env.Int("depth", DefaultDepth); err != nil || c.Depth < 1 || c.Depth > maxDepth {
		return c, fmt.Errorf("flowmon: config depth: %q is not in 1..%d", m["depth"], maxDepth)
	}
	if c.Width, err = env.Int("width", DefaultWidth); err != nil || c.Width < 1 || c.Width > 1<<24 || bits.OnesCount(uint(c.Width)) != 1 {
		return c, fmt.Errorf("flowmon: config width: %q is not a power of two up to 2^24", m["width"])
	}
	if v, ok := m["conservative"]; ok {
		if c.Conservative, err = strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			return c, fmt.Errorf("flowmon: config conservative: %q is not true or false", v)
		}
	}
	if c.Threshold, err = env.Float("hh_threshold", DefaultThreshold); err != nil || !(c.Threshold > 0 && c.Threshold <= 1) {
		return c, fmt.Errorf("flowmon: config hh_threshold: %q is not in (0, 1]", m["hh_threshold"])
	}
	if c.Capacity, err = env.Int("hh_capacity", int(math.Ceil(2/c.Threshold))); err != nil || c.Capacity < 1 || c.Capacity > 1<<16 {
		return c, fmt.Errorf("flowmon: config hh_capacity: %q is not in 1..65536", m["hh_capacity"])
	}
	switch u := strings.TrimSpace(env.String("unit", "packets")); u {
	case "packets":
	case "bytes":
		c.Bytes = true
	default:
		return c, fmt.Errorf("flowmon: config unit: %q, want packets or bytes", u)
	}
	seed, err := env.Int("hash_seed", 1)
	if err != nil {
		return c, fmt.Errorf("flowmon: %w", err)
	}
	c.HashSeed = uint64(seed)
	return c, nil
}

// HeavyHitter is one line of the report.
type HeavyHitter struct {
	Flow     packet.FiveTuple
	Estimate uint64 // count-min estimate: never below the true count
}

// Handler is a flowmon instance. Its state (sketch counters, stream total,
// heavy-hitter candidates) lives in reliable collections; a mutex
// serialises the calls.
type Handler struct {
	cfg   Config
	mu    sync.Mutex
	cms   *sketch
	total *collections.Array[uint64] // [0]: N, the stream length
	hh    *collections.Map[packet.FiveTuple, uint64]
}

// New creates an instance whose collections live in store.
func New(cfg Config, store collections.Store) (*Handler, error) {
	if store == nil {
		return nil, fmt.Errorf("flowmon: no store for the reliable collections")
	}
	cms, err := newSketch(store, cfg.Depth, cfg.Width, cfg.HashSeed, cfg.Conservative)
	if err != nil {
		return nil, err
	}
	total, err := collections.NewArray(store, "flowmon.total", 1, collections.Uint64)
	if err != nil {
		return nil, err
	}
	hh, err := collections.NewMap(store, "flowmon.hh", tupleCodec{}, collections.Uint64)
	if err != nil {
		return nil, err
	}
	return &Handler{cfg: cfg, cms: cms, total: total, hh: hh}, nil
}

// Handle counts one packet and forwards it unchanged; the reply is the
// flow's estimated count so far, 8 bytes little endian. The request
// [ReportRequest] instead gets the encoded report ([AppendReport]) and is
// not forwarded.
func (h *Handler) Handle(c *service.Context, req []byte) error {
	if len(req) == len(ReportRequest) && string(req) == string(ReportRequest) {
		c.Scratch = AppendReport(c.Scratch[:0], h.Total(), h.Report())
		c.Respond(c.Scratch)
		return nil
	}
	var ip packet.IPv4
	if err := packet.ParseIPv4(req, &ip); err != nil {
		return err
	}
	ft, err := packet.FiveTupleOf(req, &ip)
	if err != nil {
		return err
	}
	v := uint64(1)
	if h.cfg.Bytes {
		v = uint64(ip.TotalLen)
	}
	key := ft.Hash()
	h.mu.Lock()
	est := h.cms.add(key, v)
	n := h.total.Get(0) + v
	h.total.Set(0, n)
	if float64(est) >= h.cfg.Threshold*float64(n) {
		h.hh.Set(ft, est)
		if h.hh.Len() > h.cfg.Capacity {
			h.prune(n)
		}
	}
	h.mu.Unlock()
	c.Scratch = binary.LittleEndian.AppendUint64(c.Scratch[:0], est)
	c.Respond(c.Scratch)
	c.Emit(c.Key, req)
	return nil
}

// prune drops candidates below the threshold and, if more than 3/4 of the
// capacity remain, the smallest ones down to that. Pruning below capacity
// keeps its cost amortised even when an undersized sketch makes most flows
// look heavy. A flow whose true count reaches the threshold is never
// dropped while fewer than 3/4 Capacity flows have estimates above it: its
// estimate is refreshed with each of its packets and only grows.
func (h *Handler) prune(n uint64) {
	type cand struct {
		ft  packet.FiveTuple
		est uint64
	}
	var cs []cand
	h.hh.Range(func(ft packet.FiveTuple, _ uint64) bool {
		cs = append(cs, cand{ft, h.cms.estimate(ft.Hash())})
		return true
	})
	slices.SortFunc(cs, func(a, b cand) int {
		if a.est != b.est {
			if a.est > b.est {
				return -1
			}
			return 1
		}
		return cmpTuple(a.ft, b.ft)
	})
	keep := max(1, h.cfg.Capacity*3/4)
	for i, c := range cs {
		if i >= keep || float64(c.est) < h.cfg.Threshold*float64(n) {
			h.hh.Delete(c.ft)
		} else {
			h.hh.Set(c.ft, c.est)
		}
	}
}

// Total returns N, the number of packets (or bytes) counted.
func (h *Handler) Total() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total.Get(0)
}

// Estimate returns the count-min estimate for flow ft.
func (h *Handler) Estimate(ft packet.FiveTuple) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cms.estimate(ft.Hash())
}

// Report returns the heavy hitters: candidate flows whose current estimate
// is at least the threshold fraction of the stream, largest first.
func (h *Handler) Report() []HeavyHitter {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.total.Get(0)
	var out []HeavyHitter
	h.hh.Range(func(ft packet.FiveTuple, _ uint64) bool {
		if est := h.cms.estimate(ft.Hash()); float64(est) >= h.cfg.Threshold*float64(n) {
			out = append(out, HeavyHitter{Flow: ft, Estimate: est})
		}
		return true
	})
	slices.SortFunc(out, func(a, b HeavyHitter) int {
		if a.Estimate != b.Estimate {
			if a.Estimate > b.Estimate {
				return -1
			}
			return 1
		}
		return cmpTuple(a.Flow, b.Flow)
	})
	return out
}

// AppendReport encodes a report: N as 8 bytes little endian, the number of
// entries as 4 bytes little endian, then per entry the 13-byte canonical
// five-tuple ([packet.FiveTuple.Put]) and the estimate, 8 bytes little
// endian.
func AppendReport(dst []byte, n uint64, hh []HeavyHitter) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, n)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(hh)))
	for _, e := range hh {
		dst = e.Flow.Append(dst)
		dst = binary.LittleEndian.AppendUint64(dst, e.Estimate)
	}
	return dst
}

// DecodeReport decodes what [AppendReport] wrote.
func DecodeReport(b []byte) (n uint64, hh []HeavyHitter, err error) {
	if len(b) < 12 {
		return 0, nil, fmt.Errorf("%w: flowmon: report of %d bytes, shorter than its 12-byte header", service.ErrMalformed, len(b))
	}
	n = binary.LittleEndian.Uint64(b)
	k := int(binary.LittleEndian.Uint32(b[8:]))
	const entry = packet.FiveTupleLen + 8
	if len(b)-12 != k*entry {
		return 0, nil, fmt.Errorf("%w: flowmon: report declares %d entries (%d bytes) but has %d bytes", service.ErrMalformed, k, k*entry, len(b)-12)
	}
	for p := 12; p < len(b); p += entry {
		ft, _ := packet.DecodeFiveTuple(b[p : p+packet.FiveTupleLen])
		hh = append(hh, HeavyHitter{Flow: ft, Estimate: binary.LittleEndian.Uint64(b[p+packet.FiveTupleLen:])})
	}
	return n, hh, nil
}

// tupleCodec stores five-tuples in reliable collections in their
// canonical 13-byte form.
type tupleCodec struct{}

func (tupleCodec) Append(dst []byte, t packet.FiveTuple) []byte { return t.Append(dst) }
func (tupleCodec) Decode(b []byte) (packet.FiveTuple, error)    { return packet.DecodeFiveTuple(b) }

// cmpTuple orders tuples so reports list equal estimates in a fixed order.
func cmpTuple(a, b packet.FiveTuple) int {
	var x, y [packet.FiveTupleLen]byte
	a.Put(x[:])
	b.Put(y[:])
	return bytes.Compare(x[:], y[:])
}
