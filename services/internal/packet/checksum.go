package packet

import (
	"encoding/binary"
	"math/bits"
)

// Sum adds b, read as a sequence of big-endian 16-bit words (an odd last
// byte padded with a zero), to the ones'-complement accumulator acc and
// returns the new accumulator. Start with acc = 0 and finish with [Fold].
//
// Ones'-complement addition is associative and independent of word size
// modulo 2^16-1 (RFC 1071 §2), so the loop adds 64-bit words with an
// end-around carry, 32 bytes per iteration; this is several times faster
// than adding 16-bit words. Calls can be chained, but every call except the
// last must cover an even number of bytes, or words shift by one byte.
func Sum(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), c)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	// Fold the pending carry back in; a second carry is impossible
	// because acc+1 overflows only to 0.
	acc, c = bits.Add64(acc, c, 0)
	return acc + c
}

// Fold reduces a [Sum] accumulator to 16 bits with end-around carries. The
// result is the ones'-complement sum; the checksum field holds its
// complement.
func Fold(acc uint64) uint16 {
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	return uint16(acc)
}

// Checksum returns the internet checksum of b (RFC 1071): the complement of
// the ones'-complement sum of its 16-bit words. Computed over a header whose
// checksum field is zero, it is the value to store; computed over a header
// with its checksum in place, it is zero when the header is intact.
func Checksum(b []byte) uint16 { return ^Fold(Sum(b, 0)) }

// PseudoHeaderSum returns the accumulator of the IPv4 pseudo-header that
// TCP and UDP checksums cover (RFC 793 §3.1, RFC 768): source, destination,
// protocol and the transport segment length.
func PseudoHeaderSum(src, dst uint32, proto uint8, length int) uint64 {
	return uint64(src>>16) + uint64(src&0xffff) + uint64(dst>>16) + uint64(dst&0xffff) +
		uint64(proto) + uint64(length)
}

// TransportChecksum returns the TCP or UDP checksum of segment seg (header
// with a zero checksum field, then payload) sent from src to dst. For UDP,
// a result of 0 must be sent as 0xffff (RFC 768); [PutUDPChecksum] does so.
func TransportChecksum(src, dst uint32, proto uint8, seg []byte) uint16 {
	return ^Fold(Sum(seg, PseudoHeaderSum(src, dst, proto, len(seg))))
}

// Update16 returns checksum hc after a 16-bit word covered by it changed
// from old to new, by RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Unlike the
// older RFC 1141 form it never produces the -0 (0xffff) that a full
// recomputation would not.
func Update16(hc, old, new uint16) uint16 {
	s := uint32(^hc) + uint32(^old) + uint32(new)
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return ^uint16(s)
}

// Update32 is [Update16] for an aligned 32-bit field such as an address.
func Update32(hc uint16, old, new uint32) uint16 {
	s := uint32(^hc) + uint32(^uint16(old>>16)) + uint32(^uint16(old)) + new>>16 + new&0xffff
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return ^uint16(s)
}
