// Package raftbolt stores a hashicorp/raft replica's log and its stable
// state (current term, vote) in one bbolt file. It exists because
// raft-boltdb v2 does not build against raft v1.8, and the controller
// needs a log that survives a restart.
//
//	st, err := raftbolt.Open(filepath.Join(dir, "raft.db"), raftbolt.Options{})
//	if err != nil { ... }
//	defer st.Close()
//	r, err := raft.NewRaft(cfg, fsm, st, st, snapshots, transport)
//
// [Store] implements raft.LogStore and raft.StableStore. Log entries live
// in one bucket keyed by their index in big-endian order, so a cursor walks
// them in index order and FirstIndex and LastIndex are one seek each.
// StoreLogs writes a whole batch in one bbolt transaction: raft hands the
// leader's pipelined entries over in batches, and one transaction means one
// fsync for all of them, which is where a disk-backed log spends its time.
//
// Entries are encoded by [AppendLog] in a small versioned binary form
// (type, term, append time, data, extensions); [DecodeLog] rejects a
// damaged record with an error that names the field and its offset rather
// than handing raft garbage.
package raftbolt
