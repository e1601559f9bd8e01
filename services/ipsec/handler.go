package ipsec

import (
	"crypto/aes"
	"fmt"
	"math/bits"
	"sync"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

var (
	// ErrAuth reports an ESP packet whose ICV does not verify: tampered,
	// corrupted or sent with other keys. It wraps service.ErrMalformed.
	ErrAuth = fmt.Errorf("%w: ipsec: ICV verification failed", service.ErrMalformed)
	// ErrReplay reports an ESP packet whose sequence number was seen
	// before or is left of the anti-replay window. It wraps
	// service.ErrMalformed.
	ErrReplay = fmt.Errorf("%w: ipsec: replayed or too old", service.ErrMalformed)
)

// Handler is an ipsec instance: an encap or a decap gateway for a table of
// SAs. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	sas     []*sa
	saShift uint // outbound SA index = inner destination >> saShift
	pool    sync.Pool
}

// New builds a handler for cfg (see [ParseConfig]).
func New(cfg Config) (*Handler, error) {
	if cfg.SAs < 1 || cfg.SAs > 256 || bits.OnesCount(uint(cfg.SAs)) != 1 {
		return nil, fmt.Errorf("ipsec: %d SAs, want a power of two from 1 to 256", cfg.SAs)
	}
	if cfg.Mode != ModeEncap && cfg.Mode != ModeDecap {
		return nil, fmt.Errorf("ipsec: mode %q, want %q or %q", cfg.Mode, ModeEncap, ModeDecap)
	}
	h := &Handler{cfg: cfg, saShift: uint(32 - bits.TrailingZeros(uint(cfg.SAs)))}
	for i := range cfg.SAs {
		spi := cfg.SPI + uint32(i)
		enc, auth := cfg.keys(spi)
		if len(enc) != EncKeyLen || len(auth) != AuthKeyLen {
			return nil, fmt.Errorf("ipsec: SA %#x: keys of %d and %d bytes, want %d and %d", spi, len(enc), len(auth), EncKeyLen, AuthKeyLen)
		}
		b, err := aes.NewCipher(enc)
		if err != nil {
			return nil, fmt.Errorf("ipsec: SA %#x: %w", spi, err)
		}
		h.sas = append(h.sas, &sa{index: i, spi: spi, encKey: enc, authKey: auth, block: b, xk: expandKey128(enc)})
	}
	h.pool.New = func() any { return newWorker(h.sas) }
	return h, nil
}

// Process encapsulates (encap mode) or decapsulates (decap mode) pkt and
// appends the result to dst[:0]. It allocates only when dst is too small.
func (h *Handler) Process(dst, pkt []byte) ([]byte, error) {
	w := h.pool.Get().(*worker)
	var out []byte
	var err error
	if h.cfg.Mode == ModeDecap {
		out, err = h.decap(w, dst, pkt)
	} else {
		out, err = h.encap(w, dst, pkt)
	}
	h.pool.Put(w)
	return out, err
}

// Handle processes one packet: the reply is the resulting packet and the
// same packet is emitted downstream under the request's key (the inner
// flow's hash, so a flow keeps its affinity through the tunnel).
func (h *Handler) Handle(c *service.Context, req []byte) error {
	out, err := h.Process(c.Scratch, req)
	if err != nil {
		return err
	}
	c.Scratch = out[:0]
	c.Respond(out)
	c.Emit(c.Key, out)
	return nil
}

// Generator produces ESP tunnel packets for a decap instance: packets of
// [packet.Generator] encapsulated with the given config's SAs.
type Generator struct {
	inner *packet.Generator
	enc   *Handler
	buf   []byte
}

// NewDecapGenerator returns a generator of ESP packets that a decap
// instance configured with cfg accepts, carrying inner packets of size
// bytes. cfg.Mode is ignored.
func NewDecapGenerator(cfg Config, seed int64, size int) (*Generator, error) {
	cfg.Mode = ModeEncap
	h, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &Generator{inner: packet.NewGenerator(packet.GenConfig{Seed: seed, Size: size}), enc: h}, nil
}

// Next appends the next ESP packet to dst[:0] and returns it with the key
// of its inner flow.
func (g *Generator) Next(dst []byte) ([]byte, uint64) {
	var key uint64
	g.buf, key = g.inner.Next(g.buf)
	out, err := g.enc.Process(dst, g.buf)
	if err != nil {
		panic(err) // the inner generator's packets are well formed
	}
	return out, key
}
