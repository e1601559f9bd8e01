// Package kvs is the kvs microservice of E3: an in-memory hash-table
// key-value store in the spirit of MemC3 (GET, SET, DELETE; values up to
// 1 KB), with a decoder and encoder of the memcached text protocol so
// that memcached clients can drive it.
//
// # Store
//
// Items live in one reliable map, kvs.items, from a 64-bit slot number to
// an [Item] (key and value in one allocation, as memcached and MemC3 lay
// items out, plus client flags and an expiry deadline), encoded by
// [ItemCodec]. The map is used as an open-addressing table over the 2^64
// slot space: a key's home slot is its xxhash64 ([KeyHash], equal on
// every node), a colliding key takes the next free slot (linear probing,
// at most 64 slots from home), and DELETE closes the gap by shifting
// later items of the run back, so lookups never meet tombstones. With a
// 64-bit hash two keys share a home about once in 2^64/n² and nearly every
// lookup touches one slot; the probe bound caps the work keys crafted to
// collide can cause (a SET that finds its window full is refused). Every
// mutation is a map record, so a persisting, replicating store gets the
// whole table without the service knowing.
//
// Expiry is lazy, as in memcached: an expired item is removed when a
// request touches it, and counts against capacity until then. A SET of an
// existing key overwrites its item in place when the new value fits the
// old allocation, so steady-state GETs and SETs allocate nothing. When
// capacity items are held, a SET of a new key is refused (memcached's
// -M mode) rather than evicting: eviction would need a policy whose
// state also lives in collections, left for later.
//
// One mutex guards the table; the handler is safe for concurrent calls.
//
// # Requests
//
// A request is a [service.Event]. Fields read:
//
//   - Op: [service.OpGet], [service.OpSet] or [service.OpDelete]; or
//     [service.OpObserve] for a stream event (an IoT data hub's reading),
//     stored as the latest record of its stream: key = Key as 8
//     little-endian bytes, value = Item, Value and Time as 24 little-endian
//     bytes; Token is not the key then. Any other op is malformed.
//   - Token: the key, 1 to 250 bytes (memcached's limit), any bytes.
//   - Text (SET): the value, up to max_value bytes (1 KB by default);
//     longer is malformed.
//   - Item (SET): the client flags, at most 2^32-1.
//   - Time (SET): the expiry deadline in ns on the service clock
//     ([service.Context.Now]); 0 never expires, a negative deadline or one
//     not after Now stores nothing and removes the key (memcached's
//     negative exptime).
//
// The service clock, not Time, decides whether an item has expired.
//
// # Replies
//
// A 5-byte header, little endian, then for a GET hit the value:
//
//	0 status u8   0 ok (hit, stored, deleted), 1 not found, 2 out of memory
//	              (store full), 3 no slot (probe window full)
//	1 flags u32   GET hit: the item's flags; else 0
//	5 value       GET hit only
//
// A malformed event returns an error wrapping [service.ErrMalformed] and
// changes nothing.
//
// # Downstream
//
// Every request that is not malformed is emitted unchanged, routed by the
// key it arrived with (KeyHash of its key when the generator or a
// memcached ingress made it).
//
// # Config
//
//	max_value  largest value in bytes, 0..65535 (default 1024)
//	capacity   most items held (default 500,000: about 0.5 GB of 1 KB values)
//
// # Memcached protocol
//
// memcache.go implements get, set and delete of memcached's text protocol
// (doc/protocol.txt of memcached) and answers them byte for byte as
// memcached 1.6 does. [ParseRequest] decodes one request from a
// connection buffer and says how many bytes it took, or that more are
// needed ([ErrIncomplete]), or returns a [*ProtocolError] naming the
// offending token and its offset, with the line memcached would send
// (ERROR, CLIENT_ERROR bad command line format, CLIENT_ERROR bad data
// chunk, SERVER_ERROR object too large for cache) and how many bytes to
// discard first. Multi-key gets, flags, exptime (relative up to 30 days,
// else a Unix time; negative expires at once) and noreply are supported;
// gets, cas and the other commands answer ERROR.
//
// Where protocol.txt leaves room, memcached's own behaviour is copied,
// because that is what clients meet: numbers are read as C's strtoul and
// strtol read them and kept in 32 bits (a sign is allowed, larger values
// wrap), a fifth set argument other than noreply is ignored, noreply
// silences errors too, the data block after a refused set line is read as
// a command line, and a too-large set is answered only once its data block
// has been discarded and removes the item it would have replaced. A line
// of more than 2048 bytes without a newline closes the connection, except
// a get (up to 64 KiB here).
//
// [Request.AppendEvent] turns a request into the events above,
// [AppendResponse] and [AppendEnd] turn the store's replies into
// VALUE/END, STORED, DELETED and NOT_FOUND lines, and [Session] does all of
// it for one connection. Tests play protocol transcripts
// (testdata/memcache) through a Session, play the same transcripts
// against a real memcached 1.6 and require identical bytes, and drive a
// Session over TCP with libmemcached's memaslap and command-line tools.
//
// # Generator
//
// [NewGenerator] first sets each of 10,000 keys ("obj:" and 12 digits)
// once, as a warm cache, then issues memaslap's 9:1 get:set mix with 1 % of
// requests deletes, keys drawn Zipfian (s = 1.01), SET values filling the
// requested size (448 bytes at 512). Requests are routed by KeyHash of the
// key.
package kvs
