package sql

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

var _ service.Closer = (*DB)(nil)

func newDB(t testing.TB, cfg map[string]string) *DB {
	t.Helper()
	h, err := New(service.Env{Instance: "t/sql.0", Config: cfg, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	db := h.(*DB)
	t.Cleanup(func() { db.Close() })
	return db
}

func event(t testing.TB, op service.Op, sensor, metric uint64, tm int64, v float64) []byte {
	t.Helper()
	b, err := service.AppendEvent(nil, &service.Event{Op: op, Key: sensor, Item: metric, Time: tm, Value: v}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(t testing.TB, h service.Handler, req []byte) ([]byte, int, error) {
	t.Helper()
	var c service.Context
	c.Reset(0, 1, nil)
	err := h.Handle(&c, req)
	return append([]byte(nil), c.Response()...), c.Emitted(), err
}

func query(t testing.TB, h service.Handler, sensor, metric uint64, to int64, window float64) Aggregate {
	t.Helper()
	r, emits, err := call(t, h, event(t, service.OpQuery, sensor, metric, to, window))
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != QueryReplyLen || emits != 0 {
		t.Fatalf("query reply of %d bytes, %d emits", len(r), emits)
	}
	f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(r[i:])) }
	return Aggregate{Count: int64(binary.LittleEndian.Uint64(r)), Avg: f(8), Min: f(16), Max: f(24)}
}

const s = int64(1e9)

func TestInsertAndAggregateByHand(t *testing.T) {
	db := newDB(t, nil)
	rows := []struct {
		sensor, metric uint64
		t              int64
		v              float64
	}{
		{1, 1, 10 * s, 1}, {1, 1, 20 * s, 2}, {1, 1, 30 * s, 3}, {1, 1, 40 * s, 10},
		{1, 2, 30 * s, 100},       // another metric of the same sensor
		{2, 1, 30 * s, -50},       // another sensor
		{1<<63 + 5, 1, 30 * s, 7}, // ids beyond int64 are stored by their bits
	}
	for i, r := range rows {
		reply, emits, err := call(t, db, event(t, service.OpObserve, r.sensor, r.metric, r.t, r.v))
		if err != nil {
			t.Fatal(err)
		}
		if id := binary.LittleEndian.Uint64(reply); len(reply) != InsertReplyLen || id != uint64(i+1) || emits != 1 {
			t.Fatalf("insert %d: reply %x, %d emits", i, reply, emits)
		}
	}
	// Sensor 1, temperature, t in [15 s, 40 s]: 2, 3, 10.
	if a := query(t, db, 1, 1, 40*s, 25); a.Count != 3 || a.Avg != 5 || a.Min != 2 || a.Max != 10 {
		t.Errorf("[15 s, 40 s]: %+v, want 3 readings, avg 5, min 2, max 10", a)
	}
	// Both ends are inclusive: [10 s, 40 s] holds all four.
	if a := query(t, db, 1, 1, 40*s, 30); a.Count != 4 || a.Avg != 4 || a.Min != 1 || a.Max != 10 {
		t.Errorf("[10 s, 40 s]: %+v", a)
	}
	if a := query(t, db, 1, 2, 40*s, 30); a.Count != 1 || a.Avg != 100 {
		t.Errorf("metric 2: %+v", a)
	}
	if a := query(t, db, 2, 1, 40*s, 30); a.Count != 1 || a.Min != -50 {
		t.Errorf("sensor 2: %+v", a)
	}
	if a := query(t, db, 1<<63+5, 1, 30*s, 0); a.Count != 1 || a.Max != 7 {
		t.Errorf("sensor 2^63+5 at exactly 30 s: %+v", a)
	}
	if a := query(t, db, 1, 1, 9*s, 5); a.Count != 0 || !math.IsNaN(a.Avg) || !math.IsNaN(a.Min) || !math.IsNaN(a.Max) {
		t.Errorf("empty range: %+v", a)
	}
	if v, ok, err := db.Point(1, 1, 30*s); err != nil || !ok || v != 3 {
		t.Errorf("point select: %v %v %v", v, ok, err)
	}
	if _, ok, err := db.Point(1, 1, 31*s); err != nil || ok {
		t.Errorf("point select of a missing row: %v %v", ok, err)
	}
}

// Random readings and windows: the database agrees with a computation in
// Go.
func TestAggregatesMatchGo(t *testing.T) {
	const seed = 5
	rng := rand.New(rand.NewPCG(seed, 0))
	db := newDB(t, nil)
	type rd struct {
		sensor, metric uint64
		t              int64
		v              float64
	}
	var all []rd
	for i := 0; i < 3000; i++ {
		r := rd{rng.Uint64N(5), 1 + rng.Uint64N(2), rng.Int64N(1000) * s, math.Round(rng.NormFloat64()*1e4) / 100}
		all = append(all, r)
		if _, err := db.Insert(int64(r.sensor), int64(r.metric), r.t, r.v); err != nil {
			t.Fatal(err)
		}
	}
	for q := 0; q < 200; q++ {
		sensor, metric := rng.Uint64N(5), 1+rng.Uint64N(2)
		to, win := rng.Int64N(1100)*s, float64(rng.IntN(400))
		want := Aggregate{Min: math.Inf(1), Max: math.Inf(-1)}
		var sum float64
		for _, r := range all {
			if r.sensor == sensor && r.metric == metric && r.t >= to-int64(win)*s && r.t <= to {
				want.Count++
				sum += r.v
				want.Min, want.Max = min(want.Min, r.v), max(want.Max, r.v)
			}
		}
		got := query(t, db, sensor, metric, to, win)
		if got.Count != want.Count {
			t.Fatalf("seed %d query %d: count %d, want %d", seed, q, got.Count, want.Count)
		}
		if want.Count > 0 && (math.Abs(got.Avg-sum/float64(want.Count)) > 1e-9 || got.Min != want.Min || got.Max != want.Max) {
			t.Fatalf("seed %d query %d: %+v, want avg %v min %v max %v", seed, q, got, sum/float64(want.Count), want.Min, want.Max)
		}
	}
}

func TestPrune(t *testing.T) {
	db := newDB(t, map[string]string{ConfigMaxRows: "100"})
	count := func() int64 {
		n, err := db.Rows()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := 1; i <= 3000; i++ {
		if _, err := db.Insert(1, 1, int64(i)*s, float64(i)); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 1023:
			if n := count(); n != 1023 {
				t.Errorf("after %d inserts: %d rows", i, n)
			}
		case 1024, 2048:
			if n := count(); n != 100 {
				t.Errorf("after the prune at %d inserts: %d rows, want 100", i, n)
			}
		}
	}
	if n := count(); n != 100+3000-2048 {
		t.Errorf("after 3000 inserts: %d rows, want %d", n, 100+3000-2048)
	}
	// The newest readings survive.
	if a := query(t, db, 1, 1, 3000*s, 3000); a.Min != 2048-99 || a.Max != 3000 {
		t.Errorf("kept readings %v..%v, want %d..3000", a.Min, a.Max, 2048-99)
	}
}

func TestMalformed(t *testing.T) {
	db := newDB(t, nil)
	servicetest.CheckMalformed(t, db, map[string][]byte{
		"short":           event(t, service.OpObserve, 1, 1, 0, 1)[:30],
		"nan value":       event(t, service.OpObserve, 1, 1, 0, math.NaN()),
		"inf value":       event(t, service.OpObserve, 1, 1, 0, math.Inf(1)),
		"negative window": event(t, service.OpQuery, 1, 1, 0, -1),
		"nan window":      event(t, service.OpQuery, 1, 1, 0, math.NaN()),
		"huge window":     event(t, service.OpQuery, 1, 1, 0, 1e300),
		"window past ns":  event(t, service.OpQuery, 1, 1, 0, 9.3e9),
		"get":             event(t, service.OpGet, 1, 1, 0, 1),
	})
	if n, _ := db.Rows(); n != 0 {
		t.Errorf("malformed requests stored %d rows", n)
	}
	// The widest window reaches back to the start of time.
	if _, _, err := call(t, db, event(t, service.OpQuery, 1, 1, math.MinInt64+5, 9e9)); err != nil {
		t.Errorf("window below MinInt64: %v", err)
	}
}

func TestClose(t *testing.T) {
	db := newDB(t, nil)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := call(t, db, event(t, service.OpObserve, 1, 1, 0, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("insert after Close: %v", err)
	}
	if _, _, err := call(t, db, event(t, service.OpQuery, 1, 1, 0, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("query after Close: %v", err)
	}
}

// Instances are separate databases even in one process.
func TestInstancesShareNothing(t *testing.T) {
	a, b := newDB(t, nil), newDB(t, nil)
	if _, err := a.Insert(1, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Rows(); n != 0 {
		t.Errorf("second instance sees %d rows of the first", n)
	}
}

func TestConfig(t *testing.T) {
	for _, v := range []string{"0", "-5", "many"} {
		if _, err := New(service.Env{Config: map[string]string{ConfigMaxRows: v}}); err == nil {
			t.Errorf("max_rows=%q accepted", v)
		}
	}
}

func TestConcurrent(t *testing.T) {
	db := newDB(t, nil)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c service.Context
			for i := 0; i < 250; i++ {
				c.Reset(0, 0, nil)
				if err := db.Handle(&c, event(t, service.OpObserve, uint64(w), 1, int64(i)*s, float64(i))); err != nil {
					t.Error(err)
					return
				}
				c.Reset(0, 0, nil)
				if err := db.Handle(&c, event(t, service.OpQuery, uint64(w), 1, int64(i)*s, 1e6)); err != nil {
					t.Error(err)
					return
				}
				if n := binary.LittleEndian.Uint64(c.Response()); n != uint64(i+1) {
					t.Errorf("worker %d: %d readings after %d inserts", w, n, i+1)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n, _ := db.Rows(); n != 1000 {
		t.Errorf("%d rows, want 1000", n)
	}
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultSize)
	db := newDB(t, nil)
	g := NewGenerator(4, 0)
	queries := 0
	for i := 0; i < 20000; i++ {
		a, _ := g.Next(nil)
		r, _, err := call(t, db, a)
		if err != nil {
			t.Fatal(err)
		}
		if len(r) == QueryReplyLen {
			queries++
		}
	}
	if queries < 800 || queries > 1200 {
		t.Errorf("%d queries in 20000 requests, want about 1000", queries)
	}
}

func FuzzHandle(f *testing.F) {
	g := NewGenerator(1, 64)
	for i := 0; i < 30; i++ {
		req, _ := g.Next(nil)
		f.Add(req)
	}
	db := newDB(f, map[string]string{ConfigMaxRows: "5000"})
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		if _, ok := servicetest.Reply(t, db, &c, req); !ok {
			return
		}
		if n := len(c.Response()); n != InsertReplyLen && n != QueryReplyLen {
			t.Fatalf("reply of %d bytes", n)
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	db := newDB(b, nil)
	g := NewGenerator(1, DefaultSize)
	const n = 1 << 16
	reqs, keys := servicetest.Requests(g, n)
	var c service.Context
	// Warm up with 200 s of readings so queries find data.
	for i := 0; i < 200_000; i++ {
		c.Reset(0, keys[i%n], nil)
		_ = db.Handle(&c, reqs[i%n])
	}
	b.ReportAllocs()
	b.SetBytes(DefaultSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i & (n - 1)
		c.Reset(0, keys[j], nil)
		if err := db.Handle(&c, reqs[j]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNew is the cost of an instance: open, schema, four prepares.
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h, err := New(service.Env{})
		if err != nil {
			b.Fatal(err)
		}
		h.(*DB).Close()
	}
}
