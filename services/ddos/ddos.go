package ddos

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// Defaults of the config keys.
const (
	DefaultWindow    = 4096
	DefaultThreshold = 0.5
	MaxWindow        = 1 << 20
)

// fracBits is the fixed-point precision of the n*log2(n) terms: their
// sum is kept as an integer so adding and removing the same terms in any
// order returns exactly to the same value (a float sum would drift over
// millions of updates).
const fracBits = 20

// Normalisations of the entropy.
const (
	NormDistinct = "distinct" // H / log2(distinct sources in the window)
	NormWindow   = "window"   // H / log2(window size)
)

// Config is the parsed configuration of a ddos instance.
type Config struct {
	Window     int     // packets in a count window; capacity of a time window
	WindowNs   int64   // time window length in ns; 0 selects a count window
	MinPackets int     // packets a time window needs before it can alarm
	Threshold  float64 // alarm when the normalised entropy is below this
	Norm       string  // NormDistinct or NormWindow
}

// ParseConfig reads an instance's config map, fills defaults and
// validates.
//
//	window       packets per window (count window) or the most a time window holds (4096)
//	window_ms    time window length in ms; 0 = count window             (0)
//	min_packets  packets a time window needs before it may alarm        (window/4)
//	threshold    alarm below this normalised entropy, in (0, 1)        (0.5)
//	normalise    distinct | window                                      (distinct)
func ParseConfig(m map[string]string) (Config, error) {
	env := service.Env{Config: m}
	var c Config
	var err error
	if c.Window, err = env.Int("window", DefaultWindow); err != nil || c.Window < 2 || c.Window > MaxWindow {
		return c, fmt.Errorf("ddos: config window: %q is not in 2..%d", m["window"], MaxWindow)
	}
	ms, err := env.Int("window_ms", 0)
	if err != nil || ms < 0 {
		return c, fmt.Errorf("ddos: config window_ms: %q is not a number of milliseconds >= 0", m["window_ms"])
	}
	c.WindowNs = int64(ms) * 1e6
	if c.MinPackets, err = env.Int("min_packets", max(2, c.Window/4)); err != nil || c.MinPackets < 2 || c.MinPackets > c.Window {
		return c, fmt.Errorf("ddos: config min_packets: %q is not in 2..window (%d)", m["min_packets"], c.Window)
	}
	if c.Threshold, err = env.Float("threshold", DefaultThreshold); err != nil || !(c.Threshold > 0 && c.Threshold < 1) {
		return c, fmt.Errorf("ddos: config threshold: %q is not in (0, 1)", m["threshold"])
	}
	switch c.Norm = strings.TrimSpace(env.String("normalise", NormDistinct)); c.Norm {
	case NormDistinct, NormWindow:
	default:
		return c, fmt.Errorf("ddos: config normalise: %q, want %s or %s", c.Norm, NormDistinct, NormWindow)
	}
	return c, nil
}

// Meta slots of the "ddos.meta" array.
const (
	metaHead   = iota // ring index of the oldest packet
	metaLen           // packets in the window
	metaSum           // sum over sources of c*log2(c), fixed point
	metaAlarm         // 1 while the alarm is raised
	metaAlarms        // alarms raised so far
	metaSlots
)

// Handler is a ddos instance. Its state lives in reliable collections; a
// mutex serialises calls.
type Handler struct {
	cfg    Config
	mu     sync.Mutex
	counts *collections.Map[uint32, uint64] // source -> packets in window
	ring   *collections.Array[uint64]       // window, oldest at meta[head]
	times  *collections.Array[int64]        // arrival times (time windows)
	meta   *collections.Array[uint64]
	nlogn  []uint64 // nlogn[c] = round(c*log2(c) * 2^fracBits)
}

// New creates an instance whose collections live in store.
func New(cfg Config, store collections.Store) (*Handler, error) {
	if store == nil {
		return nil, fmt.Errorf("ddos: no store for the reliable collections")
	}
	h := &Handler{cfg: cfg, nlogn: make([]uint64, cfg.Window+1)}
	for c := 2; c <= cfg.Window; c++ {
		h.nlogn[c] = uint64(math.Round(float64(c) * math.Log2(float64(c)) * (1 << fracBits)))
	}
	var err error
	if h.counts, err = collections.NewMap(store, "ddos.counts", u32Codec{}, collections.Uint64); err != nil {
		return nil, err
	}
	if h.ring, err = collections.NewArray(store, "ddos.ring", cfg.Window, collections.Uint64); err != nil {
		return nil, err
	}
	if cfg.WindowNs > 0 {
		if h.times, err = collections.NewArray(store, "ddos.times", cfg.Window, collections.Int64); err != nil {
			return nil, err
		}
	}
	if h.meta, err = collections.NewArray(store, "ddos.meta", metaSlots, collections.Uint64); err != nil {
		return nil, err
	}
	return h, nil
}

// ReplyLen is the length of a reply.
const ReplyLen = 16

// Handle adds the packet's source address to the window, updates the
// entropy and the alarm, and forwards the packet unchanged. The reply
// (ReplyLen bytes) is byte 0: 1 if the alarm is raised, else 0; bytes 4-7:
// the distinct sources in the window (uint32 LE); bytes 8-15: the
// normalised entropy (float64 LE, 1 until the window can alarm).
func (h *Handler) Handle(c *service.Context, req []byte) error {
	var ip packet.IPv4
	if err := packet.ParseIPv4(req, &ip); err != nil {
		return err
	}
	h.mu.Lock()
	h.observe(ip.Src, c.Now)
	st := h.stateLocked()
	h.mu.Unlock()
	var r [ReplyLen]byte
	if st.Alarm {
		r[0] = 1
	}
	binary.LittleEndian.PutUint32(r[4:], uint32(st.Distinct))
	binary.LittleEndian.PutUint64(r[8:], math.Float64bits(st.Normalised))
	c.Respond(r[:])
	c.Emit(c.Key, req)
	return nil
}

// observe slides the window over one packet from src at time now.
func (h *Handler) observe(src uint32, now int64) {
	head, n := int(h.meta.Get(metaHead)), int(h.meta.Get(metaLen))
	w := h.cfg.Window
	if h.times != nil {
		for n > 0 && h.times.Get(head) <= now-h.cfg.WindowNs {
			h.remove(uint32(h.ring.Get(head)))
			head, n = (head+1)%w, n-1
		}
	}
	if n == w {
		h.remove(uint32(h.ring.Get(head)))
		head, n = (head+1)%w, n-1
	}
	tail := (head + n) % w
	h.ring.Set(tail, uint64(src))
	if h.times != nil {
		h.times.Set(tail, now)
	}
	h.add(src)
	n++
	h.meta.Set(metaHead, uint64(head))
	h.meta.Set(metaLen, uint64(n))

	ready := n == w || (h.times != nil && n >= h.cfg.MinPackets)
	alarm := ready && h.normalised(n) < h.cfg.Threshold
	if was := h.meta.Get(metaAlarm) == 1; alarm != was {
		if alarm {
			h.meta.Set(metaAlarm, 1)
			h.meta.Set(metaAlarms, h.meta.Get(metaAlarms)+1)
		} else {
			h.meta.Set(metaAlarm, 0)
		}
	}
}

// add and remove move one source's count by one and adjust the sum
// S = sum c*log2(c) by the difference of its terms: O(1) per packet.
func (h *Handler) add(src uint32) {
	c, _ := h.counts.Get(src)
	h.counts.Set(src, c+1)
	h.meta.Set(metaSum, h.meta.Get(metaSum)+h.nlogn[c+1]-h.nlogn[c])
}

func (h *Handler) remove(src uint32) {
	c, ok := h.counts.Get(src)
	if !ok || c == 0 {
		return // cannot happen while the ring and the map agree
	}
	if c == 1 {
		h.counts.Delete(src)
	} else {
		h.counts.Set(src, c-1)
	}
	h.meta.Set(metaSum, h.meta.Get(metaSum)-(h.nlogn[c]-h.nlogn[c-1]))
}

// entropy returns the Shannon entropy in bits of the sources of a window
// of n packets: H = log2(n) - S/n, from sum -p log2 p with p = c/n.
func (h *Handler) entropy(n int) float64 {
	if n == 0 {
		return 0
	}
	s := float64(h.meta.Get(metaSum)) / (1 << fracBits)
	return max(0, math.Log2(float64(n))-s/float64(n))
}

// normalised returns the entropy divided by its maximum: log2 of the
// number of distinct sources, or of the window size.
func (h *Handler) normalised(n int) float64 {
	var hmax float64
	if h.cfg.Norm == NormWindow {
		hmax = math.Log2(float64(h.cfg.Window))
	} else {
		hmax = math.Log2(float64(h.counts.Len()))
	}
	if hmax <= 0 {
		return 0 // one source: no entropy at all
	}
	return h.entropy(n) / hmax
}

// State is a snapshot of the detector.
type State struct {
	Packets    int     // packets in the window
	Distinct   int     // distinct sources in the window
	Entropy    float64 // bits
	Normalised float64 // entropy / its maximum; 1 until the window can alarm
	Alarm      bool    // raised now
	Alarms     uint64  // times raised
}

// State returns the detector's state.
func (h *Handler) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stateLocked()
}

func (h *Handler) stateLocked() State {
	n := int(h.meta.Get(metaLen))
	st := State{Packets: n, Distinct: h.counts.Len(), Entropy: h.entropy(n), Normalised: 1,
		Alarm: h.meta.Get(metaAlarm) == 1, Alarms: h.meta.Get(metaAlarms)}
	if n == h.cfg.Window || (h.times != nil && n >= h.cfg.MinPackets) {
		st.Normalised = h.normalised(n)
	}
	return st
}

// u32Codec stores source addresses in reliable maps, 4 bytes big endian.
type u32Codec struct{}

func (u32Codec) Append(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }
func (u32Codec) Decode(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("ddos: address of %d bytes, want 4", len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}
