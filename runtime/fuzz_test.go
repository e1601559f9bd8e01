package runtime

import (
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/collections/durable"

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

// FuzzControlMessage feeds arbitrary control messages to the decoder and
// the stream assembler: nothing may panic, a message the decoder accepts
// re-encodes to the same header, and no stream stays half assembled past
// the bound.
func FuzzControlMessage(f *testing.F) {
	chunk := ctlHeader{kind: ctlChunk, op: opReplicate, app: 1, stream: 7, total: 5}
	f.Add(append(chunk.append(nil), "hello"...))
	chunk.total, chunk.offset = 10, 5
	f.Add(append(chunk.append(nil), "world"...))
	ack := ctlHeader{kind: ctlAck, stream: 7}
	f.Add(append(ack.append(nil), 1, 0, 0, 0, 0, 0, 0, 0))
	nack := ctlHeader{kind: ctlNack, stream: 7}
	f.Add(append(nack.append(nil), "no"...))
	f.Add([]byte{1, 2, 3})
	ag, _, _ := singleAgent(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := decodeControl(b)
		if err == nil {
			if got := h.append(nil); string(got) != string(b[:ctlHeaderSize]) {
				t.Fatalf("header %x re-encodes as %x", b[:ctlHeaderSize], got)
			}
			if h.kind == ctlChunk && (len(p) == 0 || int(h.offset)+len(p) > int(h.total)) {
				t.Fatalf("accepted a chunk of %d bytes at %d of %d", len(p), h.offset, h.total)
			}
		}
		// Assembling must not panic whatever arrives (no channel: a
		// complete stream's answer fails to send, which is fine here).
		ag.ctlInputNoChannel(b)
		ag.ctl.mu.Lock()
		n := len(ag.ctl.partial)
		ag.ctl.mu.Unlock()
		if n > ctlMaxPartial {
			t.Fatalf("%d partial streams", n)
		}
	})
}

// FuzzHandOver feeds arbitrary bytes to the hand-over and memory-bundle
// decoders: errors, never panics, and a bundle that decodes re-encodes to
// the same bytes.
func FuzzHandOver(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add(encodeHandOverForFuzz())
	mem, _ := encodeCollections(nil, nil)
	f.Add(mem)
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, tail, err := decodeHandOver(b)
		if err == nil {
			if got := encodeHandOver(nil, snap, tail); string(got) != string(b) {
				t.Fatalf("hand-over %x re-encodes as %x", b, got)
			}
		}
		_ = applyCollections(b, fuzzCollections())
	})
}

func (a *Agent) ctlInputNoChannel(b []byte) { a.ctlInput(nil, b) }

// encodeHandOverForFuzz is a real hand-over: a store with a map entry
// and an array, its snapshot and the batch written after it.
func encodeHandOverForFuzz() []byte {
	dir, err := os.MkdirTemp("", "e3-fuzz-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	st, err := durable.Open(filepath.Join(dir, "x.db"), "fuzz/x", durable.Options{NoSync: true})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	m, _ := collections.NewMap(st, "m", collections.Uint64, collections.Uint64)
	if err := st.Start(); err != nil {
		panic(err)
	}
	m.Set(1, 2)
	st.Sync(context.Background())
	snap, _ := st.Snapshot()
	m.Set(3, 4)
	st.Sync(context.Background())
	tail, _ := st.Tail(snap.LSN)
	return encodeHandOver(nil, snap, tail)
}

func fuzzCollections() []collections.Collection {
	ms := collections.NewMemStore()
	collections.NewMap(ms, "m", collections.Uint64, collections.Uint64)
	return ms.Collections()
}
