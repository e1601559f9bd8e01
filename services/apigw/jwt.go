package apigw

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Reason says why a request was accepted or rejected. It is the first
// byte of every reply.
type Reason uint8

const (
	OK           Reason = iota // authenticated and within the rate limit
	RateLimited                // the client's bucket is empty
	Malformed                  // not a compact JWS, bad base64, bad JSON, claim of the wrong type
	BadAlg                     // header alg is not HS256 (e.g. "none")
	BadSignature               // the HMAC-SHA256 does not match
	Expired                    // now >= exp (+ leeway)
	NotYetValid                // now < nbf (- leeway)
	MissingClaim               // no sub or no exp
	numReasons
)

var reasonNames = [numReasons]string{"ok", "rate-limited", "malformed", "bad-alg", "bad-signature", "expired", "not-yet-valid", "missing-claim"}

// String returns the reason's name, as in logs and metrics.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Limits on token parts. A header or payload beyond them is rejected as
// malformed rather than buffered: real API tokens are a few hundred bytes.
const (
	MaxTokenLen  = 4096
	maxHeaderLen = 512  // decoded bytes
	maxClaimsLen = 3072 // decoded bytes (4096 base64 characters)
	MaxSubLen    = 256  // decoded bytes of the sub claim
	maxDepth     = 32   // nesting of JSON values we skip
)

var b64 = base64.RawURLEncoding.Strict()

// scratch is per-call working memory, pooled so that verifying a token
// allocates nothing.
type scratch struct {
	mac    hash.Hash
	sum    [sha256.Size]byte
	sig    [sha256.Size + 3]byte
	header [maxHeaderLen]byte
	claims [maxClaimsLen]byte
	sub    [MaxSubLen]byte
	name   [16]byte // an unescaped JSON member name
	alg    [16]byte // the unescaped alg value
}

// Claims are the claims the gateway acts on. Sub aliases scratch memory
// and is valid until the scratch goes back to its pool.
type Claims struct {
	Sub    []byte
	Exp    int64 // seconds since the epoch, floored
	Nbf    int64
	HasNbf bool
}

// verifier checks HS256 compact JWS tokens. It keeps HMAC states keyed
// once (crypto/hmac saves the keyed inner and outer SHA-256 states and
// restores them on Reset), one per concurrent caller via a pool.
type verifier struct {
	pool sync.Pool
}

func newVerifier(key []byte) *verifier {
	k := append([]byte(nil), key...)
	v := &verifier{}
	v.pool.New = func() any { return &scratch{mac: hmac.New(sha256.New, k)} }
	return v
}

func (v *verifier) get() *scratch  { return v.pool.Get().(*scratch) }
func (v *verifier) put(s *scratch) { v.pool.Put(s) }

// verify checks tok and returns its claims, or the reason it is rejected.
// It checks, in order: structure, header (alg must be HS256), signature,
// claims (sub and exp present and well typed) and the time window at now
// (ns) with leeway (ns). The signature is checked before the claims are
// parsed, so unauthenticated payloads are never interpreted.
func (v *verifier) verify(s *scratch, tok []byte, now, leeway int64) (Claims, Reason) {
	var c Claims
	if len(tok) == 0 || len(tok) > MaxTokenLen {
		return c, Malformed
	}
	d1 := bytes.IndexByte(tok, '.')
	if d1 < 0 {
		return c, Malformed
	}
	d2 := bytes.IndexByte(tok[d1+1:], '.')
	if d2 < 0 {
		return c, Malformed
	}
	d2 += d1 + 1
	if bytes.IndexByte(tok[d2+1:], '.') >= 0 {
		return c, Malformed // JWE (five parts) or garbage
	}
	hdrSeg, claimSeg, sigSeg := tok[:d1], tok[d1+1:d2], tok[d2+1:]

	if b64.DecodedLen(len(hdrSeg)) > maxHeaderLen {
		return c, Malformed
	}
	n, err := b64.Decode(s.header[:], hdrSeg)
	if err != nil {
		return c, Malformed
	}
	if r := checkHeader(s, s.header[:n]); r != OK {
		return c, r
	}

	if len(sigSeg) != 43 { // 32 bytes in unpadded base64
		return c, BadSignature
	}
	if n, err := b64.Decode(s.sig[:], sigSeg); err != nil || n != sha256.Size {
		return c, BadSignature
	}
	s.mac.Reset()
	s.mac.Write(tok[:d2])
	if !hmac.Equal(s.mac.Sum(s.sum[:0]), s.sig[:sha256.Size]) {
		return c, BadSignature
	}

	if b64.DecodedLen(len(claimSeg)) > maxClaimsLen {
		return c, Malformed
	}
	n, err = b64.Decode(s.claims[:], claimSeg)
	if err != nil {
		return c, Malformed
	}
	c, r := parseClaims(s, s.claims[:n])
	if r != OK {
		return c, r
	}
	// exp: valid while now < exp + leeway. nbf: valid once now >= nbf -
	// leeway. Compared in ns with saturation, as jwt/v5 compares times.
	if !(now < satAdd(satMul(c.Exp, 1e9), leeway)) {
		return c, Expired
	}
	if c.HasNbf && now < satAdd(satMul(c.Nbf, 1e9), -leeway) {
		return c, NotYetValid
	}
	return c, OK
}

// satMul returns a*b saturated to the int64 range (b > 0).
func satMul(a, b int64) int64 {
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	if a < math.MinInt64/b {
		return math.MinInt64
	}
	return a * b
}

// satAdd returns a+b saturated to the int64 range.
func satAdd(a, b int64) int64 {
	c := a + b
	if (c > a) != (b > 0) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return c
}

// checkHeader accepts a JOSE header that is a JSON object whose alg is
// "HS256" and that has no crit member (we implement no extensions).
func checkHeader(s *scratch, b []byte) Reason {
	p := jscan{b: b}
	var alg []byte
	haveAlg := false
	ok := p.object(func(name []byte) bool {
		switch string(name) {
		case "alg":
			if haveAlg {
				return false // duplicate
			}
			haveAlg = true
			v, long, ok := p.str(s.alg[:0])
			if !ok {
				return false
			}
			if !long {
				alg = v
			}
			return true
		case "crit":
			return false
		}
		return p.skip(0)
	}, s.name[:0])
	if !ok {
		return Malformed
	}
	if !haveAlg || string(alg) != "HS256" {
		return BadAlg
	}
	return OK
}

// parseClaims extracts sub, exp and nbf from a JWT claims set.
func parseClaims(s *scratch, b []byte) (Claims, Reason) {
	var c Claims
	p := jscan{b: b}
	haveSub, haveExp, seenExp, seenNbf := false, false, false, false
	ok := p.object(func(name []byte) bool {
		switch string(name) {
		case "sub":
			if haveSub {
				return false
			}
			haveSub = true
			v, long, ok := p.str(s.sub[:0])
			if !ok || long || len(v) > MaxSubLen {
				return false
			}
			c.Sub = v
			return true
		case "exp":
			if seenExp {
				return false
			}
			seenExp = true
			sec, zero, ok := p.numericDate()
			c.Exp, haveExp = sec, !zero
			return ok
		case "nbf":
			if seenNbf {
				return false
			}
			seenNbf = true
			sec, zero, ok := p.numericDate()
			c.Nbf, c.HasNbf = sec, !zero
			return ok
		}
		return p.skip(0)
	}, s.name[:0])
	if !ok {
		return c, Malformed
	}
	if !haveSub || len(c.Sub) == 0 || !haveExp {
		return c, MissingClaim
	}
	return c, OK
}

// jscan is a strict, allocation-free scanner for the small JSON objects
// of JOSE headers and JWT claims. It is stricter than encoding/json in
// two ways a token issuer never notices: invalid UTF-8 and lone UTF-16
// surrogate escapes in strings are errors rather than replaced by U+FFFD.
type jscan struct {
	b []byte
	i int
}

func (p *jscan) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jscan) eat(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object scans a whole top-level object. For each member it unescapes the
// name into nameBuf (names longer than nameBuf's capacity are passed as
// nil: no member we read has a long name) and calls member with the
// scanner positioned at the value, which member must consume. Nothing but
// white space may follow the object.
func (p *jscan) object(member func(name []byte) bool, nameBuf []byte) bool {
	if !p.eat('{') {
		return false
	}
	if p.eat('}') {
		p.ws()
		return p.i == len(p.b)
	}
	for {
		p.ws()
		name, long, ok := p.str(nameBuf)
		if !ok {
			return false
		}
		if long {
			name = nil
		}
		if !p.eat(':') {
			return false
		}
		p.ws()
		if !member(name) {
			return false
		}
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			break
		}
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

// str scans a string. Without escapes the result aliases the input;
// with escapes it is unescaped into dst (up to cap(dst) bytes, else long
// is reported and the string is still consumed and validated).
func (p *jscan) str(dst []byte) (v []byte, long, ok bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false, false
	}
	p.i++
	start := p.i
	escaped := false
	var high byte // OR of all bytes: below 0x80 means pure ASCII
	b := p.b
	for p.i < len(b) {
		c := b[p.i]
		if plain[c] {
			high |= c
			p.i++
			continue
		}
		switch {
		case c == '"':
			raw := b[start:p.i]
			p.i++
			if !escaped {
				if high >= 0x80 && !utf8.Valid(raw) {
					return nil, false, false
				}
				return raw, false, true
			}
			return unescape(dst, raw)
		case c == '\\':
			escaped = true
			p.i += 2 // the escaped byte is checked by unescape
		default: // a control character
			return nil, false, false
		}
	}
	return nil, false, false
}

// plain marks the bytes that stand for themselves inside a JSON string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unescape decodes the body of a JSON string containing escapes.
func unescape(dst, raw []byte) (v []byte, long, ok bool) {
	dst = dst[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			r, n := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && n <= 1 {
				return nil, false, false
			}
			if len(dst)+n > cap(dst) {
				long = true
			} else {
				dst = append(dst, raw[i:i+n]...)
			}
			i += n
			continue
		}
		if i+1 >= len(raw) {
			return nil, false, false
		}
		var r rune
		switch raw[i+1] {
		case '"', '\\', '/':
			r = rune(raw[i+1])
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			u, ok := hex4(raw[i+2:])
			if !ok {
				return nil, false, false
			}
			i += 4
			r = rune(u)
			if utf16IsSurrogate(r) {
				// A high surrogate must be followed by an escaped low one.
				if r >= 0xdc00 || i+2+6 > len(raw) || raw[i+2] != '\\' || raw[i+3] != 'u' {
					return nil, false, false
				}
				lo, ok := hex4(raw[i+4:])
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return nil, false, false
				}
				r = 0x10000 + (r-0xd800)<<10 + rune(lo-0xdc00)
				i += 6
			}
		default:
			return nil, false, false
		}
		i += 2
		if len(dst)+utf8.RuneLen(r) > cap(dst) {
			long = true
		} else {
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst, long, true
}

func utf16IsSurrogate(r rune) bool { return r >= 0xd800 && r <= 0xdfff }

func hex4(b []byte) (uint16, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v uint16
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}

// number scans a JSON number and returns its text.
func (p *jscan) number() ([]byte, bool) {
	start := p.i
	b := p.b
	if p.i < len(b) && b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(b) && b[p.i] == '0':
		p.i++
	case p.i < len(b) && b[p.i] >= '1' && b[p.i] <= '9':
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
	default:
		return nil, false
	}
	if p.i < len(b) && b[p.i] == '.' {
		p.i++
		if !p.digits() {
			return nil, false
		}
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		p.i++
		if p.i < len(b) && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return nil, false
		}
	}
	return b[start:p.i], true
}

func (p *jscan) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// numericDate scans a NumericDate (RFC 7519: seconds since the epoch,
// possibly fractional) and returns whole seconds, floored as jwt/v5
// truncates to its one-second precision, saturated to the int64 range.
// Like jwt/v5, it reports a date of exactly 0 as zero, which callers treat
// as if the claim were absent.
func (p *jscan) numericDate() (sec int64, zero, ok bool) {
	num, ok := p.number()
	if !ok {
		return 0, false, false
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, false, false
	}
	if f == 0 {
		return 0, true, true
	}
	// jwt/v5 splits f into whole seconds and a fraction, truncates the
	// fraction to ns, then floors the time to the second: do the same.
	whole, frac := math.Modf(f)
	switch {
	case whole >= math.MaxInt64/1e9:
		return math.MaxInt64, false, true
	case whole <= math.MinInt64/1e9:
		return math.MinInt64, false, true
	}
	sec = int64(whole)
	if int64(frac*1e9) < 0 {
		sec--
	}
	return sec, false, true
}

// skip consumes one JSON value of any type.
func (p *jscan) skip(depth int) bool {
	if depth > maxDepth || p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, _, ok := p.str(nil)
		return ok
	case c == '-' || c >= '0' && c <= '9':
		_, ok := p.number()
		return ok
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '[':
		p.i++
		if p.eat(']') {
			return true
		}
		for {
			p.ws()
			if !p.skip(depth + 1) {
				return false
			}
			if p.eat(',') {
				continue
			}
			return p.eat(']')
		}
	case c == '{':
		p.i++
		if p.eat('}') {
			return true
		}
		for {
			p.ws()
			if _, _, ok := p.str(nil); !ok {
				return false
			}
			if !p.eat(':') {
				return false
			}
			p.ws()
			if !p.skip(depth + 1) {
				return false
			}
			if p.eat(',') {
				continue
			}
			return p.eat('}')
		}
	}
	return false
}

func (p *jscan) literal(lit string) bool {
	if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
		p.i += len(lit)
		return true
	}
	return false
}
