package natv4

import (
	"bytes"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// transportOK reports whether pkt's checksums all equal a recomputation.
func transportOK(pkt []byte) bool {
	re := append([]byte(nil), pkt...)
	if packet.SetChecksums(re) != nil {
		return false
	}
	return bytes.Equal(re, pkt)
}

// FuzzHandle: any input is translated or refused with an error wrapping
// service.ErrMalformed or ErrDropped, never a panic; a translated packet
// has a correct header checksum, and correct transport checksums whenever
// the input had them.
func FuzzHandle(f *testing.F) {
	g := packet.NewGenerator(packet.GenConfig{Seed: 1, Size: 64})
	for range 6 {
		p, _ := g.Next(nil)
		f.Add(p)
	}
	h := newHandler(f, map[string]string{"routes": "500", "max_mappings": "4096", "idle_timeout": "1"})
	// Seed replies too, so the inbound path is fuzzed.
	for range 3 {
		p, _ := g.Next(nil)
		out, err := h.Process(nil, p, 0)
		if err == nil {
			f.Add(reply(f, out))
		}
	}
	c := &service.Context{}
	now := int64(0)
	f.Fuzz(func(t *testing.T, b []byte) {
		now += 1e8
		c.Reset(now, 0, nil)
		out, ok := servicetest.Reply(t, h, c, b, ErrDropped)
		if !ok {
			return
		}
		if !packet.IPv4HeaderOK(out) {
			t.Fatal("header checksum wrong after rewrite")
		}
		var ip packet.IPv4
		if packet.ParseIPv4(b, &ip) != nil {
			t.Fatal("accepted an unparsable packet")
		}
		in := b[:ip.TotalLen]
		udpNoSum := ip.Protocol == packet.ProtoUDP && len(in) >= ip.HeaderLen+8 && in[ip.HeaderLen+6] == 0 && in[ip.HeaderLen+7] == 0
		if transportOK(in) && !udpNoSum && !ip.IsFragment() && !transportOK(out) {
			t.Fatalf("valid checksums became invalid:\n in %x\nout %x", in, out)
		}
	})
}
