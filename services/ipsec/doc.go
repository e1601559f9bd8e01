// Package ipsec is the ipsec microservice of E3: an IPsec gateway doing
// ESP (RFC 4303) in tunnel mode with AES-128-CBC (RFC 3602) and
// HMAC-SHA1-96 (RFC 2404), the NFV-IFID chain's stage after NAT.
//
// # Requests and replies
//
// One IPv4 packet per request; the reply is one IPv4 packet, and the same
// packet is emitted downstream under the request's key (the inner flow's
// hash, so a flow keeps its shard through the tunnel).
//
//   - encap: the request is a plain IPv4 packet (bytes after its total
//     length are ignored). The reply is the ESP tunnel packet: an outer
//     IPv4 header (protocol 50, tunnel_src to tunnel_dst, TOS and DF copied
//     from the inner header, TTL 64), SPI, sequence number, a random
//     16-byte IV, the AES-128-CBC ciphertext of the inner packet followed
//     by padding 1, 2, 3, ..., the pad length and next header 4 (IPv4), and
//     the 12-byte ICV over SPI through ciphertext. A 512-byte packet
//     becomes 584 bytes ([Overhead]).
//   - decap: the request is such an ESP packet; the reply is the inner
//     packet. Decap checks the anti-replay window, verifies the ICV in
//     constant time, only then advances the window and decrypts, and
//     rejects a wrong next header, padding that is not 1, 2, 3, ... or an
//     inner packet whose length disagrees. Fragments are rejected
//     (reassembly is not this service's job).
//
// Every rejected packet gets an error wrapping service.ErrMalformed;
// [ErrAuth] and [ErrReplay] single out forgeries and replays.
//
// The output is standard ESP: the tests require byte equality with an
// independent construction from crypto/cipher and crypto/hmac and with
// OpenSSL's EVP (bench/esp_openssl.c) for the same IV, and decode it with
// gopacket.
//
// # Config keys
//
//	mode        encap | decap                        (encap)
//	sa_count    SAs, a power of two from 1 to 256    (16)
//	spi         SPI of SA 0; SA i has spi+i, >= 256  (0x1000)
//	tunnel_src  outer source address                 (192.0.2.1)
//	tunnel_dst  outer destination address            (198.51.100.1)
//	enc_key     AES-128 key of every SA, 32 hex digits     (derived)
//	auth_key    HMAC-SHA1 key of every SA, 40 hex digits   (derived)
//	key_seed    seed of the derived per-SA keys      (e3-ipsec)
//
// Outbound, SA i carries the inner packets whose destination address
// begins with the log2(sa_count)-bit prefix i, a simple security policy
// database by destination prefix; inbound, the SA is found by SPI. Without
// explicit keys each SA's keys are HMAC-SHA256(key_seed, label || SPI), so
// an encap and a decap instance with the same config form a tunnel.
//
// # State
//
// The descriptor says stateless, as Table 2 does: keys and SAs are
// configuration, set through the control plane. The outbound sequence
// counters (atomic) and the inbound replay windows (a 64-bit bitmap per
// SA under a mutex) are per-instance soft state kept in memory rather
// than in reliable collections. Logging every packet's sequence number
// would put a replicated write on the per-packet path of a service whose
// only state is these counters, and the protocol does not need it: after
// a migration or fail-over the control plane installs fresh SAs (new SPIs
// and keys, as IKE rekeying does), which restarts both counters safely. For
// the same reason each shard of a sharded encap stage must be given its
// own spi range: two instances sending under one SPI would reuse sequence
// numbers and the receiver would drop the repeats as replays.
//
// # Speed
//
// The per-packet path allocates nothing (a test asserts it). Per-core
// cipher and MAC state comes from a sync.Pool. HMAC restores the hash
// states saved after the ipad and opad blocks instead of rehashing the key
// (crypto/hmac does this once Reset has been called). IVs come from
// crypto/rand 4 KiB (256 IVs) at a time. On amd64 AES-CBC runs in
// assembly loops that keep the round keys in registers and decrypt four
// blocks at a time (cbc_amd64.s); crypto/cipher's CBC, which calls the
// block cipher once per block, is used elsewhere and under the purego tag.
// bench/run.sh compares BenchmarkHandle with OpenSSL on the same machine.
package ipsec
