package orchestrator

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// Node status.
const (
	statusAlive  uint8 = iota // heard within the failure timeout
	statusFailed              // its server was declared failed; not heard since
)

// nodeState flags.
const (
	flagNIC        uint8 = 1 << iota // the node is a SmartNIC
	flagStarved                      // the starvation condition held for QueueHeartbeats
	flagOverloaded                   // an instance's overload held for OverloadHeartbeats
	flagListed                       // the node is in Orchestrator.flagged
	flagInLRU                        // the node is in the failure-detection list
	flagHeard                        // a heartbeat came since the node (re)joined
)

// nodeState is what every heartbeat touches: 32 bytes, so that the dense
// array of 250,000 nodes costs one cache line per heartbeat.
type nodeState struct {
	lastHeard int64
	// linked is when the node was last put at the tail of the
	// failure-detection list; see Orchestrator.lru.
	linked    int64
	portLimit uint32 // bytes a period below which the port is under-used
	busier    uint32 // bytes of the busier direction in the last period
	seq       uint16
	queue     uint16
	queueRun  uint8
	status    uint8
	flags     uint8
	overRun   uint8 // the worst instance's overload run, for reasons
}

// nodeCold is what only decisions and rare events read.
type nodeCold struct {
	coolUntil    int64 // no migration off the node before
	excludeUntil int64 // not a destination before (a migration to it failed)
	migOut       int32 // migrations in flight off the node
	portGbps     float32
	saved        placement.Usage
	retry        MigrationID // the failed migration a new one retries
	retryWhy     string
	overInst     InstanceID // the instance with the worst overload ratio
	overExec     float32
	overEMA      float32
}

// instState is what a sample touches: 20 bytes.
type instState struct {
	node      topology.NodeID // Unassigned when it has none
	ema       float32         // mean execution time, ns
	cpu       float32         // cores used in the last sample
	sampleSeq uint16          // the node's seq at the last sample
	samples   uint16          // samples in the average, saturating
	overRun   uint8
	flags     uint8
}

// instLink chains the instances of one node.
type instLink struct{ next, prev InstanceID }

// instState flags.
const (
	instBackup uint8 = 1 << iota
	instNonMigratable
	instMigrating
	instRemoved
	instPending
)

// instMeta is the cold part of an instance.
type instMeta struct {
	spec      placement.Instance // as deployed; traffic fields are the group's
	group     int32
	coolUntil int64
	migration MigrationID
}

// group is one shard: its replicas and its channels to other shards.
type group struct {
	primary    InstanceID
	members    []InstanceID // every replica in registration order
	rps, ingr  float64
	source     bool
	bytes      float64
	out, in    []groupEdge
	removed    bool
	lostPrimAt topology.NodeID // where a primary that failed was, for Replace
}

type groupEdge struct {
	peer       int32
	rps, bytes float64
}

type migration struct {
	id       MigrationID
	inst     InstanceID
	from, to topology.NodeID
	started  int64
	reserved placement.Usage
	reason   Reason
}

// Stats counts what the orchestrator has seen; for metrics and tests.
type Stats struct {
	// Heartbeats observed, and of them dropped as duplicate or late.
	Heartbeats, Stale uint64
	// Samples used; samples naming an instance the orchestrator does not
	// know or does not place on the reporting node (normal for a moment
	// around a migration or a failover).
	Samples, UnknownSamples, MisplacedSamples uint64
	// Gaps counts heartbeats that followed a lost one.
	Gaps uint64
	// Restarts counts sequences restarted by an agent.
	Restarts uint64
}

// Orchestrator is E3's data-plane orchestrator and failover manager
// (§3.4, §3.5 of the paper): a state machine fed with heartbeats and
// controller reports, asked for decisions with [Orchestrator.Decide]. It
// never performs I/O and never reads a clock; every call carries the time.
// It is not safe for concurrent use: one goroutine owns it, as one raft
// node is owned by one loop.
type Orchestrator struct {
	cfg     Config
	load    *placement.Load
	cluster *placement.Cluster
	topo    *topology.Topology
	period  int64

	nodes    []nodeState
	cold     []nodeCold
	instHead []InstanceID
	// The failure-detection list holds the alive nodes in the order of
	// their linked times, oldest at the head. A heartbeat moves its node
	// to the tail only when linked is relink old, not every time: that
	// saves most of the list's cache misses, and since a node's lastHeard
	// is within relink of its linked time, every node silent for longer
	// than the timeout is still in the list's expired prefix, which
	// Decide walks. Alive nodes in that prefix are only those silent for
	// more than timeout - relink, two periods by default: rare.
	lru              []lruLink
	lruHead, lruTail int32
	relink           int64

	inst   []instState
	links  []instLink
	meta   []instMeta
	groups []group

	flagged  []topology.NodeID
	rejoined []topology.NodeID
	pending  []InstanceID
	excluded []topology.NodeID // destinations excluded after a failure
	// overcommitted holds promoted primaries left on a node with more
	// busy cores than its limit, for want of a destination.
	overcommitted []InstanceID
	// recheck holds primaries whose migration ended where they were; a
	// backup placed for their destination may share their server.
	recheck []InstanceID

	migs    map[MigrationID]*migration
	active  []MigrationID // in flight, in ID order
	nextMig MigrationID

	epoch         uint64
	routesChanged bool
	freed         bool // capacity freed since the last Decide
	now           int64

	actions []Action
	hb      Heartbeat
	sink    uint16 // keeps touch's loads from being optimised away
	stats   Stats
}

// New returns an orchestrator for the cluster of cfg.Load, expecting every
// node of it to report from time start on: a node not heard by start +
// FailureTimeout is failed with its server. The orchestrator owns
// cfg.Load from now on.
func New(cfg Config, start time.Duration) (*Orchestrator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := cfg.Load.Cluster()
	t := c.Topology()
	nn := t.NumNodes()
	o := &Orchestrator{
		cfg: cfg, load: cfg.Load, cluster: c, topo: t,
		period:   int64(cfg.HeartbeatPeriod),
		nodes:    make([]nodeState, nn),
		cold:     make([]nodeCold, nn),
		instHead: make([]InstanceID, nn),
		lru:      make([]lruLink, nn),
		lruHead:  -1, lruTail: -1,
		relink: int64(max(cfg.HeartbeatPeriod, cfg.FailureTimeout-2*cfg.HeartbeatPeriod)),
		migs:   map[MigrationID]*migration{},
		epoch:  cfg.InitialEpoch,
		now:    int64(start),
	}
	for n := range t.Nodes() {
		ns := &o.nodes[n]
		ns.lastHeard = int64(start)
		o.cold[n].overInst = NoInstance
		if t.Node(n).Kind == topology.SmartNIC {
			ns.flags |= flagNIC
		}
		_, _, gbps := c.Capacity(n)
		o.cold[n].portGbps = float32(gbps)
		ns.portLimit = Saturate32(uint64(cfg.PortFraction * gbps * 1e9 / 8 * cfg.HeartbeatPeriod.Seconds()))
		o.instHead[n] = NoInstance
		o.lruPush(int32(n), int64(start))
	}
	return o, nil
}

// Load returns the committed use of the cluster that the orchestrator
// keeps. The control plane builds placement problems on it; read it, and
// change it only through the orchestrator.
func (o *Orchestrator) Load() *placement.Load { return o.load }

// Config returns the configuration in force, defaults filled in.
func (o *Orchestrator) Config() Config { return o.cfg }

// Epoch returns the last routing-table epoch handed out.
func (o *Orchestrator) Epoch() uint64 { return o.epoch }

// Stats returns the counters.
func (o *Orchestrator) Stats() Stats { return o.stats }

// NumInstances returns the number of instance IDs handed out.
func (o *Orchestrator) NumInstances() int { return len(o.inst) }

// InstanceName returns the name instance i was deployed with.
func (o *Orchestrator) InstanceName(i InstanceID) string {
	if i < 0 || int(i) >= len(o.meta) {
		return fmt.Sprintf("instance(%d)", i)
	}
	return o.meta[i].spec.Name
}

// InstanceInfo describes an instance as the orchestrator sees it.
type InstanceInfo struct {
	ID   InstanceID
	Name string
	App  string
	// Service is the microservice's registry name.
	Service string
	// Node is where it runs, placement.Unassigned if nowhere (unplaced).
	Node topology.NodeID
	// Primary is the shard's primary (the instance itself for a primary).
	Primary InstanceID
	// Backup, Migratable, Migrating, Removed: as named.
	Backup, Migratable, Migrating, Removed bool
	// EMA is the moving average of its execution time (0 until sampled)
	// and CPU the cores it used in its last sample.
	EMA time.Duration
	CPU float64
}

// Instance returns what the orchestrator knows of instance i.
func (o *Orchestrator) Instance(i InstanceID) (InstanceInfo, bool) {
	if i < 0 || int(i) >= len(o.inst) {
		return InstanceInfo{}, false
	}
	is, m := &o.inst[i], &o.meta[i]
	return InstanceInfo{
		ID: i, Name: m.spec.Name, App: m.spec.App, Service: m.spec.Service,
		Node: is.node, Primary: o.groups[m.group].primary,
		Backup: is.flags&instBackup != 0, Migratable: is.flags&instNonMigratable == 0,
		Migrating: is.flags&instMigrating != 0, Removed: is.flags&instRemoved != 0,
		EMA: time.Duration(is.ema), CPU: float64(is.cpu),
	}, true
}

// InstancesOn returns the instances on node n in ID order.
func (o *Orchestrator) InstancesOn(n topology.NodeID) []InstanceID {
	var out []InstanceID
	for i := o.instHead[n]; i != NoInstance; i = o.links[i].next {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// NodeFailed reports whether node n's server is currently declared failed.
func (o *Orchestrator) NodeFailed(n topology.NodeID) bool { return o.nodes[n].status == statusFailed }

// Migration describes a migration in flight.
type Migration struct {
	ID       MigrationID
	Instance InstanceID
	From, To topology.NodeID
	Started  time.Duration
}

// Migrations returns the migrations in flight, in ID order.
func (o *Orchestrator) Migrations() []Migration {
	out := make([]Migration, 0, len(o.active))
	for _, id := range o.active {
		m := o.migs[id]
		out = append(out, Migration{ID: id, Instance: m.inst, From: m.from, To: m.to, Started: time.Duration(m.started)})
	}
	return out
}

// ErrBadDeploy is wrapped by the errors of Deploy and Undeploy.
var ErrBadDeploy = errors.New("orchestrator: bad deployment")

// Deploy registers the instances of p, placed by res, and commits them to
// the load. p must be built on [Orchestrator.Load] and list no deployed
// instances (each instance is registered once, with the problem that
// placed it). Instances that res leaves unplaced are registered as
// pending and placed when capacity frees. It returns the InstanceID of
// each of p's instances, in p's order; agents report them in heartbeats.
func (o *Orchestrator) Deploy(p *placement.Problem, res *placement.Result) ([]InstanceID, error) {
	if p == nil || res == nil {
		return nil, fmt.Errorf("%w: nil problem or result", ErrBadDeploy)
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadDeploy, err)
	}
	if p.Load() != o.load {
		return nil, fmt.Errorf("%w: the problem was built on another Load than the orchestrator's", ErrBadDeploy)
	}
	if len(res.Assignment) != p.NumInstances() {
		return nil, fmt.Errorf("%w: assignment of %d instances for a problem of %d", ErrBadDeploy, len(res.Assignment), p.NumInstances())
	}
	for i := range p.NumInstances() {
		in := p.Instance(placement.InstanceID(i))
		if in.Deployed >= 0 {
			return nil, fmt.Errorf("%w: instance %s is marked deployed; register each instance once, with the problem that placed it", ErrBadDeploy, in.Name)
		}
		if n := res.Assignment[i]; n >= 0 && int(n) < len(o.nodes) && o.nodes[n].status == statusFailed {
			return nil, fmt.Errorf("%w: instance %s assigned to %s, whose server is failed", ErrBadDeploy, in.Name, o.topo.Name(n))
		}
	}
	if err := o.load.Apply(p, res); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadDeploy, err)
	}
	base := InstanceID(len(o.inst))
	ids := make([]InstanceID, p.NumInstances())
	groupOf := make([]int32, p.NumInstances())
	for i := range p.NumInstances() {
		lid := placement.InstanceID(i)
		in := *p.Instance(lid)
		id := base + InstanceID(i)
		ids[i] = id
		var flags uint8
		if in.NonMigratable {
			flags |= instNonMigratable
		}
		if in.IsBackup() {
			flags |= instBackup
			g := groupOf[in.Primary]
			groupOf[i] = g
			o.groups[g].members = append(o.groups[g].members, id)
		} else {
			g := int32(len(o.groups))
			groupOf[i] = g
			o.groups = append(o.groups, group{
				primary: id, members: []InstanceID{id},
				rps: in.RPS, ingr: in.IngressRPS, source: in.Source, bytes: in.Bytes,
				lostPrimAt: placement.Unassigned,
			})
		}
		in.Primary, in.Deployed = placement.None, placement.Unassigned
		if in.Demand == (placement.CoreDemand{}) {
			// Placement fills demand only for instances with traffic; a
			// backup needs it once it is promoted.
			if d, err := placement.DemandOf(in.Service); err == nil {
				in.Demand = d
			}
		}
		o.inst = append(o.inst, instState{node: placement.Unassigned, flags: flags})
		o.links = append(o.links, instLink{next: NoInstance, prev: NoInstance})
		o.meta = append(o.meta, instMeta{spec: in, group: groupOf[i]})
		if n := res.Assignment[i]; n >= 0 {
			o.link(id, n)
		} else {
			o.inst[id].flags |= instPending
			o.pending = append(o.pending, id)
		}
	}
	for e := range p.NumEdges() {
		ed := p.Edge(placement.EdgeID(e))
		gf, gt := groupOf[ed.From], groupOf[ed.To]
		o.groups[gf].out = append(o.groups[gf].out, groupEdge{peer: gt, rps: ed.RPS, bytes: ed.Bytes})
		o.groups[gt].in = append(o.groups[gt].in, groupEdge{peer: gf, rps: ed.RPS, bytes: ed.Bytes})
	}
	return ids, nil
}

// Undeploy removes instances (an application that is stopped): their use
// leaves the load and their migrations are forgotten (the controller stops
// them along with the instances). IDs are not reused.
func (o *Orchestrator) Undeploy(ids []InstanceID) error {
	for _, i := range ids {
		if i < 0 || int(i) >= len(o.inst) {
			return fmt.Errorf("%w: Undeploy: no instance %d", ErrBadDeploy, i)
		}
	}
	for _, i := range ids {
		is := &o.inst[i]
		if is.flags&instRemoved != 0 {
			continue
		}
		if m := o.meta[i].migration; m != 0 {
			o.endMigration(o.migs[m])
		}
		if is.node >= 0 {
			o.release(i, is.node)
			o.unlink(i)
		}
		is.flags |= instRemoved
		is.flags &^= instPending
		g := &o.groups[o.meta[i].group]
		alive := false
		for _, m := range g.members {
			alive = alive || o.inst[m].flags&instRemoved == 0
		}
		g.removed = !alive
	}
	o.pending = slices.DeleteFunc(o.pending, func(i InstanceID) bool { return o.inst[i].flags&instRemoved != 0 })
	o.freed = true
	return nil
}

// link puts instance i on node n's list.
func (o *Orchestrator) link(i InstanceID, n topology.NodeID) {
	o.inst[i].node = n
	l := &o.links[i]
	l.prev = NoInstance
	l.next = o.instHead[n]
	if l.next != NoInstance {
		o.links[l.next].prev = i
	}
	o.instHead[n] = i
}

// unlink takes instance i off its node's list; its node becomes
// Unassigned.
func (o *Orchestrator) unlink(i InstanceID) {
	is := &o.inst[i]
	if is.node < 0 {
		return
	}
	l := &o.links[i]
	if l.prev != NoInstance {
		o.links[l.prev].next = l.next
	} else {
		o.instHead[is.node] = l.next
	}
	if l.next != NoInstance {
		o.links[l.next].prev = l.prev
	}
	is.node, l.next, l.prev = placement.Unassigned, NoInstance, NoInstance
}

// The failure-detection list.

type lruLink struct{ prev, next int32 }

// lruPush appends n, linked at t.
func (o *Orchestrator) lruPush(n int32, t int64) {
	o.lru[n] = lruLink{prev: o.lruTail, next: -1}
	if o.lruTail >= 0 {
		o.lru[o.lruTail].next = n
	} else {
		o.lruHead = n
	}
	o.lruTail = n
	o.nodes[n].flags |= flagInLRU
	o.nodes[n].linked = t
}

func (o *Orchestrator) lruRemove(n int32) {
	if o.nodes[n].flags&flagInLRU == 0 {
		return
	}
	l := o.lru[n]
	if l.prev >= 0 {
		o.lru[l.prev].next = l.next
	} else {
		o.lruHead = l.next
	}
	if l.next >= 0 {
		o.lru[l.next].prev = l.prev
	} else {
		o.lruTail = l.prev
	}
	o.nodes[n].flags &^= flagInLRU
}

// lruTouch moves n to the tail, linked at t.
func (o *Orchestrator) lruTouch(n int32, t int64) {
	if o.lruTail == n {
		o.nodes[n].linked = t
		return
	}
	o.lruRemove(n)
	o.lruPush(n, t)
}
