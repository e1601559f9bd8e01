package spike

import (
	"encoding/binary"
	"math"
	"strconv"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// tb is the part of testing.TB that helpers need; *rapid.T has it too.
type tb interface {
	Helper()
	Fatal(args ...any)
}

func newDetector(t tb, cfg map[string]string) *Detector {
	t.Helper()
	h, err := New(service.Env{Instance: "t/spike.0", Config: cfg, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Detector)
}

func event(t tb, op service.Op, key uint64, v float64) []byte {
	t.Helper()
	b, err := service.AppendEvent(nil, &service.Event{Op: op, Key: key, Value: v}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type reply struct {
	z, mean, std float64
	spike, warm  bool
	emits        int
}

func call(t testing.TB, h service.Handler, req []byte) (reply, error) {
	t.Helper()
	var c service.Context
	c.Reset(0, 1, nil)
	if err := h.Handle(&c, req); err != nil {
		return reply{emits: c.Emitted()}, err
	}
	r := c.Response()
	if len(r) != ReplyLen {
		t.Fatalf("reply of %d bytes", len(r))
	}
	return reply{
		z:     math.Float64frombits(binary.LittleEndian.Uint64(r)),
		mean:  math.Float64frombits(binary.LittleEndian.Uint64(r[8:])),
		std:   math.Float64frombits(binary.LittleEndian.Uint64(r[16:])),
		spike: r[24]&FlagSpike != 0,
		warm:  r[24]&FlagWarm != 0,
		emits: c.Emitted(),
	}, nil
}

func observe(t testing.TB, h service.Handler, key uint64, v float64) reply {
	t.Helper()
	r, err := call(t, h, event(t, service.OpObserve, key, v))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConstantStreamNeverSpikes(t *testing.T) {
	h := newDetector(t, nil)
	for i := 0; i < 1000; i++ {
		r := observe(t, h, 1, 21.5)
		if r.spike || r.z != 0 || r.emits != 0 {
			t.Fatalf("value %d of a constant stream: %+v", i, r)
		}
		if r.warm != (i >= DefaultWindow/4) {
			t.Fatalf("value %d: warm=%v", i, r.warm)
		}
	}
	// A step out of a flat window has infinite z.
	r := observe(t, h, 1, 22)
	if !r.spike || !math.IsInf(r.z, 1) || r.std != 0 || r.emits != 1 {
		t.Errorf("step after a flat window: %+v", r)
	}
}

// A window of 64 values alternating 9 and 11 has mean 10 and population
// standard deviation 1, so a value v scores exactly v - 10.
func TestStepByHand(t *testing.T) {
	h := newDetector(t, nil)
	for i := 0; i < 64; i++ {
		observe(t, h, 7, float64(9+2*(i%2)))
	}
	r := observe(t, h, 7, 12) // z = 2: below the threshold of 3
	if r.z != 2 || r.mean != 10 || r.std != 1 || r.spike || !r.warm || r.emits != 0 {
		t.Errorf("12 against 9/11: %+v, want z=2 mean=10 std=1 no spike", r)
	}
	// The 12 replaced the first 9: the window now holds 32 elevens, 31
	// nines and one 12: mean (352+279+12)/64 = 10.046875.
	r = observe(t, h, 7, 14)
	wantMean := 643.0 / 64
	var m2 float64
	for _, v := range []struct{ x, n float64 }{{11, 32}, {9, 31}, {12, 1}} {
		m2 += v.n * (v.x - wantMean) * (v.x - wantMean)
	}
	wantStd := math.Sqrt(m2 / 64)
	wantZ := (14 - wantMean) / wantStd
	if math.Abs(r.mean-wantMean) > 1e-12 || math.Abs(r.std-wantStd) > 1e-12 || math.Abs(r.z-wantZ) > 1e-9 {
		t.Errorf("14: %+v, want z=%v mean=%v std=%v", r, wantZ, wantMean, wantStd)
	}
	if !r.spike || r.emits != 1 {
		t.Errorf("14 (z=%.3f) not flagged: %+v", wantZ, r)
	}
	// A dip is a spike too.
	if r = observe(t, h, 7, 5); !r.spike || r.z > -3 {
		t.Errorf("dip to 5: %+v", r)
	}
}

func TestColdWindowDoesNotFlag(t *testing.T) {
	h := newDetector(t, map[string]string{ConfigMin: "10", ConfigEmit: EmitAll})
	for i := 0; i < 9; i++ {
		observe(t, h, 1, float64(i%2))
	}
	r := observe(t, h, 1, 1000) // 9 values before it: cold
	if r.spike || r.warm || r.emits != 1 {
		t.Errorf("huge value on a cold window: %+v (emit=all)", r)
	}
	if r = observe(t, h, 1, 1e6); !r.spike || !r.warm {
		t.Errorf("huge value on a warm window: %+v", r)
	}
}

func TestStreamsAreIndependent(t *testing.T) {
	h := newDetector(t, map[string]string{ConfigWindow: "4", ConfigMin: "2"})
	observe(t, h, 1, 1)
	observe(t, h, 2, 100)
	observe(t, h, 1, 3)
	observe(t, h, 2, 100)
	r := observe(t, h, 1, 2) // window of stream 1: {1,3}: mean 2, std 1
	if r.mean != 2 || r.std != 1 || r.z != 0 {
		t.Errorf("stream 1 saw stream 2's values: %+v", r)
	}
	if h.Streams() != 2 {
		t.Errorf("%d streams", h.Streams())
	}
}

// The running mean and M2 agree with a from-scratch two-pass computation
// over the last min(n, W) values after every update.
func TestRunningStatsMatchFromScratch(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w := rapid.IntRange(2, 20).Draw(rt, "window")
		h := newDetector(rt, map[string]string{ConfigWindow: strconv.Itoa(w), ConfigMin: "2"})
		scale := rapid.SampledFrom([]float64{1e-6, 1, 1e3, 1e9}).Draw(rt, "scale")
		offset := rapid.SampledFrom([]float64{0, 1e4, -1e8}).Draw(rt, "offset")
		xs := rapid.SliceOfN(rapid.Float64Range(-1, 1), 1, 400).Draw(rt, "values")
		var hist []float64
		for i, u := range xs {
			x := offset + scale*u
			if i%17 == 5 { // runs of repeats exercise zero spread
				x = offset
			}
			hist = append(hist, x)
			var c service.Context
			c.Reset(0, 0, nil)
			if err := h.Handle(&c, event(rt, service.OpObserve, 3, x)); err != nil {
				rt.Fatal(err)
			}
			win := hist[max(0, len(hist)-w):]
			var mean, m2 float64
			for _, v := range win {
				mean += v
			}
			mean /= float64(len(win))
			for _, v := range win {
				m2 += (v - mean) * (v - mean)
			}
			st, _ := h.Window(3)
			if int(st.N) != len(win) {
				rt.Fatalf("value %d: n=%d want %d", i, st.N, len(win))
			}
			tolMean := 1e-12*math.Abs(offset) + 1e-9*scale
			if math.Abs(st.Mean-mean) > tolMean {
				rt.Fatalf("value %d: mean %v want %v (diff %g)", i, st.Mean, mean, st.Mean-mean)
			}
			// M2 is a sum of squared deviations: compare on the scale of
			// the squared magnitude of the window's values.
			mag := math.Abs(offset) + scale
			tolM2 := 1e-9*m2 + 1e-10*float64(w)*mag*mag
			if math.Abs(st.M2-m2) > tolM2 {
				rt.Fatalf("value %d: M2 %v want %v (diff %g, tol %g)", i, st.M2, m2, st.M2-m2, tolM2)
			}
		}
	})
}

func TestMalformed(t *testing.T) {
	h := newDetector(t, nil)
	servicetest.CheckMalformed(t, h, map[string][]byte{
		"short": event(t, service.OpObserve, 1, 1)[:10],
		"nan":   event(t, service.OpObserve, 1, math.NaN()),
		"inf":   event(t, service.OpObserve, 1, math.Inf(1)),
		"huge":  event(t, service.OpObserve, 1, -2e100),
		"query": event(t, service.OpQuery, 1, 1),
	})
	if h.Streams() != 0 {
		t.Error("malformed requests created state")
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []map[string]string{
		{ConfigWindow: "1"}, {ConfigWindow: "70000"}, {ConfigWindow: "x"},
		{ConfigThreshold: "0"}, {ConfigThreshold: "-1"}, {ConfigThreshold: "Inf"}, {ConfigThreshold: "NaN"},
		{ConfigMin: "1"}, {ConfigWindow: "8", ConfigMin: "9"},
		{ConfigEmit: "some"},
	} {
		if _, err := New(service.Env{Config: cfg, Store: collections.NewMemStore()}); err == nil {
			t.Errorf("config %v accepted", cfg)
		}
	}
}

func TestConcurrent(t *testing.T) {
	h := newDetector(t, nil)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := NewGenerator(int64(w), 0)
			var c service.Context
			for i := 0; i < 2000; i++ {
				req, k := g.Next(nil)
				c.Reset(0, k, nil)
				if err := h.Handle(&c, req); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Every window's summary must still match its ring.
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := 0; s < h.stats.Len(); s++ {
		st := h.stats.Get(s)
		if int(st.N) == h.w {
			mean, _ := exact(h.ring, s*h.w, h.w)
			if math.Abs(mean-st.Mean) > 1e-9 {
				t.Fatalf("slot %d: mean %v, ring says %v", s, st.Mean, mean)
			}
		}
	}
}

// The windows live only in reliable collections: an instance rebuilt from
// the mutation records scores the next readings as the original does.
func TestStateRebuildsFromRecords(t *testing.T) {
	g := NewGenerator(8, 0)
	h1, h2 := servicetest.Rebuilt(t, func(s collections.Store) (service.Handler, error) {
		return New(service.Env{Store: s})
	}, g, 20000)
	servicetest.Lockstep(t, g, 2000, h1, h2)
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultSize)
	// Score the readings of 100 thermostats once their windows are full.
	g := NewGenerator(5, 0).(*generator)
	g.streams = 100
	h := newDetector(t, nil)
	scored, spikes := 0, 0
	buf := make([]byte, 0, DefaultSize)
	for i := 0; i < 50_000; i++ {
		req, k := g.Next(buf)
		st, _ := h.Window(k)
		r, err := call(t, h, req)
		if err != nil {
			t.Fatal(err)
		}
		if st.N == DefaultWindow {
			scored++
			if r.spike {
				spikes++
			}
		}
	}
	// One reading in 200 is raised by 2-5 °C (at least 6σ of the noise);
	// a 3σ threshold also flags about 0.27 % of Gaussian noise, less on
	// windows whose spread a past disturbance has widened.
	rate := float64(spikes) / float64(scored)
	t.Logf("%d spikes in %d readings scored on full windows (%.2f %%)", spikes, scored, 100*rate)
	if scored < 20_000 || rate < 0.004 || rate > 0.010 {
		t.Errorf("spike rate %.4f over %d readings, expected 0.004-0.010", rate, scored)
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	h := newDetector(t, nil)
	req := event(t, service.OpObserve, 5, 1)
	if n := servicetest.HandleAllocs(t, h, &service.Context{}, 1000, [][]byte{req}); n != 0 {
		t.Errorf("%v allocations per value of a known stream", n)
	}
}

func FuzzHandle(f *testing.F) {
	g := NewGenerator(1, 64)
	for i := 0; i < 4; i++ {
		req, _ := g.Next(nil)
		f.Add(req)
	}
	f.Add(event(f, service.OpObserve, 1, 1e100))
	h := newDetector(f, map[string]string{ConfigWindow: "4", ConfigMin: "2", ConfigEmit: EmitAll})
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		if _, ok := servicetest.Reply(t, h, &c, req); !ok {
			return
		}
		r := c.Response()
		if len(r) != ReplyLen {
			t.Fatalf("reply of %d bytes", len(r))
		}
		for i := 8; i < 24; i += 8 {
			if v := math.Float64frombits(binary.LittleEndian.Uint64(r[i:])); math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("reply field at %d is %v", i, v)
			}
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	h := newDetector(b, nil)
	g := NewGenerator(1, DefaultSize)
	const n = 1 << 16
	reqs, keys := servicetest.Requests(g, n)
	var c service.Context
	for i := range reqs {
		c.Reset(0, keys[i], nil)
		_ = h.Handle(&c, reqs[i])
	}
	b.ReportAllocs()
	b.SetBytes(DefaultSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i & (n - 1)
		c.Reset(0, keys[j], nil)
		if err := h.Handle(&c, reqs[j]); err != nil {
			b.Fatal(err)
		}
	}
}
