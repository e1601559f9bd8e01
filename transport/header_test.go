package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func sampleHeader() Header {
	return Header{
		Kind:       KindCompletion,
		App:        0x01020304,
		Instance:   0x0a0b0c0d,
		OriginNode: 7,
		OriginSlot: 0xfffffffe,
		PayloadLen: 5,
		Request:    0x1122334455667788,
		Weight:     InitialWeight / 3,
		KeyHash:    0xdeadbeefcafef00d,
		Timestamp:  -42, // negative timestamps must survive the uint64 cast
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := sampleHeader()
	msg, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg = append(msg, "hello"...)
	if len(msg) != HeaderSize+5 {
		t.Fatalf("encoded length %d, want %d", len(msg), HeaderSize+5)
	}
	var got Header
	if err := got.Decode(msg); err != nil {
		t.Fatal(err)
	}
	if got != h {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, h)
	}
	if string(Payload(msg)) != "hello" {
		t.Fatalf("payload %q", Payload(msg))
	}
	// Encode into a fixed buffer gives the same bytes as Append.
	buf := make([]byte, HeaderSize)
	if err := h.Encode(buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, msg[:HeaderSize]) {
		t.Fatalf("Encode and Append disagree")
	}
}

// TestHeaderLayout pins the byte offsets documented on Header, so that a
// change of layout cannot slip in without a version bump.
func TestHeaderLayout(t *testing.T) {
	h := sampleHeader()
	h.PayloadLen = 0
	b := make([]byte, HeaderSize)
	if err := h.Encode(b); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	checks := []struct {
		name string
		got  uint64
		want uint64
	}{
		{"version", uint64(b[0]), Version},
		{"kind", uint64(b[1]), uint64(KindCompletion)},
		{"flags", uint64(le.Uint16(b[2:])), 0},
		{"app", uint64(le.Uint32(b[4:])), uint64(h.App)},
		{"instance", uint64(le.Uint32(b[8:])), uint64(h.Instance)},
		{"origin node", uint64(le.Uint32(b[12:])), uint64(h.OriginNode)},
		{"origin slot", uint64(le.Uint32(b[16:])), uint64(h.OriginSlot)},
		{"payload len", uint64(le.Uint32(b[20:])), 0},
		{"request", le.Uint64(b[24:]), h.Request},
		{"weight", le.Uint64(b[32:]), h.Weight},
		{"key hash", le.Uint64(b[40:]), h.KeyHash},
		{"timestamp", le.Uint64(b[48:]), uint64(h.Timestamp)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestHeaderDecodeErrors(t *testing.T) {
	good := func() []byte {
		h := sampleHeader()
		b, _ := h.Append(nil)
		return append(b, "hello"...)
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		field  string // must appear in the message
		value  string // must appear in the message
	}{
		{"empty", func(b []byte) []byte { return nil }, "message length", " 0:"},
		{"short", func(b []byte) []byte { return b[:HeaderSize-1] }, "message length", "55"},
		{"version", func(b []byte) []byte { b[0] = 9; return b }, "version", "9"},
		{"kind zero", func(b []byte) []byte { b[1] = 0; return b }, "kind", " 0:"},
		{"kind high", func(b []byte) []byte { b[1] = 200; return b }, "kind", "200"},
		{"flags", func(b []byte) []byte { b[2] = 1; return b }, "flags", " 1:"},
		{"truncated payload", func(b []byte) []byte { return b[:len(b)-1] }, "payload length", "5"},
		{"padded payload", func(b []byte) []byte { return append(b, 0) }, "payload length", "want 6"},
		{"payload len huge", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[20:], 0xffffffff); return b }, "payload length", "4294967295"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Header
			h.Request = 99
			err := h.Decode(tc.mutate(good()))
			if err == nil {
				t.Fatal("Decode accepted a bad header")
			}
			if !errors.Is(err, ErrBadHeader) {
				t.Errorf("error %v does not wrap ErrBadHeader", err)
			}
			var he *HeaderError
			if !errors.As(err, &he) || he.Field != tc.field {
				t.Errorf("error %v: want field %q", err, tc.field)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "transport: ") || !strings.Contains(msg, tc.field) || !strings.Contains(msg, tc.value) {
				t.Errorf("error %q should start with transport: and name %q and %q", msg, tc.field, tc.value)
			}
			if h.Request != 99 {
				t.Errorf("Decode changed the header on error")
			}
		})
	}
}

func TestHeaderEncodeErrors(t *testing.T) {
	h := sampleHeader()
	if err := h.Encode(make([]byte, HeaderSize-1)); err == nil || !strings.Contains(err.Error(), "buffer length") {
		t.Errorf("short buffer: %v", err)
	}
	h.Kind = 0
	if _, err := h.Append(nil); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Errorf("kind 0: %v", err)
	}
	h = sampleHeader()
	h.Flags = 4
	if err := h.Encode(make([]byte, HeaderSize)); err == nil || !strings.Contains(err.Error(), "flags") {
		t.Errorf("flags: %v", err)
	}
}

func TestKindString(t *testing.T) {
	for k := KindRequest; k < kindEnd; k++ {
		if strings.HasPrefix(k.String(), "Kind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	if got := Kind(0).String(); got != "Kind(0)" {
		t.Errorf("Kind(0).String() = %q", got)
	}
}

func TestHeaderNoAllocs(t *testing.T) {
	h := sampleHeader()
	h.PayloadLen = 0
	buf := make([]byte, 0, 256)
	var out Header
	allocs := testing.AllocsPerRun(1000, func() {
		b, err := h.Append(buf[:0])
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Decode(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("encode+decode allocates %v times per message, want 0", allocs)
	}
}

// TestSplitWeightExact checks the property completion depends on: however a
// request fans out, the shares add up to exactly the initial weight.
func TestSplitWeightExact(t *testing.T) {
	const seed = 20190710
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	for trial := 0; trial < 200; trial++ {
		// Fan a request out over a random tree, splitting at every node,
		// and sum the weight returned by the leaves.
		live := []uint64{InitialWeight}
		var returned uint64
		for steps := 0; len(live) > 0 && steps < 400; steps++ {
			w := live[len(live)-1]
			live = live[:len(live)-1]
			n := rng.IntN(5) // 0: a leaf that returns its weight
			if n == 0 || len(live) > 100 {
				returned += w
				continue
			}
			first, each := SplitWeight(w, n)
			if n > 1 && (first < each || first-each >= uint64(n)) {
				t.Fatalf("SplitWeight(%d, %d) = %d, %d: remainder must go to the first part", w, n, first, each)
			}
			live = append(live, first)
			for i := 1; i < n; i++ {
				if got := WeightShare(w, n, i); got != each {
					t.Fatalf("WeightShare(%d,%d,%d) = %d, want %d", w, n, i, got, each)
				}
				live = append(live, each)
			}
		}
		for _, w := range live {
			returned += w
		}
		if returned != InitialWeight {
			t.Fatalf("trial %d: weights sum to %d, want %d", trial, returned, InitialWeight)
		}
	}
	if f, e := SplitWeight(10, 3); f != 4 || e != 3 {
		t.Errorf("SplitWeight(10,3) = %d,%d want 4,3", f, e)
	}
	if f, e := SplitWeight(10, 0); f != 10 || e != 0 {
		t.Errorf("SplitWeight(10,0) = %d,%d want 10,0", f, e)
	}
	if f, e := SplitWeight(2, 5); f != 2 || e != 0 {
		t.Errorf("SplitWeight(2,5) = %d,%d want 2,0", f, e)
	}
}

// FuzzDecodeHeader feeds arbitrary bytes to Decode. It must never panic, and
// whatever it accepts must re-encode to the very same bytes (the format has
// no slack a sender could use to smuggle data past a validator).
func FuzzDecodeHeader(f *testing.F) {
	h := sampleHeader()
	seed, _ := h.Append(nil)
	f.Add(append(seed, "hello"...))
	h.PayloadLen = 0
	h.Kind = KindHeartbeat
	seed, _ = h.Append(nil)
	f.Add(seed)
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		err := h.Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatalf("error %v does not wrap ErrBadHeader", err)
			}
			return
		}
		out := make([]byte, HeaderSize)
		if err := h.Encode(out); err != nil {
			t.Fatalf("decoded header does not encode: %v", err)
		}
		if !bytes.Equal(out, b[:HeaderSize]) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b[:HeaderSize], out)
		}
		if int(h.PayloadLen) != len(Payload(b)) {
			t.Fatalf("payload length %d but %d payload bytes", h.PayloadLen, len(Payload(b)))
		}
	})
}
