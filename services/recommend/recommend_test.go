package recommend

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

func newEmpty(t testing.TB, cfg map[string]string) *Handler {
	t.Helper()
	if cfg == nil {
		cfg = map[string]string{"baseline": "0"} // plain cosine, as worked by hand
	}
	if _, ok := cfg["users"]; !ok {
		cfg["users"] = "0"
	}
	h, err := New(service.Env{Config: cfg, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

func call(t testing.TB, h service.Handler, ev service.Event) (uint32, []Rec) {
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
	n, recs, err := ParseReply(c.Response(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return n, recs
}

func rate(t testing.TB, h service.Handler, user, item uint64, r float64) uint32 {
	t.Helper()
	n, recs := call(t, h, service.Event{Op: service.OpObserve, Key: user, Item: item, Value: r})
	if len(recs) != 0 {
		t.Fatalf("a rating was answered with recommendations %v", recs)
	}
	return n
}

func query(t testing.TB, h service.Handler, user uint64) (uint32, []Rec) {
	t.Helper()
	return call(t, h, service.Event{Op: service.OpQuery, Key: user})
}

func sameRecs(t *testing.T, what string, got, want []Rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i].Item != want[i].Item || math.Abs(got[i].Score-want[i].Score) > 1e-9 {
			t.Errorf("%s: rec %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// The hand-checked matrix (users 1, 2, 3; items 10, 20, 30, 40):
//
//	        10  20  30  40
//	user 1   5   3   .   .
//	user 2   4   2   5   .
//	user 3   .   4   1   5
//
//	norm2: 10: 25+16 = 41, 20: 9+4+16 = 29, 30: 25+1 = 26, 40: 25
//	dot:  (10,20) = 5*3 + 4*2 = 23   (10,30) = 4*5 = 20   (10,40): never co-rated
//	      (20,30) = 2*5 + 4*1 = 14   (20,40) = 4*5 = 20   (30,40) = 1*5 = 5
//	sim(i,j) = dot(i,j) / sqrt(norm2(i)*norm2(j))
//
// User 1 rated 10 (5) and 20 (3); candidates 30 and 40:
//
//	score(30) = 5*20/sqrt(41*26) + 3*14/sqrt(29*26) = 3.0657 + 1.5266 = 4.592369244689826
//	score(40) = 3*20/sqrt(29*25)                                       = 2.2283440581246223
//
// User 2 rated 10, 20, 30; candidate 40 (10 and 40 never co-rated):
//
//	score(40) = 2*20/sqrt(29*25) + 5*5/sqrt(26*25)
//
// User 3 rated 20 (4), 30 (1), 40 (5); candidate 10:
//
//	score(10) = 4*23/sqrt(29*41) + 1*20/sqrt(26*41) + 5*0 = 3.2806319284341
//
// User 1 re-rates 20 from 3 to 1 (delta -2): dot(10,20) = 23 + (-2)*5 = 13,
// norm2(20) = 29 - 9 + 1 = 21, dot(20,30) and dot(20,40) unchanged:
//
//	score(30) = 5*20/sqrt(41*26) + 1*14/sqrt(21*26) = 3.661964148673722
//	score(40) = 1*20/sqrt(21*25)                    = 0.8728715609439696
func TestHandChecked(t *testing.T) {
	h := newEmpty(t, nil)
	for _, r := range []struct {
		u, i uint64
		r    float64
		n    uint32
	}{{1, 10, 5, 1}, {1, 20, 3, 2}, {2, 10, 4, 1}, {2, 20, 2, 2}, {2, 30, 5, 3}, {3, 20, 4, 1}, {3, 30, 1, 2}, {3, 40, 5, 3}} {
		if n := rate(t, h, r.u, r.i, r.r); n != r.n {
			t.Errorf("user %d rating item %d: %d rated, want %d", r.u, r.i, n, r.n)
		}
	}
	n, recs := query(t, h, 1)
	if n != 2 {
		t.Errorf("user 1 rated %d items, want 2", n)
	}
	sameRecs(t, "user 1", recs, []Rec{{30, 4.592369244689826}, {40, 2.2283440581246223}})
	_, recs = query(t, h, 2)
	sameRecs(t, "user 2", recs, []Rec{{40, 2*20/math.Sqrt(29*25) + 5*5/math.Sqrt(26*25)}})
	_, recs = query(t, h, 3)
	sameRecs(t, "user 3", recs, []Rec{{10, 3.2806319284341}})
	n, recs = query(t, h, 99)
	if n != 0 || len(recs) != 0 {
		t.Errorf("unknown user: %d rated, %v", n, recs)
	}
	if n := rate(t, h, 1, 20, 1); n != 2 {
		t.Errorf("re-rating counted as a new item: %d rated", n)
	}
	_, recs = query(t, h, 1)
	sameRecs(t, "user 1 after re-rating", recs, []Rec{{30, 3.661964148673722}, {40, 0.8728715609439696}})

	one := newEmpty(t, map[string]string{"top_n": "1", "baseline": "0"})
	for _, r := range [][3]float64{{1, 10, 5}, {1, 20, 3}, {2, 10, 4}, {2, 20, 2}, {2, 30, 5}, {3, 20, 4}, {3, 30, 1}, {3, 40, 5}} {
		rate(t, one, uint64(r[0]), uint64(r[1]), r[2])
	}
	_, recs = query(t, one, 1)
	sameRecs(t, "top 1", recs, []Rec{{30, 4.592369244689826}})
}

// With the default baseline of 3 stars, ratings are centred first:
//
//	        10     20     30        centred: 10  20  30
//	user 1   5      1      .                 +2  -2   .
//	user 2   4      .      5                 +1   .  +2
//	user 3   .      2      4                  .  -1  +1
//
//	norm2: 10: 4+1 = 5, 20: 4+1 = 5, 30: 4+1 = 5
//	dot: (10,20) = 2*(-2) = -4, (10,30) = 1*2 = 2, (20,30) = (-1)*1 = -1
//
// User 1: score(30) = (2/5)*(+2) + (-1/5)*(-2) = 0.8 + 0.4 = 1.2: disliking
// 20, which user 3 rated against 30, counts for 30.
// User 3: score(10) = (-4/5)*(-1) + (2/5)*(+1) = 1.2.
// User 2: score(20) = (-4/5)*(+1) + (-1/5)*(+2) = -1.2: not recommended.
func TestHandCheckedCentred(t *testing.T) {
	h := newEmpty(t, map[string]string{})
	for _, r := range [][3]float64{{1, 10, 5}, {1, 20, 1}, {2, 10, 4}, {2, 30, 5}, {3, 20, 2}, {3, 30, 4}} {
		rate(t, h, uint64(r[0]), uint64(r[1]), r[2])
	}
	_, recs := query(t, h, 1)
	sameRecs(t, "user 1", recs, []Rec{{30, 1.2}})
	_, recs = query(t, h, 3)
	sameRecs(t, "user 3", recs, []Rec{{10, 1.2}})
	_, recs = query(t, h, 2)
	sameRecs(t, "user 2", recs, nil)
}

// naiveRecommend recomputes everything from the rating matrix and ranks
// every candidate: the reference for the property test.
func naiveRecommend(raw map[uint64]map[uint64]float64, baseline float64, user uint64) []Rec {
	ratings := map[uint64]map[uint64]float64{}
	for u, items := range raw {
		ratings[u] = map[uint64]float64{}
		for i, r := range items {
			ratings[u][i] = r - baseline
		}
	}
	norm2 := map[uint64]float64{}
	for _, items := range ratings {
		for i, r := range items {
			norm2[i] += r * r
		}
	}
	dot := func(i, j uint64) (float64, bool) {
		var s float64
		co := false
		for _, items := range ratings {
			ri, ok1 := items[i]
			rj, ok2 := items[j]
			if ok1 && ok2 {
				s += ri * rj
				co = true
			}
		}
		return s, co
	}
	mine := ratings[user]
	var out []Rec
	for j := range norm2 {
		if _, rated := mine[j]; rated || norm2[j] <= 0 {
			continue
		}
		var score float64
		for i, r := range mine {
			if d, co := dot(i, j); co && norm2[i] > 0 {
				score += r * d / math.Sqrt(norm2[i]*norm2[j])
			}
		}
		if score > 0 {
			out = append(out, Rec{j, score})
		}
	}
	sort.Slice(out, func(a, b int) bool { return worse(out[b], out[a]) })
	return out
}

func TestAgainstRecomputation(t *testing.T) {
	const seed = 5
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	compared := 0
	for trial := range 20 {
		baseline := []float64{0, 3, 2.5}[trial%3]
		h := newEmpty(t, map[string]string{"top_n": "5", "baseline": fmt.Sprint(baseline)})
		ratings := map[uint64]map[uint64]float64{}
		users, items := 2+rng.IntN(15), 2+rng.IntN(40)
		for range rng.IntN(200) {
			u, i := uint64(rng.IntN(users)), uint64(1000+rng.IntN(items))
			r := float64(1 + rng.IntN(5))
			if rng.IntN(10) == 0 {
				r = rng.NormFloat64() * 3 // any real rating, even negative
			}
			if ratings[u] == nil {
				ratings[u] = map[uint64]float64{}
			}
			ratings[u][i] = r
			if n := rate(t, h, u, i, r); int(n) != len(ratings[u]) {
				t.Fatalf("trial %d: user %d has %d ratings, reply says %d", trial, u, len(ratings[u]), n)
			}
		}
		checkInvariants(t, h, ratings, baseline)
		for u := range uint64(users + 1) {
			want := naiveRecommend(ratings, baseline, u)
			_, got := query(t, h, u)
			sameScores(t, fmt.Sprintf("trial %d user %d", trial, u), got, want, 5)
			compared += len(got)
		}
	}
	t.Logf("%d recommendations compared", compared)
	if compared < 200 {
		t.Errorf("only %d recommendations compared", compared)
	}
}

// checkInvariants compares the incrementally kept statistics with ones
// recomputed from the rating matrix.
func checkInvariants(t *testing.T, h *Handler, raw map[uint64]map[uint64]float64, baseline float64) {
	t.Helper()
	st := h.st
	ratings := map[uint64]map[uint64]float64{}
	for u, items := range raw {
		ratings[u] = map[uint64]float64{}
		for i, r := range items {
			ratings[u][i] = r - baseline
		}
	}
	for idx := range st.itemIDs.Len() {
		id := st.itemIDs.Get(idx)
		if back, _ := st.items.Get(id); int(back) != idx {
			t.Fatalf("item %d: index %d maps back to %d", id, idx, back)
		}
		var n2 float64
		for _, items := range ratings {
			if r, ok := items[id]; ok {
				n2 += r * r
			}
		}
		if math.Abs(st.norm2.Get(idx)-n2) > 1e-9*max(1, n2) {
			t.Fatalf("item %d: norm2 %v, recomputed %v", id, st.norm2.Get(idx), n2)
		}
		m := st.rows.Get(idx)
		count := uint32(0)
		for b, left := m.head, m.n; left > 0; b = st.next.Get(int(b)) {
			cnt := min(left, blockLen)
			left -= cnt
			for p := b * blockLen; p < b*blockLen+cnt; p++ {
				e := st.co.Get(int(p))
				count++
				jid := st.itemIDs.Get(int(e.item))
				var d float64
				co := false
				for _, items := range ratings {
					ri, ok1 := items[id]
					rj, ok2 := items[jid]
					if ok1 && ok2 {
						d += ri * rj
						co = true
					}
				}
				if !co || math.Abs(e.dot-d) > 1e-9*max(1, math.Abs(d)) {
					t.Fatalf("dot(%d,%d) = %v, recomputed %v (co-rated %v)", id, jid, e.dot, d, co)
				}
				if p2, _ := st.pos.Get(pairKey(uint32(idx), e.item)); p2 != p {
					t.Fatalf("pos(%d,%d) = %d, entry is at %d", id, jid, p2, p)
				}
			}
		}
		if count != m.n {
			t.Fatalf("item %d: walked %d entries, row says %d", id, count, m.n)
		}
	}
}

func allQueries(t *testing.T, h service.Handler) string {
	var b bytes.Buffer
	for u := range uint64(DefaultUsers) {
		n, recs := query(t, h, u)
		fmt.Fprintln(&b, n, recs)
	}
	return b.String()
}

// TestSnapshotRestore moves the state of a running instance into a fresh
// one through the collections' snapshots, as a migration does, and checks
// that both answer alike, then and after further identical traffic.
func TestSnapshotRestore(t *testing.T) {
	src := collections.NewMemStore()
	a, err := New(service.Env{Store: src})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Lockstep(t, NewGenerator(1, 0), 3000, a)

	dst := collections.NewMemStore()
	b, err := New(service.Env{Store: dst}) // seeded like a, then replaced
	if err != nil {
		t.Fatal(err)
	}
	servicetest.CopySnapshots(t, src.Collections(), dst.Collections())
	if qa, qb := allQueries(t, a), allQueries(t, b); qa != qb {
		t.Fatal("restored instance recommends differently")
	}
	servicetest.Lockstep(t, NewGenerator(2, 0), 2000, a, b)
	if qa, qb := allQueries(t, a), allQueries(t, b); qa != qb {
		t.Fatal("restored instance diverged under the same traffic")
	}
}

// TestLogReplay rebuilds an instance from its mutation log alone: what a
// backup replica does. It also runs every codec on real records.
func TestLogReplay(t *testing.T) {
	src := servicetest.NewRecordingStore()
	a, err := New(service.Env{Store: src, Config: map[string]string{"users": "200", "items": "100"}})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Lockstep(t, NewGenerator(3, 0), 1000, a)
	b := newEmpty(t, map[string]string{"users": "0"})
	st := b.st
	src.Replay(t, []collections.Collection{st.items, st.itemIDs, st.norm2, st.rows, st.co, st.next, st.pos, st.users})
	if qa, qb := allQueries(t, a), allQueries(t, b); qa != qb {
		t.Fatal("instance rebuilt from the log recommends differently")
	}
}

func TestMalformed(t *testing.T) {
	h := newEmpty(t, nil)
	good, _ := service.AppendEvent(nil, &service.Event{Op: service.OpObserve, Key: 1, Item: 2, Value: 3}, 0)
	ev := func(e service.Event) []byte {
		b, _ := service.AppendEvent(nil, &e, 0)
		return b
	}
	servicetest.CheckMalformed(t, h, map[string][]byte{
		"empty":       nil,
		"short":       good[:47],
		"version":     append([]byte{0}, good[1:]...),
		"op get":      ev(service.Event{Op: service.OpGet, Key: 1}),
		"op delete":   ev(service.Event{Op: service.OpDelete, Key: 1}),
		"NaN rating":  ev(service.Event{Key: 1, Item: 2, Value: math.NaN()}),
		"+Inf rating": ev(service.Event{Key: 1, Item: 2, Value: math.Inf(1)}),
		"huge rating": ev(service.Event{Key: 1, Item: 2, Value: 2e9}),
	})
	if h.st.itemIDs.Len() != 0 || h.st.users.Len() != 0 {
		t.Error("a rejected request changed the state")
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(service.Env{}); err == nil {
		t.Error("New without a store succeeded")
	}
	for _, cfg := range []map[string]string{
		{"users": "-1"}, {"items": "0"}, {"top_n": "0"}, {"top_n": "x"}, {"seed": "s"},
		{"users": "10000000", "ratings_per_user": "10000", "items": "10000"},
	} {
		if _, err := New(service.Env{Config: cfg, Store: collections.NewMemStore()}); err == nil {
			t.Errorf("config %v accepted", cfg)
		} else {
			t.Logf("%v: %v", cfg, err)
		}
	}
	h, err := New(service.Env{Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	st := h.(*Handler).st
	var ratings int
	st.users.Range(func(_ uint64, l []rating) bool { ratings += len(l); return true })
	t.Logf("seeded: %d users, %d items, %d ratings, %d co-rated pairs", st.users.Len(), st.itemIDs.Len(), ratings, st.pos.Len()/2)
	if st.users.Len() != DefaultUsers || st.itemIDs.Len() < DefaultItems*9/10 || math.Abs(float64(ratings)/DefaultUsers-DefaultRatingsPerUser) > 1 {
		t.Errorf("seed data: %d users, %d items, %d ratings", st.users.Len(), st.itemIDs.Len(), ratings)
	}
	// Seeded recommendations follow the hidden tastes: the top pick should
	// be an item the user would rate above average more often than not.
	tt := newTaste(DefaultSeed, DefaultItems)
	var good, n int
	for u := range 200 {
		_, recs := query(t, h, uint64(u))
		if len(recs) == 0 {
			continue
		}
		n++
		if tt.affinity(uint64(u), int(recs[0].Item)) > 0 {
			good++
		}
	}
	t.Logf("top recommendation matches the user's hidden taste for %d of %d users", good, n)
	if good*100 < n*85 { // 193 of 200 with the default seed
		t.Errorf("top recommendation matches the hidden taste for only %d of %d users", good, n)
	}
}

// TestSeedMatchesRatings checks that the bulk load at New builds the same
// statistics as rating one by one would.
func TestSeedMatchesRatings(t *testing.T) {
	for _, baseline := range []string{"3", "0"} {
		h, err := New(service.Env{Store: collections.NewMemStore(),
			Config: map[string]string{"users": "80", "items": "60", "ratings_per_user": "12", "baseline": baseline}})
		if err != nil {
			t.Fatal(err)
		}
		hh := h.(*Handler)
		ratings := map[uint64]map[uint64]float64{}
		hh.st.users.Range(func(u uint64, l []rating) bool {
			ratings[u] = map[uint64]float64{}
			for _, x := range l {
				ratings[u][hh.st.itemIDs.Get(int(x.item))] = x.r
			}
			return true
		})
		b := 3.0
		if baseline == "0" {
			b = 0
		}
		checkInvariants(t, hh, ratings, b)
		inc := newEmpty(t, map[string]string{"baseline": baseline})
		for u := range uint64(80) {
			for i, r := range ratings[u] {
				rate(t, inc, u, i, r)
			}
		}
		for u := range uint64(80) {
			_, want := query(t, inc, u)
			_, got := query(t, hh, u)
			sameScores(t, fmt.Sprintf("baseline %s user %d", baseline, u), got, want, DefaultTopN)
		}
	}
}

// sameScores compares a ranking with the first len(got) of the full
// reference ranking want; items whose scores tie up to rounding (within the
// whole reference, also beyond the cut) may come in either order.
func sameScores(t *testing.T, what string, got, want []Rec, topN int) {
	t.Helper()
	if len(got) != min(topN, len(want)) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	tied := func(i int) bool {
		return (i > 0 && math.Abs(want[i].Score-want[i-1].Score) <= 1e-9) ||
			(i+1 < len(want) && math.Abs(want[i].Score-want[i+1].Score) <= 1e-9)
	}
	for i := range got {
		if math.Abs(got[i].Score-want[i].Score) > 1e-9 || (got[i].Item != want[i].Item && !tied(i)) {
			t.Fatalf("%s: rec %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultRequestSize)
	for _, size := range []int{0, 48, 512, 1500} {
		g := NewGenerator(42, size)
		queries := 0
		for i := range 1000 {
			a, ka := g.Next(nil)
			var ev service.Event
			if err := service.DecodeEvent(a, &ev); err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if lo := uint64(i) * DefaultUsers / userLifetime; ka != mix.SplitMix64(ev.Key) || ev.Key < lo || ev.Key >= lo+DefaultUsers {
				t.Fatalf("key %d for user %d", ka, ev.Key)
			}
			switch ev.Op {
			case service.OpQuery:
				queries++
			case service.OpObserve:
				if ev.Item >= DefaultItems || ev.Value < 1 || ev.Value > 5 || ev.Value != math.Round(ev.Value) {
					t.Fatalf("rating %+v", ev)
				}
			default:
				t.Fatalf("op %d", ev.Op)
			}
		}
		if queries < 150 || queries > 250 {
			t.Errorf("%d queries in 1000 requests, want about 200", queries)
		}
	}
}

func TestConcurrentHandle(t *testing.T) {
	h, err := New(service.Env{Store: collections.NewMemStore(), Config: map[string]string{"users": "100", "items": "50"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := NewGenerator(int64(w), 0)
			var c service.Context
			for range 500 {
				req, _ := g.Next(nil)
				c.Reset(0, 0, nil)
				if err := h.Handle(&c, req); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Whatever the interleaving, the statistics must match the ratings.
	hh := h.(*Handler)
	ratings := map[uint64]map[uint64]float64{}
	hh.st.users.Range(func(u uint64, l []rating) bool {
		ratings[u] = map[uint64]float64{}
		for _, x := range l {
			ratings[u][hh.st.itemIDs.Get(int(x.item))] = x.r
		}
		return true
	})
	checkInvariants(t, hh, ratings, DefaultBaseline)
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
	h := newEmpty(f, map[string]string{"users": "50", "items": "40"})
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
		_, recs, err := ParseReply(c.Response(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if !(r.Score > 0) || (i > 0 && worse(recs[i-1], r)) {
				t.Fatalf("recommendations %v", recs)
			}
		}
	})
}

// FuzzApply feeds arbitrary records to every collection of an instance, as
// a corrupted log would: the codecs must reject them, never panic.
func FuzzApply(f *testing.F) {
	f.Add(byte(0), []byte{1, 8, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3})
	f.Add(byte(7), []byte{1, 8, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(byte(4), []byte{4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Fuzz(func(t *testing.T, which byte, rec []byte) {
		st, err := newState(collections.NewMemStore(), 3)
		if err != nil {
			t.Fatal(err)
		}
		cs := []collections.Collection{st.items, st.itemIDs, st.norm2, st.rows, st.co, st.next, st.pos, st.users}
		_ = cs[int(which)%len(cs)].Apply(rec)
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add(appendReply(nil, 3, []Rec{{1, 2}, {3, 4}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		rated, recs, err := ParseReply(b, nil)
		if err != nil {
			return
		}
		if got := appendReply(nil, int(rated), recs); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs: %x vs %x", got, b)
		}
	})
}

// benchmark drives a default instance with fresh generated requests, all
// of which are handled (so the state evolves as in a live run), timing
// only those of the ops timed accepts. Requests are generated as the run
// goes: replaying a fixed set would, from the second pass on, re-send
// ratings the state already holds, which change nothing and cost nothing.
// When every op is timed, the generator's own cost (BenchmarkGenerator) is
// included.
func benchmark(b *testing.B, timed func(op service.Op) bool) {
	h, err := New(service.Env{Store: collections.NewMemStore()})
	if err != nil {
		b.Fatal(err)
	}
	g := NewGenerator(1, DefaultRequestSize)
	var c service.Context
	var req []byte
	b.ReportAllocs()
	for b.Loop() {
		for {
			req, _ = g.Next(req)
			if timed(service.Op(req[1])) {
				break
			}
			b.StopTimer()
			c.Reset(0, 0, nil)
			if err := h.Handle(&c, req); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		c.Reset(0, 0, nil)
		if err := h.Handle(&c, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandle runs the generator's mix: 80% ratings, 20% queries.
func BenchmarkHandle(b *testing.B) { benchmark(b, func(service.Op) bool { return true }) }

// BenchmarkRate times the ratings of the mix.
func BenchmarkRate(b *testing.B) {
	benchmark(b, func(op service.Op) bool { return op == service.OpObserve })
}

// BenchmarkQuery times the queries of the mix.
func BenchmarkQuery(b *testing.B) {
	benchmark(b, func(op service.Op) bool { return op == service.OpQuery })
}

// BenchmarkGenerator is the cost of generating one request.
func BenchmarkGenerator(b *testing.B) {
	g := NewGenerator(1, DefaultRequestSize)
	var req []byte
	b.ReportAllocs()
	for b.Loop() {
		req, _ = g.Next(req)
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(service.Env{Store: collections.NewMemStore()}); err != nil {
			b.Fatal(err)
		}
	}
}
