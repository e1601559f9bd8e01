// Package count is the count microservice of E3: item frequency counting
// with a bitmap.
//
// Each instance counts how often it has seen each item of an event
// stream (a hashtag, a URL, a metric id). Two reliable collections hold
// the state:
//
//   - count.bitmap, an Array of uint64 words forming a 2^bits membership
//     bitmap over a hashed item space. A clear bit proves an item has never
//     been seen, so a new item is inserted without a lookup in the count
//     map; a set bit may be a collision, and then the map decides.
//   - count.counts, a Map from item id to its number of occurrences. It is
//     exact: bitmap collisions never change a count.
//
// A single mutex guards both, so an observation and its records are
// atomic and the handler is safe for concurrent calls.
//
// # Requests
//
// A request is a [service.Event]. Fields read:
//
//   - Op: [service.OpObserve] counts one occurrence of Item;
//     [service.OpQuery] reads Item's count without changing it. Any other
//     op is malformed.
//   - Item: the item id (already a hash of the item's name; the generator
//     puts the tag text in Text, which the service ignores).
//
// Key, Value, Time, Token, Text and Features are ignored.
//
// # Replies
//
// Little endian. To an observation, 9 bytes:
//
//	0 count u64   the item's count after this occurrence (1 for a new item)
//	8 flags u8    bit 0 (FlagNew): the item had not been counted before
//
// To a query, 17 bytes:
//
//	0 count u64     the item's count (0 if never seen)
//	8 flags u8      bit 0 (FlagNew): the item has never been seen
//	9 distinct u64  how many distinct items this instance has counted
//
// A malformed event (see [service.DecodeEvent]) or an unsupported op
// returns an error wrapping [service.ErrMalformed] and changes nothing.
//
// # Downstream
//
// An observation emits the request unchanged, routed by the key it
// arrived with; a query emits nothing.
//
// # Config
//
//	bits  log2 of the bitmap size in bits, 6..32 (default 20: 128 KiB)
//
// # Generator
//
// [NewGenerator] models a hashtag stream: Zipf-distributed (s = 1.1)
// ranks over 2^20 tags, the tag text in Text, a random user in Key,
// event times 10 µs apart, padded to the requested size. Requests are
// routed by Item.
package count
