package apigw

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

const (
	sec = int64(time.Second)
	t0  = 1_700_000_000 * sec // test clock origin
)

var testKey = []byte("0123456789abcdef0123456789abcdef-test-key")

type tb interface {
	Helper()
	Fatal(args ...any)
}

func newGateway(t tb, cfg map[string]string) *Gateway {
	t.Helper()
	c := map[string]string{ConfigKey: string(testKey)}
	for k, v := range cfg {
		c[k] = v
	}
	h, err := New(service.Env{Instance: "t/apigw.0", Config: c, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Gateway)
}

// mint signs claims with jwt/v5, the independent reference.
func mint(t tb, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func event(t tb, tok string, now int64) []byte {
	t.Helper()
	b, err := service.AppendEvent(nil, &service.Event{Key: 3, Value: 21, Time: now, Token: []byte(tok)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type reply struct {
	reason Reason
	tokens float64
	retry  int64
	emits  int
}

func call(t tb, h service.Handler, req []byte) (reply, error) {
	t.Helper()
	var c service.Context
	c.Reset(0, 3, nil)
	if err := h.Handle(&c, req); err != nil {
		return reply{emits: c.Emitted()}, err
	}
	r := c.Response()
	if len(r) != ReplyLen {
		t.Fatal(fmt.Sprintf("reply of %d bytes", len(r)))
	}
	return reply{
		reason: Reason(r[0]),
		tokens: math.Float64frombits(binary.LittleEndian.Uint64(r[1:])),
		retry:  int64(binary.LittleEndian.Uint64(r[9:])),
		emits:  c.Emitted(),
	}, nil
}

func check(t *testing.T, h service.Handler, tok string, now int64, want Reason) reply {
	t.Helper()
	r, err := call(t, h, event(t, tok, now))
	if err != nil {
		t.Fatal(err)
	}
	if r.reason != want {
		t.Errorf("token %.60q at %d: %v, want %v", tok, now, r.reason, want)
	}
	if (r.emits == 1) != (want == OK) || r.emits > 1 {
		t.Errorf("token %.60q: %d emits for %v", tok, r.emits, r.reason)
	}
	return r
}

func claims(sub string, exp int64) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "exp": exp, "iss": "test"}
}

func TestAcceptsReferenceTokens(t *testing.T) {
	h := newGateway(t, nil)
	for _, c := range []jwt.MapClaims{
		claims("alice", t0/sec+60),
		{"sub": "bob", "exp": float64(t0/sec) + 0.5 + 60, "nbf": t0 / sec, "aud": []string{"a", "b"}, "nested": map[string]any{"x": []any{1, "y", nil, true}}},
		{"sub": "emoji 😀 <&> \"quoted\" \\ tab\t", "exp": t0/sec + 1},
	} {
		check(t, h, mint(t, jwt.SigningMethodHS256, testKey, c), t0, OK)
	}
	if h.Clients() != 3 {
		t.Errorf("%d clients, want 3", h.Clients())
	}
}

func TestRejects(t *testing.T) {
	h := newGateway(t, map[string]string{ConfigLeeway: "2s"})
	good := mint(t, jwt.SigningMethodHS256, testKey, claims("alice", t0/sec+60))
	parts := strings.Split(good, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	otherSub := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":9999999999}`))
	noneTok := mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("alice", t0/sec+60))
	hs384 := mint(t, jwt.SigningMethodHS384, testKey, claims("alice", t0/sec+60))
	hdr := func(h string) string { return base64.RawURLEncoding.EncodeToString([]byte(h)) }
	// A token signed correctly over a header we refuse: the signature is
	// right, the header decides.
	signed := func(header, payload string) string {
		in := hdr(header) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		return in + "." + sigOf(in)
	}
	// The signature's last character carries 2 unused bits; a strict
	// decoder rejects a token whose spare bits were changed.
	last := parts[2][42]
	malleable := parts[0] + "." + parts[1] + "." + parts[2][:42] + string(base64Next(last))

	for name, c := range map[string]struct {
		tok  string
		now  int64
		want Reason
	}{
		"tampered payload":     {parts[0] + "." + otherSub + "." + parts[2], t0, BadSignature},
		"tampered signature":   {parts[0] + "." + parts[1] + "." + flip(parts[2], 5), t0, BadSignature},
		"spare signature bits": {malleable, t0, BadSignature},
		"short signature":      {parts[0] + "." + parts[1] + "." + parts[2][:40], t0, BadSignature},
		"wrong key":            {mint(t, jwt.SigningMethodHS256, []byte("another key of at least 32 bytes!!"), claims("alice", t0/sec+60)), t0, BadSignature},
		"alg none":             {noneTok, t0, BadAlg},
		"alg none, our sig":    {hdr(`{"alg":"none"}`) + "." + parts[1] + "." + parts[2], t0, BadAlg},
		"alg HS384":            {hs384, t0, BadAlg},
		"alg hs256 lowercase":  {signed(`{"alg":"hs256"}`, `{"sub":"a","exp":9999999999}`), t0, BadAlg},
		"no alg":               {signed(`{"typ":"JWT"}`, `{"sub":"a","exp":9999999999}`), t0, BadAlg},
		"alg not a string":     {signed(`{"alg":256}`, `{"sub":"a","exp":9999999999}`), t0, Malformed},
		"duplicate alg":        {signed(`{"alg":"HS256","alg":"none"}`, `{"sub":"a","exp":9999999999}`), t0, Malformed},
		"crit":                 {signed(`{"alg":"HS256","crit":["b64"]}`, `{"sub":"a","exp":9999999999}`), t0, Malformed},
		"escaped alg accepted": {signed(`{"\u0061lg":"HS\u0032\u00356"}`, `{"sub":"a","exp":9999999999}`), t0, OK},
		"expired":              {good, (t0/sec + 62) * sec, Expired},
		"valid in leeway":      {good, (t0/sec+62)*sec - 1, OK},
		"not yet valid":        {mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": "a", "exp": t0/sec + 60, "nbf": t0/sec + 10}), t0, NotYetValid},
		"nbf within leeway":    {mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": "a", "exp": t0/sec + 60, "nbf": t0/sec + 2}), t0, OK},
		"no exp":               {mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": "a"}), t0, MissingClaim},
		"no sub":               {mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"exp": t0/sec + 60}), t0, MissingClaim},
		"empty sub":            {mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": "", "exp": t0/sec + 60}), t0, MissingClaim},
		"exp a string":         {mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": "a", "exp": "tomorrow"}), t0, Malformed},
		"sub a number":         {mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": 7, "exp": t0/sec + 60}), t0, Malformed},
		"sub too long":         {mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": strings.Repeat("x", MaxSubLen+1), "exp": t0/sec + 60}), t0, Malformed},
		"duplicate sub":        {signed(jwtHeader, `{"sub":"a","sub":"b","exp":9999999999}`), t0, Malformed},
		"trailing garbage":     {signed(jwtHeader, `{"sub":"a","exp":9999999999}x`), t0, Malformed},
		"claims not an object": {signed(jwtHeader, `["sub","a"]`), t0, Malformed},
		"bad escape":           {signed(jwtHeader, `{"sub":"a\x","exp":9999999999}`), t0, Malformed},
		"lone surrogate":       {signed(jwtHeader, `{"sub":"a\ud800","exp":9999999999}`), t0, Malformed},
		"invalid utf-8":        {signed(jwtHeader, "{\"sub\":\"a\xff\",\"exp\":9999999999}"), t0, Malformed},
		"deep nesting":         {signed(jwtHeader, `{"sub":"a","exp":9999999999,"x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`), t0, Malformed},
		"empty":                {"", t0, Malformed},
		"one part":             {"abc", t0, Malformed},
		"two parts":            {parts[0] + "." + parts[1], t0, Malformed},
		"four parts":           {good + ".x", t0, Malformed},
		"bad base64 header":    {"!!!." + parts[1] + "." + parts[2], t0, Malformed},
		"padded header":        {parts[0] + "=." + parts[1] + "." + parts[2], t0, Malformed},
		"header not json":      {hdr("HS256") + "." + parts[1] + "." + parts[2], t0, Malformed},
		"too long":             {good + strings.Repeat("A", MaxTokenLen), t0, Malformed},
	} {
		t.Run(name, func(t *testing.T) { check(t, h, c.tok, c.now, c.want) })
	}
}

func sigOf(signingInput string) string {
	// Sign an arbitrary signing input with the test key (AppendToken only
	// signs our fixed header).
	v := newVerifier(testKey)
	s := v.get()
	s.mac.Reset()
	s.mac.Write([]byte(signingInput))
	return base64.RawURLEncoding.EncodeToString(s.mac.Sum(nil))
}

// base64Next returns another URL-safe base64 character that has the same
// top 4 bits as c, so only the 2 spare bits of a 43-character encoding of
// 32 bytes differ.
func base64Next(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

// Hand-checked: rate 2/s, burst 3.
func TestRateLimitByHand(t *testing.T) {
	h := newGateway(t, map[string]string{ConfigRate: "2", ConfigBurst: "3"})
	tok := mint(t, jwt.SigningMethodHS256, testKey, claims("dev-1", t0/sec+3600))
	other := mint(t, jwt.SigningMethodHS256, testKey, claims("dev-2", t0/sec+3600))
	steps := []struct {
		tok    string
		at     int64 // ns after t0
		want   Reason
		tokens float64
		retry  int64
	}{
		{tok, 0, OK, 2, 0}, // a new client starts with a full bucket
		{tok, 0, OK, 1, 0},
		{tok, 0, OK, 0, 0},
		{tok, 0, RateLimited, 0, sec / 2},         // one token takes 0.5 s at 2/s
		{other, 0, OK, 2, 0},                      // buckets are per client
		{tok, sec / 4, RateLimited, 0.5, sec / 4}, // 0.25 s refilled half a token
		{tok, sec / 2, OK, 0, 0},                  // 0.5 + 0.5
		{tok, 10 * sec, OK, 2, 0},                 // refill capped at the burst of 3
		{tok, 9 * sec, OK, 1, 0},                  // older event: no refill, clock not moved back
		{tok, 10*sec + sec/2, OK, 1, 0},           // 1 + 0.5*2 - 1
		{tok, 10*sec + sec/2, OK, 0, 0},
		{tok, 10*sec + sec/2 + 1, RateLimited, 2e-9, 499999999}, // 1 ns refills 2e-9 tokens
	}
	for i, s := range steps {
		r := check(t, h, s.tok, t0+s.at, s.want)
		if math.Abs(r.tokens-s.tokens) > 1e-12 || r.retry != s.retry {
			t.Errorf("step %d: tokens %v retry %d, want %v %d", i, r.tokens, r.retry, s.tokens, s.retry)
		}
	}
}

// Four goroutines race for one client's bucket at a single instant: the
// burst is handed out exactly once.
func TestConcurrentBucket(t *testing.T) {
	h := newGateway(t, map[string]string{ConfigBurst: "100"})
	req := event(t, mint(t, jwt.SigningMethodHS256, testKey, claims("dev", t0/sec+60)), t0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			var c service.Context
			for i := 0; i < 50; i++ {
				c.Reset(0, 0, nil)
				if err := h.Handle(&c, req); err != nil {
					t.Error(err)
					return
				}
				if Reason(c.Response()[0]) == OK {
					n++
				}
			}
			mu.Lock()
			accepted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if accepted != 100 {
		t.Errorf("%d of 200 simultaneous requests accepted with a burst of 100", accepted)
	}
}

func TestMalformedEvent(t *testing.T) {
	h := newGateway(t, nil)
	servicetest.CheckMalformed(t, h, map[string][]byte{"empty": nil, "short": {1, 0, 0}, "version 0": make([]byte, 48)})
}

func TestConfig(t *testing.T) {
	for _, cfg := range []map[string]string{
		{ConfigKey: "short"},
		{ConfigKey: string(testKey), ConfigKeyHex: "00"},
		{ConfigKeyHex: "zz"},
		{ConfigKeyHex: "0011"},
		{ConfigRate: "0"}, {ConfigRate: "-1"}, {ConfigRate: "Inf"}, {ConfigRate: "x"},
		{ConfigBurst: "0.5"}, {ConfigBurst: "NaN"},
		{ConfigLeeway: "-1s"}, {ConfigLeeway: "soon"},
	} {
		if _, err := New(service.Env{Config: cfg, Store: collections.NewMemStore()}); err == nil {
			t.Errorf("config %v accepted", cfg)
		}
	}
	h, err := New(service.Env{Config: map[string]string{ConfigKeyHex: strings.Repeat("ab", 32)}, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{0xab}, 32)
	check(t, h, mint(t, jwt.SigningMethodHS256, key, claims("x", t0/sec+1)), t0, OK)
}

func TestBucketCodecRoundTrip(t *testing.T) {
	for _, b := range []Bucket{{}, {Sub: "thermostat-00001", Tokens: 99.5, Last: t0}, {Sub: "é", Tokens: -0.0, Last: -1}} {
		got, err := BucketCodec.Decode(BucketCodec.Append(nil, b))
		if err != nil || got != b {
			t.Errorf("round trip of %+v: %+v %v", b, got, err)
		}
	}
	if _, err := BucketCodec.Decode(make([]byte, 15)); err == nil {
		t.Error("15-byte bucket decoded")
	}
}

// The buckets live only in the reliable map: an instance rebuilt from the
// mutation records answers the next requests as the original does,
// refusals included.
func TestStateRebuildsFromRecords(t *testing.T) {
	env := service.Env{Seed: 11, Config: map[string]string{ConfigRate: "50", ConfigBurst: "2"}}
	g := NewGenerator(11, 0)
	h1, h2 := servicetest.Rebuilt(t, func(s collections.Store) (service.Handler, error) {
		env.Store = s
		return New(env)
	}, g, 20000)
	limited := 0
	for _, r := range servicetest.Lockstep(t, g, 5000, h1, h2) {
		if Reason(r[0]) == RateLimited {
			limited++
		}
	}
	if limited == 0 {
		t.Error("rate 50/s burst 2 never limited: the comparison did not cover refusals")
	}
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultSize)
	h, err := New(service.Env{Seed: 77, Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	g := NewGenerator(77, 600)
	for i := 0; i < 5000; i++ {
		a, _ := g.Next(nil)
		r, err := call(t, h, a)
		if err != nil || r.reason != OK {
			t.Fatalf("request %d: %v %v", i, r.reason, err)
		}
	}
	// A different seed signs with a different key.
	other, _ := NewGenerator(78, 0).Next(nil)
	if r, _ := call(t, h, other); r.reason != BadSignature {
		t.Errorf("token of another seed: %v", r.reason)
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	if servicetest.RaceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	h := newGateway(t, nil)
	req := event(t, mint(t, jwt.SigningMethodHS256, testKey, claims("thermostat-00042", t0/sec+60)), t0)
	if n := servicetest.HandleAllocs(t, h, &service.Context{}, 1000, [][]byte{req}); n != 0 {
		t.Errorf("%v allocations per request of a known client", n)
	}
}

func FuzzHandle(f *testing.F) {
	g := NewGenerator(1, 0)
	for i := 0; i < 3; i++ {
		req, _ := g.Next(nil)
		f.Add(req)
	}
	h, err := New(service.Env{Seed: 1, Store: collections.NewMemStore()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		if _, ok := servicetest.Reply(t, h, &c, req); !ok {
			return
		}
		if r := c.Response(); len(r) != ReplyLen || Reason(r[0]) >= numReasons {
			t.Fatalf("reply %x", r)
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	h, err := New(service.Env{Seed: 1, Store: collections.NewMemStore()})
	if err != nil {
		b.Fatal(err)
	}
	g := NewGenerator(1, DefaultSize)
	const n = 1 << 14
	reqs, keys := servicetest.Requests(g, n)
	var c service.Context
	for i := range reqs {
		c.Reset(0, keys[i], nil)
		_ = h.Handle(&c, reqs[i])
	}
	b.ReportAllocs()
	b.SetBytes(DefaultSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i & (n - 1)
		c.Reset(0, keys[j], nil)
		if err := h.Handle(&c, reqs[j]); err != nil {
			b.Fatal(err)
		}
	}
}
