// Package natv4 is the natv4 microservice of E3: an IPv4 router with
// source NAT, its routing table a DIR-24-8-BASIC longest-prefix-match
// table (Gupta, Kelly and McKeown, INFOCOM 1998).
//
// # Requests and replies
//
// One IPv4 packet per request (bytes after its total length are ignored);
// the reply is the rewritten packet, which is also emitted downstream under
// the request's key. For each packet the service
//
//  1. verifies the IPv4 header checksum and drops packets whose TTL would
//     expire;
//  2. translates: a packet from the inside prefix gets an outside source
//     endpoint (source NAT with endpoint-independent mapping, RFC 4787
//     §4.1: one outside address and port per inside protocol, address and
//     port, allocated on the flow's first packet); a packet to an outside
//     address gets the inside destination its mapping names (the reverse
//     direction); other packets pass untranslated. TCP and UDP are
//     translated; other protocols from the inside and non-first fragments
//     are dropped, having no ports;
//  3. looks the (translated) destination up in the routing table and counts
//     the packet on the next hop's egress port ([Handler.PortPackets]);
//  4. decrements the TTL.
//
// The IPv4 header checksum and the TCP or UDP checksum (whose
// pseudo-header covers the rewritten address) are updated incrementally
// with RFC 1624's HC' = ~(~HC + ~m + m'); a UDP checksum of zero ("none")
// stays zero. Tests compare every rewrite with a full recomputation.
//
// Malformed packets get errors wrapping service.ErrMalformed; well-formed
// packets the NAT will not forward get errors wrapping [ErrDropped]
// ([ErrNoRoute], [ErrNoMapping], [ErrTableFull], [ErrTTL],
// [ErrUntranslate]).
//
// # Routing table
//
// [Table] holds TBL24, 2^24 16-bit entries (32 MiB), and TBLlong, 256-entry
// blocks for the /24s that contain prefixes longer than /24. By default the
// routes come from [GenerateRoutes]: 4000 distinct prefixes of length 8 to
// 32 in public unicast space with the length mix of the public BGP table
// (/24 about 59%, /22 and /23 about 10% each, /16 to /21 a few per cent,
// /8 to /15 rare) plus 2% longer than /24 as in provider tables, next hops
// 1-16, and a default route to next hop 1. Next hop n leaves on egress port
// (n-1) mod ports.
//
// # Config keys
//
//	inside        inside prefix                          (10.0.0.0/8)
//	outside       outside address pool, /16 to /32       (203.0.113.0/24)
//	routes        number of generated routes             (4000)
//	route_seed    seed of the generated routes           (1)
//	next_hops     next hops of the generated routes      (16)
//	default_route add 0.0.0.0/0 to next hop 1            (true)
//	route_list    explicit routes "a.b.c.d/len>hop, ..." (replaces generated ones)
//	ports         egress ports                           (4)
//	max_mappings  translation table capacity             (262144)
//	idle_timeout  seconds an idle mapping lives, 0 = forever (300, RFC 4787 REQ-5)
//
// # State
//
// Table 2 lists NATv4 as stateless: its routing table changes only through
// the control plane (a new config builds a new table). The translation
// table is per-instance soft state held in memory, not in reliable
// collections, for three reasons. Mappings are created at line rate on the
// first packet of every flow, and a replicated write there would put the
// log on the per-packet path of the cheapest network function. A mapping
// is only meaningful together with the outside address the instance owns:
// moving an instance moves the flows' return path, and after a migration
// or fail-over flows re-establish mappings from their next packet, as they
// do on any NAT reboot (TCP connections through the old mapping break, as
// they would there). And a mapping cannot be derived from the 5-tuple
// alone instead: 2^40 inside endpoints share a few million outside ones,
// so allocation needs memory of what is taken.
//
// The table is split into 16 shards, each with its own lock and two
// open-addressing tables (inside to outside, outside to inside) allocated
// up front, so neither lookups nor new mappings allocate. A shard hands out
// only outside ports congruent to its number modulo 16, so an inbound
// packet finds its shard from the destination port. Idle mappings are
// removed by an incremental sweep that runs with each allocation.
package natv4
