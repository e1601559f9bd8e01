package ddos

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
	"pgregory.net/rapid"
)

func newHandler(t testing.TB, conf map[string]string, store collections.Store) *Handler {
	t.Helper()
	if store == nil {
		store = collections.NewMemStore()
	}
	h, err := Descriptor.New(service.Env{Config: conf, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

// pkt returns a minimal valid UDP packet from src.
func pkt(src uint32) []byte {
	b := make([]byte, 28)
	packet.PutIPv4(b, &packet.IPv4{TotalLen: 28, TTL: 64, Protocol: packet.ProtoUDP, Src: src, Dst: 0x08080808})
	packet.PutUDP(b[20:], &packet.UDP{SrcPort: 1, DstPort: 2, Length: 8})
	return b
}

func send(t testing.TB, h *Handler, c *service.Context, p []byte, now int64) {
	t.Helper()
	c.Reset(now, 0, nil)
	if err := h.Handle(c, p); err != nil {
		t.Fatal(err)
	}
}

// scratchEntropy computes the entropy of a multiset from scratch.
func scratchEntropy(window []uint32) (h float64, distinct int) {
	counts := map[uint32]int{}
	for _, a := range window {
		counts[a]++
	}
	n := float64(len(window))
	for _, c := range counts {
		p := float64(c) / n
		h -= p * math.Log2(p)
	}
	return h, len(counts)
}

// TestGenerator checks the descriptor's generator, the one load generation
// uses, against the contract every service generator keeps.
func TestGenerator(t *testing.T) { servicetest.CheckGenerator(t, Descriptor, packet.DefaultSize) }

// TestIncrementalEqualsScratch is the property test: after every packet
// the incrementally kept entropy equals a from-scratch computation over
// the window, and the fixed-point sum equals the sum of its terms exactly.
func TestIncrementalEqualsScratch(t *testing.T) {
	checked := 0
	defer func() { t.Logf("%d states checked", checked) }()
	rapid.Check(t, func(t *rapid.T) {
		w := rapid.IntRange(2, 64).Draw(t, "window")
		alphabet := rapid.IntRange(1, 20).Draw(t, "alphabet")
		srcs := rapid.SliceOfN(rapid.IntRange(0, alphabet-1), 100, 400).Draw(t, "sources")
		cfg, err := ParseConfig(map[string]string{"window": itoa(w), "min_packets": "2"})
		if err != nil {
			t.Fatal(err)
		}
		h, err := New(cfg, collections.NewMemStore())
		if err != nil {
			t.Fatal(err)
		}
		c := &service.Context{}
		var seen []uint32
		for _, s := range srcs {
			a := 0x0a000000 + uint32(s)
			if err := h.Handle(c, pkt(a)); err != nil {
				t.Fatal(err)
			}
			seen = append(seen, a)
			win := seen[max(0, len(seen)-w):]
			want, distinct := scratchEntropy(win)
			st := h.State()
			if st.Packets != len(win) || st.Distinct != distinct {
				t.Fatalf("window %d packets %d distinct, want %d and %d", st.Packets, st.Distinct, len(win), distinct)
			}
			if math.Abs(st.Entropy-want) > 1e-6 {
				t.Fatalf("incremental entropy %.9f, from scratch %.9f", st.Entropy, want)
			}
			var sum uint64
			h.counts.Range(func(_ uint32, c uint64) bool { sum += h.nlogn[c]; return true })
			checked++
			if sum != h.meta.Get(metaSum) {
				t.Fatalf("fixed-point sum %d, recomputed %d", h.meta.Get(metaSum), sum)
			}
		}
	})
}

func TestUniformNoAlarm(t *testing.T) {
	h := newHandler(t, nil, nil)
	g := Descriptor.NewGenerator(1, 64)
	c := &service.Context{}
	for range 50000 {
		p, _ := g.Next(nil)
		send(t, h, c, p, 0)
		if c.Response()[0] != 0 {
			t.Fatalf("alarm on uniform traffic: %+v", h.State())
		}
	}
	st := h.State()
	if st.Alarms != 0 || st.Normalised < 0.9 {
		t.Fatalf("uniform traffic: %+v", st)
	}
	t.Logf("uniform: %+v", st)
}

// TestFloodRaisesAlarm: background traffic from 2000 sources, then a
// flood where 3 sources send 90% of the packets: the alarm must be raised
// within one window, and clear within one window of the flood's end.
func TestFloodRaisesAlarm(t *testing.T) {
	for _, norm := range []string{NormDistinct, NormWindow} {
		h := newHandler(t, map[string]string{"normalise": norm}, nil)
		rng := rand.New(rand.NewPCG(1, 2))
		c := &service.Context{}
		background := func() uint32 { return 0x0b000000 + uint32(rng.IntN(2000)) }
		for range 3 * DefaultWindow {
			send(t, h, c, pkt(background()), 0)
		}
		if st := h.State(); st.Alarm {
			t.Fatalf("%s: alarm before the flood: %+v", norm, st)
		}
		raisedAfter := -1
		for i := range DefaultWindow {
			src := background()
			if rng.Float64() < 0.9 {
				src = 0xc6336400 + uint32(rng.IntN(3))
			}
			send(t, h, c, pkt(src), 0)
			if c.Response()[0] == 1 && raisedAfter < 0 {
				raisedAfter = i + 1
			}
		}
		if raisedAfter < 0 {
			t.Fatalf("%s: no alarm after a window of flood: %+v", norm, h.State())
		}
		t.Logf("%s: alarm after %d flood packets (window %d): %+v", norm, raisedAfter, DefaultWindow, h.State())
		cleared := false
		for range DefaultWindow {
			send(t, h, c, pkt(background()), 0)
			cleared = c.Response()[0] == 0
		}
		if !cleared || h.State().Alarms != 1 {
			t.Fatalf("%s: alarm not cleared one window after the flood: %+v", norm, h.State())
		}
	}
}

// TestTimeWindow: with window_ms the window holds the packets of the last
// window_ms, however many.
func TestTimeWindow(t *testing.T) {
	h := newHandler(t, map[string]string{"window_ms": "100", "window": "10000", "min_packets": "50"}, nil)
	c := &service.Context{}
	const ms = int64(1e6)
	for i := range 1000 {
		send(t, h, c, pkt(0x0a000000+uint32(i)), int64(i)*ms/10) // 10 packets per ms
	}
	// At t = 99.9 ms the window holds the packets after -0.1 ms... all
	// but those at or before now-100ms.
	if st := h.State(); st.Packets != 1000 {
		t.Fatalf("%d packets in a 100 ms window of 100 ms of traffic", st.Packets)
	}
	send(t, h, c, pkt(1), 150*ms)
	// Packets at or before 50 ms have expired: those at 50.1..99.9 ms
	// remain (499) plus the new one.
	if st := h.State(); st.Packets != 500 {
		t.Fatalf("%d packets after 50 ms more, want 500", st.Packets)
	}
	for i := range 2000 {
		send(t, h, c, pkt(7), 150*ms+int64(i)) // a single-source burst: 80% of the window
	}
	if st := h.State(); !st.Alarm {
		t.Fatalf("no alarm for a single-source burst: %+v", st)
	}
	send(t, h, c, pkt(8), 1000*ms)
	if st := h.State(); st.Packets != 1 || st.Alarm {
		t.Fatalf("after a quiet second: %+v", st)
	}
}

// TestMigration rebuilds an instance from its collections' snapshots: the
// state and the reactions to further packets are identical.
func TestMigration(t *testing.T) {
	src := collections.NewMemStore()
	a := newHandler(t, map[string]string{"window": "512"}, src)
	rng := rand.New(rand.NewPCG(3, 4))
	c := &service.Context{}
	for range 3000 {
		send(t, a, c, pkt(uint32(rng.IntN(300))), 0)
	}
	dst := collections.NewMemStore()
	b := newHandler(t, map[string]string{"window": "512"}, dst)
	byName := map[string]collections.Collection{}
	for _, col := range dst.Collections() {
		byName[col.Name()] = col
	}
	for _, col := range src.Collections() {
		to := byName[col.Name()]
		to.Clear()
		if err := col.Snapshot(func(rec []byte) error { return to.Apply(append([]byte(nil), rec...)) }); err != nil {
			t.Fatal(err)
		}
	}
	if a.State() != b.State() {
		t.Fatalf("state differs after migration: %+v vs %+v", a.State(), b.State())
	}
	for range 1000 {
		p := pkt(uint32(rng.IntN(5)))
		send(t, a, c, p, 0)
		ra := binary.LittleEndian.Uint64(c.Response()[8:])
		send(t, b, c, p, 0)
		if rb := binary.LittleEndian.Uint64(c.Response()[8:]); ra != rb {
			t.Fatal("migrated instance answers differently")
		}
	}
}

func TestMalformedAndConfig(t *testing.T) {
	h := newHandler(t, nil, nil)
	c := &service.Context{}
	for _, b := range [][]byte{nil, {0x45}, pkt(1)[:19], append([]byte{0x65}, pkt(1)[1:]...)} {
		if err := h.Handle(c, b); !errors.Is(err, service.ErrMalformed) {
			t.Errorf("%x: %v", b, err)
		}
	}
	if h.State().Packets != 0 {
		t.Fatal("malformed packet entered the window")
	}
	for _, m := range []map[string]string{{"window": "1"}, {"window": "99999999"}, {"window_ms": "-1"},
		{"threshold": "1"}, {"threshold": "0"}, {"normalise": "bits"}, {"min_packets": "1"}, {"window": "10", "min_packets": "11"}} {
		if _, err := ParseConfig(m); err == nil {
			t.Errorf("config %v accepted", m)
		}
	}
	if _, err := Descriptor.New(service.Env{}); err == nil {
		t.Error("New without a store succeeded")
	}
}

func TestConcurrent(t *testing.T) {
	h := newHandler(t, map[string]string{"window": "256"}, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &service.Context{}
			for i := range 3000 {
				send(t, h, c, pkt(uint32(w*1000+i%50)), 0)
			}
		}()
	}
	wg.Wait()
	st := h.State()
	var sum uint64
	h.counts.Range(func(_ uint32, c uint64) bool { sum += c; return true })
	if st.Packets != 256 || sum != 256 {
		t.Fatalf("window %d packets, counts sum %d, want 256", st.Packets, sum)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func BenchmarkHandle(b *testing.B) {
	h, err := Descriptor.New(service.Env{Store: collections.NewMemStore()})
	if err != nil {
		b.Fatal(err)
	}
	g := Descriptor.NewGenerator(1, packet.DefaultSize)
	reqs, keys := servicetest.Requests(g, 4096)
	c := &service.Context{Scratch: make([]byte, 0, 64<<10)}
	b.SetBytes(packet.DefaultSize)
	b.ReportAllocs()
	// Thread CPU time beside wall time: the fair figure on a shared machine.
	cpu := servicetest.StartCPU(b)
	i := 0
	for b.Loop() {
		c.Reset(int64(i), keys[i&4095], nil)
		if err := h.Handle(c, reqs[i&4095]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu.Stop(b, 0)
}
