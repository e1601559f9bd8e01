package mix

// SplitMix64 is the output function of Steele, Lea and Flood's SplitMix64
// generator, without its increment: SplitMix64(0) is 0.
func SplitMix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
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
