// Package mix holds the 64-bit finalisers the services hash small ids
// with. Ids (users, items, senders, ports) are often small and sequential;
// used as they are, they would all land on the first shard, bitmap word or
// table slot. A finaliser is a bijection in which every input bit affects
// every output bit, so consecutive ids spread evenly, and it is fixed, so
// every node maps an id to the same place.
//
// Two are in use, and a service keeps the one it started with, because
// changing it would move every key, bit or slot it has placed:
// [SplitMix64] for the routing keys of generated requests, [Murmur3] for
// the bitmap of count and the translation table of natv4. Both inline.
package mix
