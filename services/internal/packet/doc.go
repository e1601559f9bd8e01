// Package packet is the IPv4 toolkit shared by E3's packet-family
// microservices (ipsec, natv4, flowmon, ddos, nids): header parsing and
// building, the internet checksum, 5-tuple extraction and a deterministic
// packet generator.
//
// Everything on the per-packet path works on the caller's byte slices and
// allocates nothing: parsers fill a caller-owned struct ([ParseIPv4],
// [ParseUDP], [ParseTCP], [ParseFiveTuple]) and builders write into or
// append to a caller-owned buffer ([PutIPv4], [PutUDP], [PutTCP]). gopacket
// is used only by the tests, as an independent reference, because its
// layer decoding allocates per packet.
//
// Addresses are host-order uint32 values (10.0.0.1 is 0x0a000001): NAT and
// longest-prefix match do arithmetic on them, and [netip.AddrFrom4] with
// [AddrBytes] converts when a readable form is wanted.
//
// Checksums follow RFC 1071 and are summed eight bytes at a time with an
// end-around carry ([Sum], [Fold], [Checksum]); header rewrites update them
// incrementally per RFC 1624 ([Update16], [Update32]).
//
// Malformed input is reported by an error that wraps
// [service.ErrMalformed] and names the field, value and byte offset, so a
// service can return it unchanged.
//
// The [Generator] produces the requests of all packet services: complete
// IPv4/TCP or IPv4/UDP packets with valid checksums and random payload, of
// an exact requested size, drawn from a fixed set of flows, uniformly or
// with Zipf skew. Its key is [FiveTuple.Hash], an xxhash of the canonical
// 13-byte tuple, so every node routes a flow the same way.
//
//	g := packet.NewGenerator(packet.GenConfig{Seed: 1, Size: 512, Flows: 1000, Zipf: 1.1})
//	pkt, key := g.Next(buf)
package packet
