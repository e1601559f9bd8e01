package nids

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Rule text is the subset of Snort 2 rule syntax that this service can
// enforce, one rule per line, '#' comments and blank lines allowed:
//
//	alert tcp any any -> any 80 (msg:"WEB-ATTACK phf"; content:"/cgi-bin/phf"; nocase; sid:1000001; rev:1;)
//
// Header: an action (alert, log, pass, drop, reject, sdrop; the service
// applies its configured action to every match), a protocol (ip, tcp, udp,
// icmp), "any" for source address, source port and destination address,
// "->", and "any" or a number for the destination port. Options: exactly
// one content (quoted, with |41 42| hex blocks and \" \; \\ \| escapes),
// nocase, sid (required, unique), msg, and the informational rev, gid,
// classtype, priority, reference and metadata, which are ignored. Anything
// else (pcre, offset, depth, flow, address lists, negation) is rejected
// with an error naming the line, rather than silently dropped, because a
// rule enforced without its qualifiers would fire where its author did
// not mean it to.

// ParseRules reads rules in the syntax above.
func ParseRules(r io.Reader) ([]Rule, error) {
	var rules []Rule
	sids := map[uint32]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		rule, err := parseRule(text)
		if err != nil {
			return nil, fmt.Errorf("nids: rules line %d: %w", line, err)
		}
		if prev, dup := sids[rule.SID]; dup {
			return nil, fmt.Errorf("nids: rules line %d: sid %d already used on line %d", line, rule.SID, prev)
		}
		sids[rule.SID] = line
		rules = append(rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("nids: rules line %d: %w", line+1, err)
	}
	return rules, nil
}

var protoNames = map[string]uint8{"ip": 0, "icmp": 1, "tcp": 6, "udp": 17}

func parseRule(text string) (Rule, error) {
	var r Rule
	open := strings.IndexByte(text, '(')
	if open < 0 || !strings.HasSuffix(text, ")") {
		return r, fmt.Errorf("want a header and options in parentheses, got %q", text)
	}
	hdr := strings.Fields(text[:open])
	if len(hdr) != 7 {
		return r, fmt.Errorf("header %q: want 7 fields (action proto any any -> any port), got %d", text[:open], len(hdr))
	}
	switch hdr[0] {
	case "alert", "log", "pass", "drop", "reject", "sdrop":
	default:
		return r, fmt.Errorf("unknown action %q", hdr[0])
	}
	p, ok := protoNames[hdr[1]]
	if !ok {
		return r, fmt.Errorf("unknown protocol %q (want ip, icmp, tcp or udp)", hdr[1])
	}
	r.Proto = p
	for _, i := range []int{2, 3, 5} {
		if hdr[i] != "any" {
			return r, fmt.Errorf("header field %d is %q: only \"any\" is supported for addresses and the source port", i+1, hdr[i])
		}
	}
	if hdr[4] != "->" {
		return r, fmt.Errorf("direction %q: only \"->\" is supported", hdr[4])
	}
	if hdr[6] != "any" {
		port, err := strconv.ParseUint(hdr[6], 10, 16)
		if err != nil || port == 0 {
			return r, fmt.Errorf("destination port %q: want any or 1-65535", hdr[6])
		}
		if p != 6 && p != 17 {
			return r, fmt.Errorf("destination port %s on protocol %s, which has no ports", hdr[6], hdr[1])
		}
		r.DstPort = uint16(port)
	}
	opts, err := splitOptions(text[open+1 : len(text)-1])
	if err != nil {
		return r, err
	}
	var haveContent, haveSID bool
	for _, o := range opts {
		name, val, hasVal := strings.Cut(o, ":")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		switch name {
		case "content":
			if haveContent {
				return r, fmt.Errorf("more than one content: only single-content rules are supported")
			}
			if r.Content, err = parseContent(val); err != nil {
				return r, fmt.Errorf("content: %w", err)
			}
			haveContent = true
		case "nocase":
			if hasVal {
				return r, fmt.Errorf("nocase takes no value, got %q", val)
			}
			r.NoCase = true
		case "sid":
			sid, err := strconv.ParseUint(val, 10, 32)
			if err != nil || sid == 0 {
				return r, fmt.Errorf("sid %q: want an integer in 1-4294967295", val)
			}
			r.SID, haveSID = uint32(sid), true
		case "msg":
			if r.Msg, err = unquote(val); err != nil {
				return r, fmt.Errorf("msg: %w", err)
			}
		case "rev", "gid", "classtype", "priority", "reference", "metadata":
		default:
			return r, fmt.Errorf("unsupported option %q", name)
		}
	}
	if !haveContent {
		return r, fmt.Errorf("no content option")
	}
	if !haveSID {
		return r, fmt.Errorf("no sid option")
	}
	return r, nil
}

// splitOptions splits the text between the parentheses at semicolons
// outside quotes; a backslash inside quotes escapes the next character.
func splitOptions(s string) ([]string, error) {
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == ';':
			if o := strings.TrimSpace(s[start:i]); o != "" {
				out = append(out, o)
			}
			start = i + 1
		}
	}
	if inQuote {
		return nil, fmt.Errorf("options: unterminated quote")
	}
	if o := strings.TrimSpace(s[start:]); o != "" {
		return nil, fmt.Errorf("options: %q is not terminated by ';'", o)
	}
	return out, nil
}

// unquote strips the double quotes around s and resolves \" \; \\ \|.
func unquote(s string) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		if strings.HasPrefix(s, "!") {
			return "", fmt.Errorf("negation %q is not supported", s)
		}
		return "", fmt.Errorf("%q is not a quoted string", s)
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if i+1 >= len(s) || !strings.ContainsRune(`";\|:`, rune(s[i+1])) {
				return "", fmt.Errorf("bad escape at offset %d of %q", i, s)
			}
			i++
		} else if s[i] == '"' {
			return "", fmt.Errorf("unescaped quote at offset %d of %q", i, s)
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// parseContent decodes a quoted content string with |hex| blocks. Escapes
// are resolved first only outside hex blocks, so scan once by hand.
func parseContent(val string) ([]byte, error) {
	if len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
		if strings.HasPrefix(val, "!") {
			return nil, fmt.Errorf("negated content %s is not supported", val)
		}
		return nil, fmt.Errorf("%q is not a quoted string", val)
	}
	s := val[1 : len(val)-1]
	var out []byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) || !strings.ContainsRune(`";\|:`, rune(s[i+1])) {
				return nil, fmt.Errorf("bad escape at offset %d", i)
			}
			i++
			out = append(out, s[i])
		case '"':
			return nil, fmt.Errorf("unescaped quote at offset %d", i)
		case '|':
			end := strings.IndexByte(s[i+1:], '|')
			if end < 0 {
				return nil, fmt.Errorf("hex block at offset %d is not closed", i)
			}
			hex := strings.ReplaceAll(s[i+1:i+1+end], " ", "")
			if len(hex)%2 != 0 || len(hex) == 0 {
				return nil, fmt.Errorf("hex block at offset %d has %d digits, want an even number", i, len(hex))
			}
			for j := 0; j < len(hex); j += 2 {
				v, err := strconv.ParseUint(hex[j:j+2], 16, 8)
				if err != nil {
					return nil, fmt.Errorf("hex block at offset %d: %q is not a hex byte", i, hex[j:j+2])
				}
				out = append(out, byte(v))
			}
			i += end + 1
		default:
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty content")
	}
	return out, nil
}

// FormatRules writes rules in the syntax ParseRules reads.
func FormatRules(w io.Writer, rules []Rule) error {
	bw := bufio.NewWriter(w)
	for _, r := range rules {
		bw.Write(AppendRule(nil, &r))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// AppendRule appends the text of r, without a newline, to dst.
func AppendRule(dst []byte, r *Rule) []byte {
	proto := "ip"
	for name, p := range protoNames {
		if p == r.Proto {
			proto = name
		}
	}
	port := "any"
	if r.DstPort != 0 {
		port = strconv.Itoa(int(r.DstPort))
	}
	dst = fmt.Appendf(dst, "alert %s any any -> any %s (msg:\"", proto, port)
	for i := 0; i < len(r.Msg); i++ {
		c := r.Msg[i]
		if c < 0x20 || c > 0x7e {
			c = '?' // msg is free text; keep the line printable
		}
		if strings.IndexByte(`";\|`, c) >= 0 {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	dst = append(dst, "\"; content:\""...)
	inHex := false
	for _, c := range r.Content {
		special := c < 0x20 || c > 0x7e || bytes.IndexByte([]byte(`";\|:`), c) >= 0
		switch {
		case special && !inHex:
			dst = append(dst, '|')
			inHex = true
		case special:
			dst = append(dst, ' ')
		case inHex:
			dst = append(dst, '|')
			inHex = false
		}
		if special {
			dst = fmt.Appendf(dst, "%02X", c)
		} else {
			dst = append(dst, c)
		}
	}
	if inHex {
		dst = append(dst, '|')
	}
	dst = append(dst, "\";"...)
	if r.NoCase {
		dst = append(dst, " nocase;"...)
	}
	return fmt.Appendf(dst, " sid:%d; rev:1;)", r.SID)
}
