package durable

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/e3-platform/e3/collections"
)

// Errors a caller may test for with errors.Is.
var (
	// ErrClosed is returned for records that were not durable when the
	// store was closed, and by calls on a closed store.
	ErrClosed = errors.New("durable: store closed")
	// ErrNoBackup is returned by Sync when Options.RequireBackup is set and
	// the records it waited for were persisted locally but no backup
	// acknowledged them (none attached, or the backup was lost).
	ErrNoBackup = errors.New("durable: records not acknowledged by a backup")
	// ErrCompacted is returned by Tail for an LSN already folded into the
	// stored snapshot: ship the snapshot instead.
	ErrCompacted = errors.New("durable: log compacted past the requested LSN")
	// ErrGap is returned by Backup.Apply for a batch that does not follow
	// the backup's last record: the backup must be re-seeded.
	ErrGap = errors.New("durable: batch does not follow the last applied record")
)

// Options tune a Store. The zero value is a safe default: fsync on, no
// added commit delay, compaction only when asked.
type Options struct {
	// NoSync skips fsync on commit. Records then survive a crash of the
	// process (they are in the page cache) but not of the machine. For
	// benchmarks and tests.
	NoSync bool
	// MaxDelay is how long the committer waits for more records after the
	// first one of a batch arrives. Zero (the default) commits at once:
	// under load, records gather by themselves while the previous batch is
	// being written, so a delay only adds latency when the store is idle.
	MaxDelay time.Duration
	// MaxBatchBytes ends a MaxDelay wait early once this many bytes are
	// pending. Default 1 MiB.
	MaxBatchBytes int
	// RequireBackup makes Sync fail with ErrNoBackup for records no backup
	// acknowledged. Without it a store whose backup is lost (or not yet
	// attached) acknowledges records once they are on the local disk and
	// counts them in Stats.Unreplicated.
	RequireBackup bool
	// ReplicateTimeout bounds one Replicate call; a backup slower than
	// this is dropped as lost. Default 1 s: the controller detects a dead
	// node within a few 50 ms heartbeats, so waiting longer only stalls
	// requests.
	ReplicateTimeout time.Duration
	// OnBackupLost, if set, is called (on its own goroutine) when the
	// backup fails a Replicate call and is detached. The runtime reports
	// it so that a new backup is seeded with AddBackup.
	OnBackupLost func(err error)
	// Quiesce, if set, runs fn while no handler of the instance runs, and
	// returns an error if it cannot (shutting down). The store needs it to
	// take a consistent snapshot for automatic compaction.
	Quiesce func(fn func()) error
	// CompactBytes starts an automatic compaction when the log since the
	// stored snapshot exceeds this many bytes (needs Quiesce on a primary).
	// Zero means 64 MiB; negative disables automatic compaction.
	CompactBytes int64
	// OpenTimeout bounds the wait for the file lock another process
	// holds. Default 1 s.
	OpenTimeout time.Duration
}

func (o *Options) fill() error {
	if o.MaxDelay < 0 {
		return fmt.Errorf("durable: Options.MaxDelay %v is negative", o.MaxDelay)
	}
	if o.MaxBatchBytes < 0 {
		return fmt.Errorf("durable: Options.MaxBatchBytes %d is negative", o.MaxBatchBytes)
	}
	if o.ReplicateTimeout < 0 {
		return fmt.Errorf("durable: Options.ReplicateTimeout %v is negative", o.ReplicateTimeout)
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = 1 << 20
	}
	if o.ReplicateTimeout == 0 {
		o.ReplicateTimeout = time.Second
	}
	if o.CompactBytes == 0 {
		o.CompactBytes = 64 << 20
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = time.Second
	}
	return nil
}

type state uint8

const (
	stOpened  state = iota // collections being attached
	stRunning              // primary: records accepted and committed
	stBackup               // receiving a primary's batches
	stClosed
)

var (
	bucketMeta = []byte("meta")
	bucketLog  = []byte("log")
	bucketSnap = []byte("snap")

	keyInstance = []byte("instance")
	keyFormat   = []byte("format")
	keySnapLSN  = []byte("snaplsn")
)

const (
	formatVersion = 1
	// snapChunk is the size of the pieces a stored snapshot is cut into,
	// so that no bbolt value (and no write of one) is huge.
	snapChunk = 1 << 20
)

// Store is the durable, replicated store of one service instance: it
// implements [collections.Store]. See the package documentation for the
// life cycle.
type Store struct {
	path     string
	instance string
	opts     Options
	db       *bolt.DB

	mu       sync.Mutex
	state    state
	err      error                  // sticky: the store is unusable
	attached map[string]*attachment // by name
	byID     map[uint64]*attachment
	catalog  map[uint64]string // id -> name, from the definitions replayed or logged
	nextID   uint64
	pend     []byte // batch being built: header room, then entries
	pendN    int
	spare    []byte // the previous batch's buffer, for reuse
	sizeKick bool   // a size kick was sent for the pending batch
	advance  chan struct{}
	cbs      []syncCB
	unrepl   uint64 // highest LSN committed without a backup (RequireBackup)
	lastLSN  uint64 // last LSN on disk when opened (and as replayed)
	snapLSN  uint64 // LSN of the stored snapshot
	compact  bool   // an automatic compaction is running

	appended atomic.Uint64 // last LSN handed out
	durable  atomic.Uint64 // last LSN persisted (and replicated, if a backup is attached)
	logBytes atomic.Int64  // bytes of log since the stored snapshot

	commitMu  sync.Mutex // held by the committer over a batch; AddBackup takes it
	rep       Replicator // guarded by commitMu
	compactMu sync.Mutex // one compaction or backup seeding at a time

	kick chan struct{}
	// syncKicks makes only barriers (not appends) start a commit, so that
	// batch boundaries are fixed by the caller: for deterministic tests.
	syncKicks bool
	stop      chan struct{}
	done      chan struct{}
	bg        sync.WaitGroup // compactions and OnBackupLost calls

	stats struct {
		batches, records, bytes, lost, unreplicated atomic.Uint64
	}
}

type attachment struct {
	c   collections.Collection
	log *collLog
}

// collLog is the Log a collection appends to; id is bound when the store
// starts, before any record is legal.
type collLog struct {
	s    *Store
	name string
	id   uint64
}

func (l *collLog) Append(rec []byte) { l.s.append(l, rec) }

type syncCB struct {
	lsn uint64
	fn  func(error)
}

// Open opens (creating if needed) the bbolt file at path holding the state
// of instance. The file must belong to that instance. Attach the
// instance's collections next (create the service with the store in its
// Env), then call Start, Restore, or NewBackup.
func Open(path, instance string, opts Options) (*Store, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if instance == "" || len(instance) > maxNameLen {
		return nil, fmt.Errorf("durable: instance name of %d bytes; want 1 to %d", len(instance), maxNameLen)
	}
	if err := checkBoltFile(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.OpenTimeout,
		NoSync:       opts.NoSync,
		FreelistType: bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("durable: open %s: %w", path, err)
	}
	s := &Store{
		path: path, instance: instance, opts: opts, db: db,
		attached: map[string]*attachment{},
		byID:     map[uint64]*attachment{},
		catalog:  map[uint64]string{},
		nextID:   1,
		advance:  make(chan struct{}),
		kick:     make(chan struct{}, 1),
	}
	if err := guard(path, s.load); err != nil {
		db.Close()
		return nil, err
	}
	s.pend = newBatchBuf(nil)
	return s, nil
}

// guard runs f, which reads the file, turning a panic or a memory fault
// inside bbolt (a damaged page) into an error.
func guard(path string, f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: reading the database failed: %v", ErrCorrupt, path, r)
		}
	}()
	return f()
}

func u64Key(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// load creates the buckets of a new file, checks the owner of an old one
// and reads the catalog and the LSNs.
func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketLog, bucketSnap} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		switch owner := meta.Get(keyInstance); {
		case owner == nil:
			if err := meta.Put(keyInstance, []byte(s.instance)); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, u64Key(formatVersion)); err != nil {
				return err
			}
		case string(owner) != s.instance:
			return fmt.Errorf("durable: %s holds the state of instance %q, not %q", s.path, owner, s.instance)
		}
		if f := meta.Get(keyFormat); len(f) != 8 || binary.BigEndian.Uint64(f) != formatVersion {
			v := "missing"
			if len(f) == 8 {
				v = fmt.Sprint(binary.BigEndian.Uint64(f))
			}
			return fmt.Errorf("%w: %s: format version %s, this build reads version %d", ErrCorrupt, s.path, v, formatVersion)
		}
		if v := meta.Get(keySnapLSN); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("%w: %s: snapshot LSN of %d bytes", ErrCorrupt, s.path, len(v))
			}
			s.snapLSN = binary.BigEndian.Uint64(v)
		}
		s.lastLSN = s.snapLSN
		lb := tx.Bucket(bucketLog)
		if k, v := lb.Cursor().Last(); k != nil {
			b, err := s.parseStored(k, v)
			if err != nil {
				return err
			}
			s.lastLSN = max(s.lastLSN, b.Last())
		}
		var n int64
		_ = lb.ForEach(func(k, v []byte) error { n += int64(len(v)); return nil })
		s.logBytes.Store(n)
		return nil
	})
}

// parseStored checks a log value read from the file against its key.
func (s *Store) parseStored(k, v []byte) (Batch, error) {
	b, err := ParseBatch(v)
	if err != nil {
		return Batch{}, fmt.Errorf("durable: %s: log entry at key %x: %w", s.path, k, err)
	}
	if len(k) != 8 || binary.BigEndian.Uint64(k) != b.First() {
		return Batch{}, fmt.Errorf("%w: %s: log key %x holds the batch starting at LSN %d", ErrCorrupt, s.path, k, b.First())
	}
	return b, nil
}

// define records that collection id is name, binding it to the attached
// collection of that name if there is one. Called with s.mu held or
// before the store is shared.
func (s *Store) define(id uint64, name string) error {
	if id == metaColl || len(name) == 0 || len(name) > maxNameLen {
		return fmt.Errorf("%w: collection id %d with a name of %d bytes", ErrCorrupt, id, len(name))
	}
	if old, ok := s.catalog[id]; ok {
		if old != name {
			return fmt.Errorf("%w: collection id %d defined as %q and as %q", ErrCorrupt, id, old, name)
		}
		return nil
	}
	for oid, oname := range s.catalog {
		if oname == name {
			return fmt.Errorf("%w: collection %q defined with id %d and id %d", ErrCorrupt, name, oid, id)
		}
	}
	s.catalog[id] = name
	s.nextID = max(s.nextID, id+1)
	if a := s.attached[name]; a != nil {
		a.log.id = id
		s.byID[id] = a
	}
	return nil
}

// Attach registers c. It implements [collections.Store]; every collection
// must be attached before Start, Restore or NewBackup.
func (s *Store) Attach(c collections.Collection) (collections.Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := c.Name()
	if s.state != stOpened {
		return nil, fmt.Errorf("durable: %s: collection %q attached after the store started; attach every collection before Start", s.instance, name)
	}
	if name == "" || len(name) > maxNameLen {
		return nil, fmt.Errorf("durable: %s: collection name of %d bytes; want 1 to %d", s.instance, len(name), maxNameLen)
	}
	if _, dup := s.attached[name]; dup {
		return nil, fmt.Errorf("durable: %s: collection %q attached twice", s.instance, name)
	}
	a := &attachment{c: c, log: &collLog{s: s, name: name}}
	s.attached[name] = a
	for id, n := range s.catalog {
		if n == name {
			a.log.id = id
			s.byID[id] = a
		}
	}
	return a.log, nil
}

// append takes one record from a collection. It runs under the service's
// lock, so it only copies the record and wakes the committer.
func (s *Store) append(l *collLog, rec []byte) {
	s.mu.Lock()
	if s.state != stRunning {
		if s.state == stClosed {
			// Count it, so that a Sync waiting for it reports ErrClosed.
			s.appended.Store(s.appended.Load() + 1)
		}
		// Before Start a constructor is building the initial state: Start
		// snapshots it or replaces it, so its records are not needed.
		if s.err == nil && s.state == stBackup {
			s.err = fmt.Errorf("durable: %s: collection %q changed on a backup; only Apply may change a backup", s.instance, l.name)
		}
		s.mu.Unlock()
		return
	}
	first := s.pendN == 0
	s.pend = appendEntry(s.pend, l.id, rec)
	s.pendN++
	s.appended.Store(s.appended.Load() + 1)
	kick := first
	if !first && s.opts.MaxDelay > 0 && !s.sizeKick && len(s.pend) >= s.opts.MaxBatchBytes {
		s.sizeKick, kick = true, true
	}
	s.mu.Unlock()
	if kick && !s.syncKicks {
		s.wake()
	}
}

func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// appendMeta appends a store record; called with s.mu held.
func (s *Store) appendMeta(rec []byte) {
	s.pend = appendEntry(s.pend, metaColl, rec)
	s.pendN++
	s.appended.Store(s.appended.Load() + 1)
}

// bindNew gives every attached collection the catalog does not know an id,
// logging its definition, and reports how many it defined. Called with
// s.mu held, as the store becomes a primary.
func (s *Store) bindNew() int {
	names := make([]string, 0, len(s.attached))
	for name, a := range s.attached {
		if a.log.id == 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names) // ids must not depend on map order
	for _, name := range names {
		id := s.nextID
		_ = s.define(id, name) // a fresh id and an unused name cannot clash
		s.appendMeta(defineRecord(id, name))
	}
	return len(names)
}

// Start replays the state the file holds (stored snapshot, then the log)
// into the attached collections and starts accepting records. A restarted
// agent calls it to recover an instance.
//
// What a service's constructor does to its collections is its initial
// state: on a new file Start writes it as the first stored snapshot; on a
// file that holds state, the stored snapshot replaces it. (A collection
// new to an old file keeps what its constructor made, and Start writes a
// fresh snapshot to cover it.)
func (s *Store) Start() error {
	s.mu.Lock()
	err := s.checkOpened("Start")
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := guard(s.path, s.replay); err != nil {
		return err
	}
	return s.run()
}

func (s *Store) checkOpened(op string) error {
	if s.err != nil {
		return s.err
	}
	if s.state != stOpened {
		return fmt.Errorf("durable: %s: %s on a store that already started", s.instance, op)
	}
	return nil
}

// run makes the store a primary: the committer starts, and collections
// the file does not know yet are defined and covered by a new stored
// snapshot. It runs before any request, so the collections are quiet.
func (s *Store) run() error {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return s.err
	}
	s.appended.Store(s.lastLSN)
	s.durable.Store(s.lastLSN)
	s.state = stRunning
	fresh := s.bindNew()
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.commitLoop()
	if s.pendN > 0 && !s.syncKicks {
		s.wake()
	}
	lsn := s.appended.Load()
	ids, names, colls := s.catalogLocked()
	s.mu.Unlock()
	if fresh == 0 {
		return nil
	}
	snap, err := cut(s.instance, lsn, ids, names, colls)
	if err == nil {
		s.compactMu.Lock()
		err = s.writeSnapshot(snap)
		s.compactMu.Unlock()
	}
	if err != nil {
		s.mu.Lock()
		s.failLocked(err)
		s.mu.Unlock()
	}
	return err
}

// replay applies the stored snapshot and the log to the attached
// collections and sets lastLSN.
func (s *Store) replay() error {
	return s.db.View(func(tx *bolt.Tx) error {
		snap, err := s.readSnapshot(tx)
		if err != nil {
			return err
		}
		if err := s.applySnapshot(snap); err != nil {
			return err
		}
		next := snap.LSN + 1
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := seekCovering(c, next); k != nil; k, v = c.Next() {
			b, err := s.parseStored(k, append([]byte(nil), v...))
			if err != nil {
				return err
			}
			if b.Last() < next {
				continue
			}
			if b.First() > next {
				return fmt.Errorf("%w: %s: log jumps from LSN %d to %d", ErrCorrupt, s.path, next-1, b.First())
			}
			if err := s.applyBatch(trimBatch(b, next-1)); err != nil {
				return err
			}
			next = b.Last() + 1
		}
		s.mu.Lock()
		last := s.lastLSN
		s.mu.Unlock()
		if next-1 != last {
			return fmt.Errorf("%w: %s: replay ended at LSN %d, the file's last LSN is %d", ErrCorrupt, s.path, next-1, last)
		}
		return nil
	})
}

// seekCovering positions c on the batch holding lsn, or the one before it
// when none does; callers skip batches that end before lsn.
func seekCovering(c *bolt.Cursor, lsn uint64) (k, v []byte) {
	k, v = c.Seek(u64Key(lsn))
	if k != nil && binary.BigEndian.Uint64(k) == lsn {
		return k, v
	}
	var pk, pv []byte
	if k == nil {
		pk, pv = c.Last() // Seek past the end leaves c on the last key
	} else {
		pk, pv = c.Prev()
	}
	if pk != nil {
		return pk, pv
	}
	return c.First()
}

// readSnapshot reassembles the stored snapshot; with none it returns an
// empty one at LSN 0.
func (s *Store) readSnapshot(tx *bolt.Tx) (*Snapshot, error) {
	snapLSN := s.readSnapLSN(tx)
	var data []byte
	c := tx.Bucket(bucketSnap).Cursor()
	i := uint64(0)
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 || binary.BigEndian.Uint64(k) != i {
			return nil, fmt.Errorf("%w: %s: snapshot piece %d stored under key %x", ErrCorrupt, s.path, i, k)
		}
		data = append(data, v...)
		i++
	}
	if data == nil {
		if snapLSN != 0 {
			return nil, fmt.Errorf("%w: %s: snapshot at LSN %d is missing", ErrCorrupt, s.path, snapLSN)
		}
		return &Snapshot{Instance: s.instance}, nil
	}
	snap, err := ParseSnapshot(data)
	if err != nil {
		return nil, fmt.Errorf("durable: %s: stored snapshot: %w", s.path, err)
	}
	if snap.LSN != snapLSN || snap.Instance != s.instance {
		return nil, fmt.Errorf("%w: %s: stored snapshot is of %q at LSN %d, the file says %q at %d", ErrCorrupt, s.path, snap.Instance, snap.LSN, s.instance, snapLSN)
	}
	return snap, nil
}

// applySnapshot empties the collections the snapshot covers and rebuilds
// them from its records.
func (s *Store) applySnapshot(snap *Snapshot) error {
	if snap.Empty() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var cleared []*attachment
	err := snap.Range(func(coll uint64, rec []byte) error {
		if coll != metaColl {
			return nil
		}
		id, name, err := parseDefine(rec)
		if err != nil {
			return fmt.Errorf("durable: %s: snapshot at LSN %d: %w", s.instance, snap.LSN, err)
		}
		if err := s.define(id, name); err != nil {
			return fmt.Errorf("durable: %s: snapshot at LSN %d: %w", s.instance, snap.LSN, err)
		}
		if a := s.byID[id]; a != nil {
			cleared = append(cleared, a)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range cleared {
		a.c.Clear()
	}
	return snap.Range(func(coll uint64, rec []byte) error {
		if coll == metaColl {
			return nil
		}
		return s.applyRecord(fmt.Sprintf("snapshot at LSN %d", snap.LSN), coll, rec)
	})
}

// applyBatch applies every record of b. Called without s.mu.
func (s *Store) applyBatch(b Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return b.Range(func(lsn, coll uint64, rec []byte) error {
		if coll == metaColl {
			id, name, err := parseDefine(rec)
			if err == nil {
				err = s.define(id, name)
			}
			if err != nil {
				return fmt.Errorf("durable: %s: LSN %d: %w", s.instance, lsn, err)
			}
			return nil
		}
		return s.applyRecord(fmt.Sprintf("LSN %d", lsn), coll, rec)
	})
}

// applyRecord applies one collection record; where names it for errors.
// Called with s.mu held.
func (s *Store) applyRecord(where string, coll uint64, rec []byte) error {
	a := s.byID[coll]
	if a == nil {
		if name, ok := s.catalog[coll]; ok {
			return fmt.Errorf("durable: %s: %s: record for collection %q, which the service did not attach", s.instance, where, name)
		}
		return fmt.Errorf("%w: %s: %s: record for collection id %d, which was never defined", ErrCorrupt, s.instance, where, coll)
	}
	if err := a.c.Apply(rec); err != nil {
		return fmt.Errorf("durable: %s: %s: %w", s.instance, where, err)
	}
	return nil
}

// commitLoop is the group committer: it takes everything pending, writes
// it as one bbolt transaction (one fsync) while sending it to the backup,
// then releases every Sync waiting for those records.
func (s *Store) commitLoop() {
	defer close(s.done)
	var timer *time.Timer
	for {
		select {
		case <-s.kick:
		case <-s.stop:
			for s.commitOnce() {
			}
			return
		}
		if s.opts.MaxDelay > 0 {
			if timer == nil {
				timer = time.NewTimer(s.opts.MaxDelay)
			} else {
				timer.Reset(s.opts.MaxDelay)
			}
			select {
			case <-timer.C:
			case <-s.kick: // the pending batch reached MaxBatchBytes
				timer.Stop()
			case <-s.stop:
				timer.Stop()
			}
		}
		s.commitOnce()
	}
}

// commitOnce commits the pending records; it reports whether there were
// any and the store is still healthy.
func (s *Store) commitOnce() bool {
	s.mu.Lock()
	if s.pendN == 0 || s.err != nil {
		s.mu.Unlock()
		return false
	}
	first := s.appended.Load() - uint64(s.pendN) + 1
	b := sealBatch(s.pend, first, s.pendN)
	s.pend, s.spare, s.pendN, s.sizeKick = newBatchBuf(s.spare), nil, 0, false
	s.mu.Unlock()

	s.commitMu.Lock()
	rep := s.rep
	var repDone chan error
	if rep != nil {
		repDone = make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.ReplicateTimeout)
			defer cancel()
			repDone <- rep.Replicate(ctx, b)
		}()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		lb := tx.Bucket(bucketLog)
		lb.FillPercent = 1 // keys only ever grow
		return lb.Put(u64Key(first), b.enc)
	})
	var repErr error
	if rep != nil {
		if repErr = <-repDone; repErr != nil {
			s.rep = nil
		}
	}
	s.commitMu.Unlock()

	s.stats.batches.Add(1)
	s.stats.records.Add(uint64(b.n))
	s.stats.bytes.Add(uint64(len(b.enc)))
	logBytes := s.logBytes.Add(int64(len(b.enc)))

	s.mu.Lock()
	if err != nil {
		s.failLocked(fmt.Errorf("durable: %s: commit of LSNs %d-%d: %w", s.instance, first, b.Last(), err))
		s.mu.Unlock()
		return false
	}
	if repErr != nil {
		s.stats.lost.Add(1)
		if f := s.opts.OnBackupLost; f != nil {
			s.bg.Add(1)
			go func() { defer s.bg.Done(); f(repErr) }()
		}
	}
	if rep == nil || repErr != nil {
		s.stats.unreplicated.Add(uint64(b.n))
		if s.opts.RequireBackup {
			s.unrepl = b.Last()
		}
	}
	s.spare = b.enc[:0]
	s.durable.Store(b.Last())
	close(s.advance)
	s.advance = make(chan struct{})
	ready := s.takeCallbacks()
	startCompact := s.opts.Quiesce != nil && s.opts.CompactBytes > 0 && logBytes >= s.opts.CompactBytes && !s.compact
	if startCompact {
		s.compact = true
		s.bg.Add(1)
	}
	s.mu.Unlock()
	for _, cb := range ready {
		cb.fn(s.result(cb.lsn))
	}
	if startCompact {
		go s.autoCompact()
	}
	return true
}

// takeCallbacks removes the SyncFunc callbacks whose records are durable
// (all of them when the store failed). Called with s.mu held.
func (s *Store) takeCallbacks() []syncCB {
	var ready []syncCB
	d := s.durable.Load()
	keep := s.cbs[:0]
	for _, cb := range s.cbs {
		if cb.lsn <= d || s.err != nil {
			ready = append(ready, cb)
		} else {
			keep = append(keep, cb)
		}
	}
	clear(s.cbs[len(keep):])
	s.cbs = keep
	return ready
}

func (s *Store) failLocked(err error) {
	if s.err == nil {
		s.err = err
	}
	close(s.advance)
	s.advance = make(chan struct{})
}

// result is what a barrier for records up to lsn returns once they are
// durable or the store failed.
func (s *Store) result(lsn uint64) error {
	if lsn <= s.durable.Load() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if lsn <= s.unrepl {
			return ErrNoBackup
		}
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return ErrClosed
}

// Sync is the per-request barrier: it returns when every record appended
// before the call is on disk and, if a backup is attached, acknowledged by
// it. The runtime calls it after Handle returns and before it acknowledges
// the request. Because it waits for all earlier records, not only the
// request's own, a reply never reveals a write that could still be lost.
// Concurrent calls share one commit.
func (s *Store) Sync(ctx context.Context) error {
	target := s.appended.Load()
	if s.syncKicks {
		s.wake()
	}
	for {
		if s.durable.Load() >= target {
			if s.opts.RequireBackup {
				return s.result(target)
			}
			return nil
		}
		s.mu.Lock()
		if s.durable.Load() >= target { // advanced since the check above
			s.mu.Unlock()
			continue
		}
		if s.err != nil || s.state == stClosed {
			s.mu.Unlock()
			return s.result(target)
		}
		ch := s.advance
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// SyncFunc is Sync for an event-driven caller: fn is called with Sync's
// result once the records appended before the call are durable. fn runs
// on the committer's goroutine (or at once, on the caller's, when nothing
// is pending) and must not block.
func (s *Store) SyncFunc(fn func(error)) {
	target := s.appended.Load()
	if s.syncKicks {
		s.wake()
	}
	if s.durable.Load() >= target {
		fn(s.result(target))
		return
	}
	s.mu.Lock()
	if s.durable.Load() >= target || s.err != nil || s.state == stClosed {
		s.mu.Unlock()
		fn(s.result(target))
		return
	}
	s.cbs = append(s.cbs, syncCB{target, fn})
	s.mu.Unlock()
}

// LSN returns the LSN of the last record appended.
func (s *Store) LSN() uint64 { return s.appended.Load() }

// DurableLSN returns the LSN up to which records are on disk (and at the
// backup, when one is attached).
func (s *Store) DurableLSN() uint64 { return s.durable.Load() }

// Instance returns the name of the instance the store belongs to.
func (s *Store) Instance() string { return s.instance }

// Err returns the error that made the store unusable, or nil.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stats are counters of a store since it was opened.
type Stats struct {
	Appended, Durable uint64 // LSNs
	SnapshotLSN       uint64 // LSN of the stored snapshot
	Batches           uint64 // bbolt transactions committed (one fsync each)
	Records           uint64 // records committed
	Bytes             uint64 // bytes of batches committed
	LogBytes          int64  // bytes of log since the stored snapshot
	BackupsLost       uint64 // backups detached after a failed Replicate
	Unreplicated      uint64 // records committed without a backup's acknowledgement
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	snap := s.snapLSN
	s.mu.Unlock()
	return Stats{
		Appended: s.appended.Load(), Durable: s.durable.Load(), SnapshotLSN: snap,
		Batches: s.stats.batches.Load(), Records: s.stats.records.Load(), Bytes: s.stats.bytes.Load(),
		LogBytes: s.logBytes.Load(), BackupsLost: s.stats.lost.Load(), Unreplicated: s.stats.unreplicated.Load(),
	}
}

// Close commits what is pending, stops the committer and closes the file.
// Records appended after Close are dropped; their Sync returns ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.state == stClosed {
		s.mu.Unlock()
		return nil
	}
	running := s.state == stRunning
	s.state = stClosed
	s.mu.Unlock()
	if running {
		close(s.stop)
		<-s.done
	}
	s.bg.Wait()
	s.mu.Lock()
	err := s.err
	close(s.advance)
	s.advance = make(chan struct{})
	ready := s.cbs
	s.cbs = nil
	s.mu.Unlock()
	for _, cb := range ready {
		cb.fn(s.result(cb.lsn))
	}
	if cerr := s.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("durable: %s: close: %w", s.path, cerr)
	}
	return err
}

// crash stops the store the way a killed process would: pending records
// are dropped, nothing more is written. For tests.
func (s *Store) crash() {
	s.mu.Lock()
	running := s.state == stRunning
	s.state = stClosed
	if s.err == nil {
		s.err = ErrClosed
	}
	s.pendN = 0
	s.pend = newBatchBuf(s.pend)
	s.mu.Unlock()
	if running {
		close(s.stop)
		<-s.done
	}
	s.bg.Wait()
	s.db.Close()
}

// Remove deletes a closed store's file, for an instance that is gone for
// good (after a migration has completed, or a backup that is re-seeded).
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("durable: %w", err)
	}
	return nil
}
