package ranked

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
)

// pair is a test entry type; its field names differ from the wire's, as
// the services' do.
type pair struct {
	Key uint64
	Val float64
}

var testFormat = Format[pair]{
	Service: "svc",
	Noun:    "pairs",
	Split:   func(p pair) (uint64, float64) { return p.Key, p.Val },
	Join:    func(id uint64, score float64) pair { return pair{id, score} },
}

// TestAppendBytes checks the encoder against a reply written out by hand.
func TestAppendBytes(t *testing.T) {
	got := testFormat.Append([]byte("pre"), 0x01020304, []pair{{0x1122334455667788, 1}, {2, -0.5}})
	want := "707265" + // "pre", kept
		"04030201" + "0200" + // count, n
		"8877665544332211" + "000000000000f03f" + // id, 1.0
		"0200000000000000" + "000000000000e0bf" // 2, -0.5
	if h := hex.EncodeToString(got); h != want {
		t.Fatalf("Append:\n got %s\nwant %s", h, want)
	}
	if got := testFormat.Append(nil, 7, nil); hex.EncodeToString(got) != "070000000000" {
		t.Fatalf("empty reply: %x", got)
	}
}

// TestRoundTrip decodes what the encoder wrote, including scores whose
// bits a float conversion could change (NaN payloads, -0, infinities).
func TestRoundTrip(t *testing.T) {
	in := []pair{
		{1, 3.25}, {math.MaxUint64, -0.0}, {0, math.Inf(-1)},
		{42, math.Float64frombits(0x7ff8_0000_dead_beef)}, {7, math.SmallestNonzeroFloat64},
	}
	b := testFormat.Append(nil, math.MaxUint32, in)
	if len(b) != HeaderLen+len(in)*EntryLen {
		t.Fatalf("%d bytes for %d entries", len(b), len(in))
	}
	count, out, err := testFormat.Parse(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if count != math.MaxUint32 || len(out) != len(in) {
		t.Fatalf("count %d, %d entries; want %d, %d", count, len(out), uint32(math.MaxUint32), len(in))
	}
	for i := range in {
		if out[i].Key != in[i].Key || math.Float64bits(out[i].Val) != math.Float64bits(in[i].Val) {
			t.Errorf("entry %d: %+v, want %+v", i, out[i], in[i])
		}
	}
}

// TestParseErrors checks each malformed reply gets the message the
// services have always given, with count 0 and no entries.
func TestParseErrors(t *testing.T) {
	valid := testFormat.Append(nil, 3, []pair{{1, 2}, {3, 4}})
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "svc: reply is 0 bytes, shorter than its 6-byte header"},
		{"short header", valid[:5], "svc: reply is 5 bytes, shorter than its 6-byte header"},
		{"truncated entry", valid[:len(valid)-1], "svc: reply declares 2 pairs (38 bytes) but is 37 bytes"},
		{"header only", valid[:HeaderLen], "svc: reply declares 2 pairs (38 bytes) but is 6 bytes"},
		{"trailing byte", append(valid[:len(valid):len(valid)], 0), "svc: reply declares 2 pairs (38 bytes) but is 39 bytes"},
		{"huge n", []byte{0, 0, 0, 0, 0xff, 0xff}, "svc: reply declares 65535 pairs (1048566 bytes) but is 6 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []pair{{9, 9}}
			count, out, err := testFormat.Parse(tc.b, dst)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if count != 0 || len(out) != 0 {
				t.Fatalf("count %d, entries %v after an error", count, out)
			}
		})
	}
}

// TestParseReusesDst checks that entries go into dst's array, replacing
// what it held, so a client parsing reply after reply does not allocate.
func TestParseReusesDst(t *testing.T) {
	b := testFormat.Append(nil, 1, []pair{{5, 6}})
	dst := make([]pair, 3, 8)
	_, out, err := testFormat.Parse(b, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0] != (pair{5, 6}) || &out[0] != &dst[0] {
		t.Fatalf("entries %v not written into dst[:0]", out)
	}
}

// TestNoAllocs checks that encoding into and decoding into buffers with
// room allocates nothing: the services' request paths rely on it.
func TestNoAllocs(t *testing.T) {
	entries := []pair{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}, {8, 8}, {9, 9}, {10, 10}}
	buf := make([]byte, 0, HeaderLen+len(entries)*EntryLen)
	dst := make([]pair, 0, len(entries))
	var parsed int
	allocs := testing.AllocsPerRun(1000, func() {
		buf = testFormat.Append(buf[:0], 10, entries)
		_, out, err := testFormat.Parse(buf, dst)
		if err != nil {
			t.Fatal(err)
		}
		parsed += len(out)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Append and Parse, want 0", allocs)
	}
	if parsed == 0 {
		t.Fatal("nothing parsed")
	}
}

// FuzzParse feeds arbitrary replies to the decoder: it must not panic, a
// reply it accepts must have exactly the declared length and re-encode to
// the same bytes, and a reply it refuses must be named as the service's.
func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5})
	f.Add(testFormat.Append(nil, 0, nil))
	f.Add(testFormat.Append(nil, 3, []pair{{1, 2}, {3, 4}}))
	f.Add(testFormat.Append(nil, 1, []pair{{math.MaxUint64, math.NaN()}})[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		count, entries, err := testFormat.Parse(b, make([]pair, 2))
		if err != nil {
			if count != 0 || len(entries) != 0 || !strings.HasPrefix(err.Error(), "svc: reply ") {
				t.Fatalf("refused %x with count %d, %d entries, error %q", b, count, len(entries), err)
			}
			return
		}
		if len(b) != HeaderLen+len(entries)*EntryLen {
			t.Fatalf("accepted %d bytes as %d entries", len(b), len(entries))
		}
		if got := testFormat.Append(nil, count, entries); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs: %x vs %x", got, b)
		}
	})
}
