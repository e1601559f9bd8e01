package cluster

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/topology"

	// HCM registers itself with placement.
	_ "github.com/e3-platform/e3/placement/hcm"
)

// Controller is the emulated cluster's minimal controller: it places
// applications, pushes routing tables (each with a higher epoch) to every
// agent, and keeps the latest heartbeat of each. The replicated controller
// with migration and failover is another package's; this one is what `e3
// run` needs.
type Controller struct {
	c *Cluster

	mu      sync.Mutex
	table   *runtime.Table
	nextApp uint32
	beats   map[topology.NodeID]*runtime.Heartbeat
	nbeats  int
}

func newController(c *Cluster) *Controller {
	return &Controller{c: c, beats: map[topology.NodeID]*runtime.Heartbeat{}, nextApp: 1}
}

// Heartbeat implements runtime.Controller.
func (ct *Controller) Heartbeat(hb *runtime.Heartbeat) {
	ct.mu.Lock()
	ct.beats[hb.Node] = hb
	ct.nbeats++
	ct.mu.Unlock()
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

func (ct *Controller) close() {}

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
	spec, err := hwmodel.ClusterByName(clusterName)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	topo, err := hwmodel.Topology(spec)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	pc, err := placement.NewCluster(topo)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
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
// the instances the table puts on it.
func (c *Cluster) Deploy(plan *Plan, seed int64) (*Deployment, error) {
	if plan.Cluster != c.spec.Name {
		return nil, fmt.Errorf("cluster: plan for %s deployed on %s", plan.Cluster, c.spec.Name)
	}
	ct := c.ctrl
	ct.mu.Lock()
	defer ct.mu.Unlock()
	nodes := make([]topology.NodeID, len(plan.Result.Assignment))
	for i, n := range plan.Result.Assignment {
		if n < 0 {
			return nil, fmt.Errorf("cluster: %s: instance %s is unplaced", plan.App.Name, plan.App.Instances()[i].ID)
		}
		nodes[i] = n
	}
	t := &runtime.Table{Epoch: 1, Addrs: c.addrs}
	if ct.table != nil {
		t.Epoch = ct.table.Epoch + 1
		t.Apps = append(t.Apps, ct.table.Apps...)
	}
	id := ct.nextApp
	t.Apps = append(t.Apps, runtime.AppRoute{ID: id, App: plan.App, Nodes: nodes, Seed: seed})
	for _, a := range c.agents {
		if err := a.Apply(t); err != nil {
			return nil, fmt.Errorf("cluster: deploy %s: %w", plan.App.Name, err)
		}
	}
	ct.table = t
	ct.nextApp++
	return &Deployment{ID: id, App: plan.App, Plan: plan, Nodes: nodes}, nil
}

// Busy is a snapshot of the cluster's core use: cumulative busy core time
// per node at an emulated instant.
type Busy struct {
	At     int64
	NodeNs []int64
}

// BusySnapshot reads every agent's busy time now.
func (c *Cluster) BusySnapshot() Busy {
	b := Busy{At: c.Now(), NodeNs: make([]int64, len(c.agents))}
	for i, a := range c.agents {
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
