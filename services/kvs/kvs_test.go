package kvs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func newTestStore(t tb, cfg map[string]string, hash func([]byte) uint64) *Store {
	t.Helper()
	s, err := newStore(service.Env{Instance: "t/kvs.0", Config: cfg, Store: collections.NewMemStore()}, hash)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func event(t tb, op service.Op, key, value string, flags uint64, exp int64) []byte {
	t.Helper()
	b, err := service.AppendEvent(nil, &service.Event{Op: op, Token: []byte(key), Text: []byte(value), Item: flags, Time: exp}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type reply struct {
	status Status
	flags  uint32
	value  string
	emits  int
}

func call(t tb, h service.Handler, now int64, req []byte) (reply, error) {
	t.Helper()
	var c service.Context
	c.Reset(now, 1, nil)
	if err := h.Handle(&c, req); err != nil {
		return reply{emits: c.Emitted()}, err
	}
	r := c.Response()
	if len(r) < ReplyHeaderLen {
		t.Fatalf("reply of %d bytes", len(r))
	}
	return reply{Status(r[0]), binary.LittleEndian.Uint32(r[1:]), string(r[ReplyHeaderLen:]), c.Emitted()}, nil
}

func do(t tb, h service.Handler, now int64, op service.Op, key, value string, flags uint64, exp int64) reply {
	t.Helper()
	r, err := call(t, h, now, event(t, op, key, value, flags, exp))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGetSetDeleteByHand(t *testing.T) {
	s := newTestStore(t, nil, KeyHash)
	steps := []struct {
		op    service.Op
		key   string
		value string
		flags uint64
		want  reply
	}{
		{service.OpGet, "k", "", 0, reply{StatusNotFound, 0, "", 1}},
		{service.OpSet, "k", "hello", 7, reply{StatusOK, 0, "", 1}},
		{service.OpGet, "k", "", 0, reply{StatusOK, 7, "hello", 1}},
		{service.OpSet, "k", "a much longer value than before", 8, reply{StatusOK, 0, "", 1}},
		{service.OpGet, "k", "", 0, reply{StatusOK, 8, "a much longer value than before", 1}},
		{service.OpSet, "k", "", 0, reply{StatusOK, 0, "", 1}}, // empty values are values
		{service.OpGet, "k", "", 0, reply{StatusOK, 0, "", 1}},
		{service.OpSet, "k2", "other", 0xffffffff, reply{StatusOK, 0, "", 1}},
		{service.OpDelete, "k", "", 0, reply{StatusOK, 0, "", 1}},
		{service.OpGet, "k", "", 0, reply{StatusNotFound, 0, "", 1}},
		{service.OpDelete, "k", "", 0, reply{StatusNotFound, 0, "", 1}},
		{service.OpGet, "k2", "", 0, reply{StatusOK, 0xffffffff, "other", 1}},
	}
	for i, st := range steps {
		if got := do(t, s, 0, st.op, st.key, st.value, st.flags, 0); got != st.want {
			t.Errorf("step %d: %+v, want %+v", i, got, st.want)
		}
	}
	if s.Len() != 1 {
		t.Errorf("%d items, want 1", s.Len())
	}
}

func TestExpiry(t *testing.T) {
	s := newTestStore(t, nil, KeyHash)
	const sec = int64(1e9)
	now := 1000 * sec
	do(t, s, now, service.OpSet, "a", "x", 0, now+10*sec)
	if r := do(t, s, now+10*sec-1, service.OpGet, "a", "", 0, 0); r.status != StatusOK {
		t.Errorf("1 ns before the deadline: %v", r.status)
	}
	if r := do(t, s, now+10*sec, service.OpGet, "a", "", 0, 0); r.status != StatusNotFound {
		t.Errorf("at the deadline: %v", r.status)
	}
	if s.Len() != 0 {
		t.Errorf("expired item still held after a get noticed it")
	}
	// A SET with a negative or passed deadline removes the key.
	do(t, s, now, service.OpSet, "b", "x", 0, 0)
	if r := do(t, s, now, service.OpSet, "b", "y", 0, -1); r.status != StatusOK {
		t.Errorf("set with passed deadline: %v", r.status)
	}
	if r := do(t, s, now, service.OpGet, "b", "", 0, 0); r.status != StatusNotFound {
		t.Errorf("after set with passed deadline: %v", r.status)
	}
	// Deleting an expired item reports it missing.
	do(t, s, now, service.OpSet, "c", "x", 0, now+sec)
	if r := do(t, s, now+2*sec, service.OpDelete, "c", "", 0, 0); r.status != StatusNotFound || s.Len() != 0 {
		t.Errorf("delete of expired item: %v, %d items", r.status, s.Len())
	}
}

func TestCapacity(t *testing.T) {
	s := newTestStore(t, map[string]string{ConfigCapacity: "2"}, KeyHash)
	do(t, s, 0, service.OpSet, "a", "1", 0, 0)
	do(t, s, 0, service.OpSet, "b", "2", 0, 0)
	if r := do(t, s, 0, service.OpSet, "c", "3", 0, 0); r.status != StatusOutOfMemory {
		t.Errorf("third key in a store of 2: %v", r.status)
	}
	if r := do(t, s, 0, service.OpSet, "a", "11", 0, 0); r.status != StatusOK {
		t.Errorf("overwrite in a full store: %v", r.status)
	}
	do(t, s, 0, service.OpDelete, "b", "", 0, 0)
	if r := do(t, s, 0, service.OpSet, "c", "3", 0, 0); r.status != StatusOK {
		t.Errorf("insert after delete: %v", r.status)
	}
}

// With every key hashing to one slot, keys queue in one probe run: the
// run holds maxProbe of them, the next is refused, and deletes in the
// middle keep every other key reachable.
func TestProbeWindow(t *testing.T) {
	s := newTestStore(t, nil, func([]byte) uint64 { return ^uint64(0) - 3 }) // the run wraps around
	for i := 0; i < maxProbe; i++ {
		if r := do(t, s, 0, service.OpSet, fmt.Sprint("k", i), fmt.Sprint(i), 0, 0); r.status != StatusOK {
			t.Fatalf("key %d: %v", i, r.status)
		}
	}
	if r := do(t, s, 0, service.OpSet, "one too many", "x", 0, 0); r.status != StatusNoSlot {
		t.Errorf("key %d in a run of %d: %v", maxProbe, maxProbe, r.status)
	}
	for _, i := range []int{0, 10, 63, 11} {
		do(t, s, 0, service.OpDelete, fmt.Sprint("k", i), "", 0, 0)
	}
	for i := 0; i < maxProbe; i++ {
		r := do(t, s, 0, service.OpGet, fmt.Sprint("k", i), "", 0, 0)
		deleted := i == 0 || i == 10 || i == 63 || i == 11
		if deleted != (r.status == StatusNotFound) || !deleted && r.value != fmt.Sprint(i) {
			t.Errorf("key %d after deletes: %+v", i, r)
		}
	}
}

// The table behaves as a map under any mix of operations, even with a
// hash that collides constantly.
func TestTableMatchesMap(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		bits := rapid.IntRange(0, 3).Draw(rt, "hashBits")
		weak := func(k []byte) uint64 { return KeyHash(k) & (1<<bits - 1) }
		s := newTestStore(rt, nil, weak)
		model := map[string]string{}
		keys := rapid.SliceOfNDistinct(rapid.StringMatching(`[a-z]{1,3}`), 1, 20, rapid.ID).Draw(rt, "keys")
		steps := rapid.IntRange(1, 200).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			k := rapid.SampledFrom(keys).Draw(rt, "key")
			switch rapid.IntRange(0, 2).Draw(rt, "op") {
			case 0:
				v := rapid.StringN(0, 8, -1).Draw(rt, "value")
				if r := do(rt, s, 0, service.OpSet, k, v, 0, 0); r.status != StatusOK {
					rt.Fatalf("set %q: %v", k, r.status)
				}
				model[k] = v
			case 1:
				r := do(rt, s, 0, service.OpDelete, k, "", 0, 0)
				_, had := model[k]
				if had != (r.status == StatusOK) {
					rt.Fatalf("delete %q: %v, model had it: %v", k, r.status, had)
				}
				delete(model, k)
			case 2:
				r := do(rt, s, 0, service.OpGet, k, "", 0, 0)
				v, had := model[k]
				if had != (r.status == StatusOK) || had && r.value != v {
					rt.Fatalf("get %q: %+v, model %q %v", k, r, v, had)
				}
			}
			if s.Len() != len(model) {
				rt.Fatalf("%d items, model %d", s.Len(), len(model))
			}
		}
		for k, v := range model {
			if r := do(rt, s, 0, service.OpGet, k, "", 0, 0); r.status != StatusOK || r.value != v {
				rt.Fatalf("final get %q: %+v, want %q", k, r, v)
			}
		}
	})
}

func TestMalformed(t *testing.T) {
	s := newTestStore(t, map[string]string{ConfigMaxValue: "8"}, KeyHash)
	servicetest.CheckMalformed(t, s, map[string][]byte{
		"short":      event(t, service.OpGet, "k", "", 0, 0)[:40],
		"empty key":  event(t, service.OpGet, "", "", 0, 0),
		"long key":   event(t, service.OpGet, strings.Repeat("k", MaxKeyLen+1), "", 0, 0),
		"big value":  event(t, service.OpSet, "k", "123456789", 0, 0),
		"wide flags": event(t, service.OpSet, "k", "v", 1<<32, 0),
		"op query":   event(t, service.OpQuery, "k", "", 0, 0),
	})
	if s.Len() != 0 {
		t.Error("malformed requests stored something")
	}
	if r := do(t, s, 0, service.OpSet, strings.Repeat("k", MaxKeyLen), "12345678", 0, 0); r.status != StatusOK {
		t.Errorf("largest key and value: %v", r.status)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []map[string]string{
		{ConfigMaxValue: "-1"}, {ConfigMaxValue: "70000"}, {ConfigMaxValue: "x"},
		{ConfigCapacity: "0"}, {ConfigCapacity: "lots"},
	} {
		if _, err := New(service.Env{Config: cfg, Store: collections.NewMemStore()}); err == nil {
			t.Errorf("config %v accepted", cfg)
		}
	}
}

func TestItemCodec(t *testing.T) {
	it := Item{Data: []byte("keyvalue"), KeyLen: 3, Flags: 9, Exp: -1}
	got, err := ItemCodec.Decode(ItemCodec.Append(nil, it))
	if err != nil || string(got.Key()) != "key" || string(got.Value()) != "value" || got.Flags != 9 || got.Exp != -1 {
		t.Errorf("round trip: %+v %v", got, err)
	}
	bad := ItemCodec.Append(nil, it)
	bad[12] = 200
	if _, err := ItemCodec.Decode(bad); err == nil {
		t.Error("key length beyond the data decoded")
	}
	if _, err := ItemCodec.Decode(bad[:12]); err == nil {
		t.Error("12-byte item decoded")
	}
}

func TestConcurrent(t *testing.T) {
	s := newTestStore(t, nil, KeyHash)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c service.Context
			for i := 0; i < 500; i++ {
				k := fmt.Sprintf("w%d-%d", w, i%50)
				for _, req := range [][]byte{
					event(t, service.OpSet, k, k, uint64(i), 0),
					event(t, service.OpGet, k, "", 0, 0),
				} {
					c.Reset(0, 0, nil)
					if err := s.Handle(&c, req); err != nil {
						t.Error(err)
						return
					}
				}
				if got := string(c.Response()[ReplyHeaderLen:]); got != k {
					t.Errorf("get %s: %q", k, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s.Len() != 200 {
		t.Errorf("%d items, want 200", s.Len())
	}
}

// The items live only in the reliable map: an instance rebuilt from the
// mutation records answers a GET of every key as the original does.
func TestStateRebuildsFromRecords(t *testing.T) {
	h1, h2 := servicetest.Rebuilt(t, func(s collections.Store) (service.Handler, error) {
		return New(service.Env{Store: s})
	}, NewGenerator(2, 200), 30000)
	for k := uint64(0); k < genKeys; k++ {
		q := event(t, service.OpGet, string(appendKey(nil, k)), "", 0, 0)
		a, _ := call(t, h1, 0, q)
		b, _ := call(t, h2, 0, q)
		if a != b {
			t.Fatalf("key %d: original %+v, rebuilt %+v", k, a, b)
		}
	}
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultSize)
	g := NewGenerator(3, 0)
	ops := map[service.Op]int{}
	const n = 110_000
	for i := 0; i < n; i++ {
		a, ka := g.Next(nil)
		if len(a) != DefaultSize {
			t.Fatalf("request %d: %d bytes", i, len(a))
		}
		var ev service.Event
		if err := service.DecodeEvent(a, &ev); err != nil {
			t.Fatal(err)
		}
		if ka != KeyHash(ev.Token) || len(ev.Token) != 16 {
			t.Fatalf("request %d: key %q routed by %x", i, ev.Token, ka)
		}
		if i < genKeys {
			if ev.Op != service.OpSet || string(ev.Token) != string(appendKey(nil, uint64(i))) {
				t.Fatalf("warm-up request %d: %v %q", i, ev.Op, ev.Token)
			}
			if len(a) != ev.EncodedLen() {
				t.Fatalf("set value does not fill the request: %d of %d bytes", ev.EncodedLen(), len(a))
			}
			continue
		}
		ops[ev.Op]++
	}
	m := float64(n - genKeys)
	if g, s, d := float64(ops[service.OpGet])/m, float64(ops[service.OpSet])/m, float64(ops[service.OpDelete])/m; g < 0.89 || g > 0.91 || s < 0.085 || s > 0.095 || d < 0.008 || d > 0.012 {
		t.Errorf("mix get %.3f set %.3f delete %.3f, want 0.90 0.09 0.01", g, s, d)
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	s := newTestStore(t, nil, KeyHash)
	set := event(t, service.OpSet, "obj:000000000042", strings.Repeat("v", 448), 1, 0)
	get := event(t, service.OpGet, "obj:000000000042", "", 0, 0)
	if n := servicetest.HandleAllocs(t, s, &service.Context{}, 2000, [][]byte{set, get}); n != 0 {
		t.Errorf("%v allocations per set or get of an existing key", n)
	}
}

func FuzzHandle(f *testing.F) {
	g := NewGenerator(1, 64)
	for i := 0; i < 3; i++ {
		req, _ := g.Next(nil)
		f.Add(req)
	}
	f.Add(event(f, service.OpDelete, "obj:000000000001", "", 0, 0))
	f.Add(event(f, service.OpGet, "obj:000000000001", "", 0, 0))
	s := newTestStore(f, map[string]string{ConfigCapacity: "1000"}, func(k []byte) uint64 { return KeyHash(k) & 7 })
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		c.Reset(1, 0, nil)
		if _, ok := servicetest.Reply(t, s, &c, req); !ok {
			return
		}
		if r := c.Response(); len(r) < ReplyHeaderLen || Status(r[0]) > StatusNoSlot {
			t.Fatalf("reply %x", r)
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	s, err := New(service.Env{Store: collections.NewMemStore()})
	if err != nil {
		b.Fatal(err)
	}
	g := NewGenerator(1, DefaultSize)
	const n = 1 << 16
	reqs, keys := servicetest.Requests(g, n)
	var c service.Context
	for i := range reqs {
		c.Reset(0, keys[i], nil)
		_ = s.Handle(&c, reqs[i])
	}
	b.ReportAllocs()
	b.SetBytes(DefaultSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := genKeys + i%(n-genKeys) // the steady mix, past the warm-up sets
		c.Reset(0, keys[j], nil)
		if err := s.Handle(&c, reqs[j]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestObserveKeepsLatestReading checks the data-hub use: stream events are
// stored under their stream key, the latest wins, and a GET by that key
// returns item, value and time.
func TestObserveKeepsLatestReading(t *testing.T) {
	h, err := Descriptor.New(service.Env{Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := &service.Context{}
	for i, v := range []float64{20.5, 21.25} {
		req, _ := service.AppendEvent(nil, &service.Event{Op: service.OpObserve, Key: 77, Item: 3, Value: v, Time: int64(i + 1), Token: bytes.Repeat([]byte("j"), 300)}, 512)
		ctx.Reset(0, 77, nil)
		if err := h.Handle(ctx, req); err != nil {
			t.Fatal(err)
		}
		if ctx.Emitted() != 1 {
			t.Fatalf("observe emitted %d messages, want 1", ctx.Emitted())
		}
	}
	key := binary.LittleEndian.AppendUint64(nil, 77)
	req, _ := service.AppendEvent(nil, &service.Event{Op: service.OpGet, Token: key}, 0)
	ctx.Reset(0, 77, nil)
	if err := h.Handle(ctx, req); err != nil {
		t.Fatal(err)
	}
	r := ctx.Response()
	if len(r) != ReplyHeaderLen+24 || r[0] != byte(StatusOK) {
		t.Fatalf("GET reply %x", r)
	}
	v := r[ReplyHeaderLen:]
	if binary.LittleEndian.Uint64(v) != 3 || math.Float64frombits(binary.LittleEndian.Uint64(v[8:])) != 21.25 || binary.LittleEndian.Uint64(v[16:]) != 2 {
		t.Fatalf("stored reading %x, want item 3, value 21.25, time 2", v)
	}
}
