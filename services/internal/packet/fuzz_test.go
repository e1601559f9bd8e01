package packet

import (
	"errors"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// FuzzParse feeds arbitrary bytes to every parser. None may panic; errors
// must wrap service.ErrMalformed; accepted headers must be consistent with
// the input and with gopacket's decoding of it; Sum must agree with the
// naive RFC 1071 loop.
func FuzzParse(f *testing.F) {
	g := NewGenerator(GenConfig{Seed: 1, Size: 80})
	for range 4 {
		p, _ := g.Next(nil)
		f.Add(p)
	}
	f.Add([]byte{0x45, 0, 0, 20})
	f.Add([]byte{0x4f, 0, 0, 60, 0, 0, 0x20, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Fold(Sum(b, 0)), naiveSum(b); got != want {
			t.Fatalf("Sum %#x, naive %#x", got, want)
		}
		_ = IPv4HeaderOK(b)
		var u UDP
		if err := ParseUDP(b, &u); err == nil {
			if int(u.Length) > len(b) || u.Length < 8 {
				t.Fatalf("udp length %d accepted for %d bytes", u.Length, len(b))
			}
		} else if !errors.Is(err, service.ErrMalformed) {
			t.Fatal(err)
		}
		var tc TCP
		if err := ParseTCP(b, &tc); err == nil {
			if tc.HeaderLen > len(b) || tc.HeaderLen < 20 {
				t.Fatalf("tcp header length %d accepted for %d bytes", tc.HeaderLen, len(b))
			}
		} else if !errors.Is(err, service.ErrMalformed) {
			t.Fatal(err)
		}
		var h IPv4
		err := ParseIPv4(b, &h)
		if err != nil {
			if !errors.Is(err, service.ErrMalformed) {
				t.Fatal(err)
			}
			if _, err2 := ParseFiveTuple(b); err2 == nil {
				t.Fatal("ParseFiveTuple accepted what ParseIPv4 rejected")
			}
			return
		}
		if h.HeaderLen < 20 || h.HeaderLen > int(h.TotalLen) || int(h.TotalLen) > len(b) {
			t.Fatalf("inconsistent header accepted: %+v for %d bytes", h, len(b))
		}
		// gopacket also validates IP options, which this package skips
		// (no packet service acts on them); compare where it accepts and
		// demand acceptance for option-less headers.
		var ip layers.IPv4
		if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
			if h.HeaderLen == IPv4HeaderLen {
				t.Fatalf("we accepted, gopacket rejected: %v", err)
			}
		} else if ip.Length != h.TotalLen || uint8(ip.Protocol) != h.Protocol || ip.FragOffset != h.FragOff ||
			AddrString(h.Src) != ip.SrcIP.String() {
			t.Fatalf("header %+v, gopacket %+v", h, ip)
		}
		ft, err := FiveTupleOf(b, &h)
		if err != nil {
			if !errors.Is(err, service.ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if ft.Src != h.Src || ft.Dst != h.Dst || ft.Proto != h.Protocol {
			t.Fatalf("tuple %v from header %+v", ft, h)
		}
		cp := append([]byte(nil), b...)
		if err := SetChecksums(cp); err != nil {
			if !errors.Is(err, service.ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if !IPv4HeaderOK(cp) {
			t.Fatal("SetChecksums left a bad header checksum")
		}
	})
}
