package ipsec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func newPair(t testing.TB, conf map[string]string) (enc, dec *Handler) {
	t.Helper()
	m := map[string]string{}
	for k, v := range conf {
		m[k] = v
	}
	m["mode"] = ModeEncap
	he, err := Descriptor.New(service.Env{Config: m})
	if err != nil {
		t.Fatal(err)
	}
	m["mode"] = ModeDecap
	hd, err := Descriptor.New(service.Env{Config: m})
	if err != nil {
		t.Fatal(err)
	}
	return he.(*Handler), hd.(*Handler)
}

// TestGenerator checks the descriptor's generator, the one load generation
// uses, against the contract every service generator keeps.
func TestGenerator(t *testing.T) { servicetest.CheckGenerator(t, Descriptor, packet.DefaultSize) }

func TestRoundTrip(t *testing.T) {
	for _, conf := range []map[string]string{
		nil,
		{"sa_count": "1", "enc_key": "000102030405060708090a0b0c0d0e0f", "auth_key": "404142434445464748494a4b4c4d4e4f50515253"},
		{"sa_count": "256", "spi": "0x20000", "key_seed": "other"},
	} {
		enc, dec := newPair(t, conf)
		for _, size := range []int{28, 40, 64, 511, 512, 513, 1500, 9000} {
			g := packet.NewGenerator(packet.GenConfig{Seed: int64(size), Size: size})
			for range 50 {
				in, key := g.Next(nil)
				c := &service.Context{}
				c.Reset(0, key, nil)
				if err := enc.Handle(c, in); err != nil {
					t.Fatal(err)
				}
				esp := append([]byte(nil), c.Response()...)
				if len(esp) != len(in)+Overhead(len(in)) {
					t.Fatalf("ESP packet of %d bytes for %d inner, Overhead says %d", len(esp), len(in), Overhead(len(in)))
				}
				if c.Emitted() != 1 {
					t.Fatalf("encap emitted %d messages", c.Emitted())
				}
				if !packet.IPv4HeaderOK(esp) {
					t.Fatal("outer header checksum wrong")
				}
				c.Reset(0, key, nil)
				if err := dec.Handle(c, esp); err != nil {
					t.Fatalf("conf %v size %d: %v", conf, size, err)
				}
				if !bytes.Equal(c.Response(), in) {
					t.Fatalf("round trip changed the packet:\n in %x\nout %x", in, c.Response())
				}
			}
		}
	}
}

// TestWireFormat checks the encap output against an ESP packet built here
// independently from the RFCs with crypto/cipher and crypto/hmac, and
// decodes it with gopacket.
func TestWireFormat(t *testing.T) {
	ek := unhex(t, "000102030405060708090a0b0c0d0e0f")
	ak := unhex(t, "404142434445464748494a4b4c4d4e4f50515253")
	enc, _ := newPair(t, map[string]string{"sa_count": "1", "spi": "4660", "enc_key": hexs(ek), "auth_key": hexs(ak),
		"tunnel_src": "10.9.8.7", "tunnel_dst": "172.16.5.4"})
	g := packet.NewGenerator(packet.GenConfig{Seed: 5, Size: 100})
	for seq := uint32(1); seq <= 5; seq++ {
		in, _ := g.Next(nil)
		out, err := enc.Process(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(out, layers.LayerTypeIPv4, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		esp, _ := p.Layer(layers.LayerTypeIPSecESP).(*layers.IPSecESP)
		if ip == nil || esp == nil {
			t.Fatalf("gopacket did not decode IPv4/ESP: %v", p)
		}
		if ip.Protocol != layers.IPProtocolESP || ip.SrcIP.String() != "10.9.8.7" || ip.DstIP.String() != "172.16.5.4" || int(ip.Length) != len(out) {
			t.Fatalf("outer header %+v", ip)
		}
		if err, res := ip.VerifyChecksum(); err != nil || !res.Valid {
			t.Fatalf("outer checksum: %v %+v", err, res)
		}
		if esp.SPI != 4660 || esp.Seq != seq {
			t.Fatalf("SPI %d seq %d, want 4660 and %d", esp.SPI, esp.Seq, seq)
		}
		// The expected bytes, from the RFCs: payload || padding 1,2,.. ||
		// pad length || next header 4, padded to 16 bytes (RFC 4303 §2.4),
		// AES-128-CBC under the IV that precedes it (RFC 3602 §3),
		// then HMAC-SHA1 over SPI..ciphertext truncated to 96 bits
		// (RFC 2404, RFC 4303 §2.8).
		iv := esp.Encrypted[:16]
		pt := append([]byte(nil), in...)
		for i := byte(1); (len(pt)+2)%16 != 0; i++ {
			pt = append(pt, i)
		}
		pt = append(pt, byte(len(pt)-len(in)), 4)
		ct := make([]byte, len(pt))
		cipher.NewCBCEncrypter(mustAES(t, ek), iv).CryptBlocks(ct, pt)
		m := hmac.New(sha1.New, ak)
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:], 4660)
		binary.BigEndian.PutUint32(hdr[4:], seq)
		m.Write(hdr[:])
		m.Write(iv)
		m.Write(ct)
		want := append(append(append(hdr[:], iv...), ct...), m.Sum(nil)[:12]...)
		if !bytes.Equal(out[20:], want) {
			t.Fatalf("ESP payload differs from the independent construction:\n got %x\nwant %x", out[20:], want)
		}
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}

func TestIVsDiffer(t *testing.T) {
	enc, _ := newPair(t, nil)
	in, _ := packet.NewGenerator(packet.GenConfig{Seed: 1}).Next(nil)
	seen := map[string]bool{}
	for range 1000 {
		out, err := enc.Process(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		iv := string(out[28:44])
		if seen[iv] {
			t.Fatal("an IV repeated within 1000 packets")
		}
		seen[iv] = true
	}
}

// TestTamperingRejected flips every bit of an ESP packet after the outer
// header, one at a time: each must fail the ICV (or, for the SPI, name an
// unknown SA) and none may be accepted.
func TestTamperingRejected(t *testing.T) {
	enc, dec := newPair(t, map[string]string{"sa_count": "1"})
	in, _ := packet.NewGenerator(packet.GenConfig{Seed: 2, Size: 100}).Next(nil)
	esp, err := enc.Process(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	for bit := 20 * 8; bit < len(esp)*8; bit++ {
		bad := append([]byte(nil), esp...)
		bad[bit/8] ^= 1 << (bit % 8)
		_, err := dec.Process(nil, bad)
		if err == nil {
			t.Fatalf("bit %d flipped: packet accepted", bit)
		}
		if !errors.Is(err, service.ErrMalformed) {
			t.Fatalf("bit %d: error %v does not wrap ErrMalformed", bit, err)
		}
		switch {
		case bit < 24*8: // SPI: no such SA
		case bit < 28*8 && errors.Is(err, ErrReplay): // sequence 1 -> 0
		case !errors.Is(err, ErrAuth):
			t.Fatalf("bit %d: %v, want an ICV failure", bit, err)
		}
	}
	// The untouched packet is still accepted: the forgeries moved nothing.
	if _, err := dec.Process(nil, esp); err != nil {
		t.Fatalf("genuine packet rejected after forgeries: %v", err)
	}
}

func TestReplayWindow(t *testing.T) {
	enc, dec := newPair(t, map[string]string{"sa_count": "1"})
	g := packet.NewGenerator(packet.GenConfig{Seed: 3, Size: 60})
	var pkts [][]byte // pkts[i] has sequence number i+1
	for range 200 {
		in, _ := g.Next(nil)
		out, err := enc.Process(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, out)
	}
	accept := func(seq int) error { _, err := dec.Process(nil, pkts[seq-1]); return err }
	mustAccept := func(seq int) {
		t.Helper()
		if err := accept(seq); err != nil {
			t.Fatalf("seq %d rejected: %v", seq, err)
		}
	}
	mustReplay := func(seq int) {
		t.Helper()
		if err := accept(seq); !errors.Is(err, ErrReplay) {
			t.Fatalf("seq %d: %v, want ErrReplay", seq, err)
		}
	}
	mustAccept(1)
	mustReplay(1) // duplicate
	mustAccept(3)
	mustAccept(2) // out of order within the window
	mustReplay(2)
	mustAccept(100) // window slides to 37..100
	mustReplay(100)
	mustReplay(36) // left of the window
	mustAccept(37) // leftmost slot still open
	mustReplay(37)
	mustAccept(70)
	mustAccept(164) // slides by exactly 64: 101..164
	mustReplay(100)
	mustAccept(101)
	mustAccept(200) // slides by 36
	mustReplay(136)
	mustAccept(137)
	mustReplay(164)
}

// TestReplayWindowModel checks the bitmap against a set-based model of
// RFC 4303 §3.4.3 on random sequences.
func TestReplayWindowModel(t *testing.T) {
	var w replayWindow
	seen := map[uint32]bool{}
	var top uint32
	x := uint64(12345)
	for range 100000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		seq := uint32(int64(top) + int64(x%100) - 70)
		if int64(top)+int64(x%100)-70 < 0 {
			seq = 0
		}
		want := seq != 0 && !seen[seq] && (seq > top || top-seq < ReplayWindowSize)
		if got := w.accept(seq); got != want {
			t.Fatalf("seq %d top %d: accept %v, model %v", seq, top, got, want)
		}
		if want {
			seen[seq] = true
			top = max(top, seq)
		}
	}
}

func TestMalformed(t *testing.T) {
	enc, dec := newPair(t, map[string]string{"sa_count": "1"})
	in, _ := packet.NewGenerator(packet.GenConfig{Seed: 4, Size: 64}).Next(nil)
	esp, _ := enc.Process(nil, in)
	cases := map[string]struct {
		h   *Handler
		pkt []byte
	}{
		"encap empty":          {enc, nil},
		"encap short":          {enc, in[:10]},
		"encap not ipv4":       {enc, append([]byte{0x60}, in[1:]...)},
		"decap empty":          {dec, nil},
		"decap not esp":        {dec, in},
		"decap truncated":      {dec, trunc(esp, 60)},
		"decap partial block":  {dec, trunc(esp, len(esp)-1)},
		"decap unknown spi":    {dec, setU32(esp, 20, 0x9999)},
		"decap zero sequence":  {dec, setU32(esp, 24, 0)},
		"decap fragment":       {dec, withFrag(esp)},
		"encap too big":        {enc, bigPacket()},
		"decap icv wrong":      {dec, setU32(esp, len(esp)-4, 0)},
		"decap bad tail (len)": {dec, trunc(esp, len(esp)-16)},
	}
	for name, c := range cases {
		_, err := c.h.Process(nil, c.pkt)
		if !errors.Is(err, service.ErrMalformed) {
			t.Errorf("%s: %v, want an error wrapping ErrMalformed", name, err)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}

// trunc shortens an ESP packet and fixes its total length and checksum so
// only the ESP part is wrong.
func trunc(p []byte, n int) []byte {
	q := append([]byte(nil), p[:n]...)
	binary.BigEndian.PutUint16(q[2:], uint16(n))
	_ = packet.SetChecksums(q)
	return q
}

func setU32(p []byte, off int, v uint32) []byte {
	q := append([]byte(nil), p...)
	binary.BigEndian.PutUint32(q[off:], v)
	return q
}

func withFrag(p []byte) []byte {
	q := append([]byte(nil), p...)
	q[6] |= 0x20 // MF
	_ = packet.SetChecksums(q)
	return q
}

func bigPacket() []byte {
	p, _ := packet.NewGenerator(packet.GenConfig{Seed: 1, Size: 65535}).Next(nil)
	return p
}

// TestConcurrent runs encap and decap from several goroutines: every
// packet must survive and every sequence number be used once.
func TestConcurrent(t *testing.T) {
	enc, dec := newPair(t, map[string]string{"sa_count": "4"})
	const workers, per = 4, 500
	outs := make(chan []byte, workers*per)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := packet.NewGenerator(packet.GenConfig{Seed: int64(w), Size: 200})
			c := &service.Context{}
			for range per {
				in, key := g.Next(nil)
				c.Reset(0, key, nil)
				if err := enc.Handle(c, in); err != nil {
					t.Error(err)
					return
				}
				outs <- append([]byte(nil), c.Response()...)
			}
		}()
	}
	wg.Wait()
	close(outs)
	var all [][]byte
	for o := range outs {
		all = append(all, o)
	}
	seqs := map[[2]uint32]bool{}
	for _, o := range all {
		k := [2]uint32{binary.BigEndian.Uint32(o[20:]), binary.BigEndian.Uint32(o[24:])}
		if seqs[k] {
			t.Fatalf("SPI %#x sequence %d used twice", k[0], k[1])
		}
		seqs[k] = true
	}
	var accepted sync.WaitGroup
	errs := make(chan error, len(all))
	for w := range workers {
		accepted.Add(1)
		go func() {
			defer accepted.Done()
			c := &service.Context{}
			for i := w; i < len(all); i += workers {
				c.Reset(0, 0, nil)
				if err := dec.Handle(c, all[i]); err != nil {
					errs <- err
				}
			}
		}()
	}
	accepted.Wait()
	close(errs)
	// Packets from four encap goroutines arrive out of order; the window
	// (64) may legitimately drop the ones that fall too far behind.
	n := 0
	for err := range errs {
		if !errors.Is(err, ErrReplay) {
			t.Fatal(err)
		}
		n++
	}
	t.Logf("%d of %d packets left of the window after reordering", n, len(all))
}

func TestNoAllocs(t *testing.T) {
	if servicetest.RaceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, mode := range []string{ModeEncap, ModeDecap} {
		h, err := Descriptor.New(service.Env{Config: map[string]string{"mode": mode}})
		if err != nil {
			t.Fatal(err)
		}
		var gen service.Generator = Descriptor.NewGenerator(1, 512)
		if mode == ModeDecap {
			cfg, _ := ParseConfig(nil)
			gen, _ = NewDecapGenerator(cfg, 1, 512)
		}
		reqs, _ := servicetest.Requests(gen, 600)
		c := &service.Context{Scratch: make([]byte, 0, 4096)}
		// 501 calls: each decap packet once, so none is a replay.
		if allocs := servicetest.HandleAllocs(t, h, c, 500, reqs); allocs != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", mode, allocs)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, m := range []map[string]string{
		{"mode": "tunnel"},
		{"sa_count": "3"},
		{"sa_count": "512"},
		{"spi": "12"},
		{"spi": "0xffffffff", "sa_count": "2"},
		{"tunnel_src": "::1"},
		{"enc_key": "0011"},
		{"auth_key": "zz"},
		{"key_seed": ""},
	} {
		if _, err := Descriptor.New(service.Env{Config: m}); err == nil {
			t.Errorf("config %v accepted", m)
		} else {
			t.Logf("%v: %v", m, err)
		}
	}
}

func TestKeyDerivationDeterministic(t *testing.T) {
	a, _ := ParseConfig(nil)
	e1, a1 := a.keys(0x1000)
	e2, a2 := a.keys(0x1000)
	e3, _ := a.keys(0x1001)
	if !bytes.Equal(e1, e2) || !bytes.Equal(a1, a2) || bytes.Equal(e1, e3) || len(e1) != 16 || len(a1) != 20 {
		t.Fatal("derived keys not deterministic per SPI or of the wrong length")
	}
	_ = aes.BlockSize
}

// sealRaw builds an ESP packet for SA 0 of h around an arbitrary
// plaintext (already padded to whole blocks), with a valid ICV, to test
// what decap does with trailers encap never produces.
func sealRaw(t *testing.T, h *Handler, seq uint32, pt []byte) []byte {
	t.Helper()
	s := h.sas[0]
	w := newWorker(h.sas)
	total := espPrefixLen + len(pt) + icvLen
	out := make([]byte, total)
	packet.PutIPv4(out, &packet.IPv4{TotalLen: uint16(total), TTL: 64, Protocol: packet.ProtoESP, Src: 1, Dst: 2})
	binary.BigEndian.PutUint32(out[20:], s.spi)
	binary.BigEndian.PutUint32(out[24:], seq)
	iv := out[28:44]
	copy(iv, "0123456789abcdef")
	copy(out[44:], pt)
	w.sas[0].encrypt(s, iv, out[44:44+len(pt)])
	copy(out[44+len(pt):], w.sas[0].icv(out[20:44+len(pt)]))
	return out
}

func TestDecapBadTrailer(t *testing.T) {
	_, dec := newPair(t, map[string]string{"sa_count": "1"})
	inner, _ := packet.NewGenerator(packet.GenConfig{Seed: 6, Size: 46}).Next(nil)
	good := append(append([]byte(nil), inner...), 0, 4) // 48 bytes, no padding
	if _, err := dec.Process(nil, sealRaw(t, dec, 1, good)); err != nil {
		t.Fatalf("well-formed raw packet rejected: %v", err)
	}
	cases := map[string][]byte{
		"next header 41":    append(append([]byte(nil), inner...), 0, 41),
		"pad length 60":     append(append([]byte(nil), inner...), 60, 4),
		"padding not 1,2,3": append(append([]byte(nil), inner[:44]...), 1, 7, 2, 4),
		"inner length":      append(append([]byte(nil), inner[:44]...), 1, 2, 2, 4),
	}
	seq := uint32(2)
	for name, pt := range cases {
		_, err := dec.Process(nil, sealRaw(t, dec, seq, pt))
		seq++
		if !errors.Is(err, service.ErrMalformed) || errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v, want a malformed-trailer error", name, err)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}
