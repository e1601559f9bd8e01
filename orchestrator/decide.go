package orchestrator

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// Decide returns the actions due at now, in the order of [ActionKind]'s
// constants: servers that fell silent and what replaces their instances,
// nodes that came back, instances that waited for capacity, migrations
// the detectors ask for, and new routes. The orchestrator's own view
// already reflects the actions (failover is taken as done; a migration is
// in flight until the controller reports on it).
//
// Its cost is proportional to what changed: the nodes whose detectors
// fired, the servers that failed, the migrations reported, not the size of
// the cluster. The returned slice is reused by the next call.
func (o *Orchestrator) Decide(now time.Duration) []Action {
	t := max(int64(now), o.now)
	o.now = t
	o.actions = o.actions[:0]

	// Walk the expired prefix of the failure-detection list: nodes linked
	// longer than the timeout ago. Those also silent for that long fail;
	// the others were heard since (see Orchestrator.lru) and stay.
	timeout := int64(o.cfg.FailureTimeout)
	for n := o.lruHead; n >= 0 && t-o.nodes[n].linked > timeout; {
		if t-o.nodes[n].lastHeard > timeout {
			o.failServer(t, topology.NodeID(n))
			n = o.lruHead // failServer took the server's nodes out
			continue
		}
		n = o.lru[n].next
	}

	for _, n := range o.rejoined {
		if o.nodes[n].status != statusAlive {
			continue
		}
		_ = o.load.Set(n, o.cold[n].saved)
		o.cold[n].saved = placement.Usage{}
		o.emit(NodeRejoined, NoInstance, n, placement.Unassigned, placement.Unassigned, Reason{Cause: CauseRejoin, Node: n, Closest: placement.Unassigned})
		o.freed = true
	}
	o.rejoined = o.rejoined[:0]

	k := 0
	for _, n := range o.excluded {
		if o.cold[n].excludeUntil > t {
			o.excluded[k] = n
			k++
		}
	}
	o.excluded = o.excluded[:k]

	if len(o.recheck) > 0 {
		o.separateReplicas(t)
	}

	if o.freed {
		o.freed = false
		o.retryPending()
		if len(o.overcommitted) > 0 {
			retry := o.overcommitted
			o.overcommitted = nil
			o.relieveOvercommit(t, retry, true)
		}
	}

	keep := o.flagged[:0]
	for _, n := range o.flagged {
		ns := &o.nodes[n]
		c := &o.cold[n]
		if ns.status != statusAlive || ns.flags&(flagStarved|flagOverloaded) == 0 {
			ns.flags &^= flagListed
			c.retry, c.retryWhy = 0, ""
			continue
		}
		keep = append(keep, n)
		if t < c.coolUntil || c.migOut > 0 {
			continue
		}
		o.relieve(t, n)
	}
	o.flagged = keep

	if o.routesChanged {
		o.routesChanged = false
		o.epoch++
		o.emit(PublishRoutes, NoInstance, placement.Unassigned, placement.Unassigned, placement.Unassigned, Reason{Cause: CauseChanged, Closest: placement.Unassigned}).Epoch = o.epoch
	}
	return o.actions
}

// emit appends an action of kind about instance i (NoInstance if none)
// and node n (Unassigned if none), moving from -> to (Unassigned if not a
// move), and returns it for the fields of its kind.
func (o *Orchestrator) emit(kind ActionKind, i InstanceID, n, from, to topology.NodeID, r Reason) *Action {
	o.actions = append(o.actions, Action{Kind: kind, Instance: i, Node: n, From: from, To: to, Reason: r})
	return &o.actions[len(o.actions)-1]
}

// failServer declares the server of node trigger failed and replaces what
// it held.
func (o *Orchestrator) failServer(t int64, trigger topology.NodeID) {
	srv := o.topo.ServerOf(trigger)
	o.emit(ServerFailed, NoInstance, trigger, placement.Unassigned, placement.Unassigned, Reason{
		Cause: CauseSilence, Node: trigger, Overloaded: NoInstance, Skipped: NoInstance, Closest: placement.Unassigned,
		LastHeard: time.Duration(o.nodes[trigger].lastHeard), Timeout: o.cfg.FailureTimeout,
	})
	cause := Reason{Cause: CauseServerFailed, Node: trigger, Overloaded: NoInstance, Skipped: NoInstance, Closest: placement.Unassigned}

	// Migrations touching the server stop; those that only lost their
	// destination are redone elsewhere once failover is done.
	var redo []migration
	for _, id := range slices.Clone(o.active) {
		m := o.migs[id]
		fromDead, toDead := o.topo.ServerOf(m.from) == srv, o.topo.ServerOf(m.to) == srv
		if !fromDead && !toDead {
			continue
		}
		r := cause
		r.Prior = id
		o.emit(AbortMigration, m.inst, placement.Unassigned, m.from, m.to, r).Migration = id
		o.endMigration(m)
		if !fromDead {
			redo = append(redo, *m)
			o.recheck = append(o.recheck, m.inst)
		}
	}

	for m := range o.topo.ServerNodes(srv) {
		ns := &o.nodes[m]
		ns.status = statusFailed
		ns.flags &^= flagHeard | flagStarved | flagOverloaded
		ns.queueRun = 0
		o.lruRemove(int32(m))
	}

	// The server's instances leave the load, in ID order so that the run
	// is the same every time.
	var lost []InstanceID
	for m := range o.topo.ServerNodes(srv) {
		for i := o.instHead[m]; i != NoInstance; i = o.links[i].next {
			lost = append(lost, i)
		}
	}
	slices.Sort(lost)
	lostAt := make(map[InstanceID]topology.NodeID, len(lost))
	for _, i := range lost {
		n := o.inst[i].node
		lostAt[i] = n
		o.release(i, n)
		o.unlink(i)
	}
	for m := range o.topo.ServerNodes(srv) {
		o.cold[m].saved = o.load.Usage(m)
		o.block(m)
	}

	// Primaries first (promote a backup, or place the primary afresh),
	// then relieve what the promotions overcommitted, then re-create the
	// lost backups, each next to where its primary will be.
	var groups []int32
	seen := map[int32]bool{}
	for _, i := range lost {
		g := o.meta[i].group
		if !seen[g] && !o.groups[g].removed {
			seen[g] = true
			groups = append(groups, g)
		}
	}
	var promoted []InstanceID
	for _, g := range groups {
		if b := o.recoverPrimary(t, g, lostAt, cause); b != NoInstance {
			promoted = append(promoted, b)
		}
	}
	o.relieveOvercommit(t, promoted, false)
	for _, g := range groups {
		o.recoverBackups(t, g, cause)
	}
	for k := range redo {
		o.redoMigration(t, &redo[k])
	}
}

// relieveOvercommit moves promoted primaries off nodes their promotion
// overcommitted. A backup carries memory but no CPU, so placement may put
// one where its primary's load would not fit; promoting it anyway keeps
// the shard available with its state, and a migration then takes it to a
// node with room.
//
// Instances that find no room wait in o.overcommitted and are tried again
// whenever capacity frees; alerted says they were reported already.
func (o *Orchestrator) relieveOvercommit(t int64, promoted []InstanceID, alerted bool) {
	relief := map[topology.NodeID]float64{}
	lim := o.cfg.Limits.CPU
	if lim == 0 {
		lim = 1
	}
	for _, b := range promoted {
		n := o.inst[b].node
		if n < 0 || o.inst[b].flags&instMigrating != 0 {
			continue
		}
		cores, _, _ := o.cluster.Capacity(n)
		used := o.load.Usage(n).Cores - relief[n]
		if used <= cores*lim+1e-9 {
			continue
		}
		r := Reason{Cause: CauseOvercommit, Node: n, Overloaded: NoInstance, Skipped: NoInstance, Closest: placement.Unassigned,
			Used: used, Capacity: cores * lim, CPU: o.modelCPU(b, n), Movable: 1}
		dest := o.place(b, false, o.excluded)
		if dest.node < 0 {
			if !alerted {
				r.Skipped, r.SkippedWhy = b, SkipNoDestination
				r.Rejection, r.Closest = dest.rejection, dest.closest
				o.emit(Alert, NoInstance, n, placement.Unassigned, placement.Unassigned, r)
			}
			o.overcommitted = append(o.overcommitted, b)
			continue
		}
		relief[n] += r.CPU
		o.startMigration(t, b, n, dest.node, r)
	}
}

// recoverPrimary restores the primary of a shard that lost it: it
// promotes the first surviving backup, or places the primary afresh if
// none survived. It returns the backup it promoted, or NoInstance.
func (o *Orchestrator) recoverPrimary(t int64, gi int32, lostAt map[InstanceID]topology.NodeID, cause Reason) InstanceID {
	g := &o.groups[gi]
	old := g.primary
	if o.inst[old].node >= 0 || o.inst[old].flags&instPending != 0 {
		return NoInstance
	}
	b := NoInstance
	for _, m := range g.members {
		if m != old && o.inst[m].flags&(instRemoved|instBackup) == instBackup && o.inst[m].node >= 0 {
			b = m
			break
		}
	}
	if b == NoInstance {
		o.placeLost(t, old, Replace, lostAt[old], cause)
		return NoInstance
	}
	bn := o.inst[b].node
	o.release(b, bn)
	o.inst[b].flags &^= instBackup
	o.inst[old].flags |= instBackup
	g.primary = b
	o.apply(b, bn)
	o.emit(Promote, b, placement.Unassigned, lostAt[old], bn, cause)
	o.routesChanged = true
	return b
}

// recoverBackups re-creates the lost backups of a shard from its primary,
// or leaves them pending while the primary has no node.
func (o *Orchestrator) recoverBackups(t int64, gi int32, cause Reason) {
	g := &o.groups[gi]
	for _, m := range g.members {
		is := &o.inst[m]
		if m == g.primary || is.flags&(instRemoved|instPending) != 0 || is.node >= 0 {
			continue
		}
		if o.inst[g.primary].node < 0 {
			is.flags |= instPending
			o.pending = append(o.pending, m)
			o.emit(Unplaced, m, placement.Unassigned, placement.Unassigned, placement.Unassigned, cause)
			continue
		}
		o.placeLost(t, m, CreateBackup, o.inst[g.primary].node, cause)
	}
}

// placeLost places instance i, which failover must replace, and emits
// kind (Replace or CreateBackup) or Unplaced.
func (o *Orchestrator) placeLost(t int64, i InstanceID, kind ActionKind, from topology.NodeID, cause Reason) {
	r := o.place(i, false, nil)
	if r.node < 0 {
		o.inst[i].flags |= instPending
		o.pending = append(o.pending, i)
		cause.Rejection, cause.Closest = r.rejection, r.closest
		o.emit(Unplaced, i, placement.Unassigned, placement.Unassigned, placement.Unassigned, cause)
		return
	}
	o.link(i, r.node)
	o.apply(i, r.node)
	o.meta[i].coolUntil = t + int64(o.cfg.InstanceCoolDown)
	o.emit(kind, i, placement.Unassigned, from, r.node, cause)
	o.routesChanged = true
}

// retryPending places what waits for capacity: primaries first, so that
// their backups find them placed.
func (o *Orchestrator) retryPending() {
	if len(o.pending) == 0 {
		return
	}
	list := slices.Clone(o.pending)
	slices.Sort(list)
	o.pending = o.pending[:0]
	for pass := range 2 {
		for _, i := range list {
			is := &o.inst[i]
			backup := is.flags&instBackup != 0
			if (pass == 0) == backup || is.flags&instRemoved != 0 || is.flags&instPending == 0 {
				continue
			}
			g := &o.groups[o.meta[i].group]
			from := placement.Unassigned
			if backup {
				from = o.inst[g.primary].node
				if from < 0 {
					o.pending = append(o.pending, i)
					continue
				}
			}
			r := o.place(i, false, nil)
			if r.node < 0 {
				o.pending = append(o.pending, i)
				continue
			}
			is.flags &^= instPending
			o.link(i, r.node)
			o.apply(i, r.node)
			o.meta[i].coolUntil = o.now + int64(o.cfg.InstanceCoolDown)
			kind := Place
			if backup {
				kind = CreateBackup
			}
			o.emit(kind, i, placement.Unassigned, from, r.node, Reason{Cause: CausePending, Node: placement.Unassigned, Overloaded: NoInstance, Skipped: NoInstance, Closest: placement.Unassigned})
			o.routesChanged = true
		}
	}
}

// candidate is an instance that may be moved off a node.
type candidate struct {
	i   InstanceID
	cpu float64
}

// maxTries bounds the instances of one node the orchestrator looks for a
// destination for in one decision.
const maxTries = 4

// relieve acts on a node whose detector fired: it migrates the movable
// instance with the highest CPU use to a host, its own server's host if
// that fits, else where the placer finds room.
func (o *Orchestrator) relieve(t int64, n topology.NodeID) {
	ns := &o.nodes[n]
	c := &o.cold[n]
	r := Reason{Node: n, Overloaded: NoInstance, Skipped: NoInstance, Closest: placement.Unassigned}
	if ns.flags&flagStarved != 0 {
		r.Cause = CauseStarvation
		r.Queue, r.QueueThreshold, r.Heartbeats = int(ns.queue), o.cfg.QueueThreshold, int(ns.queueRun)
		r.PortGbps, r.PortLimit = float64(c.portGbps), o.cfg.PortFraction
		if c.portGbps > 0 {
			r.PortShare = float64(ns.busier) * 8 / (r.PortGbps * 1e9 * o.cfg.HeartbeatPeriod.Seconds())
		}
	} else {
		r.Cause = CauseOverload
		r.Overloaded, r.ExecNs, r.EMANs = c.overInst, float64(c.overExec), float64(c.overEMA)
		r.Threshold, r.Heartbeats = o.cfg.OverloadThreshold, int(ns.overRun)
	}
	if c.retry != 0 {
		r.Origin, r.Cause = r.Cause, CauseRetry
		r.Prior, r.PriorWhy = c.retry, c.retryWhy
		c.retry, c.retryWhy = 0, ""
	}

	var cands []candidate
	skippedCPU := -1.0
	for i := o.instHead[n]; i != NoInstance; i = o.links[i].next {
		is := &o.inst[i]
		if is.flags&(instBackup|instRemoved|instMigrating) != 0 {
			continue // a backup uses no CPU worth moving
		}
		cpu := float64(is.cpu)
		if is.sampleSeq != ns.seq || is.samples == 0 && cpu == 0 {
			cpu = o.modelCPU(i, n)
		}
		skip := SkipNone
		switch {
		case is.flags&instNonMigratable != 0:
			skip = SkipNotMigratable
		case t < o.meta[i].coolUntil:
			skip = SkipCoolingDown
		}
		if skip != SkipNone {
			if cpu > skippedCPU || cpu == skippedCPU && i < r.Skipped {
				r.Skipped, r.SkippedWhy, skippedCPU = i, skip, cpu
			}
			continue
		}
		cands = append(cands, candidate{i, cpu})
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(b.cpu, a.cpu); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	r.Movable = len(cands)
	var firstFail *placeResult
	failed := NoInstance
	for k, cd := range cands {
		if k == maxTries {
			break
		}
		dest, own := o.destination(cd.i, n)
		if dest.node < 0 {
			if firstFail == nil {
				firstFail, failed = &dest, cd.i
			}
			continue
		}
		r.CPU = cd.cpu
		r.OwnHost = own
		if skippedCPU <= cd.cpu {
			r.Skipped, r.SkippedWhy = NoInstance, SkipNone
		}
		o.startMigration(t, cd.i, n, dest.node, r)
		return
	}
	if firstFail != nil {
		r.Skipped, r.SkippedWhy = failed, SkipNoDestination
		r.Rejection, r.Closest = firstFail.rejection, firstFail.closest
	}
	c.coolUntil = t + int64(o.cfg.NodeCoolDown)
	o.emit(Alert, NoInstance, n, placement.Unassigned, placement.Unassigned, r)
}

// destination finds a host for instance i leaving node from: its own
// server's host if that fits, else the placer's choice among hosts,
// avoiding destinations that failed lately. own is why the own host was
// refused (zero if it was taken or not tried).
func (o *Orchestrator) destination(i InstanceID, from topology.NodeID) (dest placeResult, own placement.Rejection) {
	host := o.topo.Server(o.topo.ServerOf(from)).Host
	if host != from && o.usable(host, o.excluded) {
		own = o.fits(i, host)
		if own.OK() {
			return placeResult{node: host, closest: placement.Unassigned}, own
		}
	}
	return o.place(i, true, o.excluded), own
}

func (o *Orchestrator) startMigration(t int64, i InstanceID, from, to topology.NodeID, r Reason) {
	o.nextMig++
	id := o.nextMig
	m := &migration{id: id, inst: i, from: from, to: to, started: t, reason: r}
	m.reserved = o.reserve(i, to)
	o.migs[id] = m
	o.active = append(o.active, id)
	o.inst[i].flags |= instMigrating
	o.meta[i].migration = id
	o.cold[from].migOut++
	o.emit(Migrate, i, placement.Unassigned, from, to, r).Migration = id
}

// endMigration forgets migration m and gives back its reservation.
func (o *Orchestrator) endMigration(m *migration) {
	o.unreserve(m.to, m.reserved)
	o.inst[m.inst].flags &^= instMigrating
	o.meta[m.inst].migration = 0
	o.cold[m.from].migOut--
	delete(o.migs, m.id)
	if k := slices.Index(o.active, m.id); k >= 0 {
		o.active = slices.Delete(o.active, k, k+1)
	}
}

// redoMigration orders migration m again, to another destination, after
// its destination failed.
func (o *Orchestrator) redoMigration(t int64, m *migration) {
	i := m.inst
	if o.inst[i].node != m.from || o.inst[i].flags&(instRemoved|instMigrating) != 0 {
		return
	}
	r := m.reason
	if r.Cause == CauseStarvation || r.Cause == CauseOverload {
		r.Origin = r.Cause
	}
	if r.Cause == CauseOvercommit {
		r.Origin = r.Cause
	}
	r.Cause, r.Prior, r.PriorWhy = CauseRedo, m.id, ""
	var dest placeResult
	var own placement.Rejection
	if r.Origin == CauseOvercommit {
		dest = o.place(i, false, o.excluded)
	} else {
		dest, own = o.destination(i, m.from)
	}
	if dest.node < 0 {
		r.Skipped, r.SkippedWhy, r.Movable = i, SkipNoDestination, 1
		r.Rejection, r.Closest = dest.rejection, dest.closest
		o.cold[m.from].coolUntil = t + int64(o.cfg.NodeCoolDown)
		o.emit(Alert, NoInstance, m.from, placement.Unassigned, placement.Unassigned, r)
		return
	}
	r.OwnHost = own
	o.startMigration(t, i, m.from, dest.node, r)
}

// separateReplicas re-places backups left on their primary's server. A
// backup re-created while its primary migrates goes next to where the
// primary will be, which may be the server the primary leaves; if the
// migration then ends without moving the primary, the two share a fault
// domain and the backup moves.
func (o *Orchestrator) separateReplicas(t int64) {
	list := o.recheck
	o.recheck = nil
	slices.Sort(list)
	list = slices.Compact(list)
	for _, pr := range list {
		pis := &o.inst[pr]
		if pis.node < 0 || pis.flags&(instBackup|instRemoved|instMigrating) != 0 {
			continue
		}
		srv := o.topo.ServerOf(pis.node)
		for _, m := range o.groups[o.meta[pr].group].members {
			is := &o.inst[m]
			if m == pr || is.node < 0 || is.flags&instRemoved != 0 || o.topo.ServerOf(is.node) != srv {
				continue
			}
			r := Reason{Cause: CauseFaultDomain, Node: is.node, Overloaded: NoInstance, Skipped: NoInstance, Closest: placement.Unassigned}
			o.release(m, is.node)
			o.unlink(m)
			o.placeLost(t, m, CreateBackup, pis.node, r)
		}
	}
}

// ErrUnknownMigration is wrapped by the error of a report about a
// migration that is not in flight (finished, aborted, or never ordered).
var ErrUnknownMigration = errors.New("orchestrator: no such migration in flight")

// MigrationDone reports that migration id switched its instance to the
// destination. The orchestrator moves the instance in its view (and in the
// load), starts the cool-downs of the instance and of the node it left,
// and returns the routing-table epoch at which the switched routes are to
// be published: every epoch the orchestrator hands out, for migrations or
// failover, comes from one counter, so epochs only grow.
func (o *Orchestrator) MigrationDone(now time.Duration, id MigrationID) (uint64, error) {
	m, ok := o.migs[id]
	if !ok {
		return 0, fmt.Errorf("%w: m%d", ErrUnknownMigration, id)
	}
	t := max(int64(now), o.now)
	o.now = t
	i, from, to := m.inst, m.from, m.to
	o.endMigration(m)
	o.release(i, from)
	o.unlink(i)
	o.link(i, to)
	o.apply(i, to)
	is := &o.inst[i]
	is.ema, is.samples, is.overRun, is.cpu = 0, 0, 0, 0
	o.meta[i].coolUntil = t + int64(o.cfg.InstanceCoolDown)
	o.cold[from].coolUntil = t + int64(o.cfg.NodeCoolDown)
	ns := &o.nodes[from]
	ns.queueRun = 0
	ns.flags &^= flagStarved | flagOverloaded
	for j := o.instHead[from]; j != NoInstance; j = o.links[j].next {
		o.inst[j].overRun = 0
	}
	o.freed = true
	o.epoch++
	return o.epoch, nil
}

// MigrationFailed reports that migration id did not complete; why is the
// controller's account, carried into the follow-up decision. The instance
// stays on its source. The source node may be relieved again at the next
// Decide (if its condition persists) and the failed destination is not
// chosen again for NodeCoolDown. If the source itself died, failure
// detection will find out and fail its server over.
func (o *Orchestrator) MigrationFailed(now time.Duration, id MigrationID, why string) error {
	m, ok := o.migs[id]
	if !ok {
		return fmt.Errorf("%w: m%d", ErrUnknownMigration, id)
	}
	t := max(int64(now), o.now)
	o.now = t
	from, to, i := m.from, m.to, m.inst
	overcommit := m.reason.Cause == CauseOvercommit || m.reason.Origin == CauseOvercommit
	o.endMigration(m)
	o.recheck = append(o.recheck, i)
	if overcommit {
		o.overcommitted = append(o.overcommitted, i)
	} else {
		c := &o.cold[from]
		c.coolUntil = 0
		c.retry, c.retryWhy = id, why
	}
	o.cold[to].excludeUntil = t + int64(o.cfg.NodeCoolDown)
	if !slices.Contains(o.excluded, to) {
		o.excluded = append(o.excluded, to)
	}
	o.freed = true
	return nil
}
