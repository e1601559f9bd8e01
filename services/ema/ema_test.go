package ema

import (
	"encoding/binary"
	"math"
	"sync"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

func newEMA(t testing.TB, cfg map[string]string) *EMA {
	t.Helper()
	h, err := New(service.Env{Instance: "t/ema.0", Config: cfg, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*EMA)
}

func event(t testing.TB, op service.Op, key uint64, v float64, tm int64) []byte {
	t.Helper()
	b, err := service.AppendEvent(nil, &service.Event{Op: op, Key: key, Value: v, Time: tm}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(t testing.TB, h service.Handler, req []byte) (ema float64, n uint64, emits int, err error) {
	t.Helper()
	var c service.Context
	c.Reset(0, 1, nil)
	err = h.Handle(&c, req)
	if err != nil {
		return 0, 0, c.Emitted(), err
	}
	r := c.Response()
	if len(r) != ReplyLen {
		t.Fatalf("reply of %d bytes, want %d", len(r), ReplyLen)
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(r)), binary.LittleEndian.Uint64(r[8:]), c.Emitted(), nil
}

func TestPerEventByHand(t *testing.T) {
	h := newEMA(t, map[string]string{ConfigAlpha: "0.5"})
	// alpha 0.5: 10 -> 10; 20 -> 15; 0 -> 7.5; 40 -> 23.75. Stream 2 is
	// independent: 100 -> 100.
	steps := []struct {
		key  uint64
		x    float64
		want float64
		n    uint64
	}{{1, 10, 10, 1}, {1, 20, 15, 2}, {2, 100, 100, 1}, {1, 0, 7.5, 3}, {1, 40, 23.75, 4}}
	for i, s := range steps {
		got, n, emits, err := call(t, h, event(t, service.OpObserve, s.key, s.x, int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		if got != s.want || n != s.n || emits != 1 {
			t.Errorf("step %d: ema %v count %d emits %d, want %v %d 1", i, got, n, emits, s.want, s.n)
		}
	}
	got, n, emits, err := call(t, h, event(t, service.OpQuery, 1, 0, 0))
	if err != nil || got != 23.75 || n != 4 || emits != 0 {
		t.Errorf("query: %v %d emits %d err %v; want 23.75 4 0", got, n, emits, err)
	}
	got, n, _, _ = call(t, h, event(t, service.OpQuery, 3, 0, 0))
	if got != 0 || n != 0 {
		t.Errorf("query of unknown stream: %v %d", got, n)
	}
}

func TestDefaultAlpha(t *testing.T) {
	h := newEMA(t, nil)
	call(t, h, event(t, service.OpObserve, 1, 10, 0))
	// 10 + 0.1*(20-10) = 11
	if got, _, _, _ := call(t, h, event(t, service.OpObserve, 1, 20, 0)); math.Abs(got-11) > 1e-12 {
		t.Errorf("default alpha: %v, want 11", got)
	}
}

func TestTimeAwareByHand(t *testing.T) {
	h := newEMA(t, map[string]string{ConfigHalfLife: "1s"})
	const s = int64(1e9)
	steps := []struct {
		x    float64
		t    int64
		want float64
	}{
		{0, 0, 0},
		{100, 1 * s, 50},   // dt = 1 half-life: weight 1/2
		{100, 3 * s, 87.5}, // dt = 2 half-lives: weight 3/4: 50 + 0.75*50
		{0, 2 * s, 87.5},   // late: weight 0
		{0, 3 * s, 87.5},   // same time: weight 0
	}
	for i, st := range steps {
		got, n, _, err := call(t, h, event(t, service.OpObserve, 9, st.x, st.t))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-st.want) > 1e-12 || n != uint64(i+1) {
			t.Errorf("step %d: ema %v count %d, want %v %d", i, got, n, st.want, i+1)
		}
	}
}

func TestMalformed(t *testing.T) {
	h := newEMA(t, nil)
	servicetest.CheckMalformed(t, h, map[string][]byte{
		"short": event(t, service.OpObserve, 1, 1, 0)[:47],
		"nan":   event(t, service.OpObserve, 1, math.NaN(), 0),
		"inf":   event(t, service.OpObserve, 1, math.Inf(-1), 0),
		"set":   event(t, service.OpSet, 1, 1, 0),
	})
	if h.Streams() != 0 {
		t.Error("malformed requests created state")
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []map[string]string{
		{ConfigAlpha: "0"}, {ConfigAlpha: "1.5"}, {ConfigAlpha: "NaN"}, {ConfigAlpha: "x"},
		{ConfigHalfLife: "0s"}, {ConfigHalfLife: "-1s"}, {ConfigHalfLife: "soon"},
	} {
		if _, err := New(service.Env{Config: cfg, Store: collections.NewMemStore()}); err == nil {
			t.Errorf("config %v accepted", cfg)
		}
	}
}

func TestConcurrentStreams(t *testing.T) {
	h := newEMA(t, nil)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c service.Context
			req := event(t, service.OpObserve, 5, 3, 0)
			for i := 0; i < 1000; i++ {
				c.Reset(0, 0, nil)
				if err := h.Handle(&c, req); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, n, _, _ := call(t, h, event(t, service.OpQuery, 5, 0, 0))
	if n != 4000 || got != 3 {
		t.Errorf("after 4000 concurrent values of 3: ema %v count %d", got, n)
	}
}

func TestStateCodecRoundTrip(t *testing.T) {
	for _, s := range []State{{}, {EMA: -1.25, Count: 7, Last: -3}, {EMA: math.MaxFloat64, Count: math.MaxUint64, Last: math.MaxInt64}} {
		b := StateCodec.Append([]byte{0xff}, s)
		got, err := StateCodec.Decode(b[1:])
		if err != nil || got != s {
			t.Errorf("round trip of %+v: %+v, %v", s, got, err)
		}
	}
	if _, err := StateCodec.Decode(make([]byte, 23)); err == nil {
		t.Error("23-byte state decoded")
	}
}

// The averages live only in the reliable map: an instance rebuilt from the
// mutation records answers every stream's query as the original does.
func TestStateRebuildsFromRecords(t *testing.T) {
	h1, h2 := servicetest.Rebuilt(t, func(s collections.Store) (service.Handler, error) {
		return New(service.Env{Store: s})
	}, NewGenerator(4, 0), 5000)
	for k := uint64(0); k < genStreams; k += 7 {
		q := event(t, service.OpQuery, k, 0, 0)
		a, na, _, _ := call(t, h1, q)
		b, nb, _, _ := call(t, h2, q)
		if math.Float64bits(a) != math.Float64bits(b) || na != nb {
			t.Fatalf("stream %d: original %v/%d, rebuilt %v/%d", k, a, na, b, nb)
		}
	}
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultSize)
	g := NewGenerator(5, 256)
	var sum float64
	for i := 0; i < 1000; i++ {
		a, ka := g.Next(nil)
		var ev service.Event
		if err := service.DecodeEvent(a, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Key != ka || ev.Key >= genStreams {
			t.Fatalf("key %d routed as %d", ev.Key, ka)
		}
		sum += ev.Value
	}
	if mean := sum / 1000; mean < 40 || mean > 70 {
		t.Errorf("mean temperature %v outside the modelled 40..70", mean)
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	h := newEMA(t, nil)
	req := event(t, service.OpObserve, 5, 1, 0)
	if n := servicetest.HandleAllocs(t, h, &service.Context{}, 1000, [][]byte{req}); n != 0 {
		t.Errorf("%v allocations per update of a known stream", n)
	}
}

func FuzzHandle(f *testing.F) {
	g := NewGenerator(1, 64)
	for i := 0; i < 4; i++ {
		req, _ := g.Next(nil)
		f.Add(req)
	}
	f.Add(event(f, service.OpQuery, 1, 0, 0))
	f.Add(event(f, service.OpObserve, 1, math.NaN(), 0))
	h := newEMA(f, map[string]string{ConfigHalfLife: "1ms"})
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		if _, ok := servicetest.Reply(t, h, &c, req); !ok {
			return
		}
		r := c.Response()
		if len(r) != ReplyLen {
			t.Fatalf("reply of %d bytes", len(r))
		}
		if v := math.Float64frombits(binary.LittleEndian.Uint64(r)); math.IsNaN(v) {
			t.Fatalf("average became NaN")
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	h := newEMA(b, nil)
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

func TestExtremeValuesStayFinite(t *testing.T) {
	h := newEMA(t, map[string]string{ConfigAlpha: "0.3"})
	for i, x := range []float64{math.MaxFloat64, -math.MaxFloat64, math.MaxFloat64, math.SmallestNonzeroFloat64, -math.MaxFloat64} {
		got, _, _, err := call(t, h, event(t, service.OpObserve, 1, x, 0))
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(got) || math.IsInf(got, 0) {
			t.Fatalf("value %d (%g): average %v", i, x, got)
		}
	}
}
