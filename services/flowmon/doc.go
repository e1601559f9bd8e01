// Package flowmon is the flowmon microservice of E3: per-flow packet (or
// byte) counting with a count-min sketch and a heavy-hitter report, the
// flow monitor of the NFV-FIN and NFV-IFID chains.
//
// # Requests and replies
//
// A request is one IPv4 packet. Its 5-tuple (ports zero for protocols
// without ports and for non-first fragments) is counted, the packet is
// emitted downstream unchanged under the request's key, and the reply is
// the flow's estimated count so far: 8 bytes, little endian. Malformed
// packets are refused with an error wrapping service.ErrMalformed and not
// counted.
//
// The report is read with [Handler.Report] from Go, or by sending the
// 6-byte request "report" ([ReportRequest]; it cannot be an IPv4 packet,
// whose first nibble is 4). Its reply, not forwarded, is [AppendReport]'s
// encoding: N (8 bytes LE), the entry count (4 bytes LE), then per heavy
// hitter the canonical 13-byte 5-tuple and the estimate (8 bytes LE),
// largest first. A heavy hitter is a flow whose estimate is at least
// hh_threshold of N.
//
// # Sketch
//
// d rows of w counters; row i maps a flow's 64-bit key (xxhash of its
// 5-tuple) to a counter with multiply-shift hashing, and a flow's estimate
// is the minimum of its d counters. Estimates never fall below the true
// count, and with eps = e/w and delta = e^-d an estimate exceeds the true
// count by more than eps*N with probability at most delta (Cormode and
// Muthukrishnan 2005); the tests check both on Zipf streams. The defaults,
// w = 2048 and d = 4, give eps = 0.13% of the stream and delta = 1.8% in
// 64 KiB of counters. Conservative update (Estan and Varghese 2002) is an
// option: it raises only the counters below the new estimate, which keeps
// the guarantee and roughly halves the error on skewed traffic.
//
// Heavy-hitter candidates are the flows whose estimate reached the
// threshold when one of their packets was counted; they are kept in a map
// of at most hh_capacity entries, pruned (below-threshold ones first, then
// the smallest, down to 3/4 of the capacity) when it overflows.
//
// # Config keys
//
//	depth         sketch rows d, 1..16                   (4)
//	width         counters per row w, a power of two     (2048)
//	conservative  conservative update: true|false        (false)
//	hh_threshold  heavy-hitter fraction of the stream    (0.01)
//	hh_capacity   candidates kept                        (2/hh_threshold = 200)
//	unit          packets | bytes                        (packets)
//	hash_seed     seed of the row hash functions         (1)
//
// # State
//
// The service is stateful and migratable: the counters are the reliable
// array "flowmon.cms" (d*w uint64, row after row), N is "flowmon.total",
// and the candidates are the reliable map "flowmon.hh" from 5-tuple (in
// its 13-byte canonical form) to estimate. Nothing else is kept, so an
// instance rebuilt from these collections answers exactly as the old one;
// the row hashes depend only on hash_seed, not on the instance. A mutex
// serialises calls.
//
// The generator ([NewGenerator]) draws 512-byte packets from 4096 flows
// with Zipf(1) popularity, so the monitor has heavy hitters to find.
package flowmon
