package runtime

import (
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/collections/durable"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// Instance lifecycle states.
const (
	stateRunning int32 = iota
	// stateDraining: the instance takes no new client requests; messages
	// of requests already admitted are still processed.
	stateDraining
	stateStopped
)

// instance is one microservice instance on this node.
type instance struct {
	a      *Agent
	app    *appState
	inst   *app.Instance
	h      service.Handler
	demand int64 // emulated ns per message on this node's cores
	state  atomic.Int32
	// rr is the round-robin position per outgoing edge of the node.
	rr []atomic.Uint32

	// State: a durable store (with its file) or the in-memory store, or
	// neither for a stateless service.
	store *durable.Store
	path  string
	mem   *collections.MemStore
	// backup is the instance's first backup replica, which its store
	// replicates to (nil: none); replRTT the emulated round trip to its
	// node, which the barrier adds to a writing request.
	backup     *app.Instance
	replRTT    atomic.Int64
	replicated atomic.Bool // a backup is attached
	seeds      atomic.Uint64
	seedMu     sync.Mutex
	seeding    bool

	// Holding (migration, compaction): active counts messages that
	// entered and have not finished; while holds > 0 new messages wait in
	// held.
	active  atomic.Int64
	holding atomic.Bool
	holdMu  sync.Mutex
	holds   int
	held    []*msg

	// statistics
	msgs     atomic.Uint64
	realNs   atomic.Uint64 // real handler time, summed over the timed calls
	timed    atomic.Uint64 // calls timed
	execEMA  atomic.Uint64 // float64 bits: EMA of the execution time (emulated in emulation, real otherwise), ns
	sojEMA   atomic.Uint64 // float64 bits: EMA of arrival-to-finish (emulated), ns
	errs     atomic.Uint64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
}

// emaAlpha weighs a new sample in the execution-time averages: about the
// last 20 messages count, short enough to follow a load change within a
// heartbeat and long enough to smooth single outliers.
const emaAlpha = 0.05

func emaUpdate(v *atomic.Uint64, sample float64) {
	for {
		old := v.Load()
		f := math.Float64frombits(old)
		if old == 0 {
			f = sample
		} else {
			f += emaAlpha * (sample - f)
		}
		if v.CompareAndSwap(old, math.Float64bits(f)) {
			return
		}
	}
}

// stop stops the instance: its handler's resources and its store are
// closed (the file stays; see stopAndFree).
func (in *instance) stop() {
	if in.state.Swap(stateStopped) == stateStopped {
		return
	}
	closeHandler(in.h)
	if in.store != nil {
		if err := in.store.Close(); err != nil {
			in.a.log.Warn("closing an instance's store", "instance", in.inst.ID, "err", err)
		}
	}
}

// appState is a deployed application as this node sees it.
type appState struct {
	route *AppRoute
	local []*instance // by instance index; nil if not on this node
	// backups are the backup replicas held here, by instance index.
	backups []*backupInst
	// incoming are instances prepared here as a migration's destination,
	// by instance index; not routed until the move commits.
	incoming []*migration
}

func (as *appState) nodeOf(i uint32) topology.NodeID {
	if int(i) >= len(as.route.Nodes) {
		return -1
	}
	return as.route.Nodes[i]
}

// demandOf returns the emulated service time of svc on this node.
func (a *Agent) demandOf(svc string) int64 {
	if a.emu == nil {
		return 0
	}
	if a.emu.Demand != nil {
		return int64(a.emu.Demand(svc))
	}
	d, err := hwmodel.Demand(svc, a.cfg.CoreKind)
	if err != nil {
		return int64(DefaultDemand)
	}
	return int64(d * 1e9)
}

// Apply installs routing table t. It refuses a table whose epoch is not
// newer than the current one ([ErrStaleEpoch]). It creates the instances
// t puts on this node that do not run here yet: recovered from their
// state files on the first table after the agent started, if
// Config.Recover is set; promoted from a backup held here, if the shard's
// primary comes to the node of its backup; otherwise on fresh state. It
// creates the backup replicas t puts here (with Config.DataDir), carries
// out the moves t lists or no longer lists (see [Move]), and stops the
// instances t moved away or removed, deleting their state files. The data
// path switches to t at once.
func (a *Agent) Apply(t *Table) error {
	a.lifeMu.Lock()
	defer a.lifeMu.Unlock()
	if a.closed.Load() {
		return fmt.Errorf("runtime: %s: apply table epoch %d: agent closed", a.Name(), t.Epoch)
	}
	old := a.state.Load()
	if old.table != nil && t.Epoch <= old.table.Epoch {
		return fmt.Errorf("%w: %s has epoch %d, got %d", ErrStaleEpoch, a.Name(), old.table.Epoch, t.Epoch)
	}
	if err := t.validate(a.topo); err != nil {
		return err
	}
	recovering := a.cfg.Recover && !a.applied
	type key struct{ app, inst uint32 }
	moves := map[key]Move{}
	for _, mv := range t.Moves {
		moves[key{mv.App, mv.Instance}] = mv
	}
	st := &agentState{table: t}
	var (
		created   []*instance
		createdB  []*backupInst
		createdIn []*migration
		adopted   = map[*migration]bool{}
		promoted  = map[*backupInst]bool{}
	)
	undo := func() {
		for _, in := range created {
			in.stop()
		}
		for _, bi := range createdB {
			bi.close(false)
		}
		for _, m := range createdIn {
			m.in.stopAndFree(true)
		}
	}
	for ri := range t.Apps {
		r := &t.Apps[ri]
		if r.ID >= 1<<16 {
			undo()
			return fmt.Errorf("runtime: table epoch %d: app id %d, want below 65536", t.Epoch, r.ID)
		}
		for int(r.ID) >= len(st.apps) {
			st.apps = append(st.apps, nil)
		}
		n := len(r.Nodes)
		as := &appState{route: r, local: make([]*instance, n), backups: make([]*backupInst, n), incoming: make([]*migration, n)}
		st.apps[r.ID] = as
		var prev *appState
		if int(r.ID) < len(old.apps) && old.apps[r.ID] != nil && sameApp(old.apps[r.ID].route.App, r.App) {
			prev = old.apps[r.ID]
		}
		insts := r.App.Instances()
		fail := func(err error) error {
			undo()
			return fmt.Errorf("runtime: %s: app %s: %w", a.Name(), r.App.Name, err)
		}
		for i, nd := range r.Nodes {
			ai := insts[i]
			if !ai.IsPrimary() {
				if nd != a.self || !a.durableOn(ai) {
					continue
				}
				if prev != nil && prev.backups[i] != nil && !prev.backups[i].isClosed() {
					as.backups[i] = prev.backups[i]
					continue
				}
				bi, err := a.newBackup(r.App, ai, instanceSeed(r.App, ai.Primary, r.Seed), !recovering)
				if err != nil {
					return fail(err)
				}
				as.backups[i] = bi
				createdB = append(createdB, bi)
				continue
			}
			if mv, ok := moves[key{r.ID, uint32(i)}]; ok && mv.To == a.self {
				if prev != nil && prev.incoming[i] != nil && prev.incoming[i].mv.ID == mv.ID {
					as.incoming[i] = prev.incoming[i]
				} else {
					m, err := a.startIn(mv, as)
					if err != nil {
						return fail(err)
					}
					as.incoming[i] = m
					createdIn = append(createdIn, m)
				}
			}
			if nd != a.self {
				continue
			}
			if prev != nil && prev.local[i] != nil && prev.local[i].state.Load() != stateStopped {
				as.local[i] = prev.local[i]
				continue
			}
			if prev != nil && prev.incoming[i] != nil && as.incoming[i] == nil {
				// The move to here committed: route to the restored copy.
				m := prev.incoming[i]
				as.local[i] = m.in
				adopted[m] = true
				continue
			}
			if bi := a.backupOf(prev, r, ai); bi != nil {
				in, err := a.promoteBackup(as, ai, bi)
				if err != nil {
					return fail(err)
				}
				as.local[i] = in
				promoted[bi] = true
				created = append(created, in)
				continue
			}
			in, err := a.newInstance(as, ai, r.Seed, !recovering, true)
			if err != nil {
				return fail(err)
			}
			as.local[i] = in
			created = append(created, in)
		}
	}
	// Kept instances keep their app state and instance (the data path
	// reads them without locks; a kept instance's application has the
	// same instances and ids); where their backups run may have changed.
	for _, as := range st.apps {
		if as == nil {
			continue
		}
		for _, in := range as.local {
			if in != nil {
				in.replRTT.Store(a.replRTT(as, in))
			}
		}
	}
	a.state.Store(st)
	a.applied = true
	if recovering {
		a.removeStale(st)
	}
	if old.table != nil {
		// A node whose address changed is a new agent (restarted, moved):
		// the channels to its old address lead nowhere.
		for n, ad := range t.Addrs {
			if old.table.addr(topology.NodeID(n)) != ad {
				a.forgetPeer(topology.NodeID(n))
			}
		}
	}

	// Migrations this table starts, commits or calls off.
	a.migMu.Lock()
	var starts []*migration
	for _, mv := range t.Moves {
		if a.migs[mv.ID] != nil {
			continue
		}
		as := st.apps[mv.App]
		switch {
		case as.incoming[mv.Instance] != nil:
			a.migs[mv.ID] = as.incoming[mv.Instance]
		case as.route.Nodes[mv.Instance] == a.self && as.local[mv.Instance] != nil:
			m := a.startOut(mv, as.local[mv.Instance])
			a.migs[mv.ID] = m
			starts = append(starts, m)
		}
	}
	listed := map[uint64]bool{}
	for _, mv := range t.Moves {
		listed[mv.ID] = true
	}
	var ended []*migration
	for id, m := range a.migs {
		if !listed[id] {
			ended = append(ended, m)
			delete(a.migs, id)
		}
	}
	a.migMu.Unlock()
	outgoing := map[*instance]bool{}
	for _, m := range ended {
		switch {
		case m.role == RoleDestination && adopted[m]:
			m.commitIn()
		case m.role == RoleDestination:
			m.abortIn()
		case m.routedAway(st):
			outgoing[m.in] = true
			m.commitOut()
		default:
			m.abortOut()
		}
	}
	for _, m := range starts {
		outgoing[m.in] = true
		m.report()
	}
	a.migMu.Lock()
	for _, m := range a.migs {
		if m.role == RoleSource {
			outgoing[m.in] = true
		}
	}
	a.migMu.Unlock()

	// Stop what is no longer here.
	for id, as := range old.apps {
		if as == nil {
			continue
		}
		var now *appState
		if id < len(st.apps) {
			now = st.apps[id]
		}
		for i, in := range as.local {
			if in == nil || outgoing[in] {
				continue
			}
			if now == nil || i >= len(now.local) || now.local[i] != in {
				in.stopAndFree(true)
			}
		}
		for i, bi := range as.backups {
			if bi == nil || promoted[bi] {
				continue
			}
			if now == nil || i >= len(now.backups) || now.backups[i] != bi {
				bi.close(true)
			}
		}
	}
	// Backups of new primaries are seeded in the background: their nodes
	// may get this table after us.
	for _, in := range created {
		a.seedBackup(in)
	}
	return nil
}

// routedAway reports whether table state st routes a source migration's
// instance to another node.
func (m *migration) routedAway(st *agentState) bool {
	if int(m.mv.App) >= len(st.apps) || st.apps[m.mv.App] == nil {
		return false
	}
	return st.apps[m.mv.App].nodeOf(m.mv.Instance) != m.a.self
}

// sameApp reports whether two applications are the same deployment: the
// same object, or (a controller that decodes every table afresh) the same
// name, instances and services.
func sameApp(x, y *app.App) bool {
	if x == y {
		return true
	}
	if x.Name != y.Name || len(x.Instances()) != len(y.Instances()) {
		return false
	}
	xi, yi := x.Instances(), y.Instances()
	for i := range xi {
		if xi[i].ID != yi[i].ID || xi[i].Node.Service != yi[i].Node.Service {
			return false
		}
	}
	return true
}

func (a *Agent) durableOn(ai *app.Instance) bool {
	return a.cfg.DataDir != "" && durableEligible(ai.Node)
}

// backupOf returns a backup replica of primary ai held here that t no
// longer places here: the primary came to its backup's node (failover),
// and the backup's state becomes the primary's.
func (a *Agent) backupOf(prev *appState, r *AppRoute, ai *app.Instance) *backupInst {
	if prev == nil {
		return nil
	}
	for _, b := range ai.Backups {
		if bi := prev.backups[b.Index]; bi != nil && r.Nodes[b.Index] != a.self && !bi.isClosed() {
			return bi
		}
	}
	return nil
}

func (bi *backupInst) isClosed() bool {
	bi.mu.Lock()
	defer bi.mu.Unlock()
	return bi.closed
}

// promoteBackup makes backup bi the primary instance ai.
func (a *Agent) promoteBackup(as *appState, ai *app.Instance, bi *backupInst) (*instance, error) {
	in := a.bareInstance(as, ai)
	in.path = a.statePath(as.route.App, ai)
	st, h, err := bi.promote(in.path)
	if err != nil {
		return nil, fmt.Errorf("instance %s: promoting backup %s: %w", ai.ID, bi.inst.ID, err)
	}
	bi.hooks.in.Store(in)
	in.store, in.h = st, h
	return in, nil
}

// replRTT is the emulated round trip from in's node to its backup's, the
// wait a writing request's barrier adds (0 without a backup or outside
// emulation): the batch goes to the backup's node and the acknowledgement
// comes back. The local write overlaps it (the store writes and
// replicates in parallel), and the backup's own write is not modelled.
func (a *Agent) replRTT(as *appState, in *instance) int64 {
	if a.emu == nil || in.store == nil || in.backup == nil {
		return 0
	}
	b := as.nodeOf(uint32(in.backup.Index))
	if b < 0 || b == a.self {
		return 0
	}
	return int64(a.emu.Latency(a.self, b, replBatchBytes) + a.emu.Latency(b, a.self, transport.HeaderSize+8))
}

// replBatchBytes is the size the emulated replication round trip assumes
// for a batch: one record of a few dozen bytes with the batch's framing.
const replBatchBytes = 128

func (a *Agent) bareInstance(as *appState, ai *app.Instance) *instance {
	in := &instance{a: a, app: as, inst: ai, demand: a.demandOf(ai.Node.Service), rr: make([]atomic.Uint32, len(ai.Node.Out))}
	if bs := ai.Backups; len(bs) > 0 {
		in.backup = bs[0]
	}
	return in
}

// newInstance creates instance ai. With a durable store, fresh starts
// from an empty file (otherwise the file's state is recovered), and start
// false leaves the store unstarted, for a migration's destination to
// Restore into.
func (a *Agent) newInstance(as *appState, ai *app.Instance, seed int64, fresh, start bool) (*instance, error) {
	d := ai.Node.Descriptor
	if d == nil || d.New == nil {
		return nil, fmt.Errorf("instance %s: service %q cannot be instantiated", ai.ID, ai.Node.Service)
	}
	in := a.bareInstance(as, ai)
	env := service.Env{
		Instance: as.route.App.Name + "/" + ai.ID,
		Config:   ai.Node.Config,
		Seed:     instanceSeed(as.route.App, ai, seed),
	}
	if a.durableOn(ai) {
		in.path = a.statePath(as.route.App, ai)
		hooks := &storeHooks{}
		hooks.in.Store(in)
		st, err := a.openStore(as.route.App, ai, in.path, fresh, hooks)
		if err != nil {
			return nil, fmt.Errorf("instance %s (%s): %w", ai.ID, ai.Node.Service, err)
		}
		env.Store = st
		h, err := d.New(env)
		if err == nil && start {
			err = st.Start()
			if err != nil {
				closeHandler(h)
			}
		}
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("instance %s (%s): %w", ai.ID, ai.Node.Service, err)
		}
		in.store, in.h = st, h
		return in, nil
	}
	mem := collections.NewMemStore()
	env.Store = mem
	h, err := d.New(env)
	if err != nil {
		return nil, fmt.Errorf("instance %s (%s): %w", ai.ID, ai.Node.Service, err)
	}
	in.mem, in.h = mem, h
	return in, nil
}

// instanceSeed derives an instance's Env.Seed from the application's. The
// instances of source node i get seed ^ mix.SplitMix64Next(i+1), the seed
// loadgen.AppWorkload gives the request generator of that source, so that
// a service whose requests carry credentials derived from its seed (the
// API gateway's signed tokens) accepts the generated requests. Other
// instances get a seed of their own.
func instanceSeed(a *app.App, ai *app.Instance, seed int64) int64 {
	for i, src := range a.Sources() {
		if src == ai.Node {
			return seed ^ int64(mix.SplitMix64Next(uint64(i)+1))
		}
	}
	return seed ^ int64(mix.SplitMix64Next(1<<32+uint64(ai.Index)))
}

// Drain makes instance id of app stop taking new client requests; those
// admitted already run to completion.
func (a *Agent) Drain(appID uint32, id string) error {
	in, err := a.lookupInstance(appID, id)
	if err != nil {
		return err
	}
	in.state.CompareAndSwap(stateRunning, stateDraining)
	return nil
}

// StopInstance stops instance id of app and releases its resources; later
// messages for it fail their requests.
func (a *Agent) StopInstance(appID uint32, id string) error {
	in, err := a.lookupInstance(appID, id)
	if err != nil {
		return err
	}
	in.stop()
	return nil
}

func (a *Agent) lookupInstance(appID uint32, id string) (*instance, error) {
	st := a.state.Load()
	if int(appID) >= len(st.apps) || st.apps[appID] == nil {
		return nil, fmt.Errorf("runtime: %s: no app %d", a.Name(), appID)
	}
	as := st.apps[appID]
	ai, ok := as.route.App.Instance(id)
	if !ok || as.local[ai.Index] == nil {
		return nil, fmt.Errorf("runtime: %s: app %s has no instance %q here", a.Name(), as.route.App.Name, id)
	}
	return as.local[ai.Index], nil
}

// Instances lists the instance ids running here for app appID.
func (a *Agent) Instances(appID uint32) []string {
	st := a.state.Load()
	if int(appID) >= len(st.apps) || st.apps[appID] == nil {
		return nil
	}
	var out []string
	for _, in := range st.apps[appID].local {
		if in != nil && in.state.Load() != stateStopped {
			out = append(out, in.inst.ID)
		}
	}
	return out
}

// Epoch returns the epoch of the table in force (0 before the first).
func (a *Agent) Epoch() uint64 {
	if t := a.state.Load().table; t != nil {
		return t.Epoch
	}
	return 0
}

// removeStale deletes, on the first table after a restart, the state
// files in the directories of the table's applications that the table
// does not place here: copies left by migrations to here that never
// committed, or by instances that moved away while the agent was down.
// Opening them later as an instance's state would bring stale state back.
func (a *Agent) removeStale(st *agentState) {
	if a.cfg.DataDir == "" {
		return
	}
	for _, as := range st.apps {
		if as == nil {
			continue
		}
		keep := map[string]bool{}
		for _, in := range as.local {
			if in != nil && in.path != "" {
				keep[in.path] = true
			}
		}
		for _, m := range as.incoming {
			if m != nil && m.in.path != "" {
				keep[m.in.path] = true
			}
		}
		for _, bi := range as.backups {
			if bi != nil {
				keep[bi.path] = true
			}
		}
		files, _ := filepath.Glob(filepath.Join(a.cfg.DataDir, safeName(as.route.App.Name), "*.db"))
		for _, f := range files {
			if !keep[f] {
				a.log.Info("removing a state file the table does not place here", "path", f)
				if err := durable.Remove(f); err != nil {
					a.log.Warn("removing a stale state file", "path", f, "err", err)
				}
			}
		}
	}
}
