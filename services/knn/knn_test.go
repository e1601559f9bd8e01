package knn

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

func featureBytes(q []float32) []byte {
	var b []byte
	for _, x := range q {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// classify runs q through h and decodes the reply.
func classify(t testing.TB, h service.Handler, q []float32) Result {
	t.Helper()
	req, err := service.AppendEvent(nil, &service.Event{Features: featureBytes(q)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c service.Context
	c.Reset(0, 1, nil)
	if err := h.Handle(&c, req); err != nil {
		t.Fatalf("%v: %v", q, err)
	}
	if c.Emitted() != 1 {
		t.Errorf("%v: emitted %d messages, want 1", q, c.Emitted())
	}
	r, err := ParseReply(c.Response())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The hand-checked set, in two dimensions:
//
//	point  coordinates  label
//	0      (0, 0)       0
//	1      (1, 0)       0
//	2      (0, 2)       1
//	3      (3, 0)       1
//	4      (0, -3)      2
//	5      (5, 5)       2
//
// Squared distances from (0.5, 0): p0 0.25, p1 0.25, p2 0.25+4 = 4.25,
// p3 2.5^2 = 6.25, p4 0.25+9 = 9.25, p5 4.5^2+25 = 45.25.
// Squared distances from (1, 1.5): p0 1+2.25 = 3.25, p1 2.25, p2 1+0.25 = 1.25,
// p3 4+2.25 = 6.25, p4 1+20.25 = 21.25, p5 16+12.25 = 28.25.
func TestHandChecked(t *testing.T) {
	d, err := NewDataset(2, []float32{0, 0, 1, 0, 0, 2, 3, 0, 0, -3, 5, 5}, []uint16{0, 0, 1, 1, 2, 2})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		q    []float32
		k    int
		want Result
	}{
		// k=3: p0, p1 (0.25 each; p0 first, lower index), p2 (4.25):
		// labels 0 0 1, label 0 with 2 votes, k-th distance sqrt(4.25).
		{"majority", []float32{0.5, 0}, 3, Result{0, 2, float32(math.Sqrt(4.25)), 0}},
		// k=1 with p0 and p1 at the same distance: the lower index wins.
		{"equal distance", []float32{0.5, 0}, 1, Result{0, 1, 0.5, 0}},
		// k=3: p2 (1.25), p1 (2.25), p0 (3.25): labels 1 0 0 -> 0, 2 votes.
		{"outvoted nearest", []float32{1, 1.5}, 3, Result{0, 2, float32(math.Sqrt(3.25)), 2}},
		// k=2: p2 (label 1) and p1 (label 0) tie 1:1; p2 is nearer, so 1.
		{"vote tie", []float32{1, 1.5}, 2, Result{1, 1, 1.5, 2}},
		// k=6: every label has 2 votes; the nearest point (p2) decides.
		{"all tie", []float32{1, 1.5}, 6, Result{1, 2, float32(math.Sqrt(28.25)), 2}},
		// (10, 10): p5 25+25 = 50, p3 49+100 = 149, p2 100+64 = 164,
		// p1 81+100 = 181, p0 200, p4 100+169 = 269. k=3: p5 p3 p2,
		// labels 2 1 1 -> 1 with 2 votes, nearest p5.
		{"far", []float32{10, 10}, 3, Result{1, 2, float32(math.Sqrt(164)), 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHandler(d, tc.k)
			if err != nil {
				t.Fatal(err)
			}
			if got := classify(t, h, tc.q); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// sortEverything is the reference: the squared distance to every point,
// sorted by distance then index.
func sortEverything(d *Dataset, q []float32) []neighbour {
	all := make([]neighbour, d.Len())
	for i := range all {
		all[i] = neighbour{d.dist(d.Point(i), q), uint32(i)}
	}
	sort.Slice(all, func(i, j int) bool { return farther(all[j], all[i]) })
	return all
}

// referenceVote counts labels among nb (nearest first) and breaks ties by
// the nearest member, written independently of classify.
func referenceVote(d *Dataset, nb []neighbour) (uint16, uint16) {
	votes := map[uint16]int{}
	for _, x := range nb {
		votes[d.Label(int(x.idx))]++
	}
	best, bestVotes := uint16(0), -1
	for _, x := range nb {
		l := d.Label(int(x.idx))
		if votes[l] > bestVotes {
			best, bestVotes = l, votes[l]
		}
	}
	return best, uint16(bestVotes)
}

func TestAgainstSortEverything(t *testing.T) {
	const seed = 21
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for trial := range 300 {
		dims := []int{1, 2, 3, 5, 16, 16, 17, 33}[rng.IntN(8)]
		n := 1 + rng.IntN(400)
		labels := 1 + rng.IntN(6)
		m := newMixture(uint64(trial), dims, 1+rng.IntN(5), labels, rng.Float64())
		d := m.generate(uint64(trial), n)
		if trial%5 == 0 { // duplicate points: exercise equal distances
			for i := 1; i < n; i += 3 {
				copy(d.Point(i), d.Point(i-1))
			}
		}
		k := 1 + rng.IntN(min(n, MaxK))
		h, err := NewHandler(d, k)
		if err != nil {
			t.Fatal(err)
		}
		for range 10 {
			var q []float32
			if rng.IntN(4) == 0 {
				q = append(q, d.Point(rng.IntN(n))...) // a query on a data point
			} else {
				q, _ = m.draw(rng, nil)
			}
			ref := sortEverything(d, q)[:k]
			var buf [MaxK]neighbour
			got := d.nearest(q, k, buf[:0])
			for i := range ref {
				if got[i] != ref[i] {
					t.Fatalf("trial %d (n %d, dims %d, k %d): neighbour %d = %+v, want %+v", trial, n, dims, k, i, got[i], ref[i])
				}
			}
			label, votes := referenceVote(d, ref)
			want := Result{label, votes, float32(math.Sqrt(float64(ref[k-1].dist))), ref[0].idx}
			if r := classify(t, h, q); r != want {
				t.Fatalf("trial %d (n %d, dims %d, k %d): %+v, want %+v", trial, n, dims, k, r, want)
			}
		}
	}
}

func TestDistances(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, dims := range []int{1, 3, 4, 7, 16, 31, 100} {
		for range 100 {
			p, q := make([]float32, dims), make([]float32, dims)
			var want float64
			for i := range p {
				p[i], q[i] = float32(rng.NormFloat64()*10), float32(rng.NormFloat64()*10)
				x := float64(p[i]) - float64(q[i])
				want += x * x
			}
			got := sqDist(p, q)
			if dims == 16 {
				if g16 := sqDist16(p, q); g16 != got {
					t.Fatalf("sqDist16 %v != sqDist %v", g16, got)
				}
			}
			if math.Abs(float64(got)-want) > 1e-5*want {
				t.Fatalf("dims %d: %v, want %v", dims, got, want)
			}
		}
	}
}

func TestGeneratedDataset(t *testing.T) {
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	d := h.(*Handler).Dataset()
	if d.Len() != DefaultPoints || d.Dims() != DefaultDims || d.nlabel != DefaultLabels {
		t.Fatalf("dataset: %d points, %d dims, %d labels", d.Len(), d.Dims(), d.nlabel)
	}
	g := NewGenerator(1, 0)
	right, n := 0, 2000
	for range n {
		req, _ := g.Next(nil)
		var ev service.Event
		if err := service.DecodeEvent(req, &ev); err != nil {
			t.Fatal(err)
		}
		q := make([]float32, ev.NumFeatures())
		for i := range q {
			q[i] = ev.Feature(i)
		}
		if r := classify(t, h, q); uint64(r.Label) == ev.Item {
			right++
		}
	}
	// Clusters overlap (sigma 0.6 per coordinate, a radius of about 2.4 in
	// 16 dimensions, against centres about 3.3 apart), so some queries fall
	// nearer another label's blob: 96% are right with seed 1.
	acc := float64(right) / float64(n)
	t.Logf("accuracy %.3f on generated queries", acc)
	if acc < 0.93 {
		t.Errorf("accuracy %.3f below 0.93", acc)
	}
}

func TestConfig(t *testing.T) {
	h, err := New(service.Env{Config: map[string]string{"points": "100", "dims": "3", "k": "7", "labels": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	if d := h.(*Handler).Dataset(); d.Len() != 100 || d.Dims() != 3 {
		t.Errorf("dataset %d x %d", d.Len(), d.Dims())
	}
	if r := classify(t, h, []float32{0, 0, 0}); r.Votes < 4 || r.Label > 1 {
		t.Errorf("%+v: 7 voters over 2 labels need a majority of at least 4", r)
	}
	for _, cfg := range []map[string]string{
		{"k": "0"}, {"k": "65"}, {"points": "3", "k": "5"}, {"dims": "0"}, {"dims": "2000"},
		{"labels": "257"}, {"sigma": "-1"}, {"sigma": "x"}, {"seed": "y"},
	} {
		if _, err := New(service.Env{Config: cfg}); err == nil {
			t.Errorf("config %v accepted", cfg)
		} else {
			t.Logf("%v: %v", cfg, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := NewGenerator(1, 0).Next(nil)
	q := make([]float32, 16)
	nan, inf := append([]float32(nil), q...), append([]float32(nil), q...)
	nan[3], inf[15] = float32(math.NaN()), float32(math.Inf(-1))
	ev := func(f []float32) []byte {
		b, _ := service.AppendEvent(nil, &service.Event{Features: featureBytes(f)}, 0)
		return b
	}
	huge := append([]byte{1, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 40)...)
	binary.LittleEndian.PutUint16(huge[40:], 0xffff)
	servicetest.CheckMalformed(t, h, map[string][]byte{
		"empty":         nil,
		"short":         good[:10],
		"version":       append([]byte{2}, good[1:]...),
		"no features":   ev(nil),
		"15 features":   ev(q[:15]),
		"17 features":   ev(append(q, 1)),
		"NaN":           ev(nan),
		"-Inf":          ev(inf),
		"features cut":  ev(q)[:service.EventHeaderLen+60],
		"huge declared": huge,
	})
	// Huge finite values overflow the distance to +Inf, which still ranks.
	big := append([]float32(nil), q...)
	big[0] = math.MaxFloat32
	if r := classify(t, h, big); r.KthDist != float32(math.Inf(1)) {
		t.Errorf("huge query: %+v", r)
	}
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultRequestSize)
	for _, size := range []int{0, 64, 512, 1500} {
		g := NewGenerator(42, size)
		for range 100 {
			a, _ := g.Next(nil)
			var ev service.Event
			if err := service.DecodeEvent(a, &ev); err != nil || ev.NumFeatures() != DefaultDims || ev.Item >= DefaultLabels {
				t.Fatalf("size %d: %v, %d features, label %d", size, err, ev.NumFeatures(), ev.Item)
			}
		}
	}
}

func TestConcurrentHandle(t *testing.T) {
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := servicetest.Requests(NewGenerator(3, 0), 200)
	servicetest.CheckConcurrent(t, h, reqs)
}

func TestHandleNoAllocs(t *testing.T) {
	for _, dims := range []string{"16", "7"} { // the unrolled and the general path
		h, err := New(service.Env{Config: map[string]string{"dims": dims}})
		if err != nil {
			t.Fatal(err)
		}
		reqs := make([][]byte, 64)
		rng := rand.New(rand.NewPCG(5, 5))
		for i := range reqs {
			q := make([]float32, h.(*Handler).Dataset().Dims())
			for j := range q {
				q[j] = float32(rng.NormFloat64())
			}
			reqs[i], _ = service.AppendEvent(nil, &service.Event{Features: featureBytes(q)}, 512)
		}
		if allocs := servicetest.HandleAllocs(t, h, &service.Context{}, 500, reqs); allocs != 0 {
			t.Errorf("dims %s: Handle allocates %v times per request", dims, allocs)
		}
	}
}

func FuzzHandle(f *testing.F) {
	h, err := New(service.Env{})
	if err != nil {
		f.Fatal(err)
	}
	g := NewGenerator(9, 0)
	for range 8 {
		req, _ := g.Next(nil)
		f.Add(req[:service.EventHeaderLen+4*DefaultDims])
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		if _, ok := servicetest.Reply(t, h, &c, req); !ok {
			return
		}
		r, err := ParseReply(c.Response())
		if err != nil {
			t.Fatal(err)
		}
		if r.Label >= DefaultLabels || r.Votes < 2 || r.Votes > DefaultK || r.Nearest >= DefaultPoints || !(r.KthDist >= 0) {
			t.Fatalf("implausible result %+v", r)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add(make([]byte, ReplyLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseReply(b); (err == nil) != (len(b) == ReplyLen) {
			t.Fatalf("%d bytes: err %v", len(b), err)
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	h, err := New(service.Env{})
	if err != nil {
		b.Fatal(err)
	}
	g := NewGenerator(1, DefaultRequestSize)
	reqs, _ := servicetest.Requests(g, 4096)
	var c service.Context
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Reset(0, 0, nil)
		if err := h.Handle(&c, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(service.Env{}); err != nil {
			b.Fatal(err)
		}
	}
}
