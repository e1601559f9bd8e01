package placement

import (
	"fmt"
	"math"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/topology"
)

// Cluster is a topology together with what placement needs to know of its
// machines: the core kind of every node (for service demand) and the
// machine model of every server (for power). It is immutable once built
// and may be shared by any number of Loads and Problems.
type Cluster struct {
	topo *topology.Topology
	// coreKind[n] is the core kind of node n.
	coreKind []hwmodel.CoreKind
	// capCores, capMem and capNet are node n's cores, memory (MB) and the
	// bandwidth of its own ports (Gb/s, one direction).
	capCores, capMem, capNet []float64
	// machine[s] indexes machines for server s.
	machine  []uint16
	machines []hwmodel.Machine
	// hostKinds and nicKinds are bit sets of the core kinds found on hosts
	// and on SmartNICs, for the free-capacity index's lower bound of need.
	hostKinds, nicKinds uint8
	// hostBehindNICs[s] tells that server s's host has no plain NIC ports
	// and sends its traffic over its SmartNICs' ports (ECMP).
	hostBehindNICs []bool
	// serverHost[s] is the host node of server s, plus a final NumNodes,
	// so that server s's nodes are serverHost[s]..serverHost[s+1]-1.
	serverHost []topology.NodeID
	// podLo[p], podHi[p] bound the servers of pod p.
	podLo, podHi []topology.ServerID
}

// NewCluster describes topology t, finding each server's machine by its
// model name among Table 4's machines ([hwmodel.MachineByName]). Every
// server's host and SmartNIC core counts must match its machine, since
// power is modelled per machine.
func NewCluster(t *topology.Topology) (*Cluster, error) {
	return NewClusterWith(t, hwmodel.MachineByName)
}

// NewClusterWith is NewCluster with another machine catalogue.
func NewClusterWith(t *topology.Topology, machineByName func(model string) (hwmodel.Machine, bool)) (*Cluster, error) {
	if t == nil {
		return nil, fmt.Errorf("placement: NewCluster: nil topology")
	}
	nn, ns := t.NumNodes(), t.NumServers()
	c := &Cluster{
		topo:           t,
		coreKind:       make([]hwmodel.CoreKind, nn),
		capCores:       make([]float64, nn),
		capMem:         make([]float64, nn),
		capNet:         make([]float64, nn),
		machine:        make([]uint16, ns),
		hostBehindNICs: make([]bool, ns),
		serverHost:     make([]topology.NodeID, ns+1),
		podLo:          make([]topology.ServerID, t.NumPods()),
		podHi:          make([]topology.ServerID, t.NumPods()),
	}
	c.serverHost[ns] = topology.NodeID(nn)
	for p := range c.podLo {
		c.podLo[p] = topology.ServerID(ns)
	}
	for r := range t.Racks() {
		rk := t.Rack(r)
		c.podLo[rk.Pod] = min(c.podLo[rk.Pod], rk.FirstServer)
		c.podHi[rk.Pod] = max(c.podHi[rk.Pod], rk.FirstServer+topology.ServerID(rk.Servers))
	}
	byModel := map[string]uint16{}
	for s := range t.Servers() {
		srv := t.Server(s)
		mi, ok := byModel[srv.Model]
		if !ok {
			m, found := machineByName(srv.Model)
			if !found {
				return nil, fmt.Errorf("placement: server %s: model %q has no machine profile (known: Table 4's machines)", t.ServerName(s), srv.Model)
			}
			if len(c.machines) == math.MaxUint16 {
				return nil, fmt.Errorf("placement: more than %d machine models", math.MaxUint16)
			}
			mi = uint16(len(c.machines))
			c.machines = append(c.machines, m)
			byModel[srv.Model] = mi
		}
		m := &c.machines[mi]
		c.machine[s] = mi
		c.serverHost[s] = srv.Host
		host := t.Node(srv.Host)
		if host.Cores != m.HostCores {
			return nil, fmt.Errorf("placement: server %s (%s): host has %d cores, machine profile %d", t.ServerName(s), m.Name, host.Cores, m.HostCores)
		}
		if srv.SmartNICs > m.NICs {
			return nil, fmt.Errorf("placement: server %s (%s): %d SmartNICs, machine profile %d", t.ServerName(s), m.Name, srv.SmartNICs, m.NICs)
		}
		c.hostBehindNICs[s] = host.Ports == 0
		for n := range t.ServerNodes(s) {
			nd := t.Node(n)
			kind := m.HostCore
			if nd.Kind == topology.SmartNIC {
				kind = m.NIC.Core
				if nd.Cores != m.NIC.Cores {
					return nil, fmt.Errorf("placement: node %s (%s): %d cores, machine profile's SmartNIC %d", t.Name(n), m.Name, nd.Cores, m.NIC.Cores)
				}
				c.nicKinds |= 1 << kind
			} else {
				c.hostKinds |= 1 << kind
			}
			c.coreKind[n] = kind
			c.capCores[n] = float64(nd.Cores)
			c.capMem[n] = float64(nd.MemoryMB)
			c.capNet[n] = float64(nd.Ports) * nd.PortGbps
		}
	}
	return c, nil
}

// Topology returns the cluster's topology.
func (c *Cluster) Topology() *topology.Topology { return c.topo }

// CoreKind returns the core kind of node n.
func (c *Cluster) CoreKind(n topology.NodeID) hwmodel.CoreKind { return c.coreKind[n] }

// Machine returns the machine profile of server s.
func (c *Cluster) Machine(s topology.ServerID) *hwmodel.Machine {
	return &c.machines[c.machine[s]]
}

// Capacity returns node n's cores, memory (MB) and the rate of its own NIC
// ports (Gb/s in each direction; 0 for a host behind SmartNICs), before
// any Limits.
func (c *Cluster) Capacity(n topology.NodeID) (cores, memoryMB, portGbps float64) {
	return c.capCores[n], c.capMem[n], c.capNet[n]
}

// HostBehindSmartNICs reports whether server s's host has no NIC ports of
// its own and sends its traffic through its SmartNICs' ports by ECMP.
func (c *Cluster) HostBehindSmartNICs(s topology.ServerID) bool { return c.hostBehindNICs[s] }

// CrossesPorts reports whether a message from node a to node b uses NIC
// port bandwidth under [BandwidthCheck]'s traffic model.
func (c *Cluster) CrossesPorts(a, b topology.NodeID) bool { return c.crossesPorts(a, b) }

// Usage is what is in use on one compute node.
type Usage struct {
	// Cores is the number of busy cores (fractional).
	Cores float64
	// MemoryMB is the memory in use.
	MemoryMB float64
	// TxGbps and RxGbps are the node's traffic through NIC ports (out and
	// in). For a host behind SmartNICs it is spread over their ports by
	// ECMP; see [BandwidthCheck].
	TxGbps, RxGbps float64
}

func (u *Usage) add(d Usage, sign float64) {
	u.Cores += sign * d.Cores
	u.MemoryMB += sign * d.MemoryMB
	u.TxGbps += sign * d.TxGbps
	u.RxGbps += sign * d.RxGbps
}

func (u Usage) valid() bool {
	return finiteNonNeg(u.Cores) && finiteNonNeg(u.MemoryMB) && finiteNonNeg(u.TxGbps) && finiteNonNeg(u.RxGbps)
}

// Load is the committed use of a cluster's nodes: the instances deployed
// so far and whatever the runtime reports. Placement reads it; only
// [Load.Apply], [Load.Release] and [Load.Set] change it. A Load is not safe
// for concurrent use: do not change it while a Placer reads it.
//
// Besides the per-node usage it keeps a free-capacity index (a segment tree
// over servers with the largest free cores and memory of their host and of
// their SmartNICs), so that first-fit and level scans skip full servers in
// logarithmic time instead of visiting them.
type Load struct {
	c   *Cluster
	use []Usage
	idx freeIndex
}

// NewLoad returns an empty load on c: nothing in use.
func NewLoad(c *Cluster) *Load {
	l := &Load{c: c, use: make([]Usage, c.topo.NumNodes())}
	l.idx.init(c)
	return l
}

// Cluster returns the cluster the load is on.
func (l *Load) Cluster() *Cluster { return l.c }

// Usage returns what is in use on node n.
func (l *Load) Usage(n topology.NodeID) Usage { return l.use[n] }

// Set replaces the usage of node n, as the runtime's statistics report it.
func (l *Load) Set(n topology.NodeID, u Usage) error {
	if n < 0 || int(n) >= len(l.use) {
		return fmt.Errorf("placement: Load.Set: no node %d (have 0..%d)", n, len(l.use)-1)
	}
	if !u.valid() {
		return fmt.Errorf("placement: Load.Set: node %s: usage %+v, want finite values >= 0", l.c.topo.Name(n), u)
	}
	l.use[n] = u
	l.idx.update(l, l.c.topo.ServerOf(n))
	return nil
}

// Clone returns an independent copy of l.
func (l *Load) Clone() *Load {
	out := &Load{c: l.c, use: append([]Usage(nil), l.use...)}
	out.idx = l.idx.clone()
	return out
}

// Apply commits the placed instances of r (those not deployed before) to
// the load: their cores, memory and the traffic of their edges. After it,
// a new Problem on l sees them as used. Apply fails, changing nothing, if
// r does not fit p (wrong length, unknown node, a deployed instance moved).
func (l *Load) Apply(p *Problem, r *Result) error {
	if r == nil {
		return fmt.Errorf("placement: Load.Apply: nil result")
	}
	return l.commit(p, r.Assignment, +1)
}

// Release takes the instances of a, placed earlier by Apply, off the load:
// the inverse of Apply for an application that is stopped. Instances that
// p lists as deployed are left alone, as Apply left them.
func (l *Load) Release(p *Problem, a Assignment) error { return l.commit(p, a, -1) }

func (l *Load) commit(p *Problem, a Assignment, sign float64) error {
	if p.load != l {
		return fmt.Errorf("placement: the problem was built on another Load")
	}
	if err := p.Err(); err != nil {
		return err
	}
	if err := checkShape(p, a); err != nil {
		return err
	}
	s := NewState(p)
	for i, n := range a {
		if n >= 0 && p.instances[i].Deployed < 0 {
			s.Assign(InstanceID(i), n)
		}
	}
	touched := map[topology.ServerID]bool{}
	for k, n := range s.touched {
		u := &l.use[n]
		u.add(s.delta[k], sign)
		// Releasing what floating-point sums added may leave -1e-16.
		u.Cores, u.MemoryMB = max(u.Cores, 0), max(u.MemoryMB, 0)
		u.TxGbps, u.RxGbps = max(u.TxGbps, 0), max(u.RxGbps, 0)
		touched[l.c.topo.ServerOf(n)] = true
	}
	for srv := range touched {
		l.idx.update(l, srv)
	}
	return nil
}

// checkShape reports an assignment that does not fit its problem.
func checkShape(p *Problem, a Assignment) error {
	if len(a) != len(p.instances) {
		return fmt.Errorf("placement: assignment of %d instances for a problem of %d", len(a), len(p.instances))
	}
	nn := topology.NodeID(p.load.c.topo.NumNodes())
	for i, n := range a {
		in := &p.instances[i]
		if n < Unassigned || n >= nn {
			return fmt.Errorf("placement: instance %d (%s) on node %d, the cluster has nodes 0..%d", i, in.Name, n, nn-1)
		}
		if in.Deployed >= 0 && n != in.Deployed {
			return fmt.Errorf("placement: instance %d (%s) is deployed on %s, the assignment moves it to %s",
				i, in.Name, p.load.c.topo.Name(in.Deployed), nodeName(p.load.c.topo, n))
		}
	}
	return nil
}

func nodeName(t *topology.Topology, n topology.NodeID) string {
	if n < 0 {
		return "nowhere"
	}
	return t.Name(n)
}

// freeIndex is a segment tree over servers. Each tree node holds, over its
// servers, the largest free cores and free memory of a host and of a
// SmartNIC. A query for an instance asks for the first server, in ID
// order, whose host or one of whose SmartNICs might fit it. The bounds are
// maxima taken separately, so a server can pass the filter and still not
// fit (the node with the most free cores is not the one with the most free
// memory); the checkers decide. It never rejects a server that fits,
// because placement's own additions only lower free capacity.
type freeIndex struct {
	size int // leaves: a power of two >= servers
	tree []freeBounds
}

type freeBounds struct{ hostCores, hostMem, nicCores, nicMem float64 }

// noFree is below any need, for a server without SmartNICs and for the
// padding leaves.
const noFree = -1

func (x *freeIndex) init(c *Cluster) {
	x.size = 1
	for x.size < c.topo.NumServers() {
		x.size *= 2
	}
	x.tree = make([]freeBounds, 2*x.size)
	for i := range x.tree {
		x.tree[i] = freeBounds{noFree, noFree, noFree, noFree}
	}
	l := &Load{c: c, use: nil}
	for s := range c.topo.NumServers() {
		x.tree[x.size+s] = l.leaf(topology.ServerID(s))
	}
	for v := x.size - 1; v >= 1; v-- {
		x.tree[v] = maxBounds(x.tree[2*v], x.tree[2*v+1])
	}
}

func (x *freeIndex) clone() freeIndex {
	return freeIndex{size: x.size, tree: append([]freeBounds(nil), x.tree...)}
}

func maxBounds(a, b freeBounds) freeBounds {
	return freeBounds{max(a.hostCores, b.hostCores), max(a.hostMem, b.hostMem), max(a.nicCores, b.nicCores), max(a.nicMem, b.nicMem)}
}

// leaf computes server s's bounds from l's usage (none if l.use is nil).
func (l *Load) leaf(s topology.ServerID) freeBounds {
	c := l.c
	b := freeBounds{noFree, noFree, noFree, noFree}
	host := c.topo.Server(s).Host
	for n := range c.topo.ServerNodes(s) {
		var u Usage
		if l.use != nil {
			u = l.use[n]
		}
		fc, fm := c.capCores[n]-u.Cores, c.capMem[n]-u.MemoryMB
		if n == host {
			b.hostCores, b.hostMem = fc, fm
		} else {
			b.nicCores, b.nicMem = max(b.nicCores, fc), max(b.nicMem, fm)
		}
	}
	return b
}

func (x *freeIndex) update(l *Load, s topology.ServerID) {
	v := x.size + int(s)
	x.tree[v] = l.leaf(s)
	for v /= 2; v >= 1; v /= 2 {
		x.tree[v] = maxBounds(x.tree[2*v], x.tree[2*v+1])
	}
}

// need is what a query asks of a node of each kind. A kind the instance
// may not use has an impossible need.
type need struct{ hostCores, nicCores, mem float64 }

// indexSlack makes the index a little more permissive than the checkers,
// so rounding never hides a node that fits.
const indexSlack = 1e-6

// A zero need passes whatever the bounds, as the checkers let it: a node
// overcommitted by a promotion still takes an instance that needs nothing.
func (q *need) host(b *freeBounds) bool {
	return (q.hostCores == 0 || b.hostCores+indexSlack >= q.hostCores) && (q.mem == 0 || b.hostMem+indexSlack >= q.mem)
}

func (q *need) nic(b *freeBounds) bool {
	return (q.nicCores == 0 || b.nicCores+indexSlack >= q.nicCores) && (q.mem == 0 || b.nicMem+indexSlack >= q.mem)
}

// first returns the first server in [lo, hi) that may fit q, or -1.
func (x *freeIndex) first(lo, hi int, q *need) int {
	if lo >= hi {
		return -1
	}
	return x.find(1, 0, x.size, lo, hi, q)
}

func (x *freeIndex) find(v, vlo, vhi, lo, hi int, q *need) int {
	b := &x.tree[v]
	if vhi <= lo || hi <= vlo || !(q.host(b) || q.nic(b)) {
		return -1
	}
	if vhi-vlo == 1 {
		return vlo
	}
	mid := (vlo + vhi) / 2
	if r := x.find(2*v, vlo, mid, lo, hi, q); r >= 0 {
		return r
	}
	return x.find(2*v+1, mid, vhi, lo, hi, q)
}

// leafBounds returns server s's bounds.
func (x *freeIndex) leafBounds(s topology.ServerID) *freeBounds { return &x.tree[x.size+int(s)] }
