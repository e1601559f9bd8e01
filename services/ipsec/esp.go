package ipsec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// ESP layout constants (RFC 4303 §2, RFC 3602 §3, RFC 2404 §2).
const (
	espHeaderLen  = 8 // SPI, sequence number
	ivLen         = aes.BlockSize
	icvLen        = 12 // HMAC-SHA1-96
	trailerLen    = 2  // pad length, next header
	blockLen      = aes.BlockSize
	outerLen      = packet.IPv4HeaderLen
	espPrefixLen  = outerLen + espHeaderLen + ivLen
	minESPPayload = espHeaderLen + ivLen + blockLen + icvLen
	outerTTL      = 64
	// ivBatch random bytes are read from crypto/rand at a time: 256 IVs
	// per getrandom call instead of one.
	ivBatch = 256 * ivLen
)

// Overhead returns the length of the ESP tunnel packet that carries an
// inner packet of n bytes.
func Overhead(n int) int { return espPrefixLen + padded(n) + icvLen - n }

// padded returns the length of payload plus trailer rounded up to the AES
// block: RFC 4303 §2.4 requires the ciphertext to be a whole number of
// cipher blocks.
func padded(n int) int { return (n + trailerLen + blockLen - 1) &^ (blockLen - 1) }

// sa is one security association: keys, outbound sequence counter and
// inbound replay window. The counter and the window are per instance and in
// memory; see the package comment for why they are not in reliable
// collections.
type sa struct {
	index   int
	spi     uint32
	encKey  []byte
	authKey []byte
	block   cipher.Block // immutable after creation: shared by all cores
	xk      *aesKey      // schedules for the AES-NI loops; immutable
	seq     atomic.Uint32

	mu  sync.Mutex
	win replayWindow
}

// saCrypto is one core's cipher and MAC state for one SA. CBC modes hold
// their IV and HMAC its running hash, so they are not shared between
// concurrent calls.
type saCrypto struct {
	enc cipher.BlockMode
	dec cipher.BlockMode
	mac hash.Hash
	sum [2 * sha1.Size]byte
}

// ivSetter is implemented by the CBC modes of crypto/cipher: setting the
// IV of an existing mode avoids allocating a new one per packet.
type ivSetter interface{ SetIV([]byte) }

// worker is the per-call scratch of a handler, taken from a sync.Pool so
// concurrent calls never share one and steady state allocates nothing.
type worker struct {
	rnd   [ivBatch]byte
	rndAt int
	sas   []saCrypto
}

func newWorker(sas []*sa) *worker {
	w := &worker{rndAt: ivBatch, sas: make([]saCrypto, len(sas))}
	var zero [ivLen]byte
	for i, s := range sas {
		w.sas[i].enc = cipher.NewCBCEncrypter(s.block, zero[:])
		w.sas[i].dec = cipher.NewCBCDecrypter(s.block, zero[:])
		m := hmac.New(sha1.New, s.authKey)
		// The first Reset saves the hash states after the ipad and opad
		// blocks; later Resets and Sums restore them instead of hashing
		// the key blocks again (FIPS 198-1 §6).
		m.Reset()
		w.sas[i].mac = m
	}
	return w
}

// nextIV copies a fresh random IV into iv. RFC 3602 §2.4 requires CBC IVs
// to be unpredictable, hence crypto/rand, read ivBatch bytes at a time.
func (w *worker) nextIV(iv []byte) {
	if w.rndAt+ivLen > len(w.rnd) {
		rand.Read(w.rnd[:]) // never fails since Go 1.24
		w.rndAt = 0
	}
	copy(iv, w.rnd[w.rndAt:w.rndAt+ivLen])
	w.rndAt += ivLen
}

// encrypt encrypts buf (whole blocks, at least one) in place in CBC mode.
func (c *saCrypto) encrypt(s *sa, iv, buf []byte) {
	if haveAESNI {
		cbcEncryptAsm(&s.xk.enc[0], &iv[0], &buf[0], len(buf)/blockLen)
		return
	}
	c.enc.(ivSetter).SetIV(iv)
	c.enc.CryptBlocks(buf, buf)
}

// decrypt decrypts src (whole blocks, at least one) into dst.
func (c *saCrypto) decrypt(s *sa, iv, dst, src []byte) {
	if haveAESNI {
		cbcDecryptAsm(&s.xk.dec[0], &iv[0], &dst[0], &src[0], len(src)/blockLen)
		return
	}
	c.dec.(ivSetter).SetIV(iv)
	c.dec.CryptBlocks(dst, src)
}

// icv computes HMAC-SHA1-96 of data.
func (c *saCrypto) icv(data []byte) []byte {
	c.mac.Reset()
	c.mac.Write(data)
	return c.mac.Sum(c.sum[:0])[:icvLen]
}

// errMalformed builds an error wrapping service.ErrMalformed.
func errMalformed(format string, a ...any) error {
	return fmt.Errorf("%w: ipsec: "+format, append([]any{service.ErrMalformed}, a...)...)
}

// encap appends to dst[:0] the ESP tunnel packet carrying the IPv4 packet
// pkt: outer IPv4 header, SPI, sequence number, IV, the AES-128-CBC
// ciphertext of pkt with its padding and trailer, and the ICV.
func (h *Handler) encap(w *worker, dst, pkt []byte) ([]byte, error) {
	var ip packet.IPv4
	if err := packet.ParseIPv4(pkt, &ip); err != nil {
		return dst, err
	}
	inner := pkt[:ip.TotalLen]
	pl := padded(len(inner))
	total := espPrefixLen + pl + icvLen
	if total > packet.MaxPacketLen {
		return dst, errMalformed("inner packet of %d bytes does not fit an ESP packet (%d > 65535 bytes)", len(inner), total)
	}
	s := h.sas[int(ip.Dst>>h.saShift)&(len(h.sas)-1)]
	seq := s.seq.Add(1)
	if seq == 0 {
		// RFC 4303 §3.3.3: the counter must not cycle; the SA needs
		// rekeying, which is the control plane's job.
		s.seq.Store(^uint32(0))
		return dst, fmt.Errorf("ipsec: SA %#x: sequence number space exhausted, rekey required", s.spi)
	}
	c := &w.sas[s.index]

	out := slices.Grow(dst[:0], total)[:total]
	packet.PutIPv4(out, &packet.IPv4{
		TOS: ip.TOS, TotalLen: uint16(total), ID: uint16(seq),
		Flags: ip.Flags & packet.FlagDF, TTL: outerTTL, Protocol: packet.ProtoESP,
		Src: h.cfg.TunnelSrc, Dst: h.cfg.TunnelDst,
	})
	esp := out[outerLen:]
	binary.BigEndian.PutUint32(esp, s.spi)
	binary.BigEndian.PutUint32(esp[4:], seq)
	iv := esp[espHeaderLen : espHeaderLen+ivLen]
	w.nextIV(iv)
	body := esp[espHeaderLen+ivLen : espHeaderLen+ivLen+pl]
	n := copy(body, inner)
	padLen := pl - n - trailerLen
	for i := range padLen {
		body[n+i] = byte(i + 1) // RFC 4303 §2.4 default padding 1, 2, 3, ...
	}
	body[pl-2] = byte(padLen)
	body[pl-1] = packet.ProtoIPIP
	c.encrypt(s, iv, body)
	copy(esp[espHeaderLen+ivLen+pl:], c.icv(esp[:espHeaderLen+ivLen+pl]))
	return out, nil
}

// decap verifies and decrypts the ESP tunnel packet pkt and appends the
// inner IPv4 packet to dst[:0]. The order follows RFC 4303 §3.4: the replay
// check first (cheap), then the ICV, then the window update, then
// decryption, so forged packets neither move the window nor cost a
// decryption.
func (h *Handler) decap(w *worker, dst, pkt []byte) ([]byte, error) {
	var ip packet.IPv4
	if err := packet.ParseIPv4(pkt, &ip); err != nil {
		return dst, err
	}
	if ip.Protocol != packet.ProtoESP {
		return dst, errMalformed("outer protocol %d at offset 9, want 50 (ESP)", ip.Protocol)
	}
	if ip.IsFragment() {
		return dst, errMalformed("ESP packet is a fragment (offset %d, MF %v); reassemble first", ip.FragOff, ip.Flags&packet.FlagMF != 0)
	}
	esp := pkt[ip.HeaderLen:ip.TotalLen]
	if len(esp) < minESPPayload || (len(esp)-espHeaderLen-ivLen-icvLen)%blockLen != 0 {
		return dst, errMalformed("ESP payload of %d bytes at offset %d is not header+IV+whole AES blocks+ICV", len(esp), ip.HeaderLen)
	}
	spi := binary.BigEndian.Uint32(esp)
	idx := spi - h.cfg.SPI
	if spi < h.cfg.SPI || idx >= uint32(len(h.sas)) {
		return dst, errMalformed("unknown SPI %#x at offset %d", spi, ip.HeaderLen)
	}
	s := h.sas[idx]
	seq := binary.BigEndian.Uint32(esp[4:])
	s.mu.Lock()
	fresh := s.win.check(seq)
	s.mu.Unlock()
	if !fresh {
		return dst, fmt.Errorf("%w: SA %#x sequence number %d", ErrReplay, spi, seq)
	}
	c := &w.sas[idx]
	authLen := len(esp) - icvLen
	if !hmac.Equal(c.icv(esp[:authLen]), esp[authLen:]) {
		return dst, fmt.Errorf("%w: SA %#x sequence number %d", ErrAuth, spi, seq)
	}
	s.mu.Lock()
	fresh = s.win.accept(seq)
	s.mu.Unlock()
	if !fresh {
		return dst, fmt.Errorf("%w: SA %#x sequence number %d", ErrReplay, spi, seq)
	}
	ct := esp[espHeaderLen+ivLen : authLen]
	out := slices.Grow(dst[:0], len(ct))[:len(ct)]
	c.decrypt(s, esp[espHeaderLen:espHeaderLen+ivLen], out, ct)
	padLen := int(out[len(out)-2])
	if next := out[len(out)-1]; next != packet.ProtoIPIP {
		return dst, errMalformed("SA %#x: next header %d, want 4 (IPv4 in tunnel mode)", spi, next)
	}
	n := len(out) - trailerLen - padLen
	if n < packet.IPv4HeaderLen {
		return dst, errMalformed("SA %#x: pad length %d leaves %d bytes, less than an IPv4 header", spi, padLen, n)
	}
	for i := range padLen {
		if out[n+i] != byte(i+1) {
			return dst, errMalformed("SA %#x: padding byte %d is %d, want %d", spi, i, out[n+i], i+1)
		}
	}
	inner := out[:n]
	var in packet.IPv4
	if err := packet.ParseIPv4(inner, &in); err != nil {
		return dst, fmt.Errorf("inner packet: %w", err)
	}
	if int(in.TotalLen) != n {
		return dst, errMalformed("SA %#x: inner total length %d, but %d bytes before the padding", spi, in.TotalLen, n)
	}
	return inner, nil
}
