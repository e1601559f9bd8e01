package loadgen

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
)

// Keys draws request keys from a key space [0, n). Keys are small integers,
// not hashes: the application spec's rule that a key space must be at least
// the shard count of every key_hash destination assumes that the n keys
// cover every residue app.ShardOf (key mod shards) can take.
type Keys interface {
	// Key draws one key using rng.
	Key(rng *rand.Rand) uint64
	// Space returns n.
	Space() uint64
}

// UniformKeys draws every key of [0, n) with equal probability.
func UniformKeys(n uint64) (Keys, error) {
	if n == 0 {
		return nil, fmt.Errorf("loadgen: key space is empty; need at least one key")
	}
	return uniformKeys(n), nil
}

type uniformKeys uint64

func (u uniformKeys) Key(rng *rand.Rand) uint64 { return rng.Uint64N(uint64(u)) }
func (u uniformKeys) Space() uint64             { return uint64(u) }

// ZipfKeys draws keys of [0, n) with Zipf's law: the key of popularity rank
// k (1-based) has probability proportional to 1/k^s. s = 0 is uniform,
// s = 0.99 is YCSB's default skew, s around 1.1 that of hashtags; any s >= 0
// works (math/rand's Zipf only takes s > 1).
//
// Which key holds which rank is a seeded pseudo-random permutation of
// [0, n). Handing rank k to key k-1 would place the hottest keys on shards
// 0, 1, 2, ... in turn, spreading the skew as evenly over shards as it can
// ever be; a permutation places them the way hashing real keys would.
//
// Sampling is rejection-inversion (Hörmann and Derflinger, "Rejection-
// inversion to generate variates from monotone discrete distributions",
// 1996): O(1) time and memory per draw for any n.
func ZipfKeys(n uint64, s float64, seed int64) (Keys, error) {
	if n == 0 {
		return nil, fmt.Errorf("loadgen: key space is empty; need at least one key")
	}
	if !(s >= 0) || s > 100 {
		return nil, fmt.Errorf("loadgen: Zipf exponent %v is out of range; use 0 <= s <= 100", s)
	}
	return &zipfKeys{z: newZipf(n, s), p: newPermutation(n, seed)}, nil
}

type zipfKeys struct {
	z zipf
	p permutation
}

func (z *zipfKeys) Key(rng *rand.Rand) uint64 { return z.p.apply(z.z.rank(rng) - 1) }
func (z *zipfKeys) Space() uint64             { return z.z.n }

// zipf samples ranks 1..n with P(k) proportional to k^-s by rejection-
// inversion: draw u uniformly under the integral H of the continuous
// density h(x) = x^-s between 1.5 and n+0.5 (plus the mass of rank 1), invert
// H to a real x, round to the rank k, and accept k unless u fell into the
// small sliver between h's integral and the discrete mass of k. The accept
// test is passed by most draws without evaluating H (the x close to k case).
type zipf struct {
	n              uint64
	s              float64
	hx1, hn, accep float64
}

func newZipf(n uint64, s float64) zipf {
	z := zipf{n: n, s: s}
	z.hx1 = z.bigH(1.5) - 1
	z.hn = z.bigH(float64(n) + 0.5)
	z.accep = 2 - z.bigHInv(z.bigH(2.5)-z.h(2))
	return z
}

func (z *zipf) rank(rng *rand.Rand) uint64 {
	if z.n == 1 {
		return 1
	}
	for {
		u := z.hn + rng.Float64()*(z.hx1-z.hn)
		x := z.bigHInv(u)
		kf := math.Floor(x + 0.5)
		kf = min(max(kf, 1), float64(z.n))
		if kf-x <= z.accep || u >= z.bigH(kf+0.5)-z.h(kf) {
			return uint64(kf)
		}
	}
}

// h is the (unnormalised) density x^-s.
func (z *zipf) h(x float64) float64 { return math.Exp(-z.s * math.Log(x)) }

// bigH is an antiderivative of h: (x^(1-s) - 1)/(1-s), or log x at s = 1,
// written so that it is accurate near s = 1.
func (z *zipf) bigH(x float64) float64 {
	lx := math.Log(x)
	return expm1OverX((1-z.s)*lx) * lx
}

// bigHInv inverts bigH.
func (z *zipf) bigHInv(x float64) float64 {
	t := max(x*(1-z.s), -1) // rounding can take t just below -1
	return math.Exp(log1pOverX(t) * x)
}

// log1pOverX is log(1+x)/x, continuous at 0.
func log1pOverX(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Log1p(x) / x
	}
	return 1 - x*(0.5-x*(1.0/3-0.25*x))
}

// expm1OverX is (e^x - 1)/x, continuous at 0.
func expm1OverX(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Expm1(x) / x
	}
	return 1 + x*0.5*(1+x/3*(1+0.25*x))
}

// permutation is a seeded bijection of [0, n) in O(1) memory: a bijective
// mixer on the smallest power-of-two domain holding n values, applied
// repeatedly until the result falls inside [0, n) (cycle walking). Since the
// domain is less than 2n, under two rounds are needed on average.
type permutation struct {
	n, mask uint64
	k0, k1  uint64
	shift   uint
}

func newPermutation(n uint64, seed int64) permutation {
	b := uint(bits.Len64(n - 1))
	p := permutation{n: n, shift: max(b/2, 1)}
	if b < 64 {
		p.mask = 1<<b - 1
	} else {
		p.mask = math.MaxUint64
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x6b657973)) // "keys"
	p.k0, p.k1 = r.Uint64()&p.mask, r.Uint64()&p.mask
	return p
}

// mix is a bijection of [0, mask]: each step (xor with a constant, xor with
// a right shift of itself, multiplication by an odd number, addition, all
// modulo 2^b) can be undone.
func (p *permutation) mix(x uint64) uint64 {
	x = (x ^ p.k0) & p.mask
	x ^= x >> p.shift
	x = (x * 0x9e3779b97f4a7c15) & p.mask
	x ^= x >> p.shift
	x = (x * 0xd6e8feb86659fd93) & p.mask
	x ^= x >> p.shift
	return (x + p.k1) & p.mask
}

func (p *permutation) apply(x uint64) uint64 {
	x = p.mix(x)
	for x >= p.n {
		x = p.mix(x)
	}
	return x
}
