package orchestrator

import (
	"math"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// tiny is a placement problem about one instance: the instance itself (to
// place), the other placed replicas of its shard (for the fault-domain
// checker) and, for a primary, the placed primaries of the shards it
// exchanges messages with (for HCM's communication-aware search and for
// bandwidth). Everything but the instance is deployed, so committing the
// problem's result to the load adds exactly what the instance adds: its
// cores and memory on its node and the traffic of its channels to placed
// neighbours. Releasing the same problem takes that away again; because
// both see the neighbours as they are at the time, the load stays the sum
// of what is placed whatever order instances come and go in.
type tiny struct {
	p    *placement.Problem
	self placement.InstanceID
	ids  []InstanceID // local ID -> global
}

// specOf returns instance i's placement spec in its current role: a
// primary carries its shard's traffic, a backup none.
func (o *Orchestrator) specOf(i InstanceID, pinHost bool) placement.Instance {
	m := &o.meta[i]
	in := m.spec
	g := &o.groups[m.group]
	if o.inst[i].flags&instBackup != 0 {
		in.RPS, in.IngressRPS, in.Source = 0, 0, false
	} else {
		in.RPS, in.IngressRPS, in.Source, in.Bytes = g.rps, g.ingr, g.source, g.bytes
	}
	if pinHost {
		in.Pin = placement.PinHost
	}
	return in
}

// problemFor builds the tiny problem of instance i in its current role.
// With pinHost the instance may go to hosts only (the detectors' moves).
func (o *Orchestrator) problemFor(i InstanceID, pinHost bool) *tiny {
	p := placement.NewProblem(o.load)
	p.Limits = o.cfg.Limits
	tp := &tiny{p: p, self: placement.None}
	g := &o.groups[o.meta[i].group]
	backup := o.inst[i].flags&instBackup != 0
	add := func(id InstanceID, lid placement.InstanceID) {
		tp.ids = append(tp.ids, id)
		switch {
		case id == i:
			tp.self = lid
		case backup && id == g.primary && o.inst[id].flags&instMigrating != 0:
			// A backup goes next to where its primary will be: the
			// server the primary leaves is free for it.
			p.Deploy(lid, o.migs[o.meta[id].migration].to)
		default:
			p.Deploy(lid, o.inst[id].node)
		}
	}
	// The shard: its primary first (a backup needs it in the problem to be
	// its backup), then the other placed replicas.
	pr := g.primary
	if !backup {
		pr = i
	}
	if pr != i && o.inst[pr].node < 0 {
		pr = NoInstance // an unplaced primary does not constrain a backup
	}
	var prLocal placement.InstanceID = placement.None
	if pr != NoInstance {
		prLocal = p.AddInstance(o.specOf(pr, pinHost && pr == i))
		add(pr, prLocal)
	}
	if backup && prLocal == placement.None {
		// No placed primary (it waits for capacity): the backup is placed
		// on its own, as an instance without traffic.
		lid := p.AddInstance(o.specOf(i, pinHost))
		add(i, lid)
		return tp
	}
	for _, m := range g.members {
		if m == pr || o.inst[m].flags&instRemoved != 0 || (m != i && o.inst[m].node < 0) {
			continue
		}
		spec := o.specOf(m, pinHost && m == i)
		spec.RPS, spec.IngressRPS, spec.Source = 0, 0, false
		lid := p.AddBackup(prLocal, spec)
		add(m, lid)
	}
	if backup {
		return tp
	}
	// Neighbours of a primary: the placed primaries of the shards it
	// talks to, and the channels.
	local := map[InstanceID]placement.InstanceID{}
	peer := func(gi int32) (placement.InstanceID, bool) {
		pg := &o.groups[gi]
		q := pg.primary
		if pg.removed || q == i || o.inst[q].node < 0 || o.inst[q].flags&instRemoved != 0 {
			return 0, false
		}
		if lid, ok := local[q]; ok {
			return lid, true
		}
		lid := p.AddInstance(o.specOf(q, false))
		add(q, lid)
		local[q] = lid
		return lid, true
	}
	for _, e := range g.out {
		if lid, ok := peer(e.peer); ok {
			p.AddEdge(tp.self, lid, e.rps, e.bytes)
		}
	}
	for _, e := range g.in {
		if lid, ok := peer(e.peer); ok {
			p.AddEdge(lid, tp.self, e.rps, e.bytes)
		}
	}
	return tp
}

// assignment returns the problem's assignment with the instance on n.
func (tp *tiny) assignment(n topology.NodeID) placement.Assignment {
	a := make(placement.Assignment, tp.p.NumInstances())
	for k := range a {
		a[k] = tp.p.Instance(placement.InstanceID(k)).Deployed
	}
	a[tp.self] = n
	return a
}

// apply adds instance i, as if on node n, to the load.
func (o *Orchestrator) apply(i InstanceID, n topology.NodeID) {
	tp := o.problemFor(i, false)
	if err := o.load.Apply(tp.p, &placement.Result{Assignment: tp.assignment(n)}); err != nil {
		panic("orchestrator: internal error: apply " + o.InstanceName(i) + ": " + err.Error())
	}
}

// release takes instance i, on node n, off the load.
func (o *Orchestrator) release(i InstanceID, n topology.NodeID) {
	tp := o.problemFor(i, false)
	if err := o.load.Release(tp.p, tp.assignment(n)); err != nil {
		panic("orchestrator: internal error: release " + o.InstanceName(i) + ": " + err.Error())
	}
}

// fits reports whether instance i (as a host-pinned mover) fits node n.
func (o *Orchestrator) fits(i InstanceID, n topology.NodeID) placement.Rejection {
	tp := o.problemFor(i, true)
	if tp.p.Err() != nil {
		return placement.Rejection{Constraint: placement.ConstraintPin, At: placement.Unassigned, Other: placement.None}
	}
	s := placement.NewState(tp.p)
	return o.globalRejection(tp, s.Check(tp.self, n))
}

// globalRejection translates a rejection's instance to a global ID.
func (o *Orchestrator) globalRejection(tp *tiny, r placement.Rejection) placement.Rejection {
	if r.Other >= 0 && int(r.Other) < len(tp.ids) {
		r.Other = placement.InstanceID(tp.ids[r.Other])
	}
	return r
}

// placeResult is where the placer put an instance, or why nowhere.
type placeResult struct {
	node      topology.NodeID
	rejection placement.Rejection
	closest   topology.NodeID
}

// place asks the placer for a node for instance i in its current role,
// never one in avoid or on a failed server. pinHost restricts it to hosts.
func (o *Orchestrator) place(i InstanceID, pinHost bool, avoid []topology.NodeID) placeResult {
	// Nodes to keep out of this placement are filled up for its
	// duration, which every checker of capacity then refuses.
	type saved struct {
		n topology.NodeID
		u placement.Usage
	}
	var restore []saved
	for _, n := range avoid {
		if o.nodes[n].status == statusFailed {
			continue // blocked already
		}
		u := o.load.Usage(n)
		restore = append(restore, saved{n, u})
		o.block(n)
	}
	defer func() {
		for k := len(restore) - 1; k >= 0; k-- {
			_ = o.load.Set(restore[k].n, restore[k].u)
		}
	}()
	tp := o.problemFor(i, pinHost)
	if err := tp.p.Err(); err != nil {
		panic("orchestrator: internal error: problem for " + o.InstanceName(i) + ": " + err.Error())
	}
	res, err := o.cfg.Placer.Place(tp.p, o.cfg.Rand)
	if err != nil {
		panic("orchestrator: internal error: placing " + o.InstanceName(i) + ": " + err.Error())
	}
	n := res.Assignment[tp.self]
	if n >= 0 && !o.usable(n, avoid) {
		// Only an instance that needs neither cores nor memory gets past
		// a filled-up node; look for a usable node in scan order instead.
		n = placement.Unassigned
		s := placement.NewState(tp.p)
		for c := range s.ScanCandidates(tp.self) {
			if o.usable(c, avoid) && s.Check(tp.self, c).OK() {
				n = c
				break
			}
		}
	}
	if n >= 0 {
		return placeResult{node: n, closest: placement.Unassigned}
	}
	out := placeResult{node: placement.Unassigned, closest: placement.Unassigned}
	for _, u := range res.Unplaced {
		if u.Instance == tp.self {
			out.rejection = o.globalRejection(tp, u.Reason)
			out.closest = u.Closest
		}
	}
	if out.closest >= 0 && out.rejection.OK() && o.usable(out.closest, avoid) {
		// The placer's free-capacity index skips nodes with less free
		// capacity than nothing, which a promotion can leave behind, yet
		// the checkers accept an instance that needs no cores there.
		return placeResult{node: out.closest, closest: placement.Unassigned}
	}
	if out.closest >= 0 && !o.usable(out.closest, avoid) {
		// The node the placer found closest is one filled up on purpose
		// (failed or avoided); name the closest of the others.
		out.rejection, out.closest = o.closestUsable(tp, avoid)
	}
	return out
}

// closestUsable is placement's closest-node search (State.Closest)
// restricted to usable nodes. It visits every node, so it runs only when
// an instance cannot be placed at all.
func (o *Orchestrator) closestUsable(tp *tiny, avoid []topology.NodeID) (placement.Rejection, topology.NodeID) {
	s := placement.NewState(tp.p)
	best, closest := 0.0, placement.Unassigned
	var why, hard placement.Rejection
	for n := range o.topo.Nodes() {
		if !o.usable(n, avoid) {
			continue
		}
		f, r := s.Shortfall(tp.self, n)
		if r.OK() {
			continue // fits now but the placer refused it; not expected
		}
		if math.IsInf(f, 1) {
			if hard.OK() {
				hard = r
			}
			continue
		}
		if closest < 0 || f < best {
			best, closest, why = f, n, r
		}
	}
	if closest < 0 {
		return o.globalRejection(tp, hard), placement.Unassigned
	}
	return o.globalRejection(tp, why), closest
}

func (o *Orchestrator) usable(n topology.NodeID, avoid []topology.NodeID) bool {
	if o.nodes[n].status == statusFailed {
		return false
	}
	for _, a := range avoid {
		if a == n {
			return false
		}
	}
	return true
}

// block fills node n up so that no placement picks it.
func (o *Orchestrator) block(n topology.NodeID) {
	cores, mem, gbps := o.cluster.Capacity(n)
	u := o.load.Usage(n)
	u.Cores = max(u.Cores, cores+1)
	u.MemoryMB = max(u.MemoryMB, mem+1)
	u.TxGbps = max(u.TxGbps, gbps)
	u.RxGbps = max(u.RxGbps, gbps)
	_ = o.load.Set(n, u)
}

// reserve sets aside on node n the cores and memory instance i will need
// there while it migrates; the channels' traffic moves with the instance
// when the migration completes.
func (o *Orchestrator) reserve(i InstanceID, n topology.NodeID) placement.Usage {
	spec := o.specOf(i, false)
	r := placement.Usage{MemoryMB: spec.MemoryMB}
	if spec.RPS > 0 {
		r.Cores = spec.RPS * spec.Demand[o.cluster.CoreKind(n)]
	}
	u := o.load.Usage(n)
	u.Cores += r.Cores
	u.MemoryMB += r.MemoryMB
	_ = o.load.Set(n, u)
	return r
}

// unreserve gives back a reservation.
func (o *Orchestrator) unreserve(n topology.NodeID, r placement.Usage) {
	if o.nodes[n].status == statusFailed {
		o.cold[n].saved.Cores = math.Max(0, o.cold[n].saved.Cores-r.Cores)
		o.cold[n].saved.MemoryMB = math.Max(0, o.cold[n].saved.MemoryMB-r.MemoryMB)
		return
	}
	u := o.load.Usage(n)
	u.Cores = math.Max(0, u.Cores-r.Cores)
	u.MemoryMB = math.Max(0, u.MemoryMB-r.MemoryMB)
	_ = o.load.Set(n, u)
}

// modelCPU is the cores instance i would keep busy on node n by its rate
// and Table 1 demand, for an instance without a recent sample.
func (o *Orchestrator) modelCPU(i InstanceID, n topology.NodeID) float64 {
	spec := o.specOf(i, false)
	return spec.RPS * spec.Demand[o.cluster.CoreKind(n)]
}
