package packet

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// naiveSum is RFC 1071 §4.1 written out: 16-bit words, 32-bit accumulator,
// folded at the end.
func naiveSum(b []byte) uint16 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestSumMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if got, want := Fold(Sum(b, 0)), naiveSum(b); got != want {
			t.Fatalf("len %d: Fold(Sum) = %#04x, naive %#04x", n, got, want)
		}
		// All-ones data drives every carry path.
		for i := range b {
			b[i] = 0xff
		}
		if got, want := Fold(Sum(b, 0)), naiveSum(b); got != want {
			t.Fatalf("len %d all ones: Fold(Sum) = %#04x, naive %#04x", n, got, want)
		}
	}
}

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(Sum(b, 0)); got != 0xddf2 {
		t.Fatalf("sum = %#04x, want 0xddf2", got)
	}
	if got := Checksum(b); got != ^uint16(0xddf2) {
		t.Fatalf("checksum = %#04x, want %#04x", got, ^uint16(0xddf2))
	}
}

// gopacketPacket serialises a packet with gopacket computing every
// checksum: the independent reference.
func gopacketPacket(t testing.TB, rng *rand.Rand, proto uint8, payloadLen int) []byte {
	t.Helper()
	ip := &layers.IPv4{
		Version: 4, IHL: 5, TTL: uint8(rng.Uint32()), Id: uint16(rng.Uint32()),
		Flags:    layers.IPv4DontFragment,
		Protocol: layers.IPProtocol(proto),
		SrcIP:    randIP(rng), DstIP: randIP(rng),
	}
	payload := make([]byte, payloadLen)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	var err error
	switch proto {
	case ProtoTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(rng.Uint32()), DstPort: layers.TCPPort(rng.Uint32()),
			Seq: rng.Uint32(), Ack: rng.Uint32(), ACK: true, PSH: true, Window: uint16(rng.Uint32())}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		err = gopacket.SerializeLayers(buf, opts, ip, tcp, gopacket.Payload(payload))
	case ProtoUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(rng.Uint32()), DstPort: layers.UDPPort(rng.Uint32())}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		err = gopacket.SerializeLayers(buf, opts, ip, udp, gopacket.Payload(payload))
	default:
		err = gopacket.SerializeLayers(buf, opts, ip, gopacket.Payload(payload))
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randIP(rng *rand.Rand) []byte {
	a := AddrBytes(rng.Uint32())
	return a[:]
}

// TestChecksumsAgainstGopacket recomputes, with this package, the IPv4,
// TCP and UDP checksums gopacket wrote, for many sizes including odd ones.
func TestChecksumsAgainstGopacket(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, proto := range []uint8{ProtoTCP, ProtoUDP} {
		for n := 0; n < 200; n++ {
			pkt := gopacketPacket(t, rng, proto, n*7%1500)
			var h IPv4
			if err := ParseIPv4(pkt, &h); err != nil {
				t.Fatal(err)
			}
			if !IPv4HeaderOK(pkt) {
				t.Fatalf("proto %d len %d: header checksum %#04x from gopacket does not verify", proto, len(pkt), h.Checksum)
			}
			want := h.Checksum
			cp := append([]byte(nil), pkt...)
			cp[10], cp[11] = 0, 0
			if got := Checksum(cp[:20]); got != want {
				t.Fatalf("ipv4 checksum %#04x, gopacket %#04x", got, want)
			}
			seg := cp[20:]
			off := TCPOffChecksum
			if proto == ProtoUDP {
				off = UDPOffChecksum
			}
			wantL4 := binary.BigEndian.Uint16(seg[off:])
			if proto == ProtoTCP {
				PutTCPChecksum(seg, h.Src, h.Dst)
			} else {
				PutUDPChecksum(seg, h.Src, h.Dst)
			}
			if got := binary.BigEndian.Uint16(seg[off:]); got != wantL4 {
				t.Fatalf("proto %d payload %d: checksum %#04x, gopacket %#04x", proto, len(seg), got, wantL4)
			}
		}
	}
}

// TestIncrementalUpdate rewrites addresses and ports of gopacket-built
// packets with Update16/Update32 and checks against full recomputation.
func TestIncrementalUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 500; n++ {
		pkt := gopacketPacket(t, rng, ProtoTCP, rng.IntN(600))
		var h IPv4
		if err := ParseIPv4(pkt, &h); err != nil {
			t.Fatal(err)
		}
		newSrc := rng.Uint32()
		if n%50 == 0 {
			newSrc = h.Src // no-op rewrite must leave the checksum alone
		}
		newPort := uint16(rng.Uint32())
		hc := binary.BigEndian.Uint16(pkt[10:])
		binary.BigEndian.PutUint32(pkt[12:], newSrc)
		binary.BigEndian.PutUint16(pkt[10:], Update32(hc, h.Src, newSrc))
		seg := pkt[20:]
		tc := binary.BigEndian.Uint16(seg[16:])
		tc = Update32(tc, h.Src, newSrc)
		tc = Update16(tc, binary.BigEndian.Uint16(seg), newPort)
		binary.BigEndian.PutUint16(seg, newPort)
		binary.BigEndian.PutUint16(seg[16:], tc)

		if !IPv4HeaderOK(pkt) {
			t.Fatalf("ipv4 checksum wrong after incremental update")
		}
		want := append([]byte(nil), seg...)
		PutTCPChecksum(want, newSrc, h.Dst)
		if got, w := tc, binary.BigEndian.Uint16(want[16:]); got != w {
			t.Fatalf("tcp checksum %#04x after update, recomputed %#04x", got, w)
		}
		// gopacket agrees the rewritten packet is intact.
		p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil {
			t.Fatal("gopacket found no TCP layer")
		}
		if err := tcp.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
			t.Fatal(err)
		}
		if err, res := tcp.VerifyChecksum(); err != nil || !res.Valid {
			t.Fatalf("gopacket: tcp checksum invalid after update: %v %+v", err, res)
		}
		// and that it notices when the update is skipped.
		seg[16] ^= 0x01
		p = gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
		tcp = p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if err := tcp.SetNetworkLayerForChecksum(p.NetworkLayer()); err != nil {
			t.Fatal(err)
		}
		if err, res := tcp.VerifyChecksum(); err != nil || res.Valid {
			t.Fatalf("gopacket accepted a corrupted checksum: %v %+v", err, res)
		}
	}
}

func TestUpdate16Exhaustive(t *testing.T) {
	// Every old/new pair for a few checksums: the incremental result must
	// equal the checksum recomputed over a two-word message.
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		a, old, nw := uint16(rng.Uint32()), uint16(rng.Uint32()), uint16(rng.Uint32())
		var b [4]byte
		binary.BigEndian.PutUint16(b[:], a)
		binary.BigEndian.PutUint16(b[2:], old)
		hc := Checksum(b[:])
		binary.BigEndian.PutUint16(b[2:], nw)
		if got, want := Update16(hc, old, nw), Checksum(b[:]); got != want {
			t.Fatalf("Update16(%#x, %#x, %#x) = %#x, recomputed %#x", hc, old, nw, got, want)
		}
	}
}

func TestChecksumNoAllocs(t *testing.T) {
	b := make([]byte, 1500)
	if n := testing.AllocsPerRun(100, func() { _ = Checksum(b) }); n != 0 {
		t.Fatalf("Checksum allocates %v times", n)
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 512, 1500} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i)
		}
		b.Run(itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				_ = Checksum(buf)
			}
		})
	}
}

// BenchmarkChecksumNaive is the 16-bit loop, for comparison.
func BenchmarkChecksumNaive(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	for b.Loop() {
		_ = naiveSum(buf)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
