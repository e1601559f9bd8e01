// Package ranked is the reply codec of the services that answer with a
// ranking: bm25 (documents), recommend (items for a user) and topk (the
// best items of a window). Their replies have one wire format, so one
// encoder and one decoder serve all three and cannot drift apart; the
// codec is generic so that each service keeps its own exported entry type
// (bm25.Hit, recommend.Rec, topk.Scored) and its own error prefix.
//
// A reply is little endian: a u32 count whose meaning is the service's
// (documents matched, items rated, distinct items in the window), a u16
// number of entries n, then n entries of an id u64 and a score f64
// (IEEE 754 bits), best first: [HeaderLen] + n*[EntryLen] bytes.
//
// A service describes its entries once in a package-level [Format] and
// calls [Format.Append] on its request path and [Format.Parse] in its
// ParseReply. Neither allocates when the destination has room, which
// keeps the services' request paths allocation-free.
package ranked
