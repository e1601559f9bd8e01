package recommend

import (
	"math"
	"math/rand/v2"

	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/gen"
)

// taste is the hidden model the seed ratings and the generated requests are
// drawn from, so that they have the structure collaborative filtering
// exploits: every user and item has a vector of latentDims tastes drawn from
// N(0, 1/2), and user u rates item i about 3 + u.i (standard deviation 1)
// plus noise of standard deviation 0.5, rounded and clamped to 1..5 stars.
// Items are rated with Zipf popularity (exponent 0.8: a long tail, but
// flatter than word frequencies): item 0 is the most popular. A user's
// vector is derived from the seed and the user id alone, so any number of
// users can arrive.
type taste struct {
	seed  uint64
	items []float64 // row-major latent vectors
	pop   *gen.Alias
}

const latentDims = 4

func newTaste(seed uint64, items int) *taste {
	rng := rand.New(rand.NewPCG(seed, 0x7a57e))
	t := &taste{seed: seed, items: make([]float64, items*latentDims)}
	for i := range t.items {
		t.items[i] = rng.NormFloat64() * math.Sqrt2 / 2
	}
	t.pop = gen.NewAlias(gen.ZipfWeights(items, 0.8))
	return t
}

// user returns user u's taste vector: N(0, 1/2) coordinates by the
// Box-Muller transform of a PCG stream seeded with the user id.
func (t *taste) user(u uint64) (v [latentDims]float64) {
	var p rand.PCG
	p.Seed(t.seed, mix.SplitMix64(u))
	unit := func() float64 { return (float64(p.Uint64()>>11) + 0.5) / (1 << 53) } // in (0, 1)
	for d := 0; d < latentDims; d += 2 {
		r, a := math.Sqrt(-2*math.Log(unit()))*math.Sqrt2/2, 2*math.Pi*unit()
		v[d], v[d+1] = r*math.Cos(a), r*math.Sin(a)
	}
	return v
}

// affinity is u.i, the user's hidden taste for the item.
func (t *taste) affinity(u uint64, i int) float64 {
	v := t.user(u)
	var dot float64
	for d := range latentDims {
		dot += v[d] * t.items[i*latentDims+d]
	}
	return dot
}

// rate draws user u's rating of item i.
func (t *taste) rate(rng *rand.Rand, u uint64, i int) float64 {
	return math.Max(1, math.Min(5, math.Round(3+t.affinity(u, i)+0.5*rng.NormFloat64())))
}

// seedRatings fills st with generated ratings: each user rates between half
// and one and a half times perUser distinct items (mean perUser), chosen by
// popularity. Items get dense indices in order of first rating, as if the
// ratings had arrived one by one.
func seedRatings(st *state, c config) {
	t := newTaste(c.seed, c.items)
	rng := rand.New(rand.NewPCG(c.seed, 0x5eed))
	dense := make([]int32, c.items) // item -> dense index + 1
	var itemIDs, users []uint64
	lists := make([][]rating, c.users)
	for u := range c.users {
		n := min(c.perUser/2+rng.IntN(c.perUser+1), c.items)
		list := make([]rating, 0, n)
		for tries := 0; len(list) < n && tries < 20*n; tries++ {
			i := int(t.pop.Sample(rng))
			if dense[i] == 0 {
				itemIDs = append(itemIDs, uint64(i))
				dense[i] = int32(len(itemIDs))
			}
			idx := uint32(dense[i] - 1)
			dup := false
			for _, x := range list {
				if x.item == idx {
					dup = true
					break
				}
			}
			if !dup {
				list = append(list, rating{idx, t.rate(rng, uint64(u), i)})
			}
		}
		users = append(users, uint64(u))
		lists[u] = list
	}
	st.load(users, lists, itemIDs)
}

// DefaultRequestSize is the request size of the paper's benchmarks.
const DefaultRequestSize = 512

// queryShare is the fraction of generated requests that ask for
// recommendations; the rest are ratings. Ratings dominate a live service's
// traffic, but queries cost most of its time.
const queryShare = 0.2

// userLifetime is how many requests a generated user stays active. The
// active users are always DefaultUsers consecutive ids, starting with the
// seeded users 0..999, and the window slides by one id every
// userLifetime/DefaultUsers requests. Each user thus rates about
// (1-queryShare)*userLifetime/DefaultUsers = 20 items while active, like
// the seed data, and the rating matrix keeps a steady density instead of
// filling up, which would make every request slower the longer a run
// lasts.
const userLifetime = 25 * DefaultUsers

type generator struct {
	rng  *rand.Rand
	size int
	t    *taste
	now  int64
	n    uint64 // requests generated
}

// NewGenerator returns a deterministic generator for an instance with the
// default configuration: four in five requests are ratings (OpObserve, Key
// a user, Item an item drawn by popularity among the default 500, Value the
// user's 1-5 star rating under the hidden taste model), one in five asks
// for recommendations (OpQuery, Key a user). Users are drawn uniformly
// from 1,000 active ones, a window of ids that starts with the seeded users
// and slides by one every 25 requests, so new users keep arriving and each
// rates about 20 items. Each request is padded to size bytes (512 when size
// is 0 or less); the routing key is a hash of the user id, so one user's
// ratings stay on one shard.
func NewGenerator(seed int64, size int) service.Generator {
	if size <= 0 {
		size = DefaultRequestSize
	}
	return &generator{
		rng:  rand.New(rand.NewPCG(uint64(seed), 0x3ec)),
		size: size,
		t:    newTaste(DefaultSeed, DefaultItems),
		now:  1_700_000_000_000_000_000,
	}
}

func (g *generator) Next(dst []byte) ([]byte, uint64) {
	u := g.n*DefaultUsers/userLifetime + g.rng.Uint64N(DefaultUsers)
	g.n++
	g.now += 1_000_000
	ev := service.Event{Op: service.OpQuery, Key: u, Time: g.now}
	if g.rng.Float64() >= queryShare {
		i := int(g.t.pop.Sample(g.rng))
		ev.Op, ev.Item, ev.Value = service.OpObserve, uint64(i), g.t.rate(g.rng, u, i)
	}
	out, _ := service.AppendEvent(dst[:0], &ev, g.size) // no variable parts
	return out, mix.SplitMix64(ev.Key)
}
