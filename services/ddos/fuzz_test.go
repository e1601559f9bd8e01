package ddos

import (
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// FuzzHandle: any input enters the window or is refused with an error
// wrapping service.ErrMalformed; never a panic, and the window's counts
// always add up.
func FuzzHandle(f *testing.F) {
	g := packet.NewGenerator(packet.GenConfig{Seed: 1, Size: 40})
	for range 4 {
		p, _ := g.Next(nil)
		f.Add(p)
	}
	h := newHandler(f, map[string]string{"window": "64", "window_ms": "5", "min_packets": "8"}, nil)
	c := &service.Context{}
	now := int64(0)
	f.Fuzz(func(t *testing.T, b []byte) {
		now += 1e5
		c.Reset(now, 0, nil)
		if _, ok := servicetest.Reply(t, h, c, b); !ok {
			return
		}
		if len(c.Response()) != ReplyLen {
			t.Fatalf("reply of %d bytes", len(c.Response()))
		}
		st := h.State()
		var sum uint64
		h.counts.Range(func(_ uint32, c uint64) bool { sum += c; return true })
		if int(sum) != st.Packets || st.Packets < 1 || st.Packets > 64 {
			t.Fatalf("counts sum %d, window %d", sum, st.Packets)
		}
	})
}
