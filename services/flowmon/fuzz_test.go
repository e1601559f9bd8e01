package flowmon

import (
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// FuzzHandle: any input is counted (and then the total grows by one) or
// refused with an error wrapping service.ErrMalformed; never a panic.
func FuzzHandle(f *testing.F) {
	g := packet.NewGenerator(packet.GenConfig{Seed: 1, Size: 64})
	for range 4 {
		p, _ := g.Next(nil)
		f.Add(p)
	}
	f.Add(ReportRequest)
	h := newHandler(f, map[string]string{"width": "64", "hh_threshold": "0.2"}, nil)
	c := &service.Context{}
	f.Fuzz(func(t *testing.T, b []byte) {
		before := h.Total()
		c.Reset(0, 0, nil)
		_, ok := servicetest.Reply(t, h, c, b)
		switch {
		case !ok:
			if h.Total() != before {
				t.Fatal("a refused packet was counted")
			}
		case string(b) == string(ReportRequest):
			if _, _, err := DecodeReport(c.Response()); err != nil {
				t.Fatal(err)
			}
		default:
			if h.Total() != before+1 || len(c.Response()) != 8 {
				t.Fatalf("accepted packet: total %d -> %d, reply %d bytes", before, h.Total(), len(c.Response()))
			}
		}
	})
}
