package transport

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// encodeFrame builds a frame with the writer the endpoint uses.
func encodeFrame(flags uint8, id uint32, seq, ack, limit, sack uint64, msgs ...[]byte) []byte {
	var out []byte
	w := newFrameWriter(1, 65507, func(ms []Message) { out = append(out, ms[0].Payload()...) })
	w.begin(netip.AddrPort{}, id, flags, seq, ack, limit, sack)
	for _, m := range msgs {
		w.add(m)
	}
	w.end()
	w.flushNow()
	return out
}

func TestFrameRoundTrip(t *testing.T) {
	b := encodeFrame(flagProbe, 7, 10, 3, 300, 0b101, []byte("one"), nil, []byte("three"))
	var f frame
	if err := decodeFrame(b, &f); err != nil {
		t.Fatal(err)
	}
	if f.flags != flagProbe || f.chanID != 7 || f.seq != 10 || f.ack != 3 || f.limit != 300 || f.sack != 0b101 || f.count != 3 {
		t.Fatalf("decoded %+v", f)
	}
	var got []string
	body := f.body
	for range f.count {
		var m []byte
		m, body = nextMessage(body)
		got = append(got, string(m))
	}
	if strings.Join(got, ",") != "one,,three" || len(body) != 0 {
		t.Fatalf("messages %q, %d bytes left", got, len(body))
	}
	if !IsFrame(b) {
		t.Fatal("IsFrame false on a frame")
	}
	h := Header{Kind: KindRequest}
	hb, _ := h.Append(nil)
	if IsFrame(hb) {
		t.Fatal("IsFrame true on an E3 header: the first bytes must differ")
	}
}

func TestFrameDecodeErrors(t *testing.T) {
	good := func() []byte { return encodeFrame(0, 1, 5, 1, 10, 0, []byte("abc")) }
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		field  string
	}{
		{"short", func(b []byte) []byte { return b[:10] }, "length"},
		{"magic", func(b []byte) []byte { b[0] = 1; return b }, "magic"},
		{"version", func(b []byte) []byte { b[1] = 2; return b }, "version"},
		{"flags", func(b []byte) []byte { b[2] = 0x80; return b }, "flags"},
		{"seq zero with messages", func(b []byte) []byte { clear(b[8:16]); return b }, "seq"},
		{"ack zero", func(b []byte) []byte { clear(b[16:24]); return b }, "ack"},
		{"limit below ack", func(b []byte) []byte { clear(b[24:32]); return b }, "limit"},
		{"count too high", func(b []byte) []byte { b[3] = 2; return b }, "message 1 length prefix"},
		{"length past end", func(b []byte) []byte { b[40] = 200; return b }, "message 0 length"},
		{"trailing", func(b []byte) []byte { return append(b, 0) }, "trailing bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f frame
			err := decodeFrame(tc.mutate(good()), &f)
			var fe *FrameError
			if !errors.Is(err, ErrBadFrame) || !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %v: want field %q", err, tc.field)
			}
			if !strings.HasPrefix(err.Error(), "transport: ") || !strings.Contains(err.Error(), "offset") {
				t.Fatalf("error %q should name the offset", err)
			}
		})
	}
}

// FuzzDecodeFrame: the frame decoder faces the network. It must not panic,
// and a frame it accepts must walk cleanly and re-encode to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeFrame(0, 1, 5, 1, 10, 0, []byte("abc"), []byte("de")))
	f.Add(encodeFrame(flagProbe, 9, 0, 4, 260, 1<<63))
	f.Add([]byte{frameMagic})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr frame
		if err := decodeFrame(b, &fr); err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		var msgs [][]byte
		body := fr.body
		for range fr.count {
			var m []byte
			m, body = nextMessage(body)
			msgs = append(msgs, m)
		}
		if len(body) != 0 {
			t.Fatalf("%d bytes left after the messages", len(body))
		}
		again := encodeFrame(fr.flags, fr.chanID, fr.seq, fr.ack, fr.limit, fr.sack, msgs...)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
	})
}
