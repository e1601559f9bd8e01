package ipsec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// Modes of an instance.
const (
	ModeEncap = "encap" // plain IPv4 packet in, ESP tunnel packet out
	ModeDecap = "decap" // ESP tunnel packet in, inner IPv4 packet out
)

// Key lengths: AES-128 (RFC 3602) and HMAC-SHA1 (RFC 2404).
const (
	EncKeyLen  = 16
	AuthKeyLen = 20
)

// Defaults for the config keys.
const (
	DefaultSAs     = 16
	DefaultSPI     = 0x1000
	DefaultKeySeed = "e3-ipsec"
)

var (
	defaultTunnelSrc = netip.MustParseAddr("192.0.2.1")    // RFC 5737 TEST-NET-1
	defaultTunnelDst = netip.MustParseAddr("198.51.100.1") // RFC 5737 TEST-NET-2
)

// Config is the parsed configuration of an ipsec instance. The encap and
// the decap side of a tunnel must be given the same SA keys: sa_count,
// spi, and either the same enc_key/auth_key or the same key_seed.
type Config struct {
	// Mode is ModeEncap or ModeDecap.
	Mode string
	// SAs is the number of security associations, a power of two from 1 to
	// 256. Outbound, SA i protects inner packets whose destination address
	// starts with the log2(SAs)-bit prefix i.
	SAs int
	// SPI is the SPI of SA 0; SA i uses SPI+i.
	SPI uint32
	// TunnelSrc and TunnelDst are the outer header's addresses (host order).
	TunnelSrc, TunnelDst uint32
	// EncKey and AuthKey, when set, are the keys of every SA. When nil,
	// each SA's keys are derived from KeySeed and its SPI.
	EncKey, AuthKey []byte
	// KeySeed seeds the derived keys.
	KeySeed string
}

// ParseConfig reads an instance's config map, fills defaults and validates.
//
//	mode        encap | decap                        (encap)
//	sa_count    power of two, 1..256                 (16)
//	spi         SPI of SA 0, decimal or 0x hex, >= 256 (0x1000)
//	tunnel_src  outer source address                 (192.0.2.1)
//	tunnel_dst  outer destination address            (198.51.100.1)
//	enc_key     32 hex digits: AES-128 key of all SAs (derived)
//	auth_key    40 hex digits: HMAC-SHA1 key of all SAs (derived)
//	key_seed    string the per-SA keys are derived from (e3-ipsec)
func ParseConfig(m map[string]string) (Config, error) {
	c := Config{Mode: ModeEncap, SAs: DefaultSAs, SPI: DefaultSPI, KeySeed: DefaultKeySeed}
	c.TunnelSrc = addrU32(defaultTunnelSrc)
	c.TunnelDst = addrU32(defaultTunnelDst)
	get := func(k string) (string, bool) {
		v, ok := m[k]
		return strings.TrimSpace(v), ok
	}
	if v, ok := get("mode"); ok {
		if v != ModeEncap && v != ModeDecap {
			return c, fmt.Errorf("ipsec: config mode: %q, want %q or %q", v, ModeEncap, ModeDecap)
		}
		c.Mode = v
	}
	if v, ok := get("sa_count"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 || bits.OnesCount(uint(n)) != 1 {
			return c, fmt.Errorf("ipsec: config sa_count: %q is not a power of two from 1 to 256", v)
		}
		c.SAs = n
	}
	if v, ok := get("spi"); ok {
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil || n < 256 {
			return c, fmt.Errorf("ipsec: config spi: %q is not a 32-bit number >= 256 (0-255 are reserved by RFC 4303)", v)
		}
		c.SPI = uint32(n)
	}
	if uint64(c.SPI)+uint64(c.SAs)-1 > 0xffffffff {
		return c, fmt.Errorf("ipsec: config spi %#x + sa_count %d overflows 32 bits", c.SPI, c.SAs)
	}
	for _, a := range []struct {
		key string
		dst *uint32
	}{{"tunnel_src", &c.TunnelSrc}, {"tunnel_dst", &c.TunnelDst}} {
		if v, ok := get(a.key); ok {
			ip, err := netip.ParseAddr(v)
			if err != nil || !ip.Is4() {
				return c, fmt.Errorf("ipsec: config %s: %q is not an IPv4 address", a.key, v)
			}
			*a.dst = addrU32(ip)
		}
	}
	for _, k := range []struct {
		key string
		n   int
		dst *[]byte
	}{{"enc_key", EncKeyLen, &c.EncKey}, {"auth_key", AuthKeyLen, &c.AuthKey}} {
		if v, ok := get(k.key); ok {
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != k.n {
				return c, fmt.Errorf("ipsec: config %s: want %d hex digits, got %q", k.key, 2*k.n, v)
			}
			*k.dst = b
		}
	}
	if v, ok := get("key_seed"); ok {
		if v == "" {
			return c, fmt.Errorf("ipsec: config key_seed is empty")
		}
		c.KeySeed = v
	}
	return c, nil
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// keys returns the keys of the SA with the given SPI.
func (c *Config) keys(spi uint32) (enc, auth []byte) {
	enc, auth = c.EncKey, c.AuthKey
	if enc == nil {
		enc = deriveKey(c.KeySeed, "e3 ipsec enc", spi, EncKeyLen)
	}
	if auth == nil {
		auth = deriveKey(c.KeySeed, "e3 ipsec auth", spi, AuthKeyLen)
	}
	return enc, auth
}

// deriveKey is HMAC-SHA256(seed, label || SPI) truncated to n bytes: the
// same on every node, so an encap and a decap instance configured alike
// share their keys without a key exchange. It is for tests and
// benchmarks; production tunnels set enc_key and auth_key (from IKE).
func deriveKey(seed, label string, spi uint32, n int) []byte {
	m := hmac.New(sha256.New, []byte(seed))
	m.Write([]byte(label))
	m.Write(binary.BigEndian.AppendUint32(nil, spi))
	return m.Sum(nil)[:n]
}
