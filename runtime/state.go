package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/collections/durable"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/topology"
)

// Where instances keep their state.
//
// With Config.DataDir set, every instance of a stateful, migratable
// service (its state lives in reliable collections) runs on a
// durable.Store: one bbolt file per instance and role under
// DataDir/<app>/, "<instance>.db" for a primary and "<backup>.db" (for
// example "ema.3.b1.db") for a backup. A primary replicates every batch to
// its first backup's node over the control channel before the requests
// that wrote it are answered. Without DataDir, collections live in memory
// (collections.MemStore) and backups are not instantiated; a migration
// still moves the collections' contents.

// durableEligible reports whether instances of n keep their state in
// reliable collections worth persisting.
func durableEligible(n *app.Node) bool {
	d := n.Descriptor
	return d != nil && d.Stateful && d.Migratable
}

// safeName keeps a path element to letters, digits, '.', '-' and '_'.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// statePath is the file of instance ai of application a.
func (a *Agent) statePath(ap *app.App, ai *app.Instance) string {
	return filepath.Join(a.cfg.DataDir, safeName(ap.Name), safeName(ai.ID)+".db")
}

// storeName is the instance name a durable store is opened with: the
// primary's, for the primary and its backups alike (a backup holds the
// primary's state).
func storeName(ap *app.App, ai *app.Instance) string { return ap.Name + "/" + ai.Primary.ID }

// openStore opens (creating) the store of instance ai at path. fresh
// removes what the file holds first: an instance that is placed here anew
// must not come back with a copy left by an earlier life, which may be
// stale.
func (a *Agent) openStore(ap *app.App, ai *app.Instance, path string, fresh bool, hooks *storeHooks) (*durable.Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if fresh {
		if err := durable.Remove(path); err != nil {
			return nil, err
		}
	}
	opts := a.cfg.Durable
	opts.Quiesce = hooks.quiesce
	opts.OnBackupLost = func(err error) {
		if in := hooks.in.Load(); in != nil && a.ctx.Err() == nil {
			a.log.Warn("backup lost", "instance", ai.ID, "err", err)
			a.seedBackup(in)
		}
	}
	st, err := durable.Open(path, storeName(ap, ai), opts)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// storeHooks connect a store's callbacks to the instance that owns it,
// which for a backup's store is set only once it is promoted.
type storeHooks struct{ in atomic.Pointer[instance] }

func (h *storeHooks) quiesce(fn func()) error {
	if in := h.in.Load(); in != nil {
		return in.quiesce(fn)
	}
	fn() // a backup: only Apply changes its collections
	return nil
}

// backupInst is a backup replica held on this node: its store applies the
// primary's batches and its service instance holds the collections (it is
// routed no requests).
type backupInst struct {
	a     *Agent
	ap    *app.App
	inst  *app.Instance
	seed  int64
	path  string
	hooks *storeHooks

	mu     sync.Mutex // serialises Apply, Install (which may re-seed) and Close
	st     *durable.Store
	b      *durable.Backup
	h      service.Handler
	closed bool
}

// newBackup creates (or, recovering, reopens) the backup replica ai.
func (a *Agent) newBackup(ap *app.App, ai *app.Instance, seed int64, fresh bool) (*backupInst, error) {
	bi := &backupInst{a: a, ap: ap, inst: ai, seed: seed, path: a.statePath(ap, ai), hooks: &storeHooks{}}
	if err := bi.open(fresh); err != nil {
		return nil, fmt.Errorf("backup %s (%s): %w", ai.ID, ai.Node.Service, err)
	}
	return bi, nil
}

func (bi *backupInst) open(fresh bool) error {
	st, err := bi.a.openStore(bi.ap, bi.inst, bi.path, fresh, bi.hooks)
	if err != nil {
		return err
	}
	h, err := bi.inst.Node.Descriptor.New(service.Env{
		Instance: bi.ap.Name + "/" + bi.inst.ID, Config: bi.inst.Node.Config, Store: st, Seed: bi.seed,
	})
	if err != nil {
		st.Close()
		return err
	}
	b, err := durable.NewBackup(st)
	if err != nil {
		closeHandler(h)
		st.Close()
		return err
	}
	bi.st, bi.b, bi.h = st, b, h
	return nil
}

// apply carries out a replicated batch.
func (bi *backupInst) apply(data []byte) (uint64, error) {
	batch, err := durable.ParseBatch(data)
	if err != nil {
		return 0, err
	}
	bi.mu.Lock()
	defer bi.mu.Unlock()
	if bi.closed {
		return 0, fmt.Errorf("runtime: backup %s closed", bi.inst.ID)
	}
	if err := bi.b.Apply(batch); err != nil {
		return 0, err
	}
	return bi.b.LSN(), nil
}

// install seeds the backup with a hand-over bundle. A backup that already
// holds state (its primary restarted or moved, and seeds its backup anew)
// is replaced by a fresh one first: durable.Backup.Install only seeds an
// empty backup, since a backup's state must come from one primary.
func (bi *backupInst) install(data []byte) (uint64, error) {
	snap, tail, err := decodeHandOver(data)
	if err != nil {
		return 0, err
	}
	bi.mu.Lock()
	defer bi.mu.Unlock()
	if bi.closed {
		return 0, fmt.Errorf("runtime: backup %s closed", bi.inst.ID)
	}
	if bi.b.LSN() != 0 || bi.st.Err() != nil {
		bi.closeLocked()
		if err := bi.open(true); err != nil {
			bi.closed = true
			return 0, fmt.Errorf("runtime: re-seeding backup %s: %w", bi.inst.ID, err)
		}
		bi.closed = false
	}
	if err := bi.b.Install(snap, tail); err != nil {
		return 0, err
	}
	return bi.b.LSN(), nil
}

func (bi *backupInst) closeLocked() {
	if bi.b != nil {
		bi.b.Close()
	}
	closeHandler(bi.h)
	bi.closed = true
}

// close closes the backup; remove also deletes its file (it moved away or
// became the primary elsewhere).
func (bi *backupInst) close(remove bool) {
	bi.mu.Lock()
	defer bi.mu.Unlock()
	if !bi.closed {
		bi.closeLocked()
	}
	if remove {
		if err := durable.Remove(bi.path); err != nil {
			bi.a.log.Warn("removing a backup's file", "path", bi.path, "err", err)
		}
	}
}

// promote turns the backup into the primary's store and handler: its
// collections already hold the state. The file is renamed to the
// primary's name, so that a restart finds it there.
func (bi *backupInst) promote(primaryPath string) (*durable.Store, service.Handler, error) {
	bi.mu.Lock()
	defer bi.mu.Unlock()
	if bi.closed {
		return nil, nil, fmt.Errorf("runtime: backup %s closed", bi.inst.ID)
	}
	st, err := bi.b.Promote()
	if err != nil {
		return nil, nil, err
	}
	bi.closed = true // the store and handler belong to the primary now
	if err := os.Rename(bi.path, primaryPath); err != nil {
		return nil, nil, fmt.Errorf("runtime: promoted backup %s: %w", bi.inst.ID, err)
	}
	return st, bi.h, nil
}

func closeHandler(h service.Handler) {
	if c, ok := h.(service.Closer); ok {
		c.Close()
	}
}

// backupStream carries out an install or replicate stream for backup
// instance index instance of app appID.
func (a *Agent) backupStream(op uint8, appID, instance uint32, data []byte) (uint64, error) {
	st := a.state.Load()
	if int(appID) >= len(st.apps) || st.apps[appID] == nil {
		return 0, fmt.Errorf("runtime: %s has no app %d", a.Name(), appID)
	}
	as := st.apps[appID]
	if int(instance) >= len(as.backups) || as.backups[instance] == nil {
		return 0, fmt.Errorf("runtime: %s holds no backup %s of %s", a.Name(), instanceName(as, instance), as.route.App.Name)
	}
	bi := as.backups[instance]
	if op == opInstall {
		return bi.install(data)
	}
	return bi.apply(data)
}

// chanReplicator is the durable.Replicator of a primary: it carries
// batches and seeds to the node its backup runs on, over the control
// channel, looking the node up in the table in force at each call (so a
// backup that moved is reached where it is now; it answers ErrGap or
// "holds no backup" until seeded, and the store then counts it lost and
// the agent seeds it anew).
type chanReplicator struct {
	a      *Agent
	app    uint32
	backup uint32 // instance index of the backup
}

func (r chanReplicator) node() (topology.NodeID, error) {
	st := r.a.state.Load()
	if int(r.app) >= len(st.apps) || st.apps[r.app] == nil {
		return -1, fmt.Errorf("runtime: app %d no longer deployed", r.app)
	}
	return st.apps[r.app].nodeOf(r.backup), nil
}

// Install implements durable.Replicator.
func (r chanReplicator) Install(ctx context.Context, snap *durable.Snapshot, tail []durable.Batch) error {
	n, err := r.node()
	if err != nil {
		return err
	}
	_, err = r.a.ctlCall(ctx, n, opInstall, r.app, r.backup, encodeHandOver(nil, snap, tail))
	return err
}

// Replicate implements durable.Replicator.
func (r chanReplicator) Replicate(ctx context.Context, b durable.Batch) error {
	n, err := r.node()
	if err != nil {
		return err
	}
	_, err = r.a.ctlCall(ctx, n, opReplicate, r.app, r.backup, b.Bytes())
	return err
}

// seedBackup attaches instance in's backup, seeding it, in the
// background: at once after the instance starts, and again whenever the
// store reports its backup lost. It retries every seedRetry while the
// backup's node cannot take it (not yet told it holds the backup, or
// down), until the instance stops.
func (a *Agent) seedBackup(in *instance) {
	if in.store == nil || in.backup == nil {
		return
	}
	in.seedMu.Lock()
	if in.seeding || in.state.Load() == stateStopped {
		in.seedMu.Unlock()
		return
	}
	in.seeding = true
	in.replicated.Store(false)
	in.seedMu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			in.seedMu.Lock()
			in.seeding = false
			in.seedMu.Unlock()
		}()
		for attempt := 0; ; attempt++ {
			if a.ctx.Err() != nil || in.state.Load() == stateStopped {
				return
			}
			ctx, cancel := context.WithTimeout(a.ctx, seedTimeout)
			err := in.store.AddBackup(ctx, chanReplicator{a: a, app: in.app.route.ID, backup: uint32(in.backup.Index)})
			cancel()
			if err == nil {
				in.replicated.Store(true)
				in.seeds.Add(1)
				return
			}
			if attempt%50 == 0 {
				a.log.Info("backup not attached yet", "instance", in.inst.ID, "backup", in.backup.ID, "err", err)
			}
			select {
			case <-a.ctx.Done():
				return
			case <-time.After(seedRetry):
			}
		}
	}()
}

// Timing of backup seeding: a try may ship a whole state; a backup's node
// that is not ready yet is asked again soon.
const (
	seedTimeout = 10 * time.Second
	seedRetry   = 20 * time.Millisecond
)

// Hand-over bundles: a snapshot and the log batches after it, as one
// stream payload:
//
//	u32 snapshot length, snapshot (durable.Snapshot encoding)
//	u32 batch count, then per batch u32 length and the batch
//
// little endian. Each part is checked by its own decoder (CRCs included).
func encodeHandOver(dst []byte, snap *durable.Snapshot, tail []durable.Batch) []byte {
	sb := snap.Bytes()
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(sb)))
	dst = append(dst, sb...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(tail)))
	for _, b := range tail {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b.Bytes())))
		dst = append(dst, b.Bytes()...)
	}
	return dst
}

var errBadHandOver = errors.New("runtime: bad hand-over")

func decodeHandOver(data []byte) (*durable.Snapshot, []durable.Batch, error) {
	part := func(off int, what string) ([]byte, int, error) {
		if len(data)-off < 4 {
			return nil, 0, fmt.Errorf("%w: %s length at offset %d cut short (%d bytes in all)", errBadHandOver, what, off, len(data))
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n > len(data)-off-4 {
			return nil, 0, fmt.Errorf("%w: %s of %d bytes at offset %d, only %d bytes follow", errBadHandOver, what, n, off, len(data)-off-4)
		}
		return data[off+4 : off+4+n], off + 4 + n, nil
	}
	sb, off, err := part(0, "snapshot")
	if err != nil {
		return nil, nil, err
	}
	snap, err := durable.ParseSnapshot(sb)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errBadHandOver, err)
	}
	if len(data)-off < 4 {
		return nil, nil, fmt.Errorf("%w: batch count at offset %d cut short", errBadHandOver, off)
	}
	count := binary.LittleEndian.Uint32(data[off:])
	off += 4
	if uint64(count) > uint64(len(data)-off)/4 {
		return nil, nil, fmt.Errorf("%w: %d batches claimed in %d bytes", errBadHandOver, count, len(data)-off)
	}
	tail := make([]durable.Batch, 0, count)
	for i := range count {
		var bb []byte
		if bb, off, err = part(off, fmt.Sprintf("batch %d", i)); err != nil {
			return nil, nil, err
		}
		b, err := durable.ParseBatch(bb)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: batch %d: %w", errBadHandOver, i, err)
		}
		tail = append(tail, b)
	}
	if off != len(data) {
		return nil, nil, fmt.Errorf("%w: %d bytes after the last batch", errBadHandOver, len(data)-off)
	}
	return snap, tail, nil
}

// Memory bundles: the contents of an instance's in-memory collections,
// for migrating an instance that has no durable store:
//
//	u32 collection count, then per collection: u16 name length, name,
//	u32 record count, then per record u32 length and the record
func encodeCollections(dst []byte, colls []collections.Collection) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(colls)))
	for _, c := range colls {
		name := c.Name()
		if len(name) > 0xffff {
			return nil, fmt.Errorf("runtime: collection name of %d bytes", len(name))
		}
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(name)))
		dst = append(dst, name...)
		at := len(dst)
		dst = binary.LittleEndian.AppendUint32(dst, 0)
		n := uint32(0)
		err := c.Snapshot(func(rec []byte) error {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(len(rec)))
			dst = append(dst, rec...)
			n++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("runtime: snapshot of collection %q: %w", name, err)
		}
		binary.LittleEndian.PutUint32(dst[at:], n)
	}
	return dst, nil
}

// applyCollections replaces the contents of the collections of colls
// with those of a memory bundle. Every collection named must exist.
func applyCollections(data []byte, colls []collections.Collection) error {
	byName := map[string]collections.Collection{}
	for _, c := range colls {
		byName[c.Name()] = c
	}
	need := func(off, n int, what string) error {
		if len(data)-off < n {
			return fmt.Errorf("%w: %s at offset %d cut short", errBadHandOver, what, off)
		}
		return nil
	}
	if err := need(0, 4, "collection count"); err != nil {
		return err
	}
	count := binary.LittleEndian.Uint32(data)
	off := 4
	for i := range count {
		if err := need(off, 2, "collection name length"); err != nil {
			return err
		}
		nl := int(binary.LittleEndian.Uint16(data[off:]))
		off += 2
		if err := need(off, nl+4, "collection name"); err != nil {
			return err
		}
		name := string(data[off : off+nl])
		off += nl
		c := byName[name]
		if c == nil {
			return fmt.Errorf("%w: collection %d, %q, is not one of the instance's", errBadHandOver, i, name)
		}
		nrec := binary.LittleEndian.Uint32(data[off:])
		off += 4
		c.Clear()
		for r := range nrec {
			if err := need(off, 4, "record length"); err != nil {
				return err
			}
			rl := int(binary.LittleEndian.Uint32(data[off:]))
			off += 4
			if err := need(off, rl, "record"); err != nil {
				return err
			}
			if err := c.Apply(data[off : off+rl]); err != nil {
				return fmt.Errorf("%w: collection %q record %d: %w", errBadHandOver, name, r, err)
			}
			off += rl
		}
	}
	if off != len(data) {
		return fmt.Errorf("%w: %d bytes after the last collection", errBadHandOver, len(data)-off)
	}
	return nil
}
