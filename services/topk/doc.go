// Package topk is the topk microservice of E3: a top-K ranker over a
// sliding window of scored items, as in the rolling top-K of a streaming
// analytics pipeline (trending hashtags: count, then rank). It is stateful.
//
// # What it does
//
// The service keeps the last W observations (window, default 1,024) and,
// for every distinct item among them, the score of its latest observation.
// A ranking returns the K items (default 10) with the highest latest
// scores, ties broken by the lower item id. An item drops out when its last
// observation leaves the window.
//
// Ranking copies the window's distinct items (a dense array kept up to
// date, see State) and applies [TopK]: quickselect puts the K best first in
// linear expected time by partitioning around a pivot and following only
// the side that holds the K-th position, then quicksort orders those K:
// O(n + K log K) instead of the O(n log n) of sorting the whole window.
// Pivots are medians of three; a budget of 2 log2(n) partitions falls back
// to heapsort, so scores chosen to defeat the pivot rule cannot make a
// request quadratic. Observing is O(1). Neither allocates.
//
// # State
//
// Everything lives in reliable collections (package collections), so a
// snapshot of them is the whole instance:
//
//	window  Array[item id]              the last W items, a ring
//	count   Array[uint64] (1 element)   observations so far; the next goes
//	                                    to window[count mod W]
//	latest  Map[item id]{seq, slot}     per distinct item in the window: the
//	                                    sequence number of its last
//	                                    observation and its index in ranked
//	ranked  Array[{item, score}]        the distinct items of the window with
//	                                    their latest scores, densely packed
//
// When the ring overwrites an observation that was its item's last
// (latest.seq equals the overwritten sequence number) the item leaves:
// the last element of ranked moves into its slot. Each observation is a
// handful of small records, cheap to log and replicate. A handler lock
// guards the state. window must be the same on instances that share state
// through snapshots or logs.
//
// # Request
//
// A [service.Event]:
//
//	Op = OpObserve  Item = item id, Value = its score (finite)
//	Op = OpQuery    rank the window (Item and Value ignored)
//
// Key, Time, Token, Text and Features are ignored. With rank=every, an
// OpObserve also ranks, after adding its item. Any other op, a NaN or
// infinite score, or an event that does not decode, is rejected with an
// error wrapping [service.ErrMalformed], changes nothing and is not passed
// on.
//
// # Reply
//
// Little endian, 6 + 16*n bytes (decoded by [ParseReply]):
//
//	0  distinct  u32  distinct items in the window (after this request)
//	4  n         u16  ranked items that follow: 0 when the request did not
//	                  rank, else min(K, distinct)
//	6  n times:      item id u64, score f64, best first
//
// # Downstream
//
// The request event is emitted unchanged with the key it was routed by.
//
// # Configuration
//
//	window  observations kept, default 1024, at most 16 Mi
//	k       items per ranking, default 10, at most 1000
//	rank    "query" (default): rank on OpQuery; "every": on every request
//
// # Requests for tests and benchmarks
//
// [NewGenerator] produces a trending-topics stream: seven in eight requests
// observe a hashtag drawn with Zipf popularity (exponent 1.1) among 10,000,
// scored with the number of times the generator has produced it so far (as
// an upstream counter would report), one in eight asks for the ranking.
// Key is the hashtag id (0 for queries), so sharding by key gives each
// shard a partial ranking of its own items, as a streaming job's
// intermediate rankers have. Requests are padded to the requested size
// (512 bytes by default).
package topk
