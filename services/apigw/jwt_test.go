package apigw

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"pgregory.net/rapid"
)

// refVerify checks tok with jwt/v5 configured as the gateway behaves:
// HS256 only, exp required, strict base64, the given clock and leeway.
func refVerify(tok string, now int64, leeway time.Duration) (string, error) {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(func() time.Time { return time.Unix(0, now) }),
	)
	t, err := p.Parse(tok, func(*jwt.Token) (any, error) { return testKey, nil })
	if err != nil {
		return "", err
	}
	return t.Claims.GetSubject()
}

func ownVerify(tok string, now int64, leeway time.Duration) (string, Reason) {
	v := newVerifier(testKey)
	s := v.get()
	c, r := v.verify(s, []byte(tok), now, int64(leeway))
	return string(c.Sub), r
}

// The tokens we mint are byte for byte those jwt/v5 mints for the same
// claims set.
func TestAppendTokenMatchesJWTv5(t *testing.T) {
	c := jwt.MapClaims{"sub": "thermostat-00001", "exp": 1700086400, "iat": 1700000000, "scope": "telemetry:write"}
	want := mint(t, jwt.SigningMethodHS256, testKey, c)
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(AppendToken(nil, testKey, body)); got != want {
		t.Errorf("AppendToken:\n got %s\nwant %s", got, want)
	}
}

// Random claim sets signed by jwt/v5 and checked at random times: our
// verifier accepts exactly when jwt/v5 does, with the same subject.
func TestVerifyAgreesWithJWTv5(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		base := rapid.Int64Range(0, 4_000_000_000).Draw(rt, "base")
		c := jwt.MapClaims{
			"sub": rapid.StringN(1, 40, -1).Draw(rt, "sub"),
		}
		if rapid.Bool().Draw(rt, "hasExp") {
			if rapid.Bool().Draw(rt, "fracExp") {
				c["exp"] = float64(base) + rapid.Float64Range(-5, 5).Draw(rt, "expOff")
			} else {
				c["exp"] = base + rapid.Int64Range(-5, 5).Draw(rt, "expOffInt")
			}
		}
		if rapid.Bool().Draw(rt, "hasNbf") {
			c["nbf"] = base + rapid.Int64Range(-5, 5).Draw(rt, "nbfOff")
		}
		if rapid.Bool().Draw(rt, "extra") {
			c["aud"] = []any{"x", 1.5, nil, map[string]any{"k": "\u2028"}}
			c["iat"] = base
		}
		tok := mint(rt, jwt.SigningMethodHS256, testKey, c)
		now := base*int64(time.Second) + rapid.Int64Range(-6e9, 6e9).Draw(rt, "nowOff")
		leeway := time.Duration(rapid.IntRange(0, 2).Draw(rt, "leeway")) * time.Second
		refSub, refErr := refVerify(tok, now, leeway)
		sub, r := ownVerify(tok, now, leeway)
		if (refErr == nil) != (r == OK) {
			rt.Fatalf("token %s at %d: jwt/v5 says %v, we say %v", tok, now, refErr, r)
		}
		if r == OK && sub != refSub {
			rt.Fatalf("sub %q, jwt/v5 %q", sub, refSub)
		}
		switch {
		case r == Expired && !errors.Is(refErr, jwt.ErrTokenExpired),
			r == NotYetValid && !errors.Is(refErr, jwt.ErrTokenNotValidYet),
			r == MissingClaim && !errors.Is(refErr, jwt.ErrTokenRequiredClaimMissing):
			rt.Fatalf("we say %v, jwt/v5 says %v", r, refErr)
		}
	})
}

// Whatever the fuzzer makes of a token, we never accept what jwt/v5
// rejects, and never see another subject.
func FuzzVerify(f *testing.F) {
	now := 1_700_000_000 * int64(time.Second)
	for _, c := range []jwt.MapClaims{
		{"sub": "a", "exp": 1_700_000_060},
		{"sub": "b\u00e9\"\\", "exp": 1_700_000_060.5, "nbf": 1_699_999_000, "aud": []string{"x"}},
	} {
		f.Add(mint(f, jwt.SigningMethodHS256, testKey, c))
	}
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	v := newVerifier(testKey)
	f.Fuzz(func(t *testing.T, tok string) {
		s := v.get()
		defer v.put(s)
		c, r := v.verify(s, []byte(tok), now, 0)
		if r >= numReasons {
			t.Fatalf("reason %d", r)
		}
		if r != OK {
			return
		}
		sub, err := refVerify(tok, now, 0)
		if err != nil {
			t.Fatalf("we accept %q, jwt/v5 rejects it: %v", tok, err)
		}
		if sub != string(c.Sub) {
			t.Fatalf("sub %q, jwt/v5 %q", c.Sub, sub)
		}
	})
}

func TestSaturation(t *testing.T) {
	if satMul(math.MaxInt64/2, 3) != math.MaxInt64 || satMul(math.MinInt64/2, 3) != math.MinInt64 || satMul(-4, 3) != -12 {
		t.Error("satMul")
	}
	if satAdd(math.MaxInt64, 1) != math.MaxInt64 || satAdd(math.MinInt64, -1) != math.MinInt64 || satAdd(5, -7) != -2 {
		t.Error("satAdd")
	}
	// A token expiring in the year 300 billion is simply valid.
	tok := mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": "a", "exp": 1e19})
	if _, r := ownVerify(tok, 0, 0); r != OK {
		t.Errorf("far-future exp: %v", r)
	}
	tok = mint(t, jwt.SigningMethodHS256, testKey, jwt.MapClaims{"sub": "a", "exp": -1e19})
	if _, r := ownVerify(tok, math.MinInt64, 0); r != Expired {
		t.Errorf("far-past exp: %v", r)
	}
}

var benchTok = func() string {
	c := jwt.MapClaims{"sub": "thermostat-00042", "iss": "e3-iot-hub", "aud": "iot-ts", "scope": "telemetry:write", "iat": 1_700_000_000, "exp": 1_700_086_400}
	s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testKey)
	return s
}()

// BenchmarkVerifyOwn and BenchmarkVerifyJWTv5 compare the verifier the
// gateway ships with jwt/v5 on the generator's token shape.
func BenchmarkVerifyOwn(b *testing.B) {
	v := newVerifier(testKey)
	tok := []byte(benchTok)
	now := 1_700_000_001 * int64(time.Second)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := v.get()
		if _, r := v.verify(s, tok, now, 0); r != OK {
			b.Fatal(r)
		}
		v.put(s)
	}
}

func BenchmarkVerifyJWTv5(b *testing.B) {
	now := 1_700_000_001 * int64(time.Second)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := refVerify(benchTok, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}
