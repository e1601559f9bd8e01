package apigw

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
)

// Config keys and defaults.
const (
	ConfigKey    = "key"     // HS256 secret, as a string (at least 32 bytes)
	ConfigKeyHex = "key_hex" // HS256 secret, hex encoded (at least 32 bytes)
	ConfigRate   = "rate"    // tokens per second added to each client's bucket
	ConfigBurst  = "burst"   // bucket capacity
	ConfigLeeway = "leeway"  // clock skew allowed on exp and nbf (Go duration)

	// DefaultRate and DefaultBurst allow a client a sustained 1,000
	// requests per second with bursts of 100: generous for a device that
	// reports every few seconds, tight for one that floods.
	DefaultRate  = 1000.0
	DefaultBurst = 100.0
	// MinKeyLen is the shortest HS256 key accepted: RFC 7518 §3.2 asks
	// for a key at least as long as the hash output.
	MinKeyLen = sha256.Size
)

// ReplyLen is the length of every reply.
const ReplyLen = 17

// Bucket is a client's token bucket, kept in the apigw.buckets map under
// the client id (the token's sub claim).
type Bucket struct {
	Sub    string  // the client id, repeated so updates reuse the map's key
	Tokens float64 // tokens left, at most burst
	Last   int64   // event time of the last refill, ns
}

// BucketCodec encodes a Bucket as Tokens (float64 bits) and Last, 8 bytes
// each little endian, then the client id.
var BucketCodec collections.Codec[Bucket] = bucketCodec{}

type bucketCodec struct{}

// Append appends the encoding of b.
func (bucketCodec) Append(dst []byte, b Bucket) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(b.Tokens))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(b.Last))
	return append(dst, b.Sub...)
}

// Decode decodes a Bucket.
func (bucketCodec) Decode(p []byte) (Bucket, error) {
	if len(p) < 16 {
		return Bucket{}, fmt.Errorf("apigw: bucket of %d bytes, want at least 16", len(p))
	}
	return Bucket{
		Tokens: math.Float64frombits(binary.LittleEndian.Uint64(p)),
		Last:   int64(binary.LittleEndian.Uint64(p[8:])),
		Sub:    string(p[16:]),
	}, nil
}

// Gateway is one apigw instance. It is safe for concurrent use: tokens are
// verified outside the lock, which only covers the bucket update.
type Gateway struct {
	v      *verifier
	rate   float64 // tokens per second
	burst  float64
	leeway int64

	mu      sync.Mutex
	buckets *collections.Map[string, Bucket]
}

// DeriveKey returns the HS256 key used when the config names none: the
// SHA-256 of a fixed label and the seed. The generator signs its tokens
// with it, so an instance created with Env.Seed equal to the generator's
// seed accepts them. It is for tests and benchmarks only: seeds are not
// secrets, so a deployment must set key or key_hex.
func DeriveKey(seed int64) []byte {
	h := sha256.New()
	h.Write([]byte("e3 apigw signing key v1"))
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(seed)))
	return h.Sum(nil)
}

// New builds an apigw instance; see the package comment for config keys.
func New(env service.Env) (service.Handler, error) {
	key := DeriveKey(env.Seed)
	s, hasKey := env.Config[ConfigKey]
	x, hasHex := env.Config[ConfigKeyHex]
	switch {
	case hasKey && hasHex:
		return nil, fmt.Errorf("apigw: config sets both %q and %q; set one", ConfigKey, ConfigKeyHex)
	case hasKey:
		key = []byte(s)
	case hasHex:
		var err error
		if key, err = hex.DecodeString(x); err != nil {
			return nil, fmt.Errorf("apigw: config %q: not hex: %v", ConfigKeyHex, err)
		}
	}
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("apigw: signing key is %d bytes; HS256 needs at least %d", len(key), MinKeyLen)
	}
	rate, err := env.Float(ConfigRate, DefaultRate)
	if err != nil {
		return nil, fmt.Errorf("apigw: %w", err)
	}
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("apigw: config %q: %v is not a positive rate", ConfigRate, rate)
	}
	burst, err := env.Float(ConfigBurst, DefaultBurst)
	if err != nil {
		return nil, fmt.Errorf("apigw: %w", err)
	}
	if !(burst >= 1) || math.IsInf(burst, 0) {
		return nil, fmt.Errorf("apigw: config %q: %v must be at least 1 (one request)", ConfigBurst, burst)
	}
	var leeway time.Duration
	if l := env.String(ConfigLeeway, ""); l != "" {
		if leeway, err = time.ParseDuration(l); err != nil || leeway < 0 {
			return nil, fmt.Errorf("apigw: config %q: %q is not a non-negative duration such as 5s", ConfigLeeway, l)
		}
	}
	if env.Store == nil {
		return nil, fmt.Errorf("apigw: env has no store")
	}
	m, err := collections.NewMap(env.Store, "apigw.buckets", collections.String, BucketCodec)
	if err != nil {
		return nil, fmt.Errorf("apigw: %w", err)
	}
	return &Gateway{v: newVerifier(key), rate: rate, burst: burst, leeway: int64(leeway), buckets: m}, nil
}

// Handle authenticates and rate-limits one event; see the package comment
// for the encoding.
func (g *Gateway) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("apigw: %w", err)
	}
	s := g.v.get()
	cl, reason := g.v.verify(s, ev.Token, ev.Time, g.leeway)
	var tokens float64
	var retry int64
	if reason == OK {
		tokens, retry, reason = g.take(cl.Sub, ev.Time)
	}
	g.v.put(s) // cl.Sub points into s: not used after this
	var out [ReplyLen]byte
	out[0] = byte(reason)
	binary.LittleEndian.PutUint64(out[1:], math.Float64bits(tokens))
	binary.LittleEndian.PutUint64(out[9:], uint64(retry))
	c.Respond(out[:])
	if reason == OK {
		c.Emit(c.Key, req)
	}
	return nil
}

// take refills sub's bucket up to now and takes one token if there is
// one. It returns the tokens left and, when refused, the ns until a token
// will be there.
func (g *Gateway) take(sub []byte, now int64) (tokens float64, retry int64, r Reason) {
	g.mu.Lock()
	// The lookup key aliases the request: a map lookup does not keep it.
	// Inserting a new client copies it; updates reuse b.Sub, the string
	// the map already holds, so a known client costs no allocation.
	b, ok := g.buckets.Get(unsafe.String(unsafe.SliceData(sub), len(sub)))
	if !ok {
		b = Bucket{Sub: string(sub), Tokens: g.burst, Last: now}
	} else if now > b.Last {
		dt := now - b.Last
		if dt < 0 { // overflowed: the gap is longer than int64 ns
			dt = math.MaxInt64
		}
		b.Tokens = min(g.burst, b.Tokens+float64(dt)*g.rate/1e9)
		b.Last = now
	}
	// An event older than the last refill (reordered in transit) refills
	// nothing and does not move the clock back.
	if b.Tokens >= 1 {
		b.Tokens--
		r = OK
	} else {
		r = RateLimited
		wait := math.Ceil((1 - b.Tokens) * 1e9 / g.rate)
		retry = math.MaxInt64
		if wait < math.MaxInt64 {
			retry = int64(wait)
		}
	}
	g.buckets.Set(b.Sub, b)
	tokens = b.Tokens
	g.mu.Unlock()
	return tokens, retry, r
}

// Clients returns the number of clients with a bucket.
func (g *Gateway) Clients() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buckets.Len()
}

// jwtHeader is the JOSE header this package signs with.
const jwtHeader = `{"alg":"HS256","typ":"JWT"}`

// AppendToken appends a compact HS256 JWS of the claims set claimsJSON
// (a JSON object; not checked) signed with key to dst. The generator
// uses it; it is exported for tools that mint test tokens.
func AppendToken(dst, key, claimsJSON []byte) []byte {
	start := len(dst)
	dst = base64.RawURLEncoding.AppendEncode(dst, []byte(jwtHeader))
	dst = append(dst, '.')
	dst = base64.RawURLEncoding.AppendEncode(dst, claimsJSON)
	m := hmac.New(sha256.New, key)
	m.Write(dst[start:])
	var sum [sha256.Size]byte
	dst = append(dst, '.')
	return base64.RawURLEncoding.AppendEncode(dst, m.Sum(sum[:0]))
}
