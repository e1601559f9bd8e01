package runtime

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/e3-platform/e3/transport"
)

// FuzzClientDatagram feeds arbitrary datagrams to an agent's client
// socket path in real mode: nothing may panic, and every datagram that
// was admitted as a request must have ended (a one-stage echo completes
// at once, anything else is refused), so nothing stays in flight.
func FuzzClientDatagram(f *testing.F) {
	h := transport.Header{Kind: transport.KindRequest, App: 1, Instance: 0, Request: 9, PayloadLen: 3}
	good, _ := h.Append(nil)
	good = append(good, "abc"...)
	f.Add(good)
	h.Instance = 7
	bad, _ := h.Append(nil)
	f.Add(append(bad, "abc"...))
	h.App = 3
	other, _ := h.Append(nil)
	f.Add(append(other, "abc"...))
	f.Add([]byte{1, 2, 3})
	ag, _, _ := singleAgent(f)
	w := newWorker(ag, -1)
	from := netip.MustParseAddrPort("10.9.9.9:1")
	f.Fuzz(func(t *testing.T, b []byte) {
		ag.bareDatagram(b, from, w)
		if n := ag.ing.pending(); n != 0 {
			t.Fatalf("%d requests still in flight after %x", n, b)
		}
	})
}

// FuzzMemcacheDatagram feeds arbitrary datagrams to the memcached UDP
// ingress in real mode: nothing may panic, and every datagram is finished
// (answered or dropped) before the next, since the KVS runs inline.
func FuzzMemcacheDatagram(f *testing.F) {
	frame := func(text string) []byte {
		b := make([]byte, 8, 8+len(text))
		binary.BigEndian.PutUint16(b[4:], 1)
		return append(b, text...)
	}
	for _, s := range []string{"get a\r\n", "set a 0 0 1\r\nx\r\n", "get a b c\r\n", "delete a\r\n", "set a 0 0 2000\r\n", "bogus\r\n", "set a 0 0 1\r\nxy\r\nget a\r\n"} {
		f.Add(frame(s))
	}
	f.Add([]byte{0, 1, 0, 0, 0, 2, 0, 0})
	nw := transport.NewNetwork(nil, nil)
	f.Cleanup(nw.Close)
	conn, _ := nw.Listen(netip.MustParseAddrPort("10.0.0.1:11211"))
	g := memcacheAgent(f, nw, conn)
	from := netip.MustParseAddrPort("10.9.9.9:1")
	f.Fuzz(func(t *testing.T, b []byte) {
		g.serve(b, from)
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, p := range g.pending {
			if p != nil {
				t.Fatalf("datagram %q left unfinished", b)
			}
		}
	})
}
