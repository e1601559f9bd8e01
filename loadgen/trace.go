package loadgen

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/e3-platform/e3/service"
)

// Trace file limits.
const (
	// MaxTraceLine is the longest line a trace may have, in bytes.
	MaxTraceLine = 4096
	// MaxRequestSize is the largest request a trace may ask for: one UDP
	// datagram, as in application specs.
	MaxRequestSize = 65507
)

// Record is one request of a trace: when it is sent, relative to the start
// of the replay, its routing key and its payload size in bytes.
type Record struct {
	Offset time.Duration
	Key    uint64
	Size   int
}

// TraceError is a problem in a trace file, located by file name and line.
type TraceError struct {
	File  string
	Line  int
	Field string // "offset", "key", "size", or "" for the line as a whole
	Msg   string
}

// Error formats the problem as file:line: field: message.
func (e *TraceError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// ParseTrace reads a trace in CSV form. name is used in errors only.
//
// The format, one request per line:
//
//	# comment lines and blank lines are ignored
//	offset,key,size
//	0,42,512
//	1500,7,512
//	2.5us,0x1f,64
//
// The first non-comment line may be the header offset,key,size. offset is
// the time since the start of the replay: an integer number of nanoseconds,
// or a Go duration with its unit ("2.5us", "1ms"); offsets must not
// decrease. key is an unsigned 64-bit integer, decimal or 0x-hexadecimal.
// size is the payload size in bytes, 1 to 65507. Fields may be padded with
// spaces; lines may end in CRLF. A trace needs at least one record.
//
// The first problem is returned as a *TraceError naming the line and field.
func ParseTrace(name string, r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), MaxTraceLine)
	var out []Record
	line := 0
	sawData := false // a header or a record has been read
	var last time.Duration
	bad := func(field, format string, args ...any) error {
		return &TraceError{File: name, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 byte-order mark
		}
		b = bytes.TrimSuffix(b, []byte("\r"))
		if !utf8.Valid(b) {
			return nil, bad("", "invalid UTF-8")
		}
		s := strings.TrimSpace(string(b))
		if s == "" || s[0] == '#' {
			continue
		}
		if i := strings.IndexFunc(s, isControl); i >= 0 {
			return nil, bad("", "control character %q in column %d", s[i], i+1)
		}
		fields := strings.Split(s, ",")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		if !sawData {
			sawData = true
			if len(fields) == 3 && strings.EqualFold(fields[0], "offset") &&
				strings.EqualFold(fields[1], "key") && strings.EqualFold(fields[2], "size") {
				continue
			}
		}
		if len(fields) != 3 {
			return nil, bad("", "%d fields; want 3: offset,key,size", len(fields))
		}
		off, err := parseOffset(fields[0])
		if err != nil {
			return nil, bad("offset", "%v", err)
		}
		if off < last {
			return nil, bad("offset", "%v is before the previous record's %v; offsets must not decrease", off, last)
		}
		last = off
		key, err := parseKey(fields[1])
		if err != nil {
			return nil, bad("key", "%v", err)
		}
		size, err := strconv.Atoi(fields[2])
		if err != nil {
			return nil, bad("size", "%s is not an integer", quoteField(fields[2]))
		}
		if size < 1 || size > MaxRequestSize {
			return nil, bad("size", "%d bytes is out of range; a request is 1 to %d bytes", size, MaxRequestSize)
		}
		out = append(out, Record{Offset: off, Key: key, Size: size})
	}
	if err := sc.Err(); err != nil {
		line++ // the scanner stopped on the line after the last one it returned
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, bad("", "line longer than %d bytes", MaxTraceLine)
		}
		return nil, fmt.Errorf("%s: reading trace: %w", name, err)
	}
	if len(out) == 0 {
		return nil, &TraceError{File: name, Line: max(line, 1), Msg: "trace has no records; want lines of offset,key,size"}
	}
	return out, nil
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

// quoteField quotes a field for an error message, shortening long ones.
func quoteField(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}

func parseOffset(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty; want nanoseconds or a duration such as 1.5ms")
	}
	if s[0] >= '0' && s[0] <= '9' && strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s nanoseconds is out of range", quoteField(s))
		}
		return time.Duration(v), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s is neither nanoseconds nor a duration such as 1.5ms", quoteField(s))
	}
	if d < 0 {
		return 0, fmt.Errorf("%s is negative", quoteField(s))
	}
	return d, nil
}

func parseKey(s string) (uint64, error) {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		v, err := strconv.ParseUint(s[2:], 16, 64) // no sign or underscores in base 16
		if err != nil {
			return 0, fmt.Errorf("%s is not a 64-bit hexadecimal number", quoteField(s))
		}
		return v, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not an unsigned 64-bit integer", quoteField(s))
	}
	return v, nil
}

// FormatTrace writes records in the form ParseTrace reads, with a header and
// offsets in integer nanoseconds.
func FormatTrace(w io.Writer, recs []Record) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("offset,key,size\n")
	var buf []byte
	for _, r := range recs {
		buf = strconv.AppendInt(buf[:0], int64(r.Offset), 10)
		buf = append(buf, ',')
		buf = strconv.AppendUint(buf, r.Key, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(r.Size), 10)
		buf = append(buf, '\n')
		bw.Write(buf)
	}
	return bw.Flush()
}

// PayloadFunc builds a request payload of size bytes for key, appending to
// dst[:0].
type PayloadFunc func(dst []byte, key uint64, size int) []byte

// FillPayload is the default trace payload: the key in little-endian (cut
// short for requests under 8 bytes) followed by a byte pattern.
func FillPayload(dst []byte, key uint64, size int) []byte {
	dst = dst[:0]
	var k [8]byte
	binary.LittleEndian.PutUint64(k[:], key)
	dst = append(dst, k[:min(size, 8)]...)
	for len(dst) < size {
		dst = append(dst, byte(len(dst)))
	}
	return dst
}

// GeneratorPayload takes payloads from a service's generator, so that a
// trace can replay real requests of a service: it keeps one generator per
// distinct size in the trace (seeded with seed), and for event-family
// services writes the trace's key into Event.Key. Making a generator can be
// costly (the API gateway signs 1,024 tokens), so prefer traces with few
// distinct sizes.
func GeneratorPayload(d *service.Descriptor, seed int64) (PayloadFunc, error) {
	if d == nil || d.NewGenerator == nil {
		return nil, fmt.Errorf("loadgen: service has no request generator")
	}
	gens := map[int]service.Generator{}
	event := d.Family == service.FamilyEvent
	return func(dst []byte, key uint64, size int) []byte {
		g, ok := gens[size]
		if !ok {
			g = d.NewGenerator(seed, size)
			gens[size] = g
		}
		req, _ := g.Next(dst)
		if event {
			setEventKey(req, key)
		}
		return req
	}, nil
}

// Replay plays a trace: its Arrivals are the records' offsets divided by
// the speed-up, and its Workload returns, for each arrival, the record's key
// and a payload of the record's size. Give both to one [OpenLoop]; the
// workload always describes the arrival the client took last, so shed
// arrivals do not put the two out of step.
type Replay struct {
	recs    []Record
	speed   float64
	payload PayloadFunc
	next    int // index of the next arrival
}

// NewReplay returns a replay of recs at the given speed-up (1 is real time,
// 2 twice as fast); payload nil means [FillPayload].
func NewReplay(recs []Record, speed float64, payload PayloadFunc) (*Replay, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("loadgen: empty trace")
	}
	if !(speed > 0) || math.IsInf(speed, 0) {
		return nil, fmt.Errorf("loadgen: replay speed %v is not a positive number", speed)
	}
	if payload == nil {
		payload = FillPayload
	}
	return &Replay{recs: recs, speed: speed, payload: payload}, nil
}

// Arrivals returns the replay's arrival schedule.
func (p *Replay) Arrivals() Arrivals { return replayArrivals{p} }

// Workload returns the replay's requests.
func (p *Replay) Workload() Workload { return replayWorkload{p} }

type replayArrivals struct{ p *Replay }

func (a replayArrivals) Next() (time.Duration, bool) {
	p := a.p
	if p.next >= len(p.recs) {
		return 0, false
	}
	off := p.recs[p.next].Offset
	p.next++
	if p.speed != 1 {
		off = time.Duration(math.Round(float64(off) / p.speed))
	}
	return off, true
}

type replayWorkload struct{ p *Replay }

func (w replayWorkload) Next(dst []byte) ([]byte, uint64, int) {
	p := w.p
	r := p.recs[max(p.next-1, 0)]
	return p.payload(dst, r.Key, r.Size), r.Key, 0
}
