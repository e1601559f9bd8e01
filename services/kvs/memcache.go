package kvs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/e3-platform/e3/service"
)

// This file speaks the memcached text protocol (memcached's
// doc/protocol.txt) for the three commands the E3 KVS serves: get, set
// and delete. ParseRequest decodes one request from a connection's
// buffer; Request.AppendEvent turns it into kvs events; AppendResponse
// and AppendEnd turn kvs replies back into protocol text. Session glues
// them together for one connection.

// Command is a memcached text-protocol command this package serves.
type Command uint8

const (
	CmdGet    Command = iota + 1 // get <key>*
	CmdSet                       // set <key> <flags> <exptime> <bytes> [noreply] + data block
	CmdDelete                    // delete <key> [0] [noreply]
)

// String returns the command's protocol name.
func (c Command) String() string {
	switch c {
	case CmdGet:
		return "get"
	case CmdSet:
		return "set"
	case CmdDelete:
		return "delete"
	}
	return "Command(" + strconv.Itoa(int(c)) + ")"
}

// Protocol limits, as memcached applies them.
const (
	// maxLine: memcached closes a connection that has sent 2048 bytes
	// without a newline, unless the line is a get, which may carry many
	// keys; we bound those at maxGetLine.
	maxLine    = 2048
	maxGetLine = 64 << 10
	// maxRelativeExptime: exptimes up to 30 days are offsets from now,
	// larger ones are Unix times.
	maxRelativeExptime = 60 * 60 * 24 * 30
	maxDataLen         = math.MaxInt32 - 2
)

// Reply lines.
const (
	replyError       = "ERROR"
	replyBadFormat   = "CLIENT_ERROR bad command line format"
	replyBadDelete   = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	replyBadChunk    = "CLIENT_ERROR bad data chunk"
	replyTooLarge    = "SERVER_ERROR object too large for cache"
	replyOutOfMemory = "SERVER_ERROR out of memory storing object"
)

// Request is one decoded request. Keys and Data alias the buffer it was
// parsed from.
type Request struct {
	Command Command
	Keys    [][]byte // get: one or more; set and delete: exactly one
	Flags   uint32   // set
	Exptime int64    // set: 0 never, < 0 already expired, up to 30 days relative, else Unix time
	Data    []byte   // set: the data block, without its \r\n
	NoReply bool     // set, delete: send nothing on success
}

// ErrIncomplete says the buffer does not yet hold a whole request: read
// more and parse again from the same start.
var ErrIncomplete = errors.New("kvs: memcache request incomplete")

// ProtocolError is a request memcached would refuse. Reply is the line
// to send (without \r\n), or empty when the connection is to be closed
// without a word, as memcached does with an endless line.
type ProtocolError struct {
	Offset int    // byte offset of the offending token in the buffer
	Token  string // the offending token, at most 64 bytes of it
	Reason string // what is wrong, for logs
	Reply  string
	// Skip is how many bytes to discard before the next request. It may
	// exceed the buffer when a refused data block has not fully arrived.
	Skip  int
	Close bool // close the connection after sending Reply
}

// Error says what is wrong and where.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("kvs: memcache: %s at offset %d (token %q)", e.Reason, e.Offset, e.Token)
}

func protoErr(line []byte, tokStart, tokEnd int, reason, reply string, skip int) *ProtocolError {
	tok := line[tokStart:min(tokEnd, tokStart+64)]
	return &ProtocolError{Offset: tokStart, Token: string(tok), Reason: reason, Reply: reply, Skip: skip}
}

// nextToken returns the bounds of the next space-separated token of line
// at or after i; start == end == len(line) when there is none. Runs of
// spaces separate like one, as in memcached's tokenizer.
func nextToken(line []byte, i int) (start, end int) {
	for i < len(line) && line[i] == ' ' {
		i++
	}
	start = i
	for i < len(line) && line[i] != ' ' {
		i++
	}
	return start, i
}

// ParseRequest decodes the request at the start of buf into r, whose Keys
// slice is reused. It returns the number of bytes the request takes, or
// ErrIncomplete, or a *ProtocolError whose Skip is also returned as n.
// maxValue is the largest data block a set may carry.
func ParseRequest(buf []byte, r *Request, maxValue int) (n int, err error) {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > maxLine && !(isGet(buf) && len(buf) <= maxGetLine) {
			return 0, &ProtocolError{Reason: fmt.Sprintf("no newline in %d bytes", len(buf)), Token: string(buf[:min(len(buf), 64)]), Close: true}
		}
		return 0, ErrIncomplete
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	n = nl + 1
	*r = Request{Keys: r.Keys[:0]}
	cs, ce := nextToken(line, 0)
	if cs == ce {
		return n, protoErr(line, cs, ce, "empty command line", replyError, n)
	}
	switch string(line[cs:ce]) {
	case "get":
		r.Command = CmdGet
		for i := ce; ; {
			ks, ke := nextToken(line, i)
			if ks == ke {
				break
			}
			if ke-ks > MaxKeyLen {
				return n, protoErr(line, ks, ke, fmt.Sprintf("key of %d bytes exceeds %d", ke-ks, MaxKeyLen), replyBadFormat, n)
			}
			r.Keys = append(r.Keys, line[ks:ke])
			i = ke
		}
		if len(r.Keys) == 0 {
			return n, protoErr(line, cs, ce, "get without a key", replyError, n)
		}
		return n, nil
	case "set":
		return parseSet(buf, line, n, ce, r, maxValue)
	case "delete":
		r.Command = CmdDelete
		var tok [4][2]int
		nt := 0
		for i := ce; nt < len(tok); nt++ {
			s, e := nextToken(line, i)
			if s == e {
				break
			}
			tok[nt] = [2]int{s, e}
			i = e
		}
		if nt == 0 || nt > 3 {
			return n, protoErr(line, cs, ce, fmt.Sprintf("delete with %d arguments", nt), replyError, n)
		}
		ks, ke := tok[0][0], tok[0][1]
		if ke-ks > MaxKeyLen {
			return n, protoErr(line, ks, ke, fmt.Sprintf("key of %d bytes exceeds %d", ke-ks, MaxKeyLen), replyBadFormat, n)
		}
		r.Keys = append(r.Keys, line[ks:ke])
		arg := func(i int) string { return string(line[tok[i][0]:tok[i][1]]) }
		switch {
		case nt == 1:
		case nt == 2 && arg(1) == "0":
		case nt == 2 && arg(1) == "noreply":
			r.NoReply = true
		case nt == 3 && arg(1) == "0" && arg(2) == "noreply":
			r.NoReply = true
		default:
			bad := tok[nt-1]
			if arg(1) != "0" {
				bad = tok[1]
			}
			return n, protoErr(line, bad[0], bad[1], "delete takes only a key, an optional 0 and noreply", replyBadDelete, n)
		}
		return n, nil
	}
	return n, protoErr(line, cs, ce, "unknown command", replyError, n)
}

func isGet(buf []byte) bool {
	i := 0
	for i < len(buf) && buf[i] == ' ' {
		i++
	}
	return bytes.HasPrefix(buf[i:], []byte("get ")) || bytes.HasPrefix(buf[i:], []byte("gets "))
}

func parseSet(buf, line []byte, n, i int, r *Request, maxValue int) (int, error) {
	r.Command = CmdSet
	var tok [6][2]int
	nt := 0
	for ; nt < len(tok); nt++ {
		s, e := nextToken(line, i)
		if s == e {
			break
		}
		tok[nt] = [2]int{s, e}
		i = e
	}
	if nt != 4 && nt != 5 {
		return n, protoErr(line, 0, 3, fmt.Sprintf("set with %d arguments, want 4 or 5", nt), replyError, n)
	}
	field := func(k int) []byte { return line[tok[k][0]:tok[k][1]] }
	bad := func(k int, what string) (int, error) {
		return n, protoErr(line, tok[k][0], tok[k][1], what, replyBadFormat, n)
	}
	key := field(0)
	if len(key) > MaxKeyLen {
		return bad(0, fmt.Sprintf("key of %d bytes exceeds %d", len(key), MaxKeyLen))
	}
	flags, ok := parseUint(field(1), math.MaxUint32)
	if !ok {
		return bad(1, "flags are not a 32-bit unsigned integer")
	}
	exptime, ok := parseInt(field(2))
	if !ok {
		return bad(2, "exptime is not an integer")
	}
	size, ok := parseUint(field(3), maxDataLen)
	if !ok {
		return bad(3, "bytes is not a non-negative integer")
	}
	if nt == 5 {
		if string(field(4)) != "noreply" {
			return bad(4, "fifth argument is not noreply")
		}
		r.NoReply = true
	}
	need := n + int(size) + 2
	if int(size) > maxValue {
		// memcached answers at once and discards the data block.
		return need, protoErr(line, tok[3][0], tok[3][1], fmt.Sprintf("value of %d bytes exceeds %d", size, maxValue), replyTooLarge, need)
	}
	if len(buf) < need {
		return 0, ErrIncomplete
	}
	if buf[need-2] != '\r' || buf[need-1] != '\n' {
		return need, &ProtocolError{Offset: need - 2, Token: string(buf[need-2 : need]), Reason: "data block not followed by \\r\\n", Reply: replyBadChunk, Skip: need}
	}
	r.Keys = append(r.Keys, key)
	r.Flags = uint32(flags)
	r.Exptime = exptime
	r.Data = buf[n : n+int(size)]
	return need, nil
}

// parseUint parses decimal digits only, up to limit.
func parseUint(b []byte, limit uint64) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (limit-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseInt parses an optionally negative decimal integer within int64.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if neg {
		v, ok := parseUint(b, 1<<63)
		return -int64(v), ok // -(1<<63) wraps to itself: MinInt64
	}
	v, ok := parseUint(b, math.MaxInt64)
	return int64(v), ok
}

// Deadline converts a memcached exptime, received at now (ns since the
// epoch on the service clock), to the absolute deadline a kvs SET event
// carries in Time: 0 for never, -1 for already expired.
func Deadline(exptime, now int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return -1
	case exptime <= maxRelativeExptime:
		return now + exptime*1e9
	case exptime > math.MaxInt64/1_000_000_000:
		return math.MaxInt64
	}
	if d := exptime * 1e9; d > now {
		return d
	}
	return -1
}

// AppendEvent appends the kvs event for key i of r (received at now) to
// dst, and returns it with its routing key.
func (r *Request) AppendEvent(dst []byte, i int, now int64) ([]byte, uint64, error) {
	ev := service.Event{Token: r.Keys[i]}
	switch r.Command {
	case CmdGet:
		ev.Op = service.OpGet
	case CmdSet:
		ev.Op, ev.Text, ev.Item, ev.Time = service.OpSet, r.Data, uint64(r.Flags), Deadline(r.Exptime, now)
	case CmdDelete:
		ev.Op = service.OpDelete
	default:
		return dst, 0, fmt.Errorf("kvs: memcache request has no command")
	}
	out, err := service.AppendEvent(dst, &ev, 0)
	return out, KeyHash(r.Keys[i]), err
}

// AppendResponse appends the protocol text for the kvs reply to the
// request for key (a reply of the store to the event built by
// AppendEvent). A get hit becomes a VALUE block and a miss nothing: after
// the last key of a get, call AppendEnd.
func AppendResponse(dst []byte, cmd Command, key []byte, noreply bool, reply []byte) ([]byte, error) {
	if len(reply) < ReplyHeaderLen {
		return dst, fmt.Errorf("kvs: reply of %d bytes, shorter than its %d-byte header", len(reply), ReplyHeaderLen)
	}
	st := Status(reply[0])
	switch cmd {
	case CmdGet:
		if st == StatusOK {
			dst = append(dst, "VALUE "...)
			dst = append(dst, key...)
			dst = append(dst, ' ')
			dst = strconv.AppendUint(dst, uint64(binary.LittleEndian.Uint32(reply[1:])), 10)
			dst = append(dst, ' ')
			dst = strconv.AppendInt(dst, int64(len(reply)-ReplyHeaderLen), 10)
			dst = append(dst, "\r\n"...)
			dst = append(dst, reply[ReplyHeaderLen:]...)
			dst = append(dst, "\r\n"...)
		}
		return dst, nil
	case CmdSet:
		switch st {
		case StatusOK:
			if noreply {
				return dst, nil
			}
			return append(dst, "STORED\r\n"...), nil
		case StatusOutOfMemory, StatusNoSlot:
			return append(dst, replyOutOfMemory+"\r\n"...), nil
		}
	case CmdDelete:
		if noreply {
			return dst, nil
		}
		switch st {
		case StatusOK:
			return append(dst, "DELETED\r\n"...), nil
		case StatusNotFound:
			return append(dst, "NOT_FOUND\r\n"...), nil
		}
	}
	return dst, fmt.Errorf("kvs: status %d is not an answer to %v", st, cmd)
}

// AppendEnd appends the END line that closes a get response.
func AppendEnd(dst []byte) []byte { return append(dst, "END\r\n"...) }

// Session serves the memcached text protocol on one connection by running
// each request through a kvs handler as events. It is what a memcached
// ingress does per connection; tests drive it with protocol transcripts
// and real clients. A Session is not safe for concurrent use (one per
// connection); the handler may be shared.
type Session struct {
	h        service.Handler
	maxValue int
	swallow  int // bytes of a refused data block still to discard
	req      Request
	ev       []byte
	ctx      service.Context
}

// NewSession returns a session serving h, refusing data blocks larger
// than maxValue (use the store's max_value).
func NewSession(h service.Handler, maxValue int) *Session {
	return &Session{h: h, maxValue: maxValue}
}

// Serve executes the complete requests at the front of in, received at
// now, and appends their replies to out. It returns out, the number of
// bytes of in consumed (keep the rest and call again when more arrives)
// and whether the connection must now be closed.
func (s *Session) Serve(out, in []byte, now int64) ([]byte, int, bool) {
	used := 0
	for {
		if s.swallow > 0 {
			k := min(s.swallow, len(in)-used)
			s.swallow -= k
			used += k
			if s.swallow > 0 {
				return out, used, false
			}
		}
		n, err := ParseRequest(in[used:], &s.req, s.maxValue)
		if err == ErrIncomplete {
			return out, used, false
		}
		if err != nil {
			pe := err.(*ProtocolError) // the only other error ParseRequest returns
			if pe.Reply != "" {
				out = append(append(out, pe.Reply...), "\r\n"...)
			}
			if pe.Close {
				return out, used, true
			}
			if avail := len(in) - used; n > avail {
				s.swallow = n - avail
				n = avail
			}
			used += n
			continue
		}
		used += n
		out = s.execute(out, now)
	}
}

// execute runs the parsed request.
func (s *Session) execute(out []byte, now int64) []byte {
	r := &s.req
	for i, key := range r.Keys {
		var k uint64
		var err error
		s.ev, k, err = r.AppendEvent(s.ev[:0], i, now)
		if err == nil {
			s.ctx.Reset(now, k, nil)
			err = s.h.Handle(&s.ctx, s.ev)
		}
		if err == nil {
			out, err = AppendResponse(out, r.Command, key, r.NoReply, s.ctx.Response())
		}
		if err != nil {
			// The parser admits only what the store accepts, so this is
			// the store failing: say so and abandon the request.
			return append(append(out, "SERVER_ERROR "...), oneLine(err.Error())...)
		}
	}
	if r.Command == CmdGet {
		out = AppendEnd(out)
	}
	return out
}

// oneLine returns msg with line breaks replaced, ending in \r\n.
func oneLine(msg string) string {
	b := []byte(msg)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b) + "\r\n"
}
