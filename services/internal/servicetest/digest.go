package servicetest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
)

// Digest accumulates a SHA-256 fingerprint of generated data (requests,
// replies, corpora, models) for tests that pin a service's behaviour.
// Variable-length values are written with their length, so that moving a
// boundary changes the fingerprint.
type Digest struct{ h hash.Hash }

// NewDigest returns an empty Digest.
func NewDigest() *Digest { return &Digest{sha256.New()} }

// Uint adds v.
func (d *Digest) Uint(v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	d.h.Write(b[:])
}

// Float adds the bits of v.
func (d *Digest) Float(v float64) { d.Uint(math.Float64bits(v)) }

// Bytes adds the length and bytes of b.
func (d *Digest) Bytes(b []byte) {
	d.Uint(uint64(len(b)))
	d.h.Write(b)
}

// Text adds the length and bytes of s.
func (d *Digest) Text(s string) {
	d.Uint(uint64(len(s)))
	d.h.Write([]byte(s))
}

// Hex returns the fingerprint so far in hexadecimal.
func (d *Digest) Hex() string { return hex.EncodeToString(d.h.Sum(nil)) }
