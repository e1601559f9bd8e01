package service

import (
	"bytes"
	"errors"
	"testing"
)

func TestEventRoundTrip(t *testing.T) {
	feat := []byte{0, 0, 128, 63, 0, 0, 0, 64} // 1.0, 2.0
	in := Event{Op: OpSet, Flags: 3, Key: 42, Item: 7, Value: -1.5, Time: 99, Token: []byte("tok"), Text: []byte("hello"), Features: feat}
	b, err := AppendEvent(nil, &in, 512)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 512 {
		t.Fatalf("padded to %d bytes, want 512", len(b))
	}
	var out Event
	if err := DecodeEvent(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Op != in.Op || out.Flags != in.Flags || out.Key != in.Key || out.Item != in.Item || out.Value != in.Value || out.Time != in.Time ||
		!bytes.Equal(out.Token, in.Token) || !bytes.Equal(out.Text, in.Text) || !bytes.Equal(out.Features, in.Features) {
		t.Fatalf("round trip: got %+v want %+v", out, in)
	}
	if out.NumFeatures() != 2 || out.Feature(0) != 1 || out.Feature(1) != 2 {
		t.Fatalf("features %v %v", out.Feature(0), out.Feature(1))
	}
	if OpSet.String() != "set" || Op(9).String() != "Op(9)" {
		t.Fatalf("op names %q %q", OpSet, Op(9))
	}
}

func TestEventDecodeErrors(t *testing.T) {
	good, _ := AppendEvent(nil, &Event{Text: []byte("abc")}, 0)
	cases := map[string][]byte{
		"short":   good[:10],
		"version": append([]byte{9}, good[1:]...),
		"op":      append([]byte{EventVersion, 77}, good[2:]...),
		"parts":   good[:len(good)-1],
	}
	for name, b := range cases {
		var e Event
		if err := DecodeEvent(b, &e); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	if _, err := AppendEvent(nil, &Event{Features: []byte{1, 2, 3}}, 0); err == nil {
		t.Error("features of 3 bytes accepted")
	}
}

func FuzzDecodeEvent(f *testing.F) {
	b, _ := AppendEvent(nil, &Event{Op: OpGet, Token: []byte("k"), Text: []byte("v"), Features: make([]byte, 8)}, 64)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if DecodeEvent(b, &e) != nil {
			return
		}
		// Whatever decodes must re-encode to the same parts.
		again, err := AppendEvent(nil, &e, 0)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		var e2 Event
		if err := DecodeEvent(again, &e2); err != nil || !bytes.Equal(e2.Text, e.Text) || e2.Key != e.Key {
			t.Fatalf("re-decode mismatch: %v", err)
		}
		_ = e.NumFeatures()
	})
}
