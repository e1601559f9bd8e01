package loadgen

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/service"
	"github.com/google/go-cmp/cmp"
)

func TestParseTrace(t *testing.T) {
	in := "\xef\xbb\xbf# a trace\r\n" +
		"Offset, Key, Size\r\n" +
		"\n" +
		"0,42,512\n" +
		"  1500 , 7 , 64  \n" +
		"2.5us,0x1F,1\n" +
		"2500,18446744073709551615,65507\n" +
		"1ms,0,100\n"
	got, err := ParseTrace("t.csv", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		{0, 42, 512},
		{1500, 7, 64},
		{2500, 0x1f, 1},
		{2500, 1<<64 - 1, 65507},
		{time.Millisecond, 0, 100},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
	var buf bytes.Buffer
	if err := FormatTrace(&buf, got); err != nil {
		t.Fatal(err)
	}
	again, err := ParseTrace("t2.csv", &buf)
	if err != nil || !cmp.Equal(got, again) {
		t.Fatalf("round trip: %v %v", again, err)
	}
}

func TestParseTraceErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "t.csv:1: trace has no records"},
		{"# only a comment\noffset,key,size\n", "t.csv:2: trace has no records"},
		{"0,1\n", "t.csv:1: 2 fields; want 3: offset,key,size"},
		{"0,1,2,3\n", "t.csv:1: 4 fields; want 3"},
		{"x,1,2\n", `t.csv:1: offset: "x" is neither nanoseconds nor a duration`},
		{"-5ms,1,2\n", `t.csv:1: offset: "-5ms" is negative`},
		{"99999999999999999999,1,2\n", `t.csv:1: offset: "99999999999999999999" nanoseconds is out of range`},
		{",1,2\n", "t.csv:1: offset: empty"},
		{"0,1,2\n5,1,2\n4,1,2\n", "t.csv:3: offset: 4ns is before the previous record's 5ns; offsets must not decrease"},
		{"0,-1,2\n", `t.csv:1: key: "-1" is not an unsigned 64-bit integer`},
		{"0,0x,2\n", `t.csv:1: key: "0x" is not an unsigned 64-bit integer`},
		{"0,0xg,2\n", `t.csv:1: key: "0xg" is not a 64-bit hexadecimal number`},
		{"0,18446744073709551616,2\n", "t.csv:1: key: \"18446744073709551616\" is not an unsigned"},
		{"0,1,0\n", "t.csv:1: size: 0 bytes is out of range; a request is 1 to 65507 bytes"},
		{"0,1,65508\n", "t.csv:1: size: 65508 bytes is out of range"},
		{"0,1,big\n", `t.csv:1: size: "big" is not an integer`},
		{"0,1,2\n0,1\xff,2\n", "t.csv:2: invalid UTF-8"},
		{"0,1,\x002\n", "t.csv:1: control character"},
		{"0,1,2\n" + strings.Repeat("1", MaxTraceLine+1) + "\n", "t.csv:2: line longer than 4096 bytes"},
	} {
		_, err := ParseTrace("t.csv", strings.NewReader(c.in))
		var te *TraceError
		if err == nil || !errors.As(err, &te) {
			t.Errorf("%q: error %v, want a *TraceError", c.in, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q:\n got %s\nwant %s...", c.in, err, c.want)
		}
	}
}

var traceErrRE = regexp.MustCompile(`^f\.csv:[1-9][0-9]*: `)

// FuzzParseTrace: the parser never panics; errors name the file and a line
// within the input; accepted traces are well formed and survive a round
// trip through FormatTrace.
func FuzzParseTrace(f *testing.F) {
	for _, s := range []string{
		"offset,key,size\n0,1,512\n", "0,1,2\n1us,0xff,3\n", "# c\n\n1ms , 9 , 65507\r\n",
		"0,1\n", "5,1,1\n4,1,1\n", "\xef\xbb\xbf0,0,1", "1h,18446744073709551615,1\n", "x,y,z\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseTrace("f.csv", bytes.NewReader(data))
		if err != nil {
			var te *TraceError
			if !errors.As(err, &te) || !traceErrRE.MatchString(err.Error()) {
				t.Fatalf("error %q is not a located *TraceError", err)
			}
			if lines := bytes.Count(data, []byte("\n")) + 1; te.Line > lines {
				t.Fatalf("error on line %d of %d: %v", te.Line, lines, err)
			}
			return
		}
		if len(recs) == 0 {
			t.Fatal("no records and no error")
		}
		for i, r := range recs {
			if r.Size < 1 || r.Size > MaxRequestSize || r.Offset < 0 || (i > 0 && r.Offset < recs[i-1].Offset) {
				t.Fatalf("bad record %d: %+v", i, r)
			}
		}
		var buf bytes.Buffer
		if err := FormatTrace(&buf, recs); err != nil {
			t.Fatal(err)
		}
		again, err := ParseTrace("f.csv", &buf)
		if err != nil || !cmp.Equal(recs, again) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// TestReplay plays a trace through an open loop twice as fast: requests go
// out at half the offsets, with the trace's keys and sizes.
func TestReplay(t *testing.T) {
	recs := []Record{{0, 5, 10}, {1000, 6, 3}, {1000, 7, 100}, {9000, 8, 64}}
	rp, err := NewReplay(recs, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := NewFakeClock(100)
	type sent struct {
		at   int64
		key  uint64
		size int
	}
	var got []sent
	tg := TargetFunc(func(r Request) error {
		got = append(got, sent{clk.Now(), r.Key, len(r.Payload)})
		clk.AfterFunc(time.Microsecond, func() { r.Done(nil, nil) })
		return nil
	})
	x, err := OpenLoop{Options: Options{Target: tg, Workload: rp.Workload(), Clock: clk}, Arrivals: rp.Arrivals()}.Start()
	s := mustRun(t, x, err)
	want := []sent{{100, 5, 10}, {600, 6, 3}, {600, 7, 100}, {4600, 8, 64}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(sent{})); d != "" {
		t.Fatalf("sends (-want +got):\n%s", d)
	}
	if s.Requests != 4 || s.Completed != 4 {
		t.Fatal(s)
	}
	// Payloads from a service generator carry the trace key in Event.Key.
	pay, err := GeneratorPayload(&service.Echo, 1)
	if err != nil {
		t.Fatal(err)
	}
	b := pay(nil, 77, 300)
	if len(b) != 300 {
		t.Fatalf("payload %d bytes", len(b))
	}
	if b := FillPayload(nil, 0x0102, 3); !bytes.Equal(b, []byte{2, 1, 0}) {
		t.Fatalf("fill payload %v", b)
	}
	if _, err := NewReplay(nil, 1, nil); err == nil {
		t.Error("empty replay accepted")
	}
	if _, err := NewReplay(recs, 0, nil); err == nil {
		t.Error("speed 0 accepted")
	}
}

// TestReplayDrivesKnee: a replay's speed-up is a load knob too.
func TestReplayEndsRun(t *testing.T) {
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Offset: time.Duration(i) * 10 * time.Microsecond, Key: uint64(i), Size: 16}
	}
	clk := NewFakeClock(0)
	srv := newSim(t, clk, SimConfig{Workers: 1, Service: 5 * time.Microsecond})
	rp, _ := NewReplay(recs, 1, nil)
	s, err := OpenLoop{Options: Options{Target: srv, Workload: rp.Workload(), Clock: clk}, Arrivals: rp.Arrivals()}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != 1000 || s.Completed != 1000 || !within(s.Offered, 100_000, 0.01) {
		t.Fatal(s)
	}
}
