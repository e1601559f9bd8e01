// Package ddos is the ddos microservice of E3: entropy-based DDoS
// detection (the Shannon entropy of source addresses over a sliding
// window drops when a few sources flood a victim), the first stage of the
// NFV-DIN and NFV-IFID chains.
//
// # Requests and replies
//
// A request is one IPv4 packet; only its source address is used. The
// packet is emitted downstream unchanged under the request's key (the
// service detects, it does not scrub). The reply is 16 bytes: byte 0 is 1
// while the alarm is raised and 0 otherwise, bytes 4-7 the number of
// distinct sources in the window (uint32 LE), bytes 8-15 the normalised
// entropy (float64 LE; 1 until the window is ready). [Handler.State]
// gives the same from Go, with the number of alarms raised so far.
// Malformed packets are refused with an error wrapping
// service.ErrMalformed and do not enter the window.
//
// # Detection
//
// The window holds the sources of the last window packets (a count
// window), or with window_ms those of the packets of the last window_ms
// milliseconds, at most window of them (a time window, on the clock of
// service.Context.Now). Its entropy is H = log2(n) - S/n, where n is the
// number of packets and S the sum of c*log2(c) over the per-source counts
// c: a packet entering or leaving changes one count by one, so S changes
// by the difference of two precomputed terms and the entropy is updated in
// O(1) per packet instead of recomputed. S is kept in fixed point (20
// fractional bits) so that it never drifts, however long the stream; a
// property test compares it with a from-scratch computation after every
// packet.
//
// The normalised entropy is H divided by its maximum, log2 of the number
// of distinct sources (normalise=distinct, the default) or log2 of the
// window size (normalise=window). The alarm is raised while it is below
// threshold and the window is ready: full for a count window, at least
// min_packets packets for a time window. With the default normalisation a
// flood from a handful of sources that send at equal rates, with no other
// traffic at all, looks uniform; normalise=window catches that case but
// also alarms on legitimate traffic from few clients.
//
// # Config keys
//
//	window       packets per window, or the most a time window holds (4096)
//	window_ms    time window in ms; 0 = count window                (0)
//	min_packets  packets a time window needs before it may alarm    (window/4)
//	threshold    alarm below this normalised entropy, in (0, 1)    (0.5)
//	normalise    distinct | window                                  (distinct)
//
// # State
//
// Stateful and migratable: the per-source counts are the reliable map
// "ddos.counts" (address to count), the window is the reliable ring
// "ddos.ring" (and "ddos.times" for time windows), and head, length, S and
// the alarm are the reliable array "ddos.meta". Nothing else is kept, so an
// instance rebuilt from the collections continues exactly where the old one
// stopped. A mutex serialises calls.
//
// The generator is that of normal traffic: 1024 flows of equal popularity,
// each from its own source (package packet's generator); the tests build
// their floods themselves.
package ddos
