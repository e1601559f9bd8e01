package runtime

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/e3-platform/e3/collections/durable"
	"github.com/e3-platform/e3/topology"
)

// Cold migration, as agents carry it out. The controller drives it with
// routing tables alone, so that the same agents serve the emulated
// cluster's minimal controller and the replicated one:
//
//  1. Start: the controller publishes a table (epoch e+1) that still
//     routes the instance to its source S and lists a [Move] to its
//     destination D. D creates the instance with a new, empty state file
//     and keeps it unrouted; S holds every new message for the instance
//     (fresh client requests are admitted first, so their timeout runs),
//     waits until the messages it had already started have finished
//     (handler, barrier, emits), cuts the instance's state (a snapshot of
//     the drained collections and the log after it, empty by then) and
//     sends it to D on the control channel, in chunks. D restores it
//     (durable.Store.Restore: its file, fsync, replay), seeds the
//     instance's backup from its new copy, and acknowledges. S reports
//     the move ready (PhaseReady) in its heartbeats and to a
//     MigrationObserver, and keeps holding.
//  2. Commit: the controller publishes a table (e+2) without the move that
//     routes the instance to D. D routes to its restored instance; S
//     releases what it held (it now forwards it to D, and requests still
//     in flight toward S are forwarded likewise), then closes the
//     instance and removes its file.
//  3. Abort, instead of 2: a table without the move that keeps the
//     instance on S. S resumes (what it held runs there); D discards its
//     copy. S also resumes by itself if shipping fails (D unreachable or
//     refusing): a move S did not report ready must not be committed.
//
// No acknowledged write is lost: the state S ships reflects every request
// it answered, and until the commit S is the only node that serves the
// instance. A crash of D before the commit loses nothing (S resumes, or
// the controller aborts); a crash of S loses nothing acknowledged (it is
// in S's file, from which S recovers on restart, and in its backup).
// Requests held at S when it crashes fail at their ingress after the
// request timeout; none is silently dropped.

// Move is a migration in progress, as a routing table lists it: Instance
// (an index into the application's instances; a primary) of application
// App moves from the node the table routes it to, to To.
type Move struct {
	// ID names the migration; the controller chooses it, unique per
	// cluster.
	ID       uint64
	App      uint32
	Instance uint32
	To       topology.NodeID
}

// MigrationRole is an agent's part in a migration.
type MigrationRole uint8

// The roles.
const (
	RoleSource MigrationRole = iota + 1
	RoleDestination
)

func (r MigrationRole) String() string {
	switch r {
	case RoleSource:
		return "source"
	case RoleDestination:
		return "destination"
	}
	return fmt.Sprintf("MigrationRole(%d)", uint8(r))
}

// MigrationPhase is how far a migration got on one agent.
type MigrationPhase uint8

// The phases, in order. A source goes Draining, Shipping, Ready, then Done
// or Aborted (or Failed, after which it serves the instance again); a
// destination goes Preparing, Ready, then Done or Aborted (or Failed).
const (
	PhasePreparing MigrationPhase = iota + 1 // destination: instance created, waiting for the state
	PhaseDraining                            // source: new messages held, in-flight ones finishing
	PhaseShipping                            // source: state on its way to the destination
	PhaseReady                               // state restored at the destination and acknowledged
	PhaseDone                                // committed: the instance runs at the destination
	PhaseAborted                             // the controller called it off; the source serves
	PhaseFailed                              // shipping failed; the source serves again
)

var phaseNames = [...]string{"", "preparing", "draining", "shipping", "ready", "done", "aborted", "failed"}

func (p MigrationPhase) String() string {
	if int(p) < len(phaseNames) && p > 0 {
		return phaseNames[p]
	}
	return fmt.Sprintf("MigrationPhase(%d)", uint8(p))
}

// Final reports whether the phase ends the migration on that agent.
func (p MigrationPhase) Final() bool { return p >= PhaseDone }

// MigrationStatus is one agent's view of a migration: in its heartbeats
// while the table lists the move, and to a [MigrationObserver] at every
// change. Durations are real (wall-clock) time.
type MigrationStatus struct {
	ID       uint64
	App      uint32
	Instance string
	Role     MigrationRole
	Phase    MigrationPhase
	// Err says why a migration failed.
	Err string
	// Source only: Drain is the time from holding new messages to the
	// last in-flight one finishing; Ship from then to the destination's
	// acknowledgement (cut, send, restore, backup seeding); Pause from
	// holding to releasing the held messages (commit or abort). Held
	// counts the messages held.
	Drain, Ship, Pause time.Duration
	Held               int
	// Bytes is the size of the state shipped; LSN the last log record it
	// reflects (0 for an instance without a durable store).
	Bytes int
	LSN   uint64
}

// MigrationObserver is implemented by a Controller that wants to hear of
// migration progress at once rather than in the next heartbeat: the
// agent calls MigrationUpdate at every phase change, from its own
// goroutines, without holding locks.
type MigrationObserver interface {
	MigrationUpdate(node topology.NodeID, s MigrationStatus)
}

// ErrNotPrepared is the answer of a destination that has not yet been
// told of a migration; the source tries again until its deadline.
var ErrNotPrepared = errors.New("runtime: migration destination not prepared")

// DefaultMigrationTimeout bounds a source's shipping (real time).
const DefaultMigrationTimeout = 10 * time.Second

// migration is one migration on this agent.
type migration struct {
	a    *Agent
	mv   Move
	role MigrationRole
	in   *instance

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // source: the shipping goroutine ended

	mu        sync.Mutex
	st        MigrationStatus
	heldAt    time.Time
	committed bool // the commit table arrived
	aborted   bool
	finished  bool // source: the commit or abort was carried out
	restored  bool // destination: the state is in
}

func (m *migration) status() MigrationStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

// report tells the observer of the current status.
func (m *migration) report() {
	obs, ok := m.a.cfg.Controller.(MigrationObserver)
	if !ok {
		return
	}
	obs.MigrationUpdate(m.a.self, m.status())
}

// hook calls Config.MigrationHook, if any.
func (m *migration) hook() {
	if h := m.a.cfg.MigrationHook; h != nil {
		h(m.a.ctx, m.status())
	}
}

func (m *migration) setPhase(p MigrationPhase, err error) {
	m.mu.Lock()
	m.st.Phase = p
	if err != nil {
		m.st.Err = err.Error()
	}
	m.mu.Unlock()
	m.report()
}

// Migrations returns the status of every migration the table in force
// lists that involves this agent, and of those that ended since.
func (a *Agent) Migrations() []MigrationStatus {
	a.migMu.Lock()
	defer a.migMu.Unlock()
	out := make([]MigrationStatus, 0, len(a.migs))
	for _, m := range a.migs {
		out = append(out, m.status())
	}
	return out
}

// MigrationStatus returns this agent's status of migration id.
func (a *Agent) MigrationStatus(id uint64) (MigrationStatus, bool) {
	a.migMu.Lock()
	m := a.migs[id]
	a.migMu.Unlock()
	if m == nil {
		return MigrationStatus{}, false
	}
	return m.status(), true
}

// Holding new messages: a migration's source and a store's compaction
// (Quiesce) hold an instance's new messages and wait for the ones it
// started to finish. enter and hold follow Dekker's pattern: enter counts
// a message active before it reads holding, hold sets holding before it
// waits for no active message, so either the message is seen by the
// drain or it sees the hold.

// enter admits m to run on in, or holds it; it reports whether m may run.
func (in *instance) enter(m *msg) bool {
	for {
		in.active.Add(1)
		if !in.holding.Load() {
			m.inst = in
			return true
		}
		in.active.Add(-1)
		in.holdMu.Lock()
		if in.holds > 0 {
			in.held = append(in.held, m)
			in.holdMu.Unlock()
			return false
		}
		in.holdMu.Unlock()
	}
}

// exit ends a message that entered.
func (in *instance) exit() { in.active.Add(-1) }

// hold makes in hold its new messages.
func (in *instance) hold() {
	in.holdMu.Lock()
	in.holds++
	in.holding.Store(true)
	in.holdMu.Unlock()
}

// release ends one hold; when none is left, the held messages are handed
// back to the agent, which dispatches them by the table in force: to the
// instance again, or on to where it moved.
func (in *instance) release() int {
	in.holdMu.Lock()
	in.holds--
	var held []*msg
	if in.holds <= 0 {
		in.holds = 0
		in.holding.Store(false)
		held, in.held = in.held, nil
	}
	in.holdMu.Unlock()
	for _, m := range held {
		in.a.redispatch(m)
	}
	return len(held)
}

// heldCount is the number of messages held now.
func (in *instance) heldCount() int {
	in.holdMu.Lock()
	defer in.holdMu.Unlock()
	return len(in.held)
}

// redispatch dispatches a message that was held. In emulation it is due
// now: the time it waited counts in its request's emulated latency.
func (a *Agent) redispatch(m *msg) {
	m.inst = nil
	if a.emu != nil {
		m.h.Timestamp = max(m.h.Timestamp, a.emuNow())
		a.input(m)
		return
	}
	a.dispatch(m)
}

// drained waits until no message of in is running (or ctx ends).
func (in *instance) drained(ctx context.Context) error {
	wait := 20 * time.Microsecond
	for in.active.Load() != 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Millisecond)
	}
	return nil
}

// quiesce is the durable store's Options.Quiesce: fn runs while no
// handler of the instance runs.
func (in *instance) quiesce(fn func()) error {
	in.hold()
	if err := in.drained(in.a.ctx); err != nil {
		in.release()
		return err
	}
	fn()
	in.release()
	return nil
}

// Migration state modes, the byte after the move id in a migrate stream.
const (
	stateNone    uint8 = 0 // a stateless instance: nothing moves
	stateDurable uint8 = 1 // a hand-over bundle (snapshot and tail)
	stateMemory  uint8 = 2 // the in-memory collections' records
)

// startOut begins migration mv of local instance in, as its source.
func (a *Agent) startOut(mv Move, in *instance) *migration {
	m := &migration{a: a, mv: mv, role: RoleSource, in: in, done: make(chan struct{})}
	m.ctx, m.cancel = context.WithTimeout(a.ctx, a.cfg.MigrationTimeout)
	m.st = MigrationStatus{ID: mv.ID, App: mv.App, Instance: in.inst.ID, Role: RoleSource, Phase: PhaseDraining}
	a.wg.Add(1)
	go m.runOut()
	return m
}

// runOut is the source's side: hold, drain, cut, ship.
func (m *migration) runOut() {
	a, in := m.a, m.in
	defer a.wg.Done()
	defer close(m.done)
	defer m.cancel()
	in.hold()
	m.mu.Lock()
	m.heldAt = time.Now()
	m.mu.Unlock()
	m.report()
	m.hook()
	err := in.drained(m.ctx) // fails at once if the agent closed in the hook
	drainedAt := time.Now()
	var payload []byte
	var lsn uint64
	if err == nil {
		m.mu.Lock()
		m.st.Drain = drainedAt.Sub(m.heldAt)
		m.st.Phase = PhaseShipping
		m.mu.Unlock()
		m.report()
		m.hook()
		if err = m.ctx.Err(); err == nil {
			payload, lsn, err = a.cutState(m.ctx, m.mv.ID, in)
		}
	}
	if err == nil {
		err = a.ship(m.ctx, m.mv, payload)
	}
	m.mu.Lock()
	m.st.Ship = time.Since(drainedAt)
	m.st.Bytes, m.st.LSN = len(payload), lsn
	if err != nil {
		m.st.Phase, m.st.Err = PhaseFailed, err.Error()
	} else {
		m.st.Phase = PhaseReady
	}
	commit, abort := m.committed, m.aborted
	m.mu.Unlock()
	if err == nil {
		m.hook()
	}
	if a.ctx.Err() != nil {
		return // the agent is gone (closed, or crashed in the hook): it reports nothing more
	}
	switch {
	case commit:
		m.finishOut(true)
	case abort || err != nil:
		// Called off, or shipping failed: serve the instance here again.
		m.finishOut(false)
	default:
		m.report()
	}
}

// cutState encodes the drained instance's state for its destination:
// the move id, a mode byte and the state.
func (a *Agent) cutState(ctx context.Context, id uint64, in *instance) ([]byte, uint64, error) {
	b := binary.LittleEndian.AppendUint64(nil, id)
	switch {
	case in.store != nil:
		// Every record of the requests answered is durable once their
		// barriers returned; Sync also covers records of a request that
		// failed after writing.
		if err := in.store.Sync(ctx); err != nil {
			return nil, 0, fmt.Errorf("runtime: barrier before the cut: %w", err)
		}
		snap, err := in.store.Snapshot()
		if err != nil {
			return nil, 0, err
		}
		tail, err := in.store.Tail(snap.LSN)
		if err != nil {
			return nil, 0, err
		}
		b = append(b, stateDurable)
		return encodeHandOver(b, snap, tail), snap.LSN, nil
	case in.mem != nil:
		b = append(b, stateMemory)
		b, err := encodeCollections(b, in.mem.Collections())
		return b, 0, err
	}
	return append(b, stateNone), 0, nil
}

// ship sends the state to the destination, asking again while it is not
// prepared (it may get the table after us).
func (a *Agent) ship(ctx context.Context, mv Move, payload []byte) error {
	for {
		_, err := a.ctlCall(ctx, mv.To, opMigrate, mv.App, mv.Instance, payload)
		if err == nil || !strings.Contains(err.Error(), ErrNotPrepared.Error()) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (and then: %w)", err, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// commitOut is the source's side of a commit table (the instance is
// routed to the destination now); abortOut of an abort table. Both run
// under lifeMu, after the new table is in force.
func (m *migration) commitOut() { m.end(true) }
func (m *migration) abortOut()  { m.end(false) }

func (m *migration) end(commit bool) {
	m.mu.Lock()
	if commit {
		m.committed = true
	} else {
		m.aborted = true
	}
	running := m.st.Phase < PhaseReady
	m.mu.Unlock()
	if running {
		if !commit {
			m.cancel()
		}
		return // runOut finishes it
	}
	m.finishOut(commit)
}

// finishOut releases what the source held, once: after a commit the held
// messages go on to the destination and the instance's resources are
// freed; otherwise the instance serves here again.
func (m *migration) finishOut(commit bool) {
	in := m.in
	m.mu.Lock()
	if m.finished {
		m.mu.Unlock()
		return
	}
	m.finished = true
	ready := m.st.Phase == PhaseReady
	m.st.Held = in.heldCount()
	m.st.Pause = time.Since(m.heldAt)
	switch {
	case commit && ready:
		m.st.Phase = PhaseDone
	case commit:
		// The controller committed a move this agent did not report
		// ready: keep the file, the only copy of the state may be here.
		m.st.Err = "committed without the destination's acknowledgement; the state file is kept"
		m.st.Phase = PhaseFailed
	case m.st.Phase != PhaseFailed:
		m.st.Phase = PhaseAborted
	}
	m.mu.Unlock()
	if commit {
		in.stopAndFree(ready)
		in.release()
	} else {
		in.release()
	}
	m.report()
}

// startIn prepares this node as the destination of mv: the instance is
// created on a new, empty state file and holds its messages until the
// state arrives.
func (a *Agent) startIn(mv Move, as *appState) (*migration, error) {
	ai := as.route.App.Instances()[mv.Instance]
	in, err := a.newInstance(as, ai, as.route.Seed, true, false)
	if err != nil {
		return nil, err
	}
	in.hold()
	m := &migration{a: a, mv: mv, role: RoleDestination, in: in}
	m.ctx, m.cancel = context.WithCancel(a.ctx)
	m.st = MigrationStatus{ID: mv.ID, App: mv.App, Instance: ai.ID, Role: RoleDestination, Phase: PhasePreparing}
	return m, nil
}

// migrateIn is the destination's side of a migrate stream.
func (a *Agent) migrateIn(appID, instance uint32, data []byte) (uint64, error) {
	if len(data) < 9 {
		return 0, fmt.Errorf("%w: migrate stream of %d bytes", errBadHandOver, len(data))
	}
	id := binary.LittleEndian.Uint64(data)
	mode, body := data[8], data[9:]
	a.migMu.Lock()
	m := a.migs[id]
	a.migMu.Unlock()
	if m == nil || m.role != RoleDestination || m.mv.App != appID || m.mv.Instance != instance {
		return 0, fmt.Errorf("%w: %s has no migration %d of instance %d of app %d", ErrNotPrepared, a.Name(), id, instance, appID)
	}
	m.hook() // the state has arrived
	if err := m.ctx.Err(); err != nil {
		return 0, fmt.Errorf("runtime: %s: migration %d: %w", a.Name(), id, err)
	}
	lsn, err := m.restore(mode, body, len(data))
	if err == nil {
		m.hook() // restored, not yet acknowledged
		err = m.ctx.Err()
	}
	return lsn, err
}

// restore installs a migrating instance's state at its destination.
func (m *migration) restore(mode uint8, body []byte, size int) (uint64, error) {
	a := m.a
	id, appID := m.mv.ID, m.mv.App
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.restored {
		return m.st.LSN, nil // a repeated stream: answer again
	}
	if m.aborted || m.st.Phase.Final() {
		return 0, fmt.Errorf("runtime: migration %d was called off at %s", id, a.Name())
	}
	in := m.in
	var lsn uint64
	switch {
	case mode == stateDurable && in.store != nil:
		snap, tail, err := decodeHandOver(body)
		if err != nil {
			return 0, err
		}
		if err := in.store.Restore(snap, tail); err != nil {
			return 0, err
		}
		lsn = in.store.LSN()
		// The instance's backup is seeded from this copy before the
		// source is told, so that the first request answered here is
		// replicated too.
		if in.backup != nil {
			ctx, cancel := context.WithTimeout(m.ctx, seedTimeout)
			err := in.store.AddBackup(ctx, chanReplicator{a: a, app: appID, backup: uint32(in.backup.Index)})
			cancel()
			if err == nil {
				in.replicated.Store(true)
				in.seeds.Add(1)
			} else {
				a.log.Warn("migrated instance's backup not seeded; retrying in the background", "instance", in.inst.ID, "err", err)
				a.seedBackup(in)
			}
		}
	case mode == stateMemory && in.mem != nil:
		if err := applyCollections(body, in.mem.Collections()); err != nil {
			return 0, err
		}
	case mode == stateNone && in.store == nil && in.mem == nil:
	default:
		return 0, fmt.Errorf("runtime: migration %d: state of mode %d for an instance that keeps its state %s", id, mode, in.stateKind())
	}
	m.restored = true
	m.st.LSN, m.st.Bytes = lsn, size
	if m.committed {
		// Committed before the state arrived (a controller that did not
		// wait for the source): the messages held since then may run now.
		m.st.Err = ""
		go in.release()
	} else {
		m.st.Phase = PhaseReady
	}
	go m.report()
	return lsn, nil
}

// commitIn is the destination's side of a commit table: the restored
// instance is routed here now and takes its messages.
func (m *migration) commitIn() {
	m.mu.Lock()
	restored := m.restored
	m.committed = true
	m.st.Phase = PhaseDone
	if !restored {
		m.st.Err = "committed before the state arrived; messages are held until it does"
	}
	m.mu.Unlock()
	if restored {
		m.in.release()
	}
	m.report()
}

// abortIn discards the destination's copy.
func (m *migration) abortIn() {
	m.cancel() // first: a restore in progress holds m.mu until it ends
	m.mu.Lock()
	m.aborted = true
	m.st.Phase = PhaseAborted
	m.mu.Unlock()
	m.in.stopAndFree(true)
	m.in.release()
	m.report()
}

func (in *instance) stateKind() string {
	switch {
	case in.store != nil:
		return "in a durable store"
	case in.mem != nil:
		return "in memory"
	}
	return "nowhere (stateless)"
}

// stopAndFree stops an instance that no longer runs here, and with remove
// deletes its state file: its state lives elsewhere now.
func (in *instance) stopAndFree(remove bool) {
	in.stop()
	if in.store != nil && remove && in.path != "" {
		if err := durable.Remove(in.path); err != nil {
			in.a.log.Warn("removing a moved instance's file", "path", in.path, "err", err)
		}
	}
}
