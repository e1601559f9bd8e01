package mix

// gamma is SplitMix64's increment, 2^64 divided by the golden ratio, odd.
const gamma = 0x9e3779b97f4a7c15

// SplitMix64 is the output function of Steele, Lea and Flood's SplitMix64
// generator, without its increment: SplitMix64(0) is 0.
func SplitMix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// SplitMix64Next is the value a SplitMix64 generator in state x returns
// next: SplitMix64(x + 0x9e3779b97f4a7c15). Adding the increment first
// keeps 0 from mapping to 0, so a zero flow, key or index still hashes to
// a spread-out value.
func SplitMix64Next(x uint64) uint64 {
	return SplitMix64(x + gamma)
}

// Murmur3 is fmix64, the 64-bit finaliser of Appleby's MurmurHash3.
func Murmur3(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
