package durable

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Backup is the backup replica of an instance: it persists the batches the
// primary replicates into its own file and applies them to its own copy
// of the collections, so that promoting it to primary is immediate.
type Backup struct {
	st *Store

	mu      sync.Mutex // serialises Apply, Install, View, Snapshot
	lsn     uint64
	closed  bool
	compact bool
	bg      sync.WaitGroup
}

// NewBackup turns an opened store, with the instance's collections
// attached (create the service on the backup node with st in its Env,
// but route it no requests), into a backup. It replays what the file
// already holds, so a restarted backup comes back at its last LSN.
func NewBackup(st *Store) (*Backup, error) {
	st.mu.Lock()
	err := st.checkOpened("NewBackup")
	if err == nil {
		st.state = stBackup
	}
	st.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := guard(st.path, st.replay); err != nil {
		return nil, err
	}
	st.appended.Store(st.lastLSN)
	st.durable.Store(st.lastLSN)
	return &Backup{st: st, lsn: st.lastLSN}, nil
}

// LSN returns the last LSN the backup holds.
func (b *Backup) LSN() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lsn
}

// Store returns the backup's store (for Tail, StoredSnapshot, Stats).
func (b *Backup) Store() *Store { return b.st }

// Install seeds a fresh backup (nothing applied yet) with a hand-over:
// snap, then tail. A backup that already holds state is re-seeded by
// closing it, removing its file and creating a new one.
func (b *Backup) Install(snap *Snapshot, tail []Batch) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	if b.lsn != 0 {
		return fmt.Errorf("durable: %s: Install on a backup already at LSN %d; seed a new backup instead", b.st.instance, b.lsn)
	}
	if err := b.st.install(snap, tail); err != nil {
		return err
	}
	if err := guard(b.st.path, b.st.replay); err != nil {
		b.fail(err)
		return err
	}
	b.advance(b.st.lastLSN)
	return nil
}

func (b *Backup) usable() error {
	if b.closed {
		return fmt.Errorf("durable: %s: backup closed or promoted", b.st.instance)
	}
	return b.st.Err()
}

func (b *Backup) fail(err error) {
	b.st.mu.Lock()
	b.st.failLocked(err)
	b.st.mu.Unlock()
}

func (b *Backup) advance(lsn uint64) {
	b.lsn = lsn
	b.st.mu.Lock()
	b.st.lastLSN = lsn
	b.st.mu.Unlock()
	b.st.appended.Store(lsn)
	b.st.durable.Store(lsn)
}

// Apply persists one replicated batch (one bbolt transaction, fsync unless
// NoSync) and applies it to the collections. It returns once both are
// done: that is the acknowledgement the primary waits for. A batch the
// backup already holds is acknowledged again without effect (a retry); a
// batch after a gap fails with ErrGap.
func (b *Backup) Apply(batch Batch) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	if batch.Len() == 0 || batch.Last() <= b.lsn {
		return nil
	}
	if batch.First() > b.lsn+1 {
		return fmt.Errorf("%w: %s: batch of LSNs %d-%d, backup at LSN %d", ErrGap, b.st.instance, batch.First(), batch.Last(), b.lsn)
	}
	tb := trimBatch(batch, b.lsn)
	err := b.st.db.Update(func(tx *bolt.Tx) error {
		lb := tx.Bucket(bucketLog)
		lb.FillPercent = 1
		return lb.Put(u64Key(tb.First()), tb.Bytes())
	})
	if err != nil {
		err = fmt.Errorf("durable: %s: backup commit of LSNs %d-%d: %w", b.st.instance, tb.First(), tb.Last(), err)
		b.fail(err)
		return err
	}
	if err := b.st.applyBatch(tb); err != nil {
		b.fail(err)
		return err
	}
	b.advance(tb.Last())
	b.st.stats.batches.Add(1)
	b.st.stats.records.Add(uint64(tb.Len()))
	b.st.stats.bytes.Add(uint64(len(tb.Bytes())))
	n := b.st.logBytes.Add(int64(len(tb.Bytes())))
	if lim := b.st.opts.CompactBytes; lim > 0 && n >= lim && !b.compact {
		b.compact = true
		b.bg.Add(1)
		go b.autoCompact()
	}
	return nil
}

// View runs f with Apply held off, so f may read the backup's collections.
func (b *Backup) View(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f()
}

// Snapshot takes a consistent cut of the backup's collections. Unlike the
// primary's it needs no pause: the backup's collections only change in
// Apply.
func (b *Backup) Snapshot() (*Snapshot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snapshotLocked()
}

func (b *Backup) snapshotLocked() (*Snapshot, error) {
	b.st.mu.Lock()
	ids, names, colls := b.st.catalogLocked()
	b.st.mu.Unlock()
	return cut(b.st.instance, b.lsn, ids, names, colls)
}

// Compact writes a snapshot of the backup's collections and drops the log
// it covers.
func (b *Backup) Compact() error {
	b.mu.Lock()
	snap, err := b.snapshotLocked()
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return b.st.Compact(snap)
}

func (b *Backup) autoCompact() {
	defer b.bg.Done()
	err := b.Compact()
	b.mu.Lock()
	b.compact = false
	b.mu.Unlock()
	if err != nil {
		b.fail(err)
	}
}

// Promote makes the backup the primary: its collections already hold the
// state, the store starts accepting records with the LSNs after the last
// one applied, and it is returned. The Backup is unusable afterwards. The
// old primary's file is stale from here on: it may hold records the
// backup never received (none of them acknowledged), so it must not be
// restarted as a primary; re-seed it as the new backup instead.
func (b *Backup) Promote() (*Store, error) {
	b.mu.Lock()
	if err := b.usable(); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	b.closed = true
	b.mu.Unlock()
	b.bg.Wait()
	if err := b.st.run(); err != nil {
		return nil, err
	}
	return b.st, nil
}

// Close closes the backup and its file.
func (b *Backup) Close() error {
	b.mu.Lock()
	wasClosed := b.closed
	b.closed = true
	b.mu.Unlock()
	b.bg.Wait()
	if wasClosed && b.st.isRunning() {
		return nil // promoted: the store belongs to the caller now
	}
	return b.st.Close()
}

func (s *Store) isRunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stRunning
}

// AddBackup attaches rep as the instance's backup, seeding it first: it
// sends the stored snapshot and the durable log after it (rep.Install),
// then, holding the committer off, the records committed meanwhile, and
// from then on every batch. The instance keeps running throughout; no
// pause is needed because everything shipped is read from disk. It
// replaces the current backup, if any. A fresh instance calls it right
// after Start, a primary whose backup was lost calls it with a new one.
func (s *Store) AddBackup(ctx context.Context, rep Replicator) error {
	if !s.isRunning() {
		return fmt.Errorf("durable: %s: AddBackup on a store that is not running as a primary", s.instance)
	}
	s.compactMu.Lock() // the log must not be truncated while we ship it
	defer s.compactMu.Unlock()
	var snap *Snapshot
	var tail []Batch
	err := guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			var err error
			if snap, err = s.readSnapshot(tx); err != nil {
				return err
			}
			tail, err = s.tailTx(tx, snap.LSN)
			return err
		})
	})
	if err != nil {
		return err
	}
	upto := snap.LSN
	if len(tail) > 0 {
		upto = tail[len(tail)-1].Last()
	}
	if err := rep.Install(ctx, snap, tail); err != nil {
		return fmt.Errorf("durable: %s: seeding the backup up to LSN %d: %w", s.instance, upto, err)
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	rest, err := s.Tail(upto)
	if err != nil {
		return err
	}
	for _, b := range rest {
		if err := rep.Replicate(ctx, b); err != nil {
			return fmt.Errorf("durable: %s: catching the backup up with LSNs %d-%d: %w", s.instance, b.First(), b.Last(), err)
		}
	}
	s.rep = rep
	s.mu.Lock()
	s.unrepl = 0
	s.mu.Unlock()
	return nil
}

// DetachBackup stops replicating (the controller moved the backup away).
// Records committed from then on count as unreplicated.
func (s *Store) DetachBackup() {
	s.commitMu.Lock()
	s.rep = nil
	s.commitMu.Unlock()
}
