// Package collections holds the reliable collections stateful microservices
// keep their state in: a generic hash [Map] and a generic [Array], each owned
// by one service instance.
//
// A collection keeps its working copy in ordinary Go memory, so reads cost a
// map or slice access. Every mutation is also described as a record and
// handed to the instance's [Store] when the store asks for records. The
// in-memory store ([NewMemStore]) asks for none and costs nothing; a
// persisting, replicating store asks for all of them and ships them to disk
// and to the backup replica (package collections/durable, described in
// docs/collections.md). Services are written once against Map and Array
// and do not know which store they run on.
//
// Records and snapshots use the codecs given when a collection is created,
// so keys and values cross the wire in a stable, explicit encoding:
//
//	counts, err := collections.NewMap(store, "counts", collections.Uint64, collections.Uint64)
//	counts.Set(item, n+1)
//
// Collections are not safe for concurrent use: a service guards them with
// its own lock, which is also what makes a mutation and its record atomic.
package collections
