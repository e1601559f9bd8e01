package ipsec

// This file expands AES-128 keys for the AES-NI CBC loops of
// cbc_amd64.s. crypto/cipher's CBC mode calls the block cipher once per
// 16-byte block (a Go call, an XOR call and a reload of all round keys per
// block); the loops here keep the eleven round keys in registers for the
// whole packet, which is what closes most of the gap to OpenSSL.

// aesKey holds an AES-128 key schedule in the byte order AESENC expects
// (round key r is bytes 16r..16r+15) and the equivalent inverse cipher's
// schedule for AESDEC (FIPS-197 §5.3.5).
type aesKey struct {
	enc [176]byte
	dec [176]byte
}

var sbox [256]byte

func init() {
	// Build the S-box from its definition (multiplicative inverse in
	// GF(2^8) followed by the affine map) rather than from a table: p runs
	// through the powers of the generator 3, q through those of its
	// inverse, so q = p^-1 at every step.
	p, q := byte(1), byte(1)
	for {
		p ^= p<<1 ^ byte(int8(p)>>7)&0x1b
		q ^= q << 1
		q ^= q << 2
		q ^= q << 4
		if q&0x80 != 0 {
			q ^= 0x09
		}
		x := q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4)
		sbox[p] = x ^ 0x63
		if p == 1 {
			break
		}
	}
	sbox[0] = 0x63
}

func rotl8(x byte, n uint) byte { return x<<n | x>>(8-n) }

// gmul multiplies in GF(2^8) modulo x^8+x^4+x^3+x+1.
func gmul(a, b byte) byte {
	var r byte
	for b != 0 {
		if b&1 != 0 {
			r ^= a
		}
		a = a<<1 ^ byte(int8(a)>>7)&0x1b
		b >>= 1
	}
	return r
}

// expandKey128 computes the schedules of a 16-byte key (FIPS-197 §5.2).
func expandKey128(key []byte) *aesKey {
	k := new(aesKey)
	copy(k.enc[:16], key)
	rcon := byte(1)
	for i := 16; i < 176; i += 4 {
		t := [4]byte{k.enc[i-4], k.enc[i-3], k.enc[i-2], k.enc[i-1]}
		if i%16 == 0 {
			t = [4]byte{sbox[t[1]] ^ rcon, sbox[t[2]], sbox[t[3]], sbox[t[0]]}
			rcon = gmul(rcon, 2)
		}
		for j := range 4 {
			k.enc[i+j] = k.enc[i-16+j] ^ t[j]
		}
	}
	// Equivalent inverse cipher: round keys in reverse order, the inner
	// nine passed through InvMixColumns.
	copy(k.dec[0:16], k.enc[160:176])
	copy(k.dec[160:176], k.enc[0:16])
	for r := 1; r < 10; r++ {
		src := k.enc[16*(10-r) : 16*(10-r)+16]
		dst := k.dec[16*r : 16*r+16]
		for c := 0; c < 16; c += 4 {
			a0, a1, a2, a3 := src[c], src[c+1], src[c+2], src[c+3]
			dst[c] = gmul(a0, 14) ^ gmul(a1, 11) ^ gmul(a2, 13) ^ gmul(a3, 9)
			dst[c+1] = gmul(a0, 9) ^ gmul(a1, 14) ^ gmul(a2, 11) ^ gmul(a3, 13)
			dst[c+2] = gmul(a0, 13) ^ gmul(a1, 9) ^ gmul(a2, 14) ^ gmul(a3, 11)
			dst[c+3] = gmul(a0, 11) ^ gmul(a1, 13) ^ gmul(a2, 9) ^ gmul(a3, 14)
		}
	}
	return k
}
