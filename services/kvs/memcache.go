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

// ProtocolError is a request memcached would refuse. The server handles
// it as memcached does: discard Skip bytes, then send Reply (without
// \r\n) unless it is empty, and close the connection if Close is set.
type ProtocolError struct {
	Offset int    // byte offset of the offending token in the buffer
	Token  string // the offending token, at most 64 bytes of it
	Reason string // what is wrong, for logs
	// Reply is the line memcached sends; empty when it sends nothing
	// (a noreply request, or an endless line it hangs up on).
	Reply string
	// Skip is how many bytes to discard before the next request. It may
	// exceed the buffer when a refused data block has not fully arrived;
	// memcached answers only once it has discarded them all.
	Skip int
	// Unlink, when set, is a key whose item must be removed: memcached
	// drops the item a refused too-large set would have replaced.
	// It aliases the buffer.
	Unlink []byte
	Close  bool // close the connection after sending Reply
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
		arg := func(i int) string { return string(line[tok[i][0]:tok[i][1]]) }
		// As memcached: noreply is a last argument "noreply", and it
		// silences errors too; the only other argument allowed is a
		// legacy hold time of "0".
		r.NoReply = nt > 1 && arg(nt-1) == "noreply"
		if nt > 1 && !(nt == 2 && (arg(1) == "0" || r.NoReply) || nt == 3 && arg(1) == "0" && r.NoReply) {
			bad := tok[nt-1]
			if arg(1) != "0" {
				bad = tok[1]
			}
			return n, silence(protoErr(line, bad[0], bad[1], "delete takes only a key, an optional 0 and noreply", replyBadDelete, n), r.NoReply)
		}
		ks, ke := tok[0][0], tok[0][1]
		if ke-ks > MaxKeyLen {
			return n, silence(protoErr(line, ks, ke, fmt.Sprintf("key of %d bytes exceeds %d", ke-ks, MaxKeyLen), replyBadFormat, n), r.NoReply)
		}
		r.Keys = append(r.Keys, line[ks:ke])
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
	// As memcached: noreply is a last argument "noreply" (a fifth
	// argument that is not is ignored), and it silences every answer to
	// the request, errors included.
	r.NoReply = string(field(nt-1)) == "noreply"
	bad := func(k int, what string) (int, error) {
		return n, silence(protoErr(line, tok[k][0], tok[k][1], what, replyBadFormat, n), r.NoReply)
	}
	key := field(0)
	if len(key) > MaxKeyLen {
		return bad(0, fmt.Sprintf("key of %d bytes exceeds %d", len(key), MaxKeyLen))
	}
	flags, ok := strtoul32(field(1))
	if !ok {
		return bad(1, "flags are not an unsigned integer")
	}
	exptime, ok := strtol32(field(2))
	if !ok {
		return bad(2, "exptime is not an integer")
	}
	size, ok := strtol32(field(3))
	if !ok || size < 0 || size > maxDataLen {
		return bad(3, "bytes is not a length")
	}
	need := n + int(size) + 2
	if int(size) > maxValue {
		// memcached discards the data block, then answers, and drops
		// the item the set would have replaced.
		r.Keys = append(r.Keys, key)
		e := protoErr(line, tok[3][0], tok[3][1], fmt.Sprintf("value of %d bytes exceeds %d", size, maxValue), replyTooLarge, need)
		e.Unlink = key
		return need, silence(e, r.NoReply)
	}
	if len(buf) < need {
		return 0, ErrIncomplete
	}
	if buf[need-2] != '\r' || buf[need-1] != '\n' {
		e := &ProtocolError{Offset: need - 2, Token: string(buf[need-2 : need]), Reason: "data block not followed by \\r\\n", Reply: replyBadChunk, Skip: need}
		return need, silence(e, r.NoReply)
	}
	r.Keys = append(r.Keys, key)
	r.Flags = flags
	r.Exptime = int64(exptime)
	r.Data = buf[n : n+int(size)]
	return need, nil
}

// silence drops the reply of an error on a noreply request, as memcached
// does.
func silence(e *ProtocolError, noreply bool) *ProtocolError {
	if noreply {
		e.Reply = ""
	}
	return e
}

// isCSpace is C's isspace in the C locale.
func isCSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// strtoNum emulates C's strtoul/strtol as memcached's safe_strtoul and
// safe_strtol use them: leading white space, an optional sign, decimal
// digits, and then the end of the token or white space (anything after
// that is ignored). It returns the magnitude, the sign, and false when
// there are no digits, when the digits do not end the number, or when
// the magnitude exceeds max (ERANGE).
func strtoNum(b []byte, max uint64) (mag uint64, neg, ok bool) {
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if mag > (max-d)/10 {
			return 0, false, false
		}
		mag = mag*10 + d
	}
	if i == start || i < len(b) && !isCSpace(b[i]) {
		return 0, false, false
	}
	return mag, neg, true
}

// strtoul32 is memcached's safe_strtoul: unsigned long parsing (a minus
// sign negates, and is refused only when the result has its top bit
// set), stored in 32 bits.
func strtoul32(b []byte) (uint32, bool) {
	mag, neg, ok := strtoNum(b, math.MaxUint64)
	if !ok {
		return 0, false
	}
	v := mag
	if neg {
		v = -mag
	}
	if int64(v) < 0 && neg {
		return 0, false
	}
	return uint32(v), true
}

// strtol32 is memcached's safe_strtol: long parsing, stored in an int32
// (so larger values wrap, as they do in memcached).
func strtol32(b []byte) (int32, bool) {
	mag, neg, ok := strtoNum(b, 1<<63)
	if !ok || !neg && mag > math.MaxInt64 {
		return 0, false
	}
	v := int64(mag) // 1<<63 wraps to MinInt64, the one negative value allowed
	if neg {
		v = -v
	}
	return int32(v), true
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
	swallow  int    // bytes of a refused data block still to discard
	pending  string // the reply to send once they are
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
			out = appendLine(out, s.pending)
		}
		n, err := ParseRequest(in[used:], &s.req, s.maxValue)
		if err == ErrIncomplete {
			return out, used, false
		}
		if err != nil {
			pe := err.(*ProtocolError) // the only other error ParseRequest returns
			if pe.Unlink != nil {
				s.unlink(pe.Unlink, now)
			}
			if pe.Close {
				return appendLine(out, pe.Reply), used, true
			}
			if avail := len(in) - used; n > avail {
				s.swallow, s.pending = n-avail, pe.Reply
				return out, len(in), false
			}
			used += n
			out = appendLine(out, pe.Reply)
			continue
		}
		used += n
		out = s.execute(out, now)
	}
}

// appendLine appends line and \r\n, or nothing for an empty line.
func appendLine(out []byte, line string) []byte {
	if line == "" {
		return out
	}
	return append(append(out, line...), "\r\n"...)
}

// unlink removes key's item, as memcached does when it refuses a set.
func (s *Session) unlink(key []byte, now int64) {
	ev := service.Event{Op: service.OpDelete, Token: key}
	var err error
	if s.ev, err = service.AppendEvent(s.ev[:0], &ev, 0); err == nil {
		s.ctx.Reset(now, KeyHash(key), nil)
		_ = s.h.Handle(&s.ctx, s.ev) // found or not, there is nothing to say
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
