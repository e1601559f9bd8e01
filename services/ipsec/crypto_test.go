package ipsec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/e3-platform/e3/services/internal/servicetest"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testCrypto returns the per-core crypto of a one-SA handler with the
// given keys, the code path the service uses.
func testCrypto(t testing.TB, enc, auth []byte) (*sa, *saCrypto) {
	t.Helper()
	h, err := New(Config{Mode: ModeEncap, SAs: 1, SPI: 0x1000, EncKey: enc, AuthKey: auth})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(h.sas)
	return h.sas[0], &w.sas[0]
}

// TestRFC3602Vectors runs the AES-128-CBC cases 1-4 of RFC 3602 §4 through
// the service's CBC code (AES-NI loops where available) both ways.
func TestRFC3602Vectors(t *testing.T) {
	rng := make([]byte, 32)
	for i, v := range []struct{ key, iv, pt, ct string }{
		{"06a9214036b8a15b512e03d534120006", "3dafba429d9eb430b422da802c9fac41",
			hex.EncodeToString([]byte("Single block msg")), "e353779c1079aeb82708942dbe77181a"},
		{"c286696d887c9aa0611bbb3e2025a45a", "562e17996d093d28ddb3ba695a2e6f58",
			"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			"d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1"},
		{"6c3ea0477630ce21a2ce334aa746c2cd", "c782dc4c098c66cbd9cd27d825682c81",
			hex.EncodeToString([]byte("This is a 48-byte message (exactly 3 AES blocks)")),
			"d0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5021c19216bad525c8579695d83ba2684"},
		{"56e47a38c5598974bc46903dba290349", "8ce82eefbea0da3c44699ed7db51b7d9",
			"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
			"c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55"},
	} {
		s, c := testCrypto(t, unhex(t, v.key), rng[:20])
		buf := unhex(t, v.pt)
		c.encrypt(s, unhex(t, v.iv), buf)
		if want := unhex(t, v.ct); !bytes.Equal(buf, want) {
			t.Fatalf("case %d: ciphertext %x, RFC 3602 %x", i+1, buf, want)
		}
		out := make([]byte, len(buf))
		c.decrypt(s, unhex(t, v.iv), out, buf)
		if want := unhex(t, v.pt); !bytes.Equal(out, want) {
			t.Fatalf("case %d: decrypted %x, want %x", i+1, out, want)
		}
		c.decrypt(s, unhex(t, v.iv), buf, buf) // in place
		if want := unhex(t, v.pt); !bytes.Equal(buf, want) {
			t.Fatalf("case %d: decrypted in place %x, want %x", i+1, buf, want)
		}
	}
	t.Logf("AES-NI loops: %v", haveAESNI)
}

// TestRFC2202Vectors runs the HMAC-SHA1 cases of RFC 2202 §3 through the
// service's ICV code, twice each to exercise the saved-state reset; the ICV
// is the first 96 bits (RFC 2404 §2).
func TestRFC2202Vectors(t *testing.T) {
	for i, v := range []struct {
		key, data []byte
		digest    string
	}{
		{bytes.Repeat([]byte{0x0b}, 20), []byte("Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"},
		{[]byte("Jefe"), []byte("what do ya want for nothing?"), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
		{bytes.Repeat([]byte{0xaa}, 20), bytes.Repeat([]byte{0xdd}, 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"},
		{unhex(t, "0102030405060708090a0b0c0d0e0f10111213141516171819"), bytes.Repeat([]byte{0xcd}, 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da"},
		{bytes.Repeat([]byte{0x0c}, 20), []byte("Test With Truncation"), "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"},
		{bytes.Repeat([]byte{0xaa}, 80), []byte("Test Using Larger Than Block-Size Key - Hash Key First"), "aa4ae5e15272d00e95705637ce8a3b55ed402112"},
		{bytes.Repeat([]byte{0xaa}, 80), []byte("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"), "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"},
	} {
		w := newWorker([]*sa{{authKey: v.key, block: mustAES(t, make([]byte, 16))}})
		c := &w.sas[0]
		want := unhex(t, v.digest)[:icvLen]
		for range 2 {
			if got := c.icv(v.data); !bytes.Equal(got, want) {
				t.Fatalf("case %d: ICV %x, RFC 2202 %x", i+1, got, want)
			}
		}
	}
}

func mustAES(t testing.TB, key []byte) cipher.Block {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCBCAgainstCryptoCipher compares the AES-NI loops with crypto/cipher
// for random keys, IVs and lengths.
func TestCBCAgainstCryptoCipher(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		key, iv := make([]byte, 16), make([]byte, 16)
		fill(rng, key)
		fill(rng, iv)
		s, c := testCrypto(t, key, make([]byte, 20))
		pt := make([]byte, 16*(1+rng.IntN(100)))
		fill(rng, pt)
		want := make([]byte, len(pt))
		cipher.NewCBCEncrypter(mustAES(t, key), iv).CryptBlocks(want, pt)
		got := append([]byte(nil), pt...)
		c.encrypt(s, iv, got)
		if !bytes.Equal(got, want) {
			t.Fatalf("key %x iv %x len %d: encryption differs from crypto/cipher", key, iv, len(pt))
		}
		back := make([]byte, len(pt))
		c.decrypt(s, iv, back, got)
		if !bytes.Equal(back, pt) {
			t.Fatalf("key %x iv %x len %d: decryption differs", key, iv, len(pt))
		}
	}
}

func TestHMACAgainstCryptoHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	key := make([]byte, 20)
	fill(rng, key)
	_, c := testCrypto(t, make([]byte, 16), key)
	for n := 0; n < 300; n++ {
		data := make([]byte, rng.IntN(2000))
		fill(rng, data)
		m := hmac.New(sha1.New, key)
		m.Write(data)
		if got, want := c.icv(data), m.Sum(nil)[:icvLen]; !bytes.Equal(got, want) {
			t.Fatalf("len %d: ICV %x, crypto/hmac %x", len(data), got, want)
		}
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// BenchmarkICV compares the ICV as the service computes it (HMAC states
// saved after the key blocks, restored per packet) with a fresh
// hmac.New per packet, over the 552 bytes a 512-byte packet is
// authenticated on.
func BenchmarkICV(b *testing.B) {
	key := make([]byte, 20)
	data := make([]byte, 8+16+528)
	_, c := testCrypto(b, make([]byte, 16), key)
	b.Run("reuse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		defer servicetest.StartCPU(b).Stop(b, 0)
		for b.Loop() {
			c.icv(data)
		}
	})
	b.Run("new", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		defer servicetest.StartCPU(b).Stop(b, 0)
		var sum [20]byte
		for b.Loop() {
			m := hmac.New(sha1.New, key)
			m.Write(data)
			m.Sum(sum[:0])
		}
	})
}

// BenchmarkCBC compares the AES-NI loop with crypto/cipher's CBC mode
// (IV reset on a kept mode) on 528 bytes, a padded 512-byte packet.
func BenchmarkCBC(b *testing.B) {
	key, iv := make([]byte, 16), make([]byte, 16)
	buf := make([]byte, 528)
	s, c := testCrypto(b, key, make([]byte, 20))
	if haveAESNI {
		b.Run("aesni", func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			defer servicetest.StartCPU(b).Stop(b, 0)
			for b.Loop() {
				c.encrypt(s, iv, buf)
			}
		})
	}
	b.Run("crypto-cipher", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		defer servicetest.StartCPU(b).Stop(b, 0)
		for b.Loop() {
			c.enc.(ivSetter).SetIV(iv)
			c.enc.CryptBlocks(buf, buf)
		}
	})
}
