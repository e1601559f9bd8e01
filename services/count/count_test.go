package count

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

func newCounter(t testing.TB, cfg map[string]string) *Counter {
	t.Helper()
	h, err := New(service.Env{Instance: "t/count.0", Config: cfg, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Counter)
}

func event(t testing.TB, op service.Op, item uint64) []byte {
	t.Helper()
	b, err := service.AppendEvent(nil, &service.Event{Op: op, Item: item, Key: 7}, 64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call runs one request and returns the reply and the number of emits.
func call(t testing.TB, h service.Handler, req []byte) ([]byte, int, error) {
	t.Helper()
	var c service.Context
	c.Reset(0, 7, nil)
	err := h.Handle(&c, req)
	return append([]byte(nil), c.Response()...), c.Emitted(), err
}

func TestCountsByHand(t *testing.T) {
	h := newCounter(t, nil)
	// Stream a b a c a b: the counts after each event are 1 1 2 1 3 2 and
	// the first sighting of a, b and c is new.
	stream := []struct {
		item  uint64
		count uint64
		new   bool
	}{{1, 1, true}, {2, 1, true}, {1, 2, false}, {3, 1, true}, {1, 3, false}, {2, 2, false}}
	for i, s := range stream {
		r, emits, err := call(t, h, event(t, service.OpObserve, s.item))
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if len(r) != ObserveReplyLen {
			t.Fatalf("event %d: reply %d bytes, want %d", i, len(r), ObserveReplyLen)
		}
		if got := binary.LittleEndian.Uint64(r); got != s.count {
			t.Errorf("event %d (item %d): count %d, want %d", i, s.item, got, s.count)
		}
		if got := r[8]&FlagNew != 0; got != s.new {
			t.Errorf("event %d (item %d): new=%v, want %v", i, s.item, got, s.new)
		}
		if emits != 1 {
			t.Errorf("event %d: %d emits, want 1", i, emits)
		}
	}
	for _, q := range []struct {
		item  uint64
		count uint64
	}{{1, 3}, {2, 2}, {3, 1}, {4, 0}} {
		r, emits, err := call(t, h, event(t, service.OpQuery, q.item))
		if err != nil {
			t.Fatal(err)
		}
		if len(r) != QueryReplyLen {
			t.Fatalf("query reply %d bytes, want %d", len(r), QueryReplyLen)
		}
		if got := binary.LittleEndian.Uint64(r); got != q.count {
			t.Errorf("query %d: count %d, want %d", q.item, got, q.count)
		}
		if got := r[8]&FlagNew != 0; got != (q.count == 0) {
			t.Errorf("query %d: unknown flag %v", q.item, got)
		}
		if d := binary.LittleEndian.Uint64(r[9:]); d != 3 {
			t.Errorf("query %d: distinct %d, want 3", q.item, d)
		}
		if emits != 0 {
			t.Errorf("query emitted %d messages", emits)
		}
	}
	if n := h.BitsSet(); n < 1 || n > 3 {
		t.Errorf("%d bitmap bits set for 3 items", n)
	}
}

// With a 64-bit bitmap and 5,000 items nearly every bit collides, so the
// map must carry the counts alone. Compare with a plain map.
func TestBitmapCollisionsKeepCountsExact(t *testing.T) {
	const seed = 42
	rng := rand.New(rand.NewPCG(seed, 1))
	h := newCounter(t, map[string]string{ConfigBits: "6"})
	want := map[uint64]uint64{}
	for i := 0; i < 20_000; i++ {
		item := rng.Uint64N(5000)
		want[item]++
		r, _, err := call(t, h, event(t, service.OpObserve, item))
		if err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint64(r); got != want[item] {
			t.Fatalf("seed %d event %d item %d: count %d, want %d", seed, i, item, got, want[item])
		}
		if (r[8]&FlagNew != 0) != (want[item] == 1) {
			t.Fatalf("seed %d event %d item %d: wrong new flag", seed, i, item)
		}
	}
	if h.Distinct() != len(want) {
		t.Errorf("distinct %d, want %d", h.Distinct(), len(want))
	}
	if h.BitsSet() != 64 {
		t.Errorf("%d of 64 bits set after %d distinct items", h.BitsSet(), len(want))
	}
}

func TestMalformed(t *testing.T) {
	h := newCounter(t, nil)
	good := event(t, service.OpObserve, 1)
	badVersion := append([]byte(nil), good...)
	badVersion[0] = 9
	servicetest.CheckMalformed(t, h, map[string][]byte{
		"empty":       nil,
		"short":       good[:20],
		"version":     badVersion,
		"op set":      event(t, service.OpSet, 1),
		"op get":      event(t, service.OpGet, 1),
		"op delete":   event(t, service.OpDelete, 1),
		"op too high": append([]byte{1, 200}, good[2:]...),
	})
	if h.Distinct() != 0 {
		t.Errorf("malformed requests changed the state: %d items", h.Distinct())
	}
}

func TestConfig(t *testing.T) {
	for _, bad := range []string{"5", "33", "x", ""} {
		if _, err := New(service.Env{Config: map[string]string{ConfigBits: bad}, Store: collections.NewMemStore()}); err == nil {
			t.Errorf("bits=%q accepted", bad)
		}
	}
	if _, err := New(service.Env{}); err == nil {
		t.Error("nil store accepted")
	}
}

func TestConcurrentCounts(t *testing.T) {
	h := newCounter(t, nil)
	const workers, per = 4, 2000
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c service.Context
			req := event(t, service.OpObserve, 99)
			for i := 0; i < per; i++ {
				c.Reset(0, 0, nil)
				if err := h.Handle(&c, req); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	r, _, _ := call(t, h, event(t, service.OpQuery, 99))
	if got := binary.LittleEndian.Uint64(r); got != workers*per {
		t.Errorf("count %d after %d concurrent observations", got, workers*per)
	}
}

// The state lives only in collections: replaying the records into a fresh
// instance answers every query as the original does.
func TestStateRebuildsFromRecords(t *testing.T) {
	h1, h2 := servicetest.Rebuilt(t, func(s collections.Store) (service.Handler, error) {
		return New(service.Env{Store: s})
	}, NewGenerator(3, 128), 3000)
	g := NewGenerator(3, 128)
	for i := 0; i < 3000; i++ {
		req, _ := g.Next(nil)
		var ev service.Event
		if err := service.DecodeEvent(req, &ev); err != nil {
			t.Fatal(err)
		}
		q := event(t, service.OpQuery, ev.Item)
		r1, _, _ := call(t, h1, q)
		r2, _, _ := call(t, h2, q)
		if !bytes.Equal(r1, r2) {
			t.Fatalf("item %d: original %x, rebuilt %x", ev.Item, r1, r2)
		}
	}
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultSize)
	for _, size := range []int{0, 64, 512, 1500} {
		g := NewGenerator(9, size)
		items := map[uint64]int{}
		for i := 0; i < 1000; i++ {
			a, ka := g.Next(nil)
			var ev service.Event
			if err := service.DecodeEvent(a, &ev); err != nil {
				t.Fatal(err)
			}
			if ka != ev.Item || ev.Op != service.OpObserve {
				t.Fatalf("key %d for item %d, op %d", ka, ev.Item, ev.Op)
			}
			items[ev.Item]++
		}
		// Zipf: the most popular item takes a sizeable share.
		top := 0
		for _, n := range items {
			top = max(top, n)
		}
		if top < 50 {
			t.Errorf("size %d: most frequent item seen %d times in 1000: not skewed", size, top)
		}
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	h := newCounter(t, nil)
	req := event(t, service.OpObserve, 5)
	q := event(t, service.OpQuery, 5)
	if n := servicetest.HandleAllocs(t, h, &service.Context{}, 2000, [][]byte{req, q}); n != 0 {
		t.Errorf("%v allocations per observe or query of a known item", n)
	}
}

func FuzzHandle(f *testing.F) {
	g := NewGenerator(1, 64)
	for i := 0; i < 4; i++ {
		req, _ := g.Next(nil)
		f.Add(req)
	}
	f.Add(event(f, service.OpQuery, 1))
	f.Add(event(f, service.OpSet, 1))
	f.Add([]byte{1})
	h := newCounter(f, map[string]string{ConfigBits: "8"})
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		if _, ok := servicetest.Reply(t, h, &c, req); !ok {
			return
		}
		if n := len(c.Response()); n != ObserveReplyLen && n != QueryReplyLen {
			t.Fatalf("reply of %d bytes", n)
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	h := newCounter(b, nil)
	g := NewGenerator(1, DefaultSize)
	const n = 1 << 16
	reqs, keys := servicetest.Requests(g, n)
	var c service.Context
	// Warm up: one pass so the counted items exist, as in a running
	// instance; new items then are the Zipf tail, as they would be.
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
