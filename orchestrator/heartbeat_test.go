package orchestrator

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func sampleHeartbeat() Heartbeat {
	return Heartbeat{Node: 7, Seq: 65535, Queue: 120, RxBytes: 1 << 20, TxBytes: 3,
		Samples: []ExecSample{{Instance: 2, Count: 100, MeanNs: 12000}, {Instance: 9, Count: 0}, {Instance: 1 << 30, Count: 1, MeanNs: 1<<32 - 1}}}
}

func TestHeartbeatRoundTrip(t *testing.T) {
	for _, h := range []Heartbeat{sampleHeartbeat(), {Node: 0}, {Node: 1<<31 - 1, Queue: 65535, RxBytes: 1<<32 - 1}} {
		b, err := h.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != h.EncodedSize() {
			t.Fatalf("encoded %d bytes, EncodedSize %d", len(b), h.EncodedSize())
		}
		var got Heartbeat
		if err := got.Decode(b); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(h, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

// TestHeartbeatLayout pins the documented offsets.
func TestHeartbeatLayout(t *testing.T) {
	h := sampleHeartbeat()
	b, _ := h.Append([]byte{0xee}) // appends after what is there
	if b[0] != 0xee {
		t.Fatal("Append overwrote the prefix")
	}
	b = b[1:]
	le := binary.LittleEndian
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"node@0", uint64(le.Uint32(b[0:])), 7},
		{"seq@4", uint64(le.Uint16(b[4:])), 65535},
		{"queue@6", uint64(le.Uint16(b[6:])), 120},
		{"rx@8", uint64(le.Uint32(b[8:])), 1 << 20},
		{"tx@12", uint64(le.Uint32(b[12:])), 3},
		{"sample0.instance@16", uint64(le.Uint32(b[16:])), 2},
		{"sample0.count@20", uint64(le.Uint32(b[20:])), 100},
		{"sample0.mean@24", uint64(le.Uint32(b[24:])), 12000},
		{"sample1.instance@28", uint64(le.Uint32(b[28:])), 9},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if HeartbeatCoreSize != 16 {
		t.Errorf("core is %d bytes; the paper's heartbeat is 16", HeartbeatCoreSize)
	}
}

func TestHeartbeatDecodeErrors(t *testing.T) {
	good, _ := (&Heartbeat{Node: 1, Samples: []ExecSample{{Instance: 1, Count: 1, MeanNs: 5}, {Instance: 4, Count: 2, MeanNs: 5}}}).Append(nil)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name  string
		in    []byte
		field string
		off   int
	}{
		{"empty", nil, "length", 0},
		{"short core", good[:15], "length", 0},
		{"partial sample", good[:16+12+5], "length", 0},
		{"node above int32", mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b, 1<<31); return b }), "node", 0},
		{"duplicate instance", mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[28:], 1); return b }), "sample 1 instance", 28},
		{"decreasing instance", mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[28:], 0); return b }), "sample 1 instance", 28},
		{"instance above int32", mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[28:], 1<<31); return b }), "sample 1 instance", 28},
		{"mean without count", mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[20:], 0); return b }), "sample 0 mean", 24},
		{"too many samples", make([]byte, 16+12*(MaxExecSamples+1)), "sample count", 16},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h Heartbeat
			err := h.Decode(tc.in)
			var he *HeartbeatError
			if !errors.As(err, &he) || !errors.Is(err, ErrBadHeartbeat) {
				t.Fatalf("Decode = %v, want a *HeartbeatError wrapping ErrBadHeartbeat", err)
			}
			if he.Field != tc.field || he.Offset != tc.off {
				t.Errorf("error %q: field %q at %d, want %q at %d", err, he.Field, he.Offset, tc.field, tc.off)
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Errorf("error %q does not name the offset", err)
			}
		})
	}
}

func TestHeartbeatAppendRefusesWhatDecodeRefuses(t *testing.T) {
	for _, h := range []Heartbeat{
		{Node: -1},
		{Node: 1, Samples: []ExecSample{{Instance: 3}, {Instance: 3}}},
		{Node: 1, Samples: []ExecSample{{Instance: -2}}},
		{Node: 1, Samples: []ExecSample{{Instance: 3, MeanNs: 4}}},
		{Node: 1, Samples: make([]ExecSample, MaxExecSamples+1)},
	} {
		if _, err := h.Append(nil); !errors.Is(err, ErrBadHeartbeat) {
			t.Errorf("Append(%+v) = %v, want ErrBadHeartbeat", h.Node, err)
		}
	}
}

func TestHeartbeatDecodeNoAllocs(t *testing.T) {
	h := sampleHeartbeat()
	b, _ := h.Append(nil)
	var got Heartbeat
	got.Samples = make([]ExecSample, 0, 8)
	if n := testing.AllocsPerRun(100, func() {
		if err := got.Decode(b); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Decode allocates %v times per call", n)
	}
	out := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { out, _ = h.Append(out[:0]) }); n != 0 {
		t.Errorf("Append allocates %v times per call", n)
	}
}

func TestSaturate(t *testing.T) {
	if Saturate32(1<<40) != 1<<32-1 || Saturate32(5) != 5 || Saturate16(1<<20) != 1<<16-1 || Saturate16(7) != 7 {
		t.Error("saturation wrong")
	}
}

func FuzzHeartbeatDecode(f *testing.F) {
	h := sampleHeartbeat()
	seed, _ := h.Append(nil)
	f.Add(seed)
	f.Add(seed[:16])
	f.Add(seed[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Heartbeat
		err := h.Decode(b)
		if err != nil {
			var he *HeartbeatError
			if !errors.As(err, &he) || !errors.Is(err, ErrBadHeartbeat) {
				t.Fatalf("error %v is not a *HeartbeatError", err)
			}
			if he.Offset < 0 || he.Offset > len(b) && len(b) >= HeartbeatCoreSize {
				t.Fatalf("error offset %d outside the %d-byte input", he.Offset, len(b))
			}
			return
		}
		out, err := h.Append(nil)
		if err != nil {
			t.Fatalf("decoded heartbeat does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, out)
		}
	})
}
