// Package durable is the persisted, replicated [collections.Store] of one
// stateful service instance: every mutation record of its collections
// gets a log sequence number (LSN), is written to a local bbolt file and
// sent to the instance's backup replica before the request that made it
// is acknowledged.
//
// It lives apart from package collections so that services, the
// simulator and tests, which run on the in-memory store, do not link bbolt
// or start goroutines.
//
// # Life cycle
//
// A primary on a new or restarted node:
//
//	st, err := durable.Open(path, "iot-ts/ema.3", durable.Options{})
//	h, err := desc.New(service.Env{Store: st, ...}) // attaches the collections
//	err = st.Start()                                  // replays snapshot + log
//	err = st.AddBackup(ctx, replicatorToBackup)       // seeds the backup
//	for each request {
//		err = h.Handle(c, req)
//		err = st.Sync(ctx) // or st.SyncFunc(reply): on disk and at the backup
//		reply
//	}
//
// The backup opens its own file the same way, creates the service there
// too (routing it no requests) and wraps the store with [NewBackup]; its
// [Backup.Apply] is what the primary's [Replicator] calls. [Backup.Promote]
// turns it into the primary. A migration's destination calls
// [Store.Restore] with the source's snapshot and log tail instead of
// Start.
//
// # Group commit
//
// Collections append records under their service's lock; the store only
// copies them into the pending batch. One committer goroutine takes all
// pending records as one batch, writes it as one bbolt transaction (one
// fsync) while the Replicator sends it to the backup, and then releases
// every Sync waiting for those records. While one batch is being written
// the next one fills, so the cost of an fsync is shared by all requests
// that arrived meanwhile.
//
// # Hand-over
//
// A [Snapshot] (records that rebuild every collection, and the LSN they
// reflect) plus the log [Batch]es after it is what moves: to a migration's
// destination, to a new backup, and from disk into memory on restart.
// [Store.Compact] writes a snapshot into the file and drops the log it
// covers.
//
// See docs/collections.md for the model, the guarantees and their limits.
package durable
