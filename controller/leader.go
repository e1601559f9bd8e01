package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/orchestrator"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// leader is what only the leader knows: liveness (when each node was last
// heard), the orchestrator built from the replicated state when it took
// office, and the map between the orchestrator's instance IDs and the
// applications' instance slots. None of it is replicated; a new leader
// builds its own.
type leader struct {
	s     *Server
	start time.Time // taking office; the orchestrator's time zero
	topo  *topology.Topology
	pc    *placement.Cluster
	o     *orchestrator.Orchestrator

	// slots[app][i] is the orchestrator instance in slot i of app; refs
	// is the inverse. A promotion swaps two slots' instances.
	slots map[string][]orchestrator.InstanceID
	refs  map[orchestrator.InstanceID]slotRef
	// migrations in flight: the orchestrator's ID and the state's.
	toState   map[orchestrator.MigrationID]uint64
	fromState map[uint64]orchestrator.MigrationID
	migStart  map[orchestrator.MigrationID]time.Time

	heard []time.Time // by node; zero if not since taking office

	ctx    context.Context
	cancel context.CancelFunc
}

type slotRef struct {
	app  string
	slot int
}

// since is the orchestrator's clock: time since taking office.
func (l *leader) since(t time.Time) time.Duration { return t.Sub(l.start) }

// takeOffice runs when raft makes this replica the leader: it waits until
// the state holds every committed command, initialises the cluster if no
// leader did, records its own API address, abandons migrations an earlier
// leader had in flight, and builds the orchestrator from the state.
func (s *Server) takeOffice() error {
	if err := s.raft.Barrier(s.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	var cluster string
	s.fsm.Read(func(st *State) { cluster = st.Cluster })
	if cluster == "" {
		if _, err := s.mustPropose(&Command{Op: OpInit, Init: &InitCmd{Cluster: s.cfg.Cluster}}); err != nil {
			return fmt.Errorf("init cluster: %w", err)
		}
	} else if !strings.EqualFold(cluster, s.cfg.Cluster) {
		s.log.Warn("configured cluster differs from the replicated one; following the replicated state", "configured", s.cfg.Cluster, "replicated", cluster)
	}
	if _, err := s.mustPropose(&Command{Op: OpReplica, Replica: &ReplicaCmd{ID: s.cfg.ID, RaftAddr: string(s.trans.LocalAddr()), APIAddr: s.api}}); err != nil {
		return fmt.Errorf("record replica: %w", err)
	}
	var stale []uint64
	s.fsm.Read(func(st *State) {
		for _, m := range st.SortedMigrations() {
			stale = append(stale, m.ID)
		}
	})
	if len(stale) > 0 {
		f := &FailoverCmd{Aborted: stale}
		for _, id := range stale {
			f.Events = append(f.Events, Event{Kind: "abort-migration", Message: fmt.Sprintf("migration m%d abandoned: the leader that ordered it is gone; the new leader decides afresh", id)})
		}
		if _, err := s.mustPropose(&Command{Op: OpFailover, Failover: f}); err != nil {
			return fmt.Errorf("abandon migrations: %w", err)
		}
	}

	s.lmu.Lock()
	defer s.lmu.Unlock()
	l, err := s.buildLeader()
	if err != nil {
		return err
	}
	if s.lead != nil {
		s.lead.cancel()
	}
	s.lead = l
	s.leading.Store(true)
	s.wg.Add(1)
	go s.failoverLoop(l)
	s.log.Info("took office as leader", "apps", len(l.slots))
	return nil
}

// mustPropose proposes and turns a refusal into an error.
func (s *Server) mustPropose(c *Command) (ApplyResult, error) {
	res, err := s.propose(c)
	if err == nil {
		err = res.Err
	}
	return res, err
}

// stepDown drops the leader's own state.
func (s *Server) stepDown() {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.lead != nil {
		s.lead.cancel()
		s.lead = nil
		s.leading.Store(false)
		s.log.Info("stepped down")
	}
}

// buildLeader builds the orchestrator from the replicated state: every
// application is registered with the placement its records hold. lmu held.
func (s *Server) buildLeader() (*leader, error) {
	var (
		l   *leader
		err error
	)
	s.fsm.Read(func(st *State) {
		t := st.Topology()
		if t == nil {
			err = errors.New("the cluster is not initialised")
			return
		}
		var pc *placement.Cluster
		pc, err = placement.NewCluster(t)
		if err != nil {
			return
		}
		placer, _ := placement.New(s.cfg.Algo)
		var o *orchestrator.Orchestrator
		oc := s.cfg.Orchestrator
		oc.Load, oc.Placer = placement.NewLoad(pc), placer
		oc.HeartbeatPeriod, oc.FailureTimeout, oc.InitialEpoch = s.cfg.HeartbeatPeriod, s.cfg.FailureTimeout, st.Epoch
		o, err = orchestrator.New(oc, 0)
		if err != nil {
			return
		}
		l = &leader{s: s, start: s.now(), topo: t, pc: pc, o: o,
			slots: map[string][]orchestrator.InstanceID{}, refs: map[orchestrator.InstanceID]slotRef{},
			toState: map[orchestrator.MigrationID]uint64{}, fromState: map[uint64]orchestrator.MigrationID{},
			migStart: map[orchestrator.MigrationID]time.Time{},
			heard:    make([]time.Time, t.NumNodes()),
		}
		for _, r := range st.SortedApps() {
			if err = l.register(st, r); err != nil {
				err = fmt.Errorf("application %s: %w", r.Name, err)
				return
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("controller: build leader state: %w", err)
	}
	l.ctx, l.cancel = context.WithCancel(s.ctx)
	return l, nil
}

// register hands a deployed application, as its records place it, to the
// orchestrator.
func (l *leader) register(st *State, r *AppRecord) error {
	a := st.App(r.Name)
	p, err := placement.FromApp(a, l.o.Load(), r.RPS)
	if err != nil {
		return err
	}
	res := &placement.Result{Assignment: make(placement.Assignment, len(r.Instances))}
	for i, in := range r.Instances {
		res.Assignment[i] = placement.Unassigned
		if in.Node != "" {
			n, err := l.topo.Lookup(in.Node)
			if err != nil {
				return err
			}
			res.Assignment[i] = n
		}
	}
	ids, err := l.o.Deploy(p, res)
	if err != nil {
		return err
	}
	l.slots[r.Name] = ids
	for i, id := range ids {
		l.refs[id] = slotRef{r.Name, i}
	}
	return nil
}

// eligible reports whether placement may use node n: a registered agent,
// not failed in the state or in the orchestrator's view.
func (l *leader) eligible(st *State, n topology.NodeID) bool {
	nr := st.Nodes[l.topo.Name(n)]
	return nr != nil && !nr.Failed && !l.o.NodeFailed(n)
}

// plan is a placement decided on a copy of the load.
type plan struct {
	a       *app.App
	p       *placement.Problem
	res     *placement.Result
	masked  []string
	elapsed time.Duration
}

// place runs placement for a on a copy of the orchestrator's load, with
// the nodes placement may not use masked as full. Nothing changes: a
// dry run is this and no more; a deploy proposes the result.
func (l *leader) place(st *State, a *app.App, rps float64, seed uint64, algo string) (*plan, error) {
	placer, err := placement.New(algo)
	if err != nil {
		return nil, fmt.Errorf("%w: algo: %w", ErrInvalid, err)
	}
	load := l.o.Load().Clone()
	pl := &plan{a: a, masked: []string{}}
	for n := range l.topo.Nodes() {
		if l.eligible(st, n) {
			continue
		}
		pl.masked = append(pl.masked, l.topo.Name(n))
		cores, mem, gbps := l.pc.Capacity(n)
		u := load.Usage(n)
		u.Cores, u.MemoryMB = max(u.Cores, cores+1), max(u.MemoryMB, mem+1)
		u.TxGbps, u.RxGbps = max(u.TxGbps, gbps), max(u.RxGbps, gbps)
		if err := load.Set(n, u); err != nil {
			return nil, err
		}
	}
	p, err := placement.FromApp(a, load, rps)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	p.Explain = true
	start := time.Now()
	res, err := placer.Place(p, rand.New(rand.NewPCG(seed, 0xe3)))
	pl.elapsed = time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for i, n := range res.Assignment {
		if n >= 0 && !l.eligible(st, n) {
			return nil, fmt.Errorf("controller: placement put %s on %s, which has no live agent", p.Instance(placement.InstanceID(i)).Name, l.topo.Name(n))
		}
	}
	pl.p, pl.res = p, res
	return pl, nil
}

// placements renders a plan's decisions.
func (pl *plan) placements() []Placement {
	t := pl.p.Topology()
	levels := placement.Levels(pl.p, pl.res.Assignment)
	note := ""
	if len(pl.masked) > 0 {
		note = fmt.Sprintf("    (not considered, no live agent: %s)\n", strings.Join(pl.masked, ", "))
	}
	out := make([]Placement, len(pl.res.Assignment))
	for i, n := range pl.res.Assignment {
		in := pl.p.Instance(placement.InstanceID(i))
		pc := Placement{Instance: in.Name}
		if n >= 0 {
			pc.Node = t.Name(n)
			if levels[i] != placement.NoLevel {
				pc.Level = levels[i].String()
			}
		}
		if i < len(pl.res.Explanations) {
			pc.Explanation = pl.res.Explanations[i].Format(pl.p) + note
		}
		out[i] = pc
	}
	return out
}

// response renders a plan for the API.
func (pl *plan) response(rps float64, seed uint64, algo string) *PlanResponse {
	t := pl.p.Topology()
	r := &PlanResponse{App: pl.a.Name, Algo: algo, RPS: rps, Seed: seed, DryRun: true, Masked: pl.masked,
		Unplaced: []string{}, ElapsedMs: float64(pl.elapsed.Nanoseconds()) / 1e6}
	for i, pc := range pl.placements() {
		in := pl.p.Instance(placement.InstanceID(i))
		role := RolePrimary
		if in.IsBackup() {
			role = RoleBackup
		}
		pi := PlacedInstance{App: pl.a.Name, Instance: pc.Instance, Service: in.Service, Role: role, Node: pc.Node, Level: pc.Level, Explanation: pc.Explanation}
		if n := pl.res.Assignment[i]; n >= 0 {
			pi.Kind = RoleHost
			if t.Node(n).Kind == topology.SmartNIC {
				pi.Kind = RoleSmartNIC
			}
		}
		r.Instances = append(r.Instances, pi)
	}
	for _, u := range pl.res.Unplaced {
		r.Unplaced = append(r.Unplaced, u.Describe(pl.p))
	}
	if m, err := placement.Evaluate(pl.p, pl.res.Assignment, rps); err == nil {
		r.Metrics = &PlanMetric{OnSmartNIC: m.OnSmartNIC, OnHost: m.OnHost, CommCost: m.CommCost, PowerW: m.PowerW, RequestsPerJoule: m.RequestsPerJoule, MaxCPUUtil: m.MaxCPUUtil}
	}
	return r
}

// deployed registers a committed deploy with the orchestrator, on the
// real load.
func (l *leader) deployed(name string, pl *plan, rps float64) error {
	p, err := placement.FromApp(pl.a, l.o.Load(), rps)
	if err != nil {
		return err
	}
	ids, err := l.o.Deploy(p, &placement.Result{Assignment: pl.res.Assignment})
	if err != nil {
		return err
	}
	l.slots[name] = ids
	for i, id := range ids {
		l.refs[id] = slotRef{name, i}
	}
	return nil
}

// undeployed takes a committed undeploy off the orchestrator.
func (l *leader) undeployed(name string) error {
	ids := l.slots[name]
	delete(l.slots, name)
	for _, id := range ids {
		delete(l.refs, id)
	}
	for fid, oid := range l.fromState {
		if _, ok := l.refs[l.migInstance(oid)]; !ok {
			delete(l.fromState, fid)
			delete(l.toState, oid)
			delete(l.migStart, oid)
		}
	}
	return l.o.Undeploy(ids)
}

func (l *leader) migInstance(id orchestrator.MigrationID) orchestrator.InstanceID {
	for _, m := range l.o.Migrations() {
		if m.ID == id {
			return m.Instance
		}
	}
	return orchestrator.NoInstance
}

// heartbeat feeds one agent report to the orchestrator. The node must be
// registered (the caller checked). It reports whether the report brought
// back a node whose server had been failed: the caller then runs a
// failover round at once, which gives the node's capacity back to
// placement, rather than leave it blocked until the next tick.
func (l *leader) heartbeat(now time.Time, n topology.NodeID, hb *HeartbeatRequest, st *State) (rejoined bool, err error) {
	wasFailed := l.o.NodeFailed(n)
	defer func() { rejoined = wasFailed && err == nil && !l.o.NodeFailed(n) }()
	l.heard[n] = now
	oh := orchestrator.Heartbeat{Node: n, Seq: hb.Seq, Queue: orchestrator.Saturate16(uint64(max(hb.Queue, 0))),
		RxBytes: orchestrator.Saturate32(hb.RxBytes), TxBytes: orchestrator.Saturate32(hb.TxBytes)}
	for _, smp := range hb.Samples {
		ids := l.slots[smp.App]
		a := st.App(smp.App)
		if ids == nil || a == nil {
			continue // an application undeployed meanwhile
		}
		in, ok := a.Instance(smp.Instance)
		if !ok {
			continue
		}
		mean := smp.MeanNs
		if smp.Count == 0 {
			mean = 0
		}
		oh.Samples = append(oh.Samples, orchestrator.ExecSample{Instance: ids[in.Index], Count: smp.Count, MeanNs: mean})
	}
	oh.Samples = sortSamples(oh.Samples, func(a, b orchestrator.ExecSample) int { return cmp.Compare(a.Instance, b.Instance) })
	return false, l.o.Observe(l.since(now), &oh)
}

// alive reports the leader's view of node n and how long ago it was heard
// (-1: not since taking office).
func (l *leader) alive(now time.Time, n topology.NodeID) (bool, int64) {
	ago := int64(-1)
	if !l.heard[n].IsZero() {
		ago = now.Sub(l.heard[n]).Milliseconds()
	}
	if l.o.NodeFailed(n) {
		return false, ago
	}
	if now.Sub(l.start) < l.s.cfg.LeaderGrace+l.s.cfg.FailureTimeout && ago < 0 {
		return true, ago // in the grace period nodes are presumed alive
	}
	return ago >= 0 && time.Duration(ago)*time.Millisecond <= l.s.cfg.FailureTimeout, ago
}

// failoverLoop runs the orchestrator's decisions every half heartbeat
// period while this replica leads.
func (s *Server) failoverLoop(l *leader) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.HeartbeatPeriod / 2)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
			if err := s.failoverRound(l); err != nil {
				s.log.Warn("failover round failed; stepping down from leader duties until raft says otherwise", "err", err)
				s.stepDown()
				return
			}
		}
	}
}

// failoverRound asks the orchestrator for its decisions and replicates
// them as one command.
func (s *Server) failoverRound(l *leader) error {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.failoverRoundLocked(l)
}

// failoverRoundLocked is failoverRound with lmu held.
func (s *Server) failoverRoundLocked(l *leader) error {
	if s.lead != l {
		return nil
	}
	now := s.now()
	if now.Sub(l.start) < s.cfg.LeaderGrace {
		return nil
	}
	var f *FailoverCmd
	var orderedMigs []orchestrator.MigrationID
	var err error
	s.fsm.Read(func(st *State) {
		// Migrations nobody reported on in time have failed.
		var timedOut []uint64
		for oid, at := range l.migStart {
			if now.Sub(at) > s.cfg.MigrationTimeout {
				why := fmt.Sprintf("no agent reported within %v", s.cfg.MigrationTimeout)
				if e := l.o.MigrationFailed(l.since(now), oid, why); e == nil {
					timedOut = append(timedOut, l.toState[oid])
				}
				delete(l.fromState, l.toState[oid])
				delete(l.toState, oid)
				delete(l.migStart, oid)
			}
		}
		acts := l.o.Decide(l.since(now))
		f, orderedMigs, err = l.translate(st, acts)
		if f != nil {
			for _, id := range timedOut {
				f.Aborted = append(f.Aborted, id)
				f.Events = append(f.Events, Event{Kind: "migration-failed", Message: fmt.Sprintf("migration m%d failed: no agent reported within %v", id, s.cfg.MigrationTimeout)})
			}
		}
	})
	if err != nil || f == nil {
		return err
	}
	res, err := s.propose(&Command{Op: OpFailover, Failover: f})
	if err != nil {
		return err
	}
	if res.Err != nil {
		// The state refused what the orchestrator decided: the two views
		// disagree. Rebuild from the state rather than drift.
		s.log.Error("failover decision refused by the state; rebuilding the orchestrator from the state", "err", res.Err)
		nl, err := s.buildLeader()
		if err != nil {
			return err
		}
		l.cancel()
		s.lead = nl
		s.wg.Add(1)
		go s.failoverLoop(nl)
		return nil
	}
	for k, oid := range orderedMigs {
		if k < len(res.Migrations) {
			l.toState[oid] = res.Migrations[k]
			l.fromState[res.Migrations[k]] = oid
			l.migStart[oid] = now
		}
	}
	for _, e := range f.Events {
		s.met.failoverActions.WithLabelValues(e.Kind).Inc()
		s.log.Info("orchestrator", "kind", e.Kind, "msg", e.Message)
	}
	return nil
}

// translate turns the orchestrator's actions into one failover command in
// terms of the state (node and instance names, slots), updating the slot
// map for promotions. It returns nil when there is nothing to record.
func (l *leader) translate(st *State, acts []orchestrator.Action) (*FailoverCmd, []orchestrator.MigrationID, error) {
	f := &FailoverCmd{}
	var migs []orchestrator.MigrationID
	name := func(n topology.NodeID) string {
		if n < 0 {
			return ""
		}
		return l.topo.Name(n)
	}
	slotName := func(id orchestrator.InstanceID) (slotRef, string, bool) {
		ref, ok := l.refs[id]
		if !ok {
			return ref, "", false
		}
		r := st.Apps[ref.app]
		if r == nil {
			return ref, "", false
		}
		return ref, r.Instances[ref.slot].Instance, true
	}
	failed := map[string]bool{}
	for _, a := range acts {
		ev := Event{Kind: a.Kind.String(), Message: l.o.Describe(a)}
		switch a.Kind {
		case orchestrator.ServerFailed:
			srv := l.topo.ServerName(l.topo.ServerOf(a.Node))
			known := false
			for m := range l.topo.ServerNodes(l.topo.ServerOf(a.Node)) {
				known = known || st.Nodes[l.topo.Name(m)] != nil
			}
			if !known {
				continue // nothing ever registered there: nothing to say
			}
			if !failed[srv] {
				failed[srv] = true
				f.Failed = append(f.Failed, srv)
			}
			ev.Node = name(a.Node)
		case orchestrator.NodeRejoined:
			if st.Nodes[name(a.Node)] == nil {
				continue
			}
			f.Rejoined = append(f.Rejoined, name(a.Node))
			ev.Node = name(a.Node)
		case orchestrator.Promote:
			ref, inst, ok := slotName(a.Instance)
			if !ok {
				continue
			}
			a2 := st.App(ref.app)
			pslot := a2.Instances()[ref.slot].Primary.Index
			primaryName := st.Apps[ref.app].Instances[pslot].Instance
			if pslot == ref.slot {
				// The orchestrator's backups always sit in backup slots
				// (promotions swap them); if that ever breaks, record the
				// move without a swap rather than lose the instance.
				f.Changes = append(f.Changes, InstanceChange{App: ref.app, Instance: inst, Kind: ChangeReplace, Node: name(a.To), Reason: ev.Message})
			} else {
				old := l.slots[ref.app][pslot]
				f.Changes = append(f.Changes,
					InstanceChange{App: ref.app, Instance: primaryName, Kind: ChangePromote, Node: name(a.To), PromotedFrom: inst, Reason: ev.Message},
					InstanceChange{App: ref.app, Instance: inst, Kind: ChangeUnplaced, Node: "", Reason: "its replica became the primary; a new backup follows"})
				l.slots[ref.app][pslot], l.slots[ref.app][ref.slot] = a.Instance, old
				l.refs[a.Instance], l.refs[old] = slotRef{ref.app, pslot}, slotRef{ref.app, ref.slot}
			}
			ev.App, ev.Instance, ev.From, ev.To = ref.app, primaryName, name(a.From), name(a.To)
		case orchestrator.Replace, orchestrator.CreateBackup, orchestrator.Place, orchestrator.Unplaced:
			ref, inst, ok := slotName(a.Instance)
			if !ok {
				continue
			}
			kind := map[orchestrator.ActionKind]string{orchestrator.Replace: ChangeReplace, orchestrator.CreateBackup: ChangeCreateBackup,
				orchestrator.Place: ChangePlace, orchestrator.Unplaced: ChangeUnplaced}[a.Kind]
			f.Changes = append(f.Changes, InstanceChange{App: ref.app, Instance: inst, Kind: kind, Node: name(a.To), Reason: ev.Message})
			ev.App, ev.Instance, ev.From, ev.To = ref.app, inst, name(a.From), name(a.To)
		case orchestrator.Migrate:
			ref, inst, ok := slotName(a.Instance)
			if !ok {
				continue
			}
			f.Migrations = append(f.Migrations, MigrationRecord{App: ref.app, Instance: inst, From: name(a.From), To: name(a.To), Reason: ev.Message})
			migs = append(migs, a.Migration)
			ev.App, ev.Instance, ev.From, ev.To = ref.app, inst, name(a.From), name(a.To)
		case orchestrator.AbortMigration:
			if id, ok := l.toState[a.Migration]; ok {
				f.Aborted = append(f.Aborted, id)
				delete(l.fromState, id)
				delete(l.toState, a.Migration)
				delete(l.migStart, a.Migration)
			}
			ev.From, ev.To = name(a.From), name(a.To)
		case orchestrator.Alert:
			ev.Node = name(a.Node)
		case orchestrator.PublishRoutes:
			f.Publish = true
			continue // the state records its own routes event
		}
		f.Events = append(f.Events, ev)
	}
	if len(f.Failed)+len(f.Rejoined)+len(f.Changes)+len(f.Migrations)+len(f.Aborted)+len(f.Events) == 0 && !f.Publish {
		return nil, nil, nil
	}
	f.Failed = slices.Clip(f.Failed)
	return f, migs, nil
}

// migrationReport carries out an agent's report on a migration.
func (s *Server) migrationReport(id uint64, rep *MigrationReport) (ApplyResult, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	l := s.lead
	if l == nil {
		return ApplyResult{}, errNotLeader
	}
	oid, ok := l.fromState[id]
	if !ok {
		return ApplyResult{Err: fmt.Errorf("%w: no migration m%d in flight at this leader", ErrNotFound, id)}, nil
	}
	now := s.now()
	cmd := &MigrationEndCmd{ID: id, OK: rep.OK, Why: rep.Error}
	if rep.OK {
		if _, err := l.o.MigrationDone(l.since(now), oid); err != nil {
			return ApplyResult{Err: fmt.Errorf("%w: %w", ErrNotFound, err)}, nil
		}
	} else {
		if cmd.Why == "" {
			cmd.Why = "the agent reported failure without a reason"
		}
		if err := l.o.MigrationFailed(l.since(now), oid, cmd.Why); err != nil {
			return ApplyResult{Err: fmt.Errorf("%w: %w", ErrNotFound, err)}, nil
		}
	}
	delete(l.fromState, id)
	delete(l.toState, oid)
	delete(l.migStart, oid)
	return s.propose(&Command{Op: OpMigrationEnd, MigrationEnd: cmd})
}
