package spike

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
)

// Config keys and defaults.
const (
	ConfigWindow    = "window"    // values per stream window
	ConfigThreshold = "threshold" // |z| at or above which a value is a spike
	ConfigMin       = "min"       // values a window needs before it flags spikes
	ConfigEmit      = "emit"      // which observations go downstream
	DefaultWindow   = 64
	DefaultZ        = 3.0
	maxWindow       = 1 << 16
	// MaxAbsValue bounds accepted values so that squared deviations
	// summed over a window cannot overflow float64.
	MaxAbsValue = 1e100
)

// Emit policies (values of the emit config key).
const (
	EmitSpikes = "spikes" // only observations flagged as spikes (default)
	EmitAll    = "all"    // every observation
	EmitNone   = "none"   // nothing
)

// Reply layout.
const (
	ReplyLen  = 25
	FlagSpike = 1 << 0 // |z| >= threshold on a warm window
	FlagWarm  = 1 << 1 // the window held at least min values before this one
)

// Stats is the running summary of one stream's window, kept in the
// spike.stats array: N values (at most the window), the ring position
// the next value goes to, their mean and the sum of squared deviations
// from the mean (M2), updated in Welford's form.
type Stats struct {
	N    uint32
	Pos  uint32
	Mean float64
	M2   float64
}

// StatsCodec encodes Stats as 24 little-endian bytes: N u32, Pos u32,
// Mean and M2 as float64 bits.
var StatsCodec collections.Codec[Stats] = statsCodec{}

type statsCodec struct{}

// Append appends the 24-byte encoding of s.
func (statsCodec) Append(dst []byte, s Stats) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, s.N)
	dst = binary.LittleEndian.AppendUint32(dst, s.Pos)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.Mean))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.M2))
}

// Decode decodes Stats from exactly 24 bytes.
func (statsCodec) Decode(b []byte) (Stats, error) {
	if len(b) != 24 {
		return Stats{}, fmt.Errorf("spike: stats of %d bytes, want 24", len(b))
	}
	return Stats{
		N:    binary.LittleEndian.Uint32(b),
		Pos:  binary.LittleEndian.Uint32(b[4:]),
		Mean: math.Float64frombits(binary.LittleEndian.Uint64(b[8:])),
		M2:   math.Float64frombits(binary.LittleEndian.Uint64(b[16:])),
	}, nil
}

// Detector is one spike instance. It is safe for concurrent use.
type Detector struct {
	w         int
	threshold float64
	min       uint32
	emit      string

	mu    sync.Mutex
	slots *collections.Map[uint64, uint64] // stream key -> slot
	ring  *collections.Array[float64]      // slot*w .. slot*w+w-1: the window
	stats *collections.Array[Stats]        // per slot
}

// New builds a spike instance; see the package comment for config keys.
func New(env service.Env) (service.Handler, error) {
	w, err := env.Int(ConfigWindow, DefaultWindow)
	if err != nil {
		return nil, fmt.Errorf("spike: %w", err)
	}
	if w < 2 || w > maxWindow {
		return nil, fmt.Errorf("spike: config %q: %d is outside [2, %d]", ConfigWindow, w, maxWindow)
	}
	z, err := env.Float(ConfigThreshold, DefaultZ)
	if err != nil {
		return nil, fmt.Errorf("spike: %w", err)
	}
	if !(z > 0) || math.IsInf(z, 0) {
		return nil, fmt.Errorf("spike: config %q: %v is not a positive number", ConfigThreshold, z)
	}
	mn, err := env.Int(ConfigMin, max(2, w/4))
	if err != nil {
		return nil, fmt.Errorf("spike: %w", err)
	}
	if mn < 2 || mn > w {
		return nil, fmt.Errorf("spike: config %q: %d is outside [2, window=%d]", ConfigMin, mn, w)
	}
	emit := env.String(ConfigEmit, EmitSpikes)
	if emit != EmitSpikes && emit != EmitAll && emit != EmitNone {
		return nil, fmt.Errorf("spike: config %q: %q is not one of %s, %s, %s", ConfigEmit, emit, EmitSpikes, EmitAll, EmitNone)
	}
	if env.Store == nil {
		return nil, fmt.Errorf("spike: env has no store")
	}
	d := &Detector{w: w, threshold: z, min: uint32(mn), emit: emit}
	if d.slots, err = collections.NewMap(env.Store, "spike.slots", collections.Uint64, collections.Uint64); err != nil {
		return nil, fmt.Errorf("spike: %w", err)
	}
	if d.ring, err = collections.NewArray(env.Store, "spike.ring", 0, collections.Float64); err != nil {
		return nil, fmt.Errorf("spike: %w", err)
	}
	if d.stats, err = collections.NewArray(env.Store, "spike.stats", 0, StatsCodec); err != nil {
		return nil, fmt.Errorf("spike: %w", err)
	}
	return d, nil
}

// Handle scores one value against its stream's window and then adds it
// to the window; see the package comment for the encoding.
func (d *Detector) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("spike: %w", err)
	}
	if ev.Op != service.OpObserve {
		return fmt.Errorf("spike: %w: op %d not supported; want observe (%d)", service.ErrMalformed, ev.Op, service.OpObserve)
	}
	x := ev.Value
	if !(math.Abs(x) <= MaxAbsValue) { // also catches NaN
		return fmt.Errorf("spike: %w: value %v of stream %d is not a number within ±%g", service.ErrMalformed, x, ev.Key, MaxAbsValue)
	}
	d.mu.Lock()
	slot, ok := d.slots.Get(ev.Key)
	if !ok {
		slot = uint64(d.stats.Len())
		d.slots.Set(ev.Key, slot)
		d.stats.Append(Stats{})
		for i := 0; i < d.w; i++ {
			d.ring.Append(0)
		}
	}
	prev := d.stats.Get(int(slot))
	st := d.add(int(slot), prev, x)
	d.stats.Set(int(slot), st)
	d.mu.Unlock()

	z, std := score(prev, x)
	var out [ReplyLen]byte
	binary.LittleEndian.PutUint64(out[:], math.Float64bits(z))
	binary.LittleEndian.PutUint64(out[8:], math.Float64bits(prev.Mean))
	binary.LittleEndian.PutUint64(out[16:], math.Float64bits(std))
	spike := false
	if prev.N >= d.min {
		out[24] |= FlagWarm
		if math.Abs(z) >= d.threshold {
			spike = true
			out[24] |= FlagSpike
		}
	}
	c.Respond(out[:])
	if d.emit == EmitAll || spike && d.emit == EmitSpikes {
		c.Emit(c.Key, req)
	}
	return nil
}

// score returns the z-score of x against the window summarised by s and
// the window's standard deviation. A window with no spread scores a value
// equal to its mean 0 and any other value ±Inf; an empty window scores 0.
func score(s Stats, x float64) (z, std float64) {
	if s.N == 0 {
		return 0, 0
	}
	std = math.Sqrt(s.M2 / float64(s.N))
	dev := x - s.Mean
	switch {
	case std > 0:
		return dev / std, std
	case dev > 0:
		return math.Inf(1), 0
	case dev < 0:
		return math.Inf(-1), 0
	}
	return 0, 0
}

// add puts x into the window of slot, whose summary is s, and returns the
// new summary. Called with d.mu held.
func (d *Detector) add(slot int, s Stats, x float64) Stats {
	base := slot * d.w
	if int(s.N) < d.w {
		// Filling: Welford's update of mean and M2.
		s.N++
		delta := x - s.Mean
		s.Mean += delta / float64(s.N)
		s.M2 += delta * (x - s.Mean)
	} else {
		// Full: x replaces the oldest value. Mean and M2 of the window
		// change by the sliding form of Welford's update.
		old := d.ring.Get(base + int(s.Pos))
		mean := s.Mean + (x-old)/float64(d.w)
		s.M2 += (x - old) * (x - mean + old - s.Mean)
		s.Mean = mean
		if s.M2 < 0 {
			s.M2 = 0 // rounding; a variance is never negative
		}
	}
	d.ring.Set(base+int(s.Pos), x)
	s.Pos++
	if int(s.Pos) == d.w {
		s.Pos = 0
		if int(s.N) == d.w {
			// Once per lap, recompute from the window itself so that
			// rounding errors of the sliding update cannot accumulate:
			// O(w) work every w values.
			s.Mean, s.M2 = exact(d.ring, base, d.w)
		}
	}
	return s
}

// exact computes mean and M2 of a[base:base+n] in two passes.
func exact(a *collections.Array[float64], base, n int) (mean, m2 float64) {
	for i := 0; i < n; i++ {
		mean += a.Get(base + i)
	}
	mean /= float64(n)
	for i := 0; i < n; i++ {
		d := a.Get(base+i) - mean
		m2 += d * d
	}
	return mean, m2
}

// Window returns the summary of key's window, for tests and tools.
func (d *Detector) Window(key uint64) (Stats, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	slot, ok := d.slots.Get(key)
	if !ok {
		return Stats{}, false
	}
	return d.stats.Get(int(slot)), true
}

// Streams returns the number of streams with a window.
func (d *Detector) Streams() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.slots.Len()
}
