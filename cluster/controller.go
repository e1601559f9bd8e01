package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/topology"

	// HCM registers itself with placement.
	_ "github.com/e3-platform/e3/placement/hcm"
)

// Controller is the emulated cluster's minimal controller: it places
// applications, pushes routing tables (each with a higher epoch) to every
// agent and client, keeps the latest heartbeat of each agent, drives
// migrations through the agents' table protocol ([Cluster.Migrate]), and,
// when configured, runs the data-plane orchestrator on the heartbeats and
// carries out its migrations. The replicated controller (package
// controller) does the same across processes.
type Controller struct {
	c *Cluster

	// pubMu serialises table changes (deploys, migration steps, restarts):
	// each reads the table in force and publishes its successor.
	pubMu sync.Mutex

	mu       sync.Mutex
	table    *runtime.Table
	nextApp  uint32
	nextMove uint64
	beats    map[topology.NodeID]*runtime.Heartbeat
	nbeats   int
	deps     []*Deployment
	// watch receives migration updates, by migration id.
	watch map[uint64]chan runtime.MigrationStatus

	orch *orchLoop
}

func newController(c *Cluster) *Controller {
	return &Controller{c: c, beats: map[topology.NodeID]*runtime.Heartbeat{}, nextApp: 1, watch: map[uint64]chan runtime.MigrationStatus{}}
}

// Heartbeat implements runtime.Controller.
func (ct *Controller) Heartbeat(hb *runtime.Heartbeat) {
	ct.mu.Lock()
	ct.beats[hb.Node] = hb
	ct.nbeats++
	o := ct.orch
	ct.mu.Unlock()
	if o != nil {
		o.heartbeat(hb)
	}
}

// MigrationUpdate implements runtime.MigrationObserver.
func (ct *Controller) MigrationUpdate(node topology.NodeID, s runtime.MigrationStatus) {
	ct.mu.Lock()
	w := ct.watch[s.ID]
	ct.mu.Unlock()
	if w == nil || s.Role != runtime.RoleSource {
		return
	}
	// Keep the newest: drop a stale one waiting in the buffer.
	for {
		select {
		case w <- s:
			return
		default:
		}
		select {
		case <-w:
		default:
		}
	}
}

// LastHeartbeat returns the latest heartbeat of node n (nil before the
// first) and the number of heartbeats received in all.
func (ct *Controller) LastHeartbeat(n topology.NodeID) (*runtime.Heartbeat, int) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.beats[n], ct.nbeats
}

// Table returns the routing table in force (nil before the first deploy).
func (ct *Controller) Table() *runtime.Table {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.table
}

func (ct *Controller) close() {
	ct.mu.Lock()
	o := ct.orch
	ct.mu.Unlock()
	if o != nil {
		o.stop()
	}
}

// publish applies t to every live agent, those in first first and those in
// last last, then gives it to the clients. A move's destination goes
// first, so that whatever the source releases finds the instance routed
// there, and the source last, so that it releases only once everyone
// routes to the destination. ct.pubMu is held.
func (ct *Controller) publish(t *runtime.Table, first, last []topology.NodeID) error {
	c := ct.c
	agents := c.Agents()
	rank := func(n topology.NodeID) int {
		for _, f := range first {
			if f == n {
				return 0
			}
		}
		for _, l := range last {
			if l == n {
				return 2
			}
		}
		return 1
	}
	var errs []error
	for r := range 3 {
		for n, a := range agents {
			if rank(topology.NodeID(n)) != r || c.dead(topology.NodeID(n)) {
				continue
			}
			if err := a.Apply(t); err != nil {
				errs = append(errs, err)
			}
		}
	}
	ct.mu.Lock()
	ct.table = t
	ct.mu.Unlock()
	for _, tg := range c.clients() {
		tg.cl.SetTable(t)
	}
	return errors.Join(errs...)
}

// Plan is a placement of an application on a cluster, before it runs.
type Plan struct {
	App *app.App
	// Cluster is the cluster's name.
	Cluster string
	Algo    string
	// PlanningRPS is the offered load the placement was made for: the
	// highest load at which the placer fits every instance (see
	// [PlanApp]).
	PlanningRPS float64
	Problem     *placement.Problem
	Result      *placement.Result
	// Metrics are placement's figures at PlanningRPS (modelled).
	Metrics placement.Metrics
	// CapacityRPS estimates the highest load the placement sustains: the
	// planning load scaled until the busiest node's cores are full.
	CapacityRPS float64
}

// PlanApp places application a on the cluster called clusterName with the
// named algorithm.
//
// The planning load matters: HCM packs instances onto as few nodes as the
// offered load allows, so a placement made for a light load saturates one
// node early under a heavy one, and the knee the emulation finds would be
// that node's rather than the cluster's. `e3 run` measures peak throughput,
// so the planning load is the highest load at which the algorithm still
// places every instance (found by bisection over placements, which take
// well under a millisecond each): the placement E3 would choose for a
// cluster run near its capacity.
func PlanApp(clusterName string, a *app.App, algo string, seed uint64) (*Plan, error) {
	spec, _, pc, err := build(clusterName)
	if err != nil {
		return nil, err
	}
	placer, err := placement.New(algo)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	try := func(rps float64) (*placement.Problem, *placement.Result, error) {
		p, err := placement.FromApp(a, placement.NewLoad(pc), rps)
		if err != nil {
			return nil, nil, err
		}
		res, err := placer.Place(p, rand.New(rand.NewPCG(seed, 0xe3)))
		return p, res, err
	}
	fits := func(rps float64) (bool, error) {
		_, res, err := try(rps)
		if err != nil {
			return false, err
		}
		return len(res.Unplaced) == 0, nil
	}
	// Something must fit at a trickle, or the cluster is too small
	// (memory, pinning) whatever the load.
	lo := 1.0
	if ok, err := fits(lo); err != nil {
		return nil, fmt.Errorf("cluster: place %s on %s: %w", a.Name, clusterName, err)
	} else if !ok {
		_, res, _ := try(lo)
		p, _, _ := try(lo)
		return nil, fmt.Errorf("cluster: %s does not fit %s even at 1 request/s: %s", a.Name, clusterName, res.Unplaced[0].Describe(p))
	}
	hi := 1000.0
	for {
		ok, err := fits(hi)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		lo, hi = hi, hi*2
		if hi > 1e10 {
			break
		}
	}
	for hi/lo > 1.01 {
		mid := (lo + hi) / 2
		ok, err := fits(mid)
		if err != nil {
			return nil, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	p, res, err := try(lo)
	if err != nil {
		return nil, err
	}
	m, err := placement.Evaluate(p, res.Assignment, lo)
	if err != nil {
		return nil, err
	}
	capacity := lo
	if m.MaxCPUUtil > 0 {
		capacity = lo / m.MaxCPUUtil
	}
	return &Plan{App: a, Cluster: spec.Name, Algo: algo, PlanningRPS: lo, Problem: p, Result: res, Metrics: m, CapacityRPS: capacity}, nil
}

// NewPlan makes a plan of a given placement: assign gives every
// instance's node (as placement.Assignment, indexed like a.Instances()),
// and rps is the load it is meant for (the orchestrator's CPU model, and
// the metrics). For tests and experiments that place by hand.
func NewPlan(clusterName string, a *app.App, rps float64, assign placement.Assignment) (*Plan, error) {
	spec, _, pc, err := build(clusterName)
	if err != nil {
		return nil, err
	}
	p, err := placement.FromApp(a, placement.NewLoad(pc), rps)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if len(assign) != p.NumInstances() {
		return nil, fmt.Errorf("cluster: plan of %s: %d nodes for %d instances", a.Name, len(assign), p.NumInstances())
	}
	m, err := placement.Evaluate(p, assign, rps)
	if err != nil {
		return nil, fmt.Errorf("cluster: plan of %s: %w", a.Name, err)
	}
	capacity := rps
	if m.MaxCPUUtil > 0 {
		capacity = rps / m.MaxCPUUtil
	}
	return &Plan{App: a, Cluster: spec.Name, Algo: "given", PlanningRPS: rps, Problem: p,
		Result: &placement.Result{Assignment: assign}, Metrics: m, CapacityRPS: capacity}, nil
}

// Deployment is an application running on the cluster.
type Deployment struct {
	// ID is the application's id on the wire.
	ID   uint32
	App  *app.App
	Plan *Plan
	// Nodes is every instance's node.
	Nodes []topology.NodeID
}

// Deploy runs plan on the cluster: a new routing table with the
// application and a higher epoch goes to every agent, each of which starts
// the instances the table puts on it. With durable state it returns once
// every stateful primary has its backup attached (seeded), so that from
// the first request every write is replicated before it is answered.
func (c *Cluster) Deploy(plan *Plan, seed int64) (*Deployment, error) {
	if plan.Cluster != c.spec.Name {
		return nil, fmt.Errorf("cluster: plan for %s deployed on %s", plan.Cluster, c.spec.Name)
	}
	ct := c.ctrl
	ct.pubMu.Lock()
	defer ct.pubMu.Unlock()
	nodes := make([]topology.NodeID, len(plan.Result.Assignment))
	for i, n := range plan.Result.Assignment {
		if n < 0 {
			return nil, fmt.Errorf("cluster: %s: instance %s is unplaced", plan.App.Name, plan.App.Instances()[i].ID)
		}
		nodes[i] = n
	}
	t := &runtime.Table{Epoch: 1, Addrs: c.addresses()}
	old := ct.Table()
	if old != nil {
		t = old.Next()
		t.Addrs = c.addresses()
	}
	ct.mu.Lock()
	id := ct.nextApp
	ct.nextApp++
	ct.mu.Unlock()
	t.Apps = append(t.Apps, runtime.AppRoute{ID: id, App: plan.App, Nodes: nodes, Seed: seed})
	if err := ct.publish(t, nil, nil); err != nil {
		return nil, fmt.Errorf("cluster: deploy %s: %w", plan.App.Name, err)
	}
	dep := &Deployment{ID: id, App: plan.App, Plan: plan, Nodes: nodes}
	if c.cfg.State != StateMemory {
		if err := c.waitReplicated(dep, 20*time.Second); err != nil {
			return nil, err
		}
	}
	ct.mu.Lock()
	ct.deps = append(ct.deps, dep)
	o := ct.orch
	ct.mu.Unlock()
	if o != nil {
		if err := o.deploy(dep); err != nil {
			return nil, err
		}
	}
	return dep, nil
}

// waitReplicated waits until every durable primary of dep reports its
// backup attached.
func (c *Cluster) waitReplicated(dep *Deployment, timeout time.Duration) error {
	want := 0
	for _, in := range dep.App.Instances() {
		if in.IsPrimary() && len(in.Backups) > 0 && in.Node.Descriptor.Stateful && in.Node.Descriptor.Migratable {
			want++
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		got := 0
		for _, a := range c.Agents() {
			for _, s := range a.InstanceStats() {
				if s.App == dep.ID && s.Durable && s.Replicated {
					got++
				}
			}
		}
		if got >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster: deploy %s: %d of %d stateful primaries have their backup attached after %v", dep.App.Name, got, want, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// NodeOf returns the node instance i of dep runs on now, by the table in
// force (it changes when the instance migrates).
func (c *Cluster) NodeOf(dep *Deployment, i int) topology.NodeID {
	t := c.ctrl.Table()
	for _, r := range t.Apps {
		if r.ID == dep.ID {
			return r.Nodes[i]
		}
	}
	return -1
}

// Busy is a snapshot of the cluster's core use: cumulative busy core time
// per node at an emulated instant.
type Busy struct {
	At     int64
	NodeNs []int64
}

// BusySnapshot reads every agent's busy time now.
func (c *Cluster) BusySnapshot() Busy {
	agents := c.Agents()
	b := Busy{At: c.Now(), NodeNs: make([]int64, len(agents))}
	for i, a := range agents {
		b.NodeNs[i] = a.Stats().BusyNs
	}
	return b
}

// PowerBetween is the cluster's modelled wall power, in watts, over the
// emulated interval between two snapshots: each server's Table 4 envelope
// (hwmodel.Machine.Power) at the busy cores its host and SmartNICs had on
// average. It is modelled, not measured.
func (c *Cluster) PowerBetween(from, to Busy) (float64, error) {
	dt := float64(to.At - from.At)
	if dt <= 0 {
		return 0, fmt.Errorf("cluster: power over an empty interval")
	}
	var total float64
	for s := range c.topo.Servers() {
		m := c.pc.Machine(s)
		var host float64
		var nics []float64
		for n := range c.topo.ServerNodes(s) {
			cores, _, _ := c.pc.Capacity(n)
			busy := min(float64(to.NodeNs[n]-from.NodeNs[n])/dt, cores)
			if c.topo.Node(n).Kind == topology.SmartNIC {
				nics = append(nics, busy)
			} else {
				host = busy
			}
		}
		w, err := m.Power(host, nics)
		if err != nil {
			return 0, err
		}
		total += w
	}
	return total, nil
}
