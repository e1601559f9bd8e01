package mix

import "testing"

// TestSplitMix64Vector checks SplitMix64 against the published SplitMix64
// sequence for seed 1234567 (Rosetta Code, "Pseudo-random
// numbers/Splitmix64"): each output is the finaliser applied to the state
// after adding the golden-ratio increment.
func TestSplitMix64Vector(t *testing.T) {
	want := []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821}
	state := uint64(1234567)
	for i, w := range want {
		state += 0x9e3779b97f4a7c15
		if got := SplitMix64(state); got != w {
			t.Errorf("output %d: %d, want %d", i, got, w)
		}
	}
	if SplitMix64(0) != 0 {
		t.Errorf("SplitMix64(0) = %d", SplitMix64(0))
	}
}

// TestSplitMix64NextVector checks SplitMix64Next against the same
// published sequence: a generator seeded with 1234567 is in state
// 1234567 + i*increment before its output i. Seed 0's first output is the
// other widely quoted value (0xe220a8397b1dcdaf).
func TestSplitMix64NextVector(t *testing.T) {
	want := []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431, 16408922859458223821}
	state := uint64(1234567)
	for i, w := range want {
		if got := SplitMix64Next(state); got != w {
			t.Errorf("output %d: %d, want %d", i, got, w)
		}
		state += 0x9e3779b97f4a7c15
	}
	if got := SplitMix64Next(0); got != 0xe220a8397b1dcdaf {
		t.Errorf("SplitMix64Next(0) = %#x, want 0xe220a8397b1dcdaf", got)
	}
}

// TestMurmur3Inverse undoes Murmur3 step by step (xorshifts by 33 are
// their own inverse on 64 bits; the multipliers are odd, so they have
// inverses mod 2^64) and checks that every input comes back: the
// finaliser is the bijection the package says, so no two ids collide.
func TestMurmur3Inverse(t *testing.T) {
	inv := func(a uint64) uint64 { // Newton's iteration for a^-1 mod 2^64
		x := a
		for range 6 {
			x *= 2 - a*x
		}
		return x
	}
	m1, m2 := inv(0xff51afd7ed558ccd), inv(0xc4ceb9fe1a85ec53)
	for _, x := range []uint64{0, 1, 2, 42, 1 << 63, ^uint64(0), 0x0123456789abcdef} {
		y := Murmur3(x)
		y ^= y >> 33
		y *= m2
		y ^= y >> 33
		y *= m1
		y ^= y >> 33
		if y != x {
			t.Errorf("Murmur3(%#x) does not invert: got back %#x", x, y)
		}
	}
	if Murmur3(0) != 0 || Murmur3(1) == 1 {
		t.Errorf("Murmur3(0) = %#x, Murmur3(1) = %#x", Murmur3(0), Murmur3(1))
	}
}

// TestSpread checks that consecutive ids land evenly on 16 shards.
func TestSpread(t *testing.T) {
	for name, f := range map[string]func(uint64) uint64{"SplitMix64": SplitMix64, "SplitMix64Next": SplitMix64Next, "Murmur3": Murmur3} {
		var shards [16]int
		for u := range uint64(16_000) {
			shards[f(u)>>60]++
		}
		for s, n := range shards {
			if n < 850 || n > 1150 {
				t.Errorf("%s: shard %d got %d of 16000 consecutive ids", name, s, n)
			}
		}
	}
}
