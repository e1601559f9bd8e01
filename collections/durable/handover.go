package durable

import (
	"encoding/binary"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Snapshot takes a consistent cut of the collections: their records plus
// the LSN of the last record appended. The caller must make sure no
// handler of the instance runs during the call (pause the instance, or
// drain it for a migration); the cut is in memory, so the pause lasts as
// long as encoding the state. The snapshot may include records not yet
// durable; ship it after Sync when that matters.
func (s *Store) Snapshot() (*Snapshot, error) {
	s.mu.Lock()
	if s.state != stRunning {
		s.mu.Unlock()
		return nil, fmt.Errorf("durable: %s: Snapshot on a store that is not running as a primary", s.instance)
	}
	lsn := s.appended.Load()
	ids, names, colls := s.catalogLocked()
	s.mu.Unlock()
	return cut(s.instance, lsn, ids, names, colls)
}

// catalogLocked lists the defined collections by id, with the attached
// collection of each (nil if not attached). Called with s.mu held.
func (s *Store) catalogLocked() (ids []uint64, names []string, colls []*attachment) {
	for id := range s.catalog {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		names = append(names, s.catalog[id])
		colls = append(colls, s.byID[id])
	}
	return ids, names, colls
}

// cut encodes a snapshot: every collection definition, then each attached
// collection's records.
func cut(instance string, lsn uint64, ids []uint64, names []string, colls []*attachment) (*Snapshot, error) {
	buf := newSnapshotBuf(nil, instance, lsn)
	start := len(buf)
	n := uint64(0)
	for i, id := range ids {
		buf = appendEntry(buf, metaColl, defineRecord(id, names[i]))
		n++
	}
	for i, a := range colls {
		if a == nil {
			continue
		}
		id := ids[i]
		err := a.c.Snapshot(func(rec []byte) error {
			buf = appendEntry(buf, id, rec)
			n++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("durable: %s: snapshot of collection %q: %w", instance, names[i], err)
		}
	}
	return sealSnapshot(buf, instance, lsn, start, n), nil
}

// StoredSnapshot returns the snapshot the last compaction wrote (an empty
// one at LSN 0 before any). Together with Tail(snap.LSN) it is the state
// of the instance as far as it is durable, read from disk without pausing
// the instance.
func (s *Store) StoredSnapshot() (*Snapshot, error) {
	var snap *Snapshot
	err := guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			var err error
			snap, err = s.readSnapshot(tx)
			return err
		})
	})
	return snap, err
}

// Tail returns the durable records after LSN after, as batches. It fails
// with ErrCompacted when some of them were folded into the stored snapshot
// and dropped from the log.
func (s *Store) Tail(after uint64) ([]Batch, error) {
	var out []Batch
	err := guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			var err error
			out, err = s.tailTx(tx, after)
			return err
		})
	})
	return out, err
}

func (s *Store) tailTx(tx *bolt.Tx, after uint64) ([]Batch, error) {
	var out []Batch
	snapLSN := s.readSnapLSN(tx)
	next := after + 1
	c := tx.Bucket(bucketLog).Cursor()
	for k, v := seekCovering(c, next); k != nil; k, v = c.Next() {
		b, err := s.parseStored(k, append([]byte(nil), v...))
		if err != nil {
			return nil, err
		}
		if b.Last() < next {
			continue
		}
		if b.First() > next {
			if len(out) == 0 {
				return nil, fmt.Errorf("%w: %s: tail after LSN %d requested, the log starts at LSN %d (snapshot at %d)", ErrCompacted, s.instance, after, b.First(), snapLSN)
			}
			return nil, fmt.Errorf("%w: %s: log jumps from LSN %d to %d", ErrCorrupt, s.path, next-1, b.First())
		}
		out = append(out, trimBatch(b, after))
		after, next = b.Last(), b.Last()+1
	}
	if len(out) == 0 && after < snapLSN {
		return nil, fmt.Errorf("%w: %s: tail after LSN %d requested, the log holds nothing before the snapshot at %d", ErrCompacted, s.instance, after, snapLSN)
	}
	return out, nil
}

// readSnapLSN reads the stored snapshot's LSN within tx (not from s, so
// that no lock is taken inside a transaction).
func (s *Store) readSnapLSN(tx *bolt.Tx) uint64 {
	if v := tx.Bucket(bucketMeta).Get(keySnapLSN); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Compact writes snap (taken from this store with Snapshot) as the stored
// snapshot and drops the log records it covers, so that restart and
// hand-over read less. A snapshot older than the stored one is ignored.
func (s *Store) Compact(snap *Snapshot) error {
	if snap.Instance != s.instance {
		return fmt.Errorf("durable: %s: Compact with a snapshot of %q", s.instance, snap.Instance)
	}
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	return s.writeSnapshot(snap)
}

// autoCompact is started by the committer when the log has grown past
// Options.CompactBytes.
func (s *Store) autoCompact() {
	defer s.bg.Done()
	defer func() {
		s.mu.Lock()
		s.compact = false
		s.mu.Unlock()
	}()
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	var snap *Snapshot
	var err error
	if qerr := s.opts.Quiesce(func() { snap, err = s.Snapshot() }); qerr != nil || err != nil || snap == nil {
		return // shutting down, or closed meanwhile; the next commit tries again
	}
	if err := s.writeSnapshot(snap); err != nil {
		s.mu.Lock()
		s.failLocked(err)
		s.mu.Unlock()
	}
}

// writeSnapshot replaces the stored snapshot with snap and deletes the
// batches it makes redundant, in one transaction. Called with compactMu
// held.
func (s *Store) writeSnapshot(snap *Snapshot) error {
	s.mu.Lock()
	old := s.snapLSN
	s.mu.Unlock()
	if snap.LSN <= old {
		return nil
	}
	var freed int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putSnapshot(tx, snap); err != nil {
			return err
		}
		lb := tx.Bucket(bucketLog)
		var dead [][]byte
		c := lb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) < batchHeader {
				break // left for replay to report
			}
			last := binary.LittleEndian.Uint64(v[1:]) + uint64(binary.LittleEndian.Uint32(v[9:])) - 1
			if last > snap.LSN {
				break
			}
			dead = append(dead, k)
			freed += int64(len(v))
		}
		for _, k := range dead {
			if err := lb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("durable: %s: writing the snapshot at LSN %d: %w", s.instance, snap.LSN, err)
	}
	s.mu.Lock()
	s.snapLSN = snap.LSN
	s.lastLSN = max(s.lastLSN, snap.LSN)
	s.mu.Unlock()
	s.logBytes.Add(-freed)
	return nil
}

// putSnapshot stores snap in pieces of snapChunk bytes.
func putSnapshot(tx *bolt.Tx, snap *Snapshot) error {
	sb := tx.Bucket(bucketSnap)
	var keys [][]byte
	_ = sb.ForEach(func(k, _ []byte) error { keys = append(keys, k); return nil })
	for _, k := range keys {
		if err := sb.Delete(k); err != nil {
			return err
		}
	}
	sb.FillPercent = 1
	data := snap.Bytes()
	for i := 0; len(data) > 0; i++ {
		n := min(len(data), snapChunk)
		if err := sb.Put(u64Key(uint64(i)), data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return tx.Bucket(bucketMeta).Put(keySnapLSN, u64Key(snap.LSN))
}

// Restore fills a fresh store (a new file, collections attached) with a
// hand-over: snap followed by tail, the batches after snap.LSN (from
// Tail, possibly starting earlier: records snap covers are skipped). It
// writes them to the file, replays them into the collections as a restart
// would, and starts the store as a primary. Used by a migration's
// destination.
func (s *Store) Restore(snap *Snapshot, tail []Batch) error {
	s.mu.Lock()
	err := s.checkOpened("Restore")
	if err == nil && (s.lastLSN != 0 || s.snapLSN != 0) {
		err = fmt.Errorf("durable: %s: Restore into %s, which already holds state up to LSN %d; restore needs a new file", s.instance, s.path, s.lastLSN)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.install(snap, tail); err != nil {
		return err
	}
	if err := guard(s.path, s.replay); err != nil {
		return err
	}
	return s.run()
}

// install writes a hand-over into an empty file and sets the catalog and
// LSNs; the collections are filled by replay afterwards.
func (s *Store) install(snap *Snapshot, tail []Batch) error {
	if snap.Instance != s.instance {
		return fmt.Errorf("durable: %s: hand-over of instance %q", s.instance, snap.Instance)
	}
	var batches []Batch
	last := snap.LSN
	for i, b := range tail {
		if b.Len() == 0 || b.Last() <= last {
			continue
		}
		if b.First() > last+1 {
			return fmt.Errorf("%w: %s: hand-over batch %d starts at LSN %d, after a gap following LSN %d", ErrGap, s.instance, i, b.First(), last)
		}
		b = trimBatch(b, last)
		batches = append(batches, b)
		last = b.Last()
	}
	var n int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		if !snap.Empty() {
			if err := putSnapshot(tx, snap); err != nil {
				return err
			}
		}
		lb := tx.Bucket(bucketLog)
		lb.FillPercent = 1
		for _, b := range batches {
			if err := lb.Put(u64Key(b.First()), b.Bytes()); err != nil {
				return err
			}
			n += int64(len(b.Bytes()))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("durable: %s: writing the hand-over: %w", s.instance, err)
	}
	// Not inside the transaction: s.mu is never held while waiting on
	// bbolt, whose remapping waits for readers that may want s.mu.
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapLSN, s.lastLSN = 0, last
	if !snap.Empty() {
		s.snapLSN = snap.LSN
	}
	s.logBytes.Store(n)
	return nil
}
