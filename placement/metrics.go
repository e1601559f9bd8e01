package placement

import (
	"math"

	"github.com/e3-platform/e3/topology"
)

// Hops is the communication distance placement's metrics use: the network
// elements a message crosses from node a to node b, switches plus PCIe
// crossings between a SmartNIC and its host (topology.Path's SwitchHops +
// HostLinks). 0 on one node; 1 between a host and its own SmartNIC (PCIe),
// between two SmartNICs of one server or of one rack (the ToR); one more
// for each end that is a host reached through its SmartNICs; 3 and 5 plus
// those through the aggregation and core switches. Unlike the ordinal
// Level it measures what a message pays, so traffic x Hops adds up.
func Hops(t *topology.Topology, a, b topology.NodeID) int {
	p := t.Path(a, b)
	return p.SwitchHops + p.HostLinks
}

// Metrics measure the quality of an assignment. The power figures are
// modelled (hwmodel.Machine.Power), not measured.
type Metrics struct {
	// OfferedRPS is the application's request rate the metrics assume.
	OfferedRPS float64 `json:"offered_rps"`
	// Placed and Unplaced count the problem's instances with and without
	// a node; OnSmartNIC and OnHost split Placed by node kind.
	Placed     int `json:"placed"`
	Unplaced   int `json:"unplaced"`
	OnSmartNIC int `json:"on_smartnic"`
	OnHost     int `json:"on_host"`
	// CommCost is the sum over edges of traffic (Gb/s) times [Hops]; the
	// lower, the closer communicating instances sit.
	CommCost float64 `json:"comm_cost_gbps_hops"`
	// TrafficGbps is the sum of all edges' traffic, whatever the distance.
	TrafficGbps float64 `json:"traffic_gbps"`
	// PowerW is the modelled wall power of the whole cluster: every
	// server's idle power plus its busy cores' share (the Load's busy
	// cores and the assignment's). IdleW is the idle part.
	PowerW float64 `json:"power_w"`
	IdleW  float64 `json:"idle_w"`
	// RequestsPerJoule is OfferedRPS / PowerW, the paper's energy
	// efficiency, or 0 if an instance is unplaced (the requests cannot all
	// complete). It is the cluster's figure: meaningful when the problem's
	// application is all the cluster runs.
	RequestsPerJoule float64 `json:"requests_per_joule"`
	// MaxCPUUtil, MeanCPUUtil and CVCPUUtil describe busy cores over cores
	// of every compute node of the cluster: the largest, the mean and the
	// coefficient of variation (standard deviation over mean; 0 = even).
	MaxCPUUtil  float64 `json:"max_cpu_util"`
	MeanCPUUtil float64 `json:"mean_cpu_util"`
	CVCPUUtil   float64 `json:"cv_cpu_util"`
}

// Evaluate computes the metrics of assignment a for p at offeredRPS. The
// instances' rates are the problem's; offeredRPS only divides power into
// requests per joule. It visits every node of the cluster (for power and
// balance), so it is for reporting, not for inner loops.
func Evaluate(p *Problem, a Assignment, offeredRPS float64) (Metrics, error) {
	if err := p.Err(); err != nil {
		return Metrics{}, err
	}
	if err := checkShape(p, a); err != nil {
		return Metrics{}, err
	}
	c := p.Cluster()
	t := c.topo
	m := Metrics{OfferedRPS: offeredRPS}
	busy := make(map[topology.NodeID]float64)
	for i, n := range a {
		if n < 0 {
			m.Unplaced++
			continue
		}
		m.Placed++
		if c.isHost(n) {
			m.OnHost++
		} else {
			m.OnSmartNIC++
		}
		if p.instances[i].Deployed < 0 {
			busy[n] += p.needCores(InstanceID(i), n)
		}
	}
	for _, e := range p.edges {
		g := e.Gbps()
		m.TrafficGbps += g
		if na, nb := a[e.From], a[e.To]; na >= 0 && nb >= 0 {
			m.CommCost += g * float64(Hops(t, na, nb))
		}
	}
	var sum, sumSq float64
	nodes := 0
	nicBusy := make([]float64, 0, 8)
	for srv := range t.Servers() {
		mach := c.Machine(srv)
		m.IdleW += mach.IdleW
		nicBusy = nicBusy[:0]
		var hostBusy float64
		for n := range t.ServerNodes(srv) {
			b := min(p.load.use[n].Cores+busy[n], c.capCores[n])
			u := b / c.capCores[n]
			sum += u
			sumSq += u * u
			nodes++
			m.MaxCPUUtil = max(m.MaxCPUUtil, u)
			if c.isHost(n) {
				hostBusy = b
			} else {
				nicBusy = append(nicBusy, b)
			}
		}
		w, err := mach.Power(hostBusy, nicBusy)
		if err != nil {
			return m, err
		}
		m.PowerW += w
	}
	m.MeanCPUUtil = sum / float64(nodes)
	if m.MeanCPUUtil > 0 {
		v := sumSq/float64(nodes) - m.MeanCPUUtil*m.MeanCPUUtil
		m.CVCPUUtil = math.Sqrt(max(v, 0)) / m.MeanCPUUtil
	}
	if m.Unplaced == 0 && m.PowerW > 0 {
		m.RequestsPerJoule = offeredRPS / m.PowerW
	}
	return m, nil
}

// NoLevel is the level of an instance that has no placed upstream
// neighbour (a source, or one whose neighbours are unplaced).
const NoLevel = topology.NumLevels

// Levels returns, for every instance, the level of its node as seen from
// the node of its nearest placed upstream neighbour (for a backup, its
// primary), or NoLevel. It depends on the assignment only, so it reads
// the same for every algorithm.
func Levels(p *Problem, a Assignment) []topology.Level {
	t := p.Topology()
	out := make([]topology.Level, len(p.instances))
	for i := range out {
		out[i] = NoLevel
		n := a[i]
		if n < 0 {
			continue
		}
		if pr := p.instances[i].Primary; pr != None {
			if m := a[pr]; m >= 0 {
				out[i] = t.Distance(m, n)
			}
			continue
		}
		for _, e := range p.in[i] {
			if m := a[p.edges[e].From]; m >= 0 {
				out[i] = min(out[i], t.Distance(m, n))
			}
		}
	}
	return out
}
