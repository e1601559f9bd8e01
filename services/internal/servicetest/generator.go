package servicetest

import (
	"bytes"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// generatorSizes are the request sizes CheckGenerator asks for: the
// default (0), a small request, the paper's 512 bytes and a full Ethernet
// frame.
var generatorSizes = []int{0, 64, 512, 1500}

// generatorRequests is how many requests CheckGenerator draws per size.
const generatorRequests = 500

// CheckGenerator checks what d.NewGenerator promises for every service,
// at several sizes: two generators of one seed produce the same requests
// and routing keys, whatever buffer Next is given (it appends to dst[:0]);
// another seed produces other requests; and each request has the size
// asked for (defaultSize when 0 is asked for). An event request must
// decode and be padded to that size unless its parts need more room; a
// packet request must be an IPv4 packet of exactly that length.
func CheckGenerator(t testing.TB, d service.Descriptor, defaultSize int) {
	t.Helper()
	for _, size := range generatorSizes {
		want := size
		if size == 0 {
			want = defaultSize
		}
		g1, g2, other := d.NewGenerator(1, size), d.NewGenerator(1, size), d.NewGenerator(2, size)
		differs := false
		for i := range generatorRequests {
			a, ka := g1.Next(nil)
			b, kb := g2.Next([]byte("leftover bytes"))
			if !bytes.Equal(a, b) || ka != kb {
				t.Fatalf("%s size %d: request %d differs between generators of seed 1", d.Name, size, i)
			}
			o, ko := other.Next(nil)
			differs = differs || ko != ka || !bytes.Equal(o, a)
			switch d.Family {
			case service.FamilyEvent:
				var ev service.Event
				if err := service.DecodeEvent(a, &ev); err != nil {
					t.Fatalf("%s size %d: request %d: %v", d.Name, size, i, err)
				}
				if len(a) != max(want, ev.EncodedLen()) {
					t.Fatalf("%s size %d: request %d is %d bytes, its parts %d", d.Name, size, i, len(a), ev.EncodedLen())
				}
			case service.FamilyPacket:
				var ip packet.IPv4
				if err := packet.ParseIPv4(a, &ip); err != nil {
					t.Fatalf("%s size %d: request %d: %v", d.Name, size, i, err)
				}
				if len(a) != want || int(ip.TotalLen) != want {
					t.Fatalf("%s size %d: request %d is %d bytes, IPv4 total length %d", d.Name, size, i, len(a), ip.TotalLen)
				}
			default:
				t.Fatalf("%s: family %v", d.Name, d.Family)
			}
		}
		if !differs {
			t.Errorf("%s size %d: seeds 1 and 2 give the same %d requests", d.Name, size, generatorRequests)
		}
	}
}
