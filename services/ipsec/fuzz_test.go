package ipsec

import (
	"bytes"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// FuzzEncap: any input either is encapsulated into a packet that decap
// turns back into the input's IPv4 packet, or is rejected with an error
// wrapping ErrMalformed; never a panic.
func FuzzEncap(f *testing.F) {
	g := packet.NewGenerator(packet.GenConfig{Seed: 1, Size: 64})
	for range 4 {
		p, _ := g.Next(nil)
		f.Add(p)
	}
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	enc, dec := newPair(f, map[string]string{"sa_count": "4"})
	c := &service.Context{}
	f.Fuzz(func(t *testing.T, b []byte) {
		c.Reset(0, 0, nil)
		out, ok := servicetest.Reply(t, enc, c, b)
		if !ok {
			return
		}
		esp := append([]byte(nil), out...)
		var ip packet.IPv4
		if perr := packet.ParseIPv4(b, &ip); perr != nil {
			t.Fatalf("encap accepted what ParseIPv4 rejects: %v", perr)
		}
		inner, err := dec.Process(nil, esp)
		if err != nil {
			t.Fatalf("decap of our own packet: %v", err)
		}
		if !bytes.Equal(inner, b[:ip.TotalLen]) {
			t.Fatalf("round trip changed the packet")
		}
	})
}

// FuzzDecap: arbitrary bytes, seeded with genuine ESP packets, are either
// decapsulated to a well-formed IPv4 packet or rejected with an error
// wrapping ErrMalformed; never a panic.
func FuzzDecap(f *testing.F) {
	cfg, err := ParseConfig(map[string]string{"sa_count": "2"})
	if err != nil {
		f.Fatal(err)
	}
	g, err := NewDecapGenerator(cfg, 1, 60)
	if err != nil {
		f.Fatal(err)
	}
	for range 8 {
		p, _ := g.Next(nil)
		f.Add(p)
	}
	cfg.Mode = ModeDecap
	dec, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	c := &service.Context{}
	f.Fuzz(func(t *testing.T, b []byte) {
		c.Reset(0, 0, nil)
		if _, ok := servicetest.Reply(t, dec, c, b); !ok {
			return
		}
		var ip packet.IPv4
		if err := packet.ParseIPv4(c.Response(), &ip); err != nil || int(ip.TotalLen) != len(c.Response()) {
			t.Fatalf("decap returned a bad inner packet: %v", err)
		}
	})
}
