package topk

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

func newHandler(t testing.TB, cfg map[string]string) *Handler {
	t.Helper()
	h, err := New(service.Env{Config: cfg, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

func call(t testing.TB, h service.Handler, ev service.Event) (uint32, []Scored) {
	t.Helper()
	req, err := service.AppendEvent(nil, &ev, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c service.Context
	c.Reset(0, ev.Key, nil)
	if err := h.Handle(&c, req); err != nil {
		t.Fatalf("%+v: %v", ev, err)
	}
	if c.Emitted() != 1 {
		t.Errorf("%+v: emitted %d, want 1", ev, c.Emitted())
	}
	n, top, err := ParseReply(c.Response(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n, top
}

func observe(t testing.TB, h service.Handler, item uint64, score float64) (uint32, []Scored) {
	t.Helper()
	return call(t, h, service.Event{Op: service.OpObserve, Key: item, Item: item, Value: score})
}

func query(t testing.TB, h service.Handler) (uint32, []Scored) {
	t.Helper()
	return call(t, h, service.Event{Op: service.OpQuery})
}

// TestHandChecked walks a window of 4 through evictions, ranking the top 2.
func TestHandChecked(t *testing.T) {
	h := newHandler(t, map[string]string{"window": "4", "k": "2"})
	steps := []struct {
		item     uint64
		score    float64
		distinct uint32
		top      []Scored
		why      string
	}{
		{1, 5, 1, []Scored{{1, 5}}, "window [1]"},
		{2, 3, 2, []Scored{{1, 5}, {2, 3}}, "window [1 2]"},
		{3, 7, 3, []Scored{{3, 7}, {1, 5}}, "window [1 2 3]"},
		{1, 2, 3, []Scored{{3, 7}, {2, 3}}, "window [1 2 3 1]: item 1's latest score is 2"},
		{4, 3, 4, []Scored{{3, 7}, {2, 3}}, "window [2 3 1 4]: the first 1 leaves, the second stays; 2 and 4 tie at 3, 2 has the lower id"},
		{5, 1, 4, []Scored{{3, 7}, {4, 3}}, "window [3 1 4 5]: 2 leaves"},
		{6, 0, 4, []Scored{{4, 3}, {1, 2}}, "window [1 4 5 6]: 3 leaves"},
		{7, -1, 4, []Scored{{4, 3}, {5, 1}}, "window [4 5 6 7]: 1 leaves"},
		{7, 9, 3, []Scored{{7, 9}, {5, 1}}, "window [5 6 7 7]: 4 leaves, 7 rescored"},
		{7, 8, 2, []Scored{{7, 8}, {6, 0}}, "window [6 7 7 7]: 5 leaves"},
		{7, 4, 1, []Scored{{7, 4}}, "window [7 7 7 7]: 6 leaves"},
	}
	for i, s := range steps {
		if n, top := observe(t, h, s.item, s.score); n != s.distinct || len(top) != 0 {
			t.Fatalf("step %d (%s): observe replied %d distinct, %v; want %d, no ranking", i, s.why, n, top, s.distinct)
		}
		n, top := query(t, h)
		if n != s.distinct || !slices.Equal(top, s.top) {
			t.Fatalf("step %d (%s): %d distinct, %v; want %d, %v", i, s.why, n, top, s.distinct, s.top)
		}
	}
	every := newHandler(t, map[string]string{"window": "4", "k": "2", "rank": "every"})
	for _, s := range steps {
		if n, top := observe(t, every, s.item, s.score); n != s.distinct || !slices.Equal(top, s.top) {
			t.Fatalf("rank=every (%s): %d, %v; want %d, %v", s.why, n, top, s.distinct, s.top)
		}
	}
}

// reference ranks the window naively: the last w events, each item's last
// score among them, everything sorted with sort.Slice.
func reference(events []Scored, w, k int) (int, []Scored) {
	window := events[max(0, len(events)-w):]
	latest := map[uint64]float64{}
	for _, e := range window {
		latest[e.Item] = e.Score
	}
	all := make([]Scored, 0, len(latest))
	for item, s := range latest {
		all = append(all, Scored{item, s})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Score != all[j].Score {
			return all[i].Score > all[j].Score
		}
		return all[i].Item < all[j].Item
	})
	return len(all), all[:min(k, len(all))]
}

func TestAgainstSortReference(t *testing.T) {
	const seed = 17
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for trial := range 40 {
		w, k := 1+rng.IntN(300), 1+rng.IntN(40)
		items := 1 + rng.IntN(2*w)
		h := newHandler(t, map[string]string{"window": fmt.Sprint(w), "k": fmt.Sprint(k)})
		var events []Scored
		for step := range 3 * w {
			e := Scored{uint64(rng.IntN(items)), float64(rng.IntN(20))} // many ties
			if rng.IntN(3) == 0 {
				e.Score = rng.NormFloat64() * 1e6
			}
			events = append(events, e)
			observe(t, h, e.Item, e.Score)
			if step%7 != 0 && step != 3*w-1 {
				continue
			}
			wantN, want := reference(events, w, k)
			n, got := query(t, h)
			if int(n) != wantN || !slices.Equal(got, want) {
				t.Fatalf("trial %d (w %d k %d) step %d: %d distinct %v, want %d %v", trial, w, k, step, n, got, wantN, want)
			}
		}
	}
}

func TestTopKAgainstSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	shapes := map[string]func(n int) []Scored{
		"random": func(n int) []Scored {
			s := make([]Scored, n)
			for i := range s {
				s[i] = Scored{uint64(rng.IntN(n + 1)), float64(rng.IntN(10))}
			}
			return s
		},
		"ascending": func(n int) []Scored {
			s := make([]Scored, n)
			for i := range s {
				s[i] = Scored{uint64(i), float64(i)}
			}
			return s
		},
		"descending": func(n int) []Scored {
			s := make([]Scored, n)
			for i := range s {
				s[i] = Scored{uint64(i), float64(-i)}
			}
			return s
		},
		"equal scores": func(n int) []Scored {
			s := make([]Scored, n)
			for i := range s {
				s[i] = Scored{uint64(n - i), 1}
			}
			return s
		},
		"organ pipe": func(n int) []Scored {
			s := make([]Scored, n)
			for i := range s {
				s[i] = Scored{uint64(i), float64(min(i, n-i))}
			}
			return s
		},
	}
	for name, shape := range shapes {
		for _, n := range []int{0, 1, 2, 5, 13, 14, 100, 1000, 5000} {
			for _, k := range []int{0, 1, 3, 10, 13, 50, n / 2, n, n + 1} {
				s := shape(n)
				want := slices.Clone(s)
				sort.Slice(want, func(i, j int) bool { return better(want[i], want[j]) })
				got := TopK(s, k)
				want = want[:max(0, min(k, n))]
				if !slices.Equal(got, want) {
					t.Fatalf("%s n=%d k=%d: got %v, want %v", name, n, k, got, want)
				}
			}
		}
	}
}

// TestTopKBudget forces the heapsort fallback and checks the result.
func TestTopKBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	s := make([]Scored, 3000)
	for i := range s {
		s[i] = Scored{uint64(i), float64(rng.IntN(100))}
	}
	want := slices.Clone(s)
	sort.Slice(want, func(i, j int) bool { return better(want[i], want[j]) })
	got := slices.Clone(s)
	quickSort(got, 0) // no budget: heapsort at once
	if !slices.Equal(got, want) {
		t.Fatal("heapsort fallback sorts wrongly")
	}
	got = slices.Clone(s)
	quickSort(got, 1)
	if !slices.Equal(got, want) {
		t.Fatal("quicksort with a small budget sorts wrongly")
	}
}

// TestSnapshotRestore moves a running instance's state into a fresh one
// through the collections' snapshots, as a migration does.
func TestSnapshotRestore(t *testing.T) {
	src, dst := collections.NewMemStore(), collections.NewMemStore()
	cfg := map[string]string{"window": "500", "k": "20"}
	a, err := New(service.Env{Store: src, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Lockstep(t, NewGenerator(1, 0), 3000, a)
	b, err := New(service.Env{Store: dst, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.CopySnapshots(t, src.Collections(), dst.Collections())
	na, ta := query(t, a)
	nb, tb := query(t, b)
	if na != nb || !slices.Equal(ta, tb) || len(ta) != 20 {
		t.Fatalf("restored: %d %v, original %d %v", nb, tb, na, ta)
	}
	// The window position came along too: evictions continue alike.
	servicetest.Lockstep(t, NewGenerator(2, 0), 2000, a, b)
}

// TestLogReplay rebuilds an instance from its mutation log, as a backup
// replica does, exercising the codecs on real records.
func TestLogReplay(t *testing.T) {
	src := servicetest.NewRecordingStore()
	cfg := map[string]string{"window": "300"}
	a, err := New(service.Env{Store: src, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Lockstep(t, NewGenerator(3, 0), 2000, a)
	b := newHandler(t, cfg)
	src.Replay(t, []collections.Collection{b.st.window, b.st.count, b.st.latest, b.st.ranked})
	servicetest.Lockstep(t, NewGenerator(4, 0), 1000, a, b)
}

func TestMalformed(t *testing.T) {
	h := newHandler(t, nil)
	ev := func(e service.Event) []byte {
		b, _ := service.AppendEvent(nil, &e, 0)
		return b
	}
	good := ev(service.Event{Item: 1, Value: 2})
	servicetest.CheckMalformed(t, h, map[string][]byte{
		"empty":     nil,
		"short":     good[:30],
		"version":   append([]byte{7}, good[1:]...),
		"op set":    ev(service.Event{Op: service.OpSet}),
		"NaN score": ev(service.Event{Item: 1, Value: math.NaN()}),
		"-Inf":      ev(service.Event{Item: 1, Value: math.Inf(-1)}),
	})
	if h.st.observed() != 0 {
		t.Error("a rejected request changed the window")
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(service.Env{}); err == nil {
		t.Error("New without a store succeeded")
	}
	for _, cfg := range []map[string]string{
		{"window": "0"}, {"window": "x"}, {"k": "0"}, {"k": "1001"}, {"rank": "sometimes"},
	} {
		if _, err := New(service.Env{Config: cfg, Store: collections.NewMemStore()}); err == nil {
			t.Errorf("config %v accepted", cfg)
		} else {
			t.Logf("%v: %v", cfg, err)
		}
	}
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultRequestSize)
	for _, size := range []int{0, 48, 512, 1500} {
		g := NewGenerator(42, size)
		queries := 0
		counts := map[uint64]float64{}
		for range 2000 {
			a, ka := g.Next(nil)
			var ev service.Event
			if err := service.DecodeEvent(a, &ev); err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			switch ev.Op {
			case service.OpQuery:
				queries++
			case service.OpObserve:
				counts[ev.Item]++
				if ev.Value != counts[ev.Item] || ev.Key != ev.Item || ka != mix.SplitMix64(ev.Item) {
					t.Fatalf("event %+v: score should be the running count %v", ev, counts[ev.Item])
				}
			default:
				t.Fatalf("op %d", ev.Op)
			}
		}
		if queries < 180 || queries > 320 {
			t.Errorf("%d queries in 2000, want about 250", queries)
		}
	}
}

func TestConcurrentHandle(t *testing.T) {
	h := newHandler(t, map[string]string{"window": "200", "rank": "every"})
	var wg sync.WaitGroup
	var observed atomic.Uint64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := NewGenerator(int64(w), 0)
			var c service.Context
			for range 1000 {
				req, _ := g.Next(nil)
				if req[1] == byte(service.OpObserve) {
					observed.Add(1)
				}
				c.Reset(0, 0, nil)
				if err := h.Handle(&c, req); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// The state must still be consistent: every ranked item points back
	// at its slot, and the window holds exactly the ranked items.
	st := h.st
	inWindow := map[uint64]bool{}
	for i := range st.window.Len() {
		inWindow[st.window.Get(i)] = true
	}
	if st.observed() != observed.Load() || len(inWindow) != st.ranked.Len() || st.latest.Len() != st.ranked.Len() {
		t.Fatalf("observed %d, %d distinct in window, %d ranked, %d latest", st.observed(), len(inWindow), st.ranked.Len(), st.latest.Len())
	}
	for i := range st.ranked.Len() {
		s := st.ranked.Get(i)
		if e, ok := st.latest.Get(s.Item); !ok || int(e.slot) != i || !inWindow[s.Item] {
			t.Fatalf("ranked[%d] = %+v, latest %+v %v", i, s, e, ok)
		}
	}
}

// TestHandleNoAllocs checks that handling the generator's mix, once the
// state is warm, allocates nothing: the ranking and its reply are built in
// the handler's buffers. The queries are counted, so that the reply path
// with entries is known to be among what was measured.
func TestHandleNoAllocs(t *testing.T) {
	h, err := New(service.Env{Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := servicetest.Requests(NewGenerator(5, 0), 4000)
	var c service.Context
	queries := 0
	for _, r := range reqs { // warm up: fill the state and the buffers
		c.Reset(0, 0, nil)
		if err := h.Handle(&c, r); err != nil {
			t.Fatal(err)
		}
		if service.Op(r[1]) == service.OpQuery {
			queries++
		}
	}
	if queries == 0 {
		t.Fatal("the generator's mix has no queries")
	}
	if allocs := servicetest.HandleAllocs(t, h, &c, 1000, reqs); allocs != 0 {
		t.Errorf("Handle allocates %v times per request", allocs)
	}
}

func FuzzHandle(f *testing.F) {
	h := newHandler(f, map[string]string{"window": "64", "rank": "every"})
	g := NewGenerator(9, 64)
	for range 8 {
		req, _ := g.Next(nil)
		f.Add(req)
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		if _, ok := servicetest.Reply(t, h, &c, req); !ok {
			return
		}
		n, top, err := ParseReply(c.Response(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if n > 64 || len(top) > min(int(n), DefaultK) || (n > 0 && len(top) == 0) {
			t.Fatalf("%d distinct, top %v", n, top)
		}
		for i := 1; i < len(top); i++ {
			if !better(top[i-1], top[i]) {
				t.Fatalf("ranking out of order: %v", top)
			}
		}
	})
}

// FuzzApply feeds arbitrary records to every collection, as a corrupted
// log would: the codecs must reject them, never panic.
func FuzzApply(f *testing.F) {
	f.Add(byte(2), []byte{1, 8, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3})
	f.Add(byte(3), []byte{4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Fuzz(func(t *testing.T, which byte, rec []byte) {
		st, err := newState(collections.NewMemStore(), 8)
		if err != nil {
			t.Fatal(err)
		}
		cs := []collections.Collection{st.window, st.count, st.latest, st.ranked}
		_ = cs[int(which)%len(cs)].Apply(rec)
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add(appendReply(nil, 3, []Scored{{1, 2}, {3, 4}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, top, err := ParseReply(b, nil)
		if err != nil {
			return
		}
		if got := appendReply(nil, int(n), top); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs: %x vs %x", got, b)
		}
	})
}

func benchmark(b *testing.B, cfg map[string]string, keep func(service.Op) bool) {
	h, err := New(service.Env{Store: collections.NewMemStore(), Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	g := NewGenerator(1, DefaultRequestSize)
	var reqs [][]byte
	var c service.Context
	for len(reqs) < 8192 {
		req, _ := g.Next(nil)
		var ev service.Event
		_ = service.DecodeEvent(req, &ev)
		if ev.Op == service.OpObserve { // fill the window
			_ = h.Handle(&c, req)
		}
		if keep(ev.Op) {
			reqs = append(reqs, req)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Reset(0, 0, nil)
		if err := h.Handle(&c, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandle runs the generator's mix (7 observations to 1 query)
// with the default configuration.
func BenchmarkHandle(b *testing.B) { benchmark(b, nil, func(service.Op) bool { return true }) }

// BenchmarkObserve adds scored items to a full window.
func BenchmarkObserve(b *testing.B) {
	benchmark(b, nil, func(op service.Op) bool { return op == service.OpObserve })
}

// BenchmarkRankEvery ranks the 1,024-item window on every request.
func BenchmarkRankEvery(b *testing.B) {
	benchmark(b, map[string]string{"rank": "every"}, func(service.Op) bool { return true })
}

func BenchmarkTopK(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	src := make([]Scored, 1024)
	for i := range src {
		src[i] = Scored{uint64(i), float64(rng.IntN(500))}
	}
	s := make([]Scored, len(src))
	b.ReportAllocs()
	for b.Loop() {
		copy(s, src)
		TopK(s, 10)
	}
}
