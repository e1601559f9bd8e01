// Package mix holds the 64-bit finalisers E3 hashes small ids and keys
// with. It is shared by the services, the runtime, the simulator, loadgen
// and cluster, because they must agree bit for bit: the simulator is
// validated against the emulated cluster, so it has to route a key to the
// same shard, split an edge's traffic the same way and pick the same ECMP
// port as the runtime; the runtime derives a source instance's seed the
// way loadgen seeds that source's request generator, so that requests
// carrying credentials derived from the seed (the API gateway's signed
// tokens) are accepted; and every node must map an id to the same place.
// One implementation keeps a change in one copy from silently breaking
// that agreement.
//
// Ids (users, items, senders, ports, request numbers) are often small and
// sequential; used as they are, they would all land on the first shard,
// bitmap word or table slot. A finaliser is a bijection in which every
// input bit affects every output bit, so consecutive ids spread evenly.
//
// Three are in use, and each user keeps the one it started with, because
// changing it would move every key, bit, slot or seed it has placed:
//   - [SplitMix64] for the routing keys of generated requests;
//   - [SplitMix64Next] (the same finaliser after SplitMix64's increment)
//     for the runtime's and the simulator's flow hashes, edge shares and
//     key scrambling, and for loadgen's and the runtime's per-source seeds;
//   - [Murmur3] for the bitmap of count, the translation table of natv4 and
//     the shard cluster's load target sends a request to.
//
// All three inline, so they cost a few instructions on hot paths.
package mix
