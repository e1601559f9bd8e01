package loadgen

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
)

// TestPermutationIsBijection checks the key permutation exhaustively on
// key spaces around powers of two.
func TestPermutationIsBijection(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 5, 64, 100, 1000, 1024, 1025, 65537} {
		for _, seed := range []int64{0, 1, -7} {
			p := newPermutation(n, seed)
			seen := make([]bool, n)
			for x := uint64(0); x < n; x++ {
				y := p.apply(x)
				if y >= n || seen[y] {
					t.Fatalf("n=%d seed=%d: %d -> %d repeats or leaves the space", n, seed, x, y)
				}
				seen[y] = true
			}
		}
	}
	// Large spaces stay inside.
	p := newPermutation(math.MaxUint64, 3)
	for x := uint64(0); x < 1000; x++ {
		if y := p.apply(x); y == math.MaxUint64 {
			t.Fatal("left the space")
		}
	}
}

// TestZipfDistribution compares draw frequencies with the exact Zipf
// probabilities over 30 ranks: chi-square with 29 degrees of freedom must be
// under 70 (p < 1e-4 under the null), for skews on both sides of 1.
func TestZipfDistribution(t *testing.T) {
	const n, draws = 30, 300_000
	for _, s := range []float64{0, 0.5, 0.99, 1, 1.1, 2, 3.5} {
		z := newZipf(n, s)
		rng := rand.New(rand.NewPCG(11, 12))
		counts := make([]float64, n+1)
		for range draws {
			k := z.rank(rng)
			if k < 1 || k > n {
				t.Fatalf("s=%v: rank %d", s, k)
			}
			counts[k]++
		}
		var norm float64
		for k := 1; k <= n; k++ {
			norm += math.Pow(float64(k), -s)
		}
		var chi2 float64
		for k := 1; k <= n; k++ {
			e := draws * math.Pow(float64(k), -s) / norm
			chi2 += (counts[k] - e) * (counts[k] - e) / e
		}
		t.Logf("s=%v: chi-square %.1f (29 d.o.f.), P(rank 1) %.4f", s, chi2, counts[1]/draws)
		if chi2 > 70 {
			t.Errorf("s=%v: chi-square %.1f; draws do not follow Zipf", s, chi2)
		}
	}
}

func TestKeysCoverAndBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	u, _ := UniformKeys(10)
	z, _ := ZipfKeys(10, 1.2, 5)
	for _, k := range []Keys{u, z} {
		seen := map[uint64]bool{}
		for range 10_000 {
			v := k.Key(rng)
			if v >= k.Space() {
				t.Fatalf("key %d outside %d", v, k.Space())
			}
			seen[v] = true
		}
		if len(seen) != 10 {
			t.Errorf("only %d of 10 keys drawn", len(seen))
		}
	}
	// The hottest key is not simply key 0: the permutation moves it.
	hot := map[int64]uint64{}
	for seed := range int64(8) {
		z, _ := ZipfKeys(1000, 2, seed)
		counts := map[uint64]int{}
		for range 2000 {
			counts[z.Key(rng)]++
		}
		best, bestN := uint64(0), 0
		for k, n := range counts {
			if n > bestN {
				best, bestN = k, n
			}
		}
		hot[seed] = best
	}
	distinct := map[uint64]bool{}
	for _, k := range hot {
		distinct[k] = true
	}
	if len(distinct) < 6 {
		t.Errorf("hottest keys over 8 seeds: %v; the permutation does not spread them", hot)
	}
	for _, bad := range []func() (Keys, error){
		func() (Keys, error) { return UniformKeys(0) },
		func() (Keys, error) { return ZipfKeys(0, 1, 1) },
		func() (Keys, error) { return ZipfKeys(10, -1, 1) },
		func() (Keys, error) { return ZipfKeys(10, math.NaN(), 1) },
	} {
		if _, err := bad(); err == nil {
			t.Error("bad key distribution accepted")
		}
	}
}

// TestAppWorkloadBuiltins drives every built-in application: requests enter
// at a source, keys stay in the key space and reach every shard of the key_hash
// destinations, event payloads decode and carry the routing key, sizes match
// the spec, and a seed replays the same stream.
func TestAppWorkloadBuiltins(t *testing.T) {
	reg := services.Registry()
	apps, err := app.Builtins(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		t.Run(a.Name, func(t *testing.T) {
			w, err := NewAppWorkload(a, AppOptions{Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			w2, _ := NewAppWorkload(a, AppOptions{Seed: 3})
			shardsHit := map[*app.Edge]map[int]bool{}
			var buf, buf2 []byte
			const n = 3000
			for range n {
				var key, key2 uint64
				var src, src2 int
				buf, key, src = w.Next(buf)
				buf2, key2, src2 = w2.Next(buf2)
				if key != key2 || src != src2 || !bytes.Equal(buf, buf2) {
					t.Fatal("same seed, different stream")
				}
				if key >= uint64(a.Workload.KeySpace) {
					t.Fatalf("key %d outside key space %d", key, a.Workload.KeySpace)
				}
				node := w.Source(src)
				if !node.IsSource() {
					t.Fatalf("request enters at %s, not a source", node.Name)
				}
				if node.Family() == service.FamilyEvent {
					var ev service.Event
					if err := service.DecodeEvent(buf, &ev); err != nil {
						t.Fatalf("%s payload: %v", node.Name, err)
					}
					if ev.Key != key {
						t.Fatalf("Event.Key %d, routing key %d", ev.Key, key)
					}
				}
				if len(buf) < a.Workload.RequestSize && node.Family() == service.FamilyPacket {
					t.Fatalf("%d-byte packet, request size %d", len(buf), a.Workload.RequestSize)
				}
				for _, e := range node.Out {
					if e.Policy != app.KeyHash {
						continue
					}
					if shardsHit[e] == nil {
						shardsHit[e] = map[int]bool{}
					}
					shardsHit[e][app.ShardOf(key, e.To.Shards)] = true
				}
			}
			for e, hit := range shardsHit {
				if len(hit) != e.To.Shards {
					t.Errorf("edge %s: keys reached %d of %d shards", e, len(hit), e.To.Shards)
				}
			}
		})
	}
}

// TestAppWorkloadMix: a two-source application with a 9:1 mix sends 90 %
// of requests to the first source (within 1 %, 6 standard errors at 20,000
// draws); Zipf keys concentrate on few keys; RawPayload keeps the
// generator's Event.Key.
func TestAppWorkloadMix(t *testing.T) {
	spec := `
name: shop
class: IOT
nodes:
  gateway: {service: apigw, shards: 4}
  orders:  {service: sql, shards: 8, pin: host}
  admin:   {service: kvs, shards: 2}
edges:
  - {from: gateway, to: orders}
  - {from: admin, to: orders}
workload:
  request_size: 300
  key_space: 5000
  mix: {gateway: 9, admin: 1}
`
	a, err := app.Load("shop.yaml", []byte(spec), services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewAppWorkload(a, AppOptions{Seed: 1, Zipf: 1.2})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	keys := map[uint64]int{}
	var buf []byte
	const n = 20_000
	for range n {
		var key uint64
		var src int
		buf, key, src = w.Next(buf)
		counts[w.Source(src).Name]++
		keys[key]++
	}
	t.Logf("sources %v, %d distinct keys of 5000", counts, len(keys))
	if f := float64(counts["gateway"]) / n; math.Abs(f-0.9) > 0.01 {
		t.Errorf("gateway share %.3f, want 0.9", f)
	}
	if len(keys) > 3000 {
		t.Errorf("%d distinct keys under Zipf 1.2: not skewed", len(keys))
	}
	raw, _ := NewAppWorkload(a, AppOptions{Seed: 1, RawPayload: true, Size: 200, KeySpace: 10})
	differ := 0
	for range 200 {
		req, key, _ := raw.Next(nil)
		var ev service.Event
		if err := service.DecodeEvent(req, &ev); err != nil {
			t.Fatal(err)
		}
		if len(req) < 200 || key >= 10 {
			t.Fatalf("size %d, key %d", len(req), key)
		}
		if ev.Key != key {
			differ++
		}
	}
	// The generators' own keys (device ids up to 1023, 0 for the KVS) mostly
	// differ from keys drawn from 10.
	if differ < 100 {
		t.Errorf("raw payloads: only %d of 200 keep a key of their own", differ)
	}
}

func TestForService(t *testing.T) {
	reg := services.Registry()
	for _, name := range reg.Names() {
		d, _ := reg.Lookup(name)
		w, err := ForService(d, 1, 512)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		req, _, src := w.Next(nil)
		if len(req) == 0 || src != 0 {
			t.Errorf("%s: %d-byte request, source %d", name, len(req), src)
		}
	}
	if _, err := ForService(&service.Descriptor{Name: "bare"}, 1, 1); err == nil {
		t.Error("descriptor without a generator accepted")
	}
}

// TestAppWorkloadEnrichesEvents checks that an application's request carries
// what its downstream stages read: IOT-DH's gateway events reach a k-NN
// classifier that needs a feature vector; RTA-SHM's counter events reach a
// BM25 search stage that needs query text.
func TestAppWorkloadEnrichesEvents(t *testing.T) {
	for _, tc := range []struct {
		app      string
		features bool
		text     bool
	}{{"iot-dh", true, false}, {"rta-shm", false, true}} {
		a, err := app.Builtin(tc.app, services.Registry())
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewAppWorkload(a, AppOptions{Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		var buf []byte
		for range 50 {
			req, key, _ := w.Next(buf)
			buf = req
			var ev service.Event
			if err := service.DecodeEvent(req, &ev); err != nil {
				t.Fatalf("%s: %v", tc.app, err)
			}
			if ev.Key != key {
				t.Fatalf("%s: event key %d, routing key %d", tc.app, ev.Key, key)
			}
			if tc.features && ev.NumFeatures() == 0 {
				t.Fatalf("%s: event without features", tc.app)
			}
			if tc.text && len(ev.Text) == 0 {
				t.Fatalf("%s: event without text", tc.app)
			}
			if len(req) < a.Workload.RequestSize {
				t.Fatalf("%s: %d-byte request, want at least %d", tc.app, len(req), a.Workload.RequestSize)
			}
		}
	}
}
