package flowmon

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
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

// feed sends n packets of g through h and returns the true per-flow counts.
func feed(t testing.TB, h *Handler, g *packet.Generator, n int) map[packet.FiveTuple]uint64 {
	t.Helper()
	truth := map[packet.FiveTuple]uint64{}
	c := &service.Context{}
	buf := make([]byte, 0, 2048)
	for range n {
		p, key := g.Next(buf)
		c.Reset(0, key, nil)
		if err := h.Handle(c, p); err != nil {
			t.Fatal(err)
		}
		if c.Emitted() != 1 {
			t.Fatal("packet not forwarded")
		}
		ft, _ := packet.ParseFiveTuple(p)
		truth[ft]++
	}
	return truth
}

// TestGenerator checks the descriptor's generator, the one load generation
// uses, against the contract every service generator keeps.
func TestGenerator(t *testing.T) { servicetest.CheckGenerator(t, Descriptor, packet.DefaultSize) }

// TestErrorBound checks the count-min guarantee on skewed streams: no
// estimate is below the true count, and the share of flows whose estimate
// exceeds true + eps*N, eps = e/w, stays below delta = e^-d.
func TestErrorBound(t *testing.T) {
	const n = 30000
	// The wide sketch is the service's regime (the bound holds with room
	// to spare); the narrow ones bring the violation rate close to delta,
	// so a weak hash family would show.
	for _, sz := range []struct{ w, d int }{{512, 3}, {64, 2}, {32, 1}} {
		eps, delta := math.E/float64(sz.w), math.Exp(-float64(sz.d))
		for _, zipf := range []float64{0.8, 1.0, 1.3} {
			for _, cons := range []bool{false, true} {
				for seed := int64(1); seed <= 2; seed++ {
					conf := map[string]string{"width": itoa(sz.w), "depth": itoa(sz.d), "hash_seed": itoa(int(seed) + 6)}
					if cons {
						conf["conservative"] = "true"
					}
					h := newHandler(t, conf, nil)
					g := packet.NewGenerator(packet.GenConfig{Seed: seed, Size: 40, Flows: 10000, Zipf: zipf})
					truth := feed(t, h, g, n)
					bad, maxErr := 0, uint64(0)
					for ft, c := range truth {
						est := h.Estimate(ft)
						if est < c {
							t.Fatalf("zipf %.1f cons %v: flow %v estimated %d < true %d", zipf, cons, ft, est, c)
						}
						if float64(est-c) > eps*n {
							bad++
						}
						maxErr = max(maxErr, est-c)
					}
					frac := float64(bad) / float64(len(truth))
					if frac > delta {
						t.Errorf("w %d d %d zipf %.1f cons %v seed %d: %.4f of flows beyond eps*N=%.0f, bound delta=%.4f",
							sz.w, sz.d, zipf, cons, seed, frac, eps*n, delta)
					}
					if seed == 1 {
						t.Logf("w %4d d %d zipf %.1f conservative %-5v: %5d flows, %.4f beyond eps*N=%5.0f (delta %.4f), max error %d",
							sz.w, sz.d, zipf, cons, len(truth), frac, eps*n, delta, maxErr)
					}
				}
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestConservativeTighter: with the same hashes and stream, conservative
// update never estimates more than the plain sketch.
func TestConservativeTighter(t *testing.T) {
	plain := newHandler(t, map[string]string{"width": "256"}, nil)
	cons := newHandler(t, map[string]string{"width": "256", "conservative": "true"}, nil)
	truth := feed(t, plain, packet.NewGenerator(packet.GenConfig{Seed: 4, Size: 64, Flows: 5000, Zipf: 1}), 50000)
	feed(t, cons, packet.NewGenerator(packet.GenConfig{Seed: 4, Size: 64, Flows: 5000, Zipf: 1}), 50000)
	var sp, sc uint64
	for ft, c := range truth {
		p, q := plain.Estimate(ft), cons.Estimate(ft)
		if q > p || q < c {
			t.Fatalf("flow %v: true %d, plain %d, conservative %d", ft, c, p, q)
		}
		sp += p - c
		sc += q - c
	}
	t.Logf("total overestimate: plain %d, conservative %d", sp, sc)
	if sc >= sp {
		t.Error("conservative update did not reduce the error")
	}
}

func TestHeavyHitters(t *testing.T) {
	for _, zipf := range []float64{0.9, 1.2} {
		h := newHandler(t, map[string]string{"hh_threshold": "0.005"}, nil)
		g := packet.NewGenerator(packet.GenConfig{Seed: 5, Size: 64, Flows: 10000, Zipf: zipf})
		const n = 80000
		truth := feed(t, h, g, n)
		rep := h.Report()
		got := map[packet.FiveTuple]uint64{}
		for i, e := range rep {
			got[e.Flow] = e.Estimate
			if float64(e.Estimate) < 0.005*n {
				t.Fatalf("reported %v with estimate %d below the threshold", e.Flow, e.Estimate)
			}
			if i > 0 && rep[i-1].Estimate < e.Estimate {
				t.Fatal("report not sorted by estimate")
			}
		}
		heavy := 0
		for ft, c := range truth {
			if float64(c) >= 0.005*n {
				heavy++
				if _, ok := got[ft]; !ok {
					t.Fatalf("zipf %.1f: heavy flow %v (%d packets) missing from the report", zipf, ft, c)
				}
			}
		}
		if heavy == 0 {
			t.Fatal("the stream has no heavy hitters: the test checks nothing")
		}
		t.Logf("zipf %.1f: %d true heavy hitters, %d reported, %d candidates", zipf, heavy, len(rep), h.hh.Len())
	}
}

func TestReportRequest(t *testing.T) {
	h := newHandler(t, nil, nil)
	feed(t, h, NewGenerator(1, 100).(*packet.Generator), 5000)
	c := &service.Context{}
	c.Reset(0, 0, nil)
	if err := h.Handle(c, ReportRequest); err != nil {
		t.Fatal(err)
	}
	if c.Emitted() != 0 {
		t.Fatal("a report request was forwarded")
	}
	n, hh, err := DecodeReport(c.Response())
	if err != nil {
		t.Fatal(err)
	}
	if n != 5000 || !slices.Equal(hh, h.Report()) || len(hh) == 0 {
		t.Fatalf("report N=%d with %d entries, want 5000 and %v", n, len(hh), h.Report())
	}
	if _, _, err := DecodeReport(c.Response()[:20]); !errors.Is(err, service.ErrMalformed) {
		t.Fatalf("truncated report: %v", err)
	}
}

func TestBytesUnit(t *testing.T) {
	h := newHandler(t, map[string]string{"unit": "bytes"}, nil)
	feed(t, h, packet.NewGenerator(packet.GenConfig{Seed: 1, Size: 300}), 100)
	if h.Total() != 30000 {
		t.Fatalf("total %d bytes, want 30000", h.Total())
	}
}

// TestMigration moves the state through the collections' snapshot records
// into a new instance: its estimates and report equal the old ones, and it
// keeps counting from there.
func TestMigration(t *testing.T) {
	src := collections.NewMemStore()
	a := newHandler(t, nil, src)
	g := NewGenerator(3, 64).(*packet.Generator)
	truth := feed(t, a, g, 20000)

	dst := collections.NewMemStore()
	b := newHandler(t, nil, dst)
	byName := map[string]collections.Collection{}
	for _, c := range dst.Collections() {
		byName[c.Name()] = c
	}
	for _, c := range src.Collections() {
		to := byName[c.Name()]
		to.Clear()
		if err := c.Snapshot(func(rec []byte) error { return to.Apply(append([]byte(nil), rec...)) }); err != nil {
			t.Fatal(err)
		}
	}
	if a.Total() != b.Total() || !slices.Equal(a.Report(), b.Report()) {
		t.Fatal("state differs after migration")
	}
	for ft := range truth {
		if a.Estimate(ft) != b.Estimate(ft) {
			t.Fatalf("flow %v: %d before, %d after migration", ft, a.Estimate(ft), b.Estimate(ft))
		}
	}
	more := feed(t, b, g, 1000)
	for ft, c := range more {
		if b.Estimate(ft) < truth[ft]+c {
			t.Fatalf("flow %v under-counted after migration", ft)
		}
	}
}

func TestMalformed(t *testing.T) {
	h := newHandler(t, nil, nil)
	for _, b := range [][]byte{nil, []byte("repor"), {0x45, 0, 0, 20}, []byte("reportx")} {
		c := &service.Context{}
		if err := h.Handle(c, b); !errors.Is(err, service.ErrMalformed) {
			t.Errorf("%q: %v", b, err)
		}
	}
	if h.Total() != 0 {
		t.Fatal("a malformed packet was counted")
	}
	for _, m := range []map[string]string{{"width": "1000"}, {"depth": "0"}, {"depth": "17"}, {"hh_threshold": "0"},
		{"hh_threshold": "2"}, {"unit": "flows"}, {"conservative": "sometimes"}, {"hh_capacity": "0"}} {
		if _, err := ParseConfig(m); err == nil {
			t.Errorf("config %v accepted", m)
		}
	}
	if _, err := Descriptor.New(service.Env{}); err == nil {
		t.Error("New without a store succeeded")
	}
}

func TestConcurrent(t *testing.T) {
	h := newHandler(t, nil, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			feed(t, h, NewGenerator(int64(w), 64).(*packet.Generator), 5000)
		}()
	}
	wg.Wait()
	if h.Total() != 20000 {
		t.Fatalf("total %d, want 20000", h.Total())
	}
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
		c.Reset(0, keys[i&4095], nil)
		if err := h.Handle(c, reqs[i&4095]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu.Stop(b, 0)
}
