package sim

import (
	"fmt"
	"time"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// Result is what a run measured over its window (the Duration after the
// Warmup). Power and energy are modelled (hwmodel), not measured. A Result
// holds no maps and no pointers into the simulator, so it marshals to the
// same JSON for the same run.
type Result struct {
	// Seed is the run's seed; Window its measured virtual time.
	Seed   uint64        `json:"seed"`
	Window time.Duration `json:"window_ns"`
	// Events is the number of events the run processed, warm-up included.
	Events uint64 `json:"events"`
	// Completed and Throughput sum over the applications.
	Completed  int64   `json:"completed"`
	Throughput float64 `json:"throughput_rps"`
	// PowerW is the modelled wall power of the whole cluster, averaged
	// over the window (every server's idle power plus its busy cores');
	// IdleW its idle part; EnergyJ = PowerW x Window.
	PowerW  float64 `json:"power_w"`
	IdleW   float64 `json:"idle_w"`
	EnergyJ float64 `json:"energy_j"`
	// RequestsPerJoule is Completed / EnergyJ: the paper's energy
	// efficiency, on whole-server wall power.
	RequestsPerJoule float64 `json:"requests_per_joule"`

	Apps       []AppResult    `json:"apps"`
	Servers    []ServerResult `json:"servers"`
	Nodes      []NodeResult   `json:"nodes"`
	Ports      []PortResult   `json:"ports"`
	Migrations []Migration    `json:"migrations"`
}

// AppResult is one application's measurements.
type AppResult struct {
	// Name is the application's name.
	Name string `json:"name"`
	// Sent requests in the window; Completed those whose reply reached
	// the client in the window; Rejected open-loop arrivals turned away
	// at MaxInFlight; InFlight those outstanding at the end.
	Sent       int64   `json:"sent"`
	Completed  int64   `json:"completed"`
	Rejected   int64   `json:"rejected"`
	InFlight   int     `json:"in_flight"`
	Throughput float64 `json:"throughput_rps"`
	// Client-observed latency of the completed requests: send to reply.
	// Mean and Max are exact; percentiles come from an HDR histogram with
	// three significant digits (each is the highest value equivalent to
	// the true percentile at that resolution).
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
	// Assignment is every instance's node at the end of the run (after
	// any migrations), indexed like app.App.Instances().
	Assignment placement.Assignment `json:"assignment"`
	// Instances are the per-instance execution statistics.
	Instances []InstanceResult `json:"instances"`
}

// InstanceResult is one instance's measurements over the window.
type InstanceResult struct {
	// ID is the instance's ID ("sql.3"); Node its node's name.
	ID   string `json:"id"`
	Node string `json:"node"` // at the end of the run; "" if unassigned
	// Processed messages; their mean execution time on a core, and mean
	// time from joining the node's queue to finishing.
	Processed   int64         `json:"processed"`
	MeanExec    time.Duration `json:"mean_exec_ns"`
	MeanSojourn time.Duration `json:"mean_sojourn_ns"`
}

// ServerResult is one server's modelled power.
type ServerResult struct {
	// Name is the server's name ("r0/s1"), Model its machine; PowerW its
	// mean modelled wall power over the window, IdleW the idle part.
	Name   string  `json:"name"`
	Model  string  `json:"model"`
	PowerW float64 `json:"power_w"`
	IdleW  float64 `json:"idle_w"`
}

// NodeResult is one compute node's measurements over the window.
type NodeResult struct {
	// Node, Name and Kind ("host", "smartnic") identify the node.
	Node  topology.NodeID `json:"node"`
	Name  string          `json:"name"`
	Kind  string          `json:"kind"`
	Cores int             `json:"cores"`
	// BusyCores is the mean number of busy cores; Utilisation that over
	// Cores.
	BusyCores   float64 `json:"busy_cores"`
	Utilisation float64 `json:"utilisation"`
	// Traffic manager (SmartNICs): packets forwarded to or from the host,
	// and the packets queued or in service, on average and at peak.
	TMPackets   int64   `json:"tm_packets"`
	TMQueueMean float64 `json:"tm_queue_mean"`
	TMQueueMax  int     `json:"tm_queue_max"`
}

// PortResult is one NIC port's traffic over the window.
type PortResult struct {
	// Node and Index name the port: port Index of the named node.
	Node  string `json:"node"`
	Index int    `json:"index"`
	// RxGbps and TxGbps are the wire rates into and out of the node;
	// RxPackets the frames received.
	RxGbps    float64 `json:"rx_gbps"`
	TxGbps    float64 `json:"tx_gbps"`
	RxPackets int64   `json:"rx_packets"`
	// RxUtilisation and TxUtilisation are the rates over the port's.
	RxUtilisation float64 `json:"rx_utilisation"`
	TxUtilisation float64 `json:"tx_utilisation"`
}

// result assembles the Result after the run.
func (s *sim) result() (*Result, error) {
	win := float64(s.w1 - s.w0)
	sec := win / 1e9
	r := &Result{Seed: s.cfg.Seed, Window: time.Duration(s.w1 - s.w0), Events: s.events}

	for i := range s.apps {
		ar := &s.apps[i]
		res := AppResult{
			Name: ar.a.Name, Sent: ar.sent, Completed: ar.completed, Rejected: ar.rejected,
			InFlight: ar.inFlight, Throughput: float64(ar.completed) / sec,
			Assignment: append(placement.Assignment(nil), ar.assignment...),
		}
		if ar.completed > 0 {
			res.Mean = time.Duration(ar.latSum/float64(ar.completed) + 0.5)
			res.P50 = time.Duration(ar.hist.ValueAtQuantile(50))
			res.P90 = time.Duration(ar.hist.ValueAtQuantile(90))
			res.P99 = time.Duration(ar.hist.ValueAtQuantile(99))
			res.P999 = time.Duration(ar.hist.ValueAtQuantile(99.9))
			res.Max = time.Duration(ar.latMax)
		}
		for k, ai := range ar.a.Instances() {
			in := &s.insts[int(ar.instBase)+k]
			ir := InstanceResult{ID: ai.ID, Processed: in.win.processed}
			if in.node >= 0 {
				ir.Node = s.topo.Name(in.node)
			}
			if in.win.processed > 0 {
				ir.MeanExec = time.Duration(in.win.serviceNs / in.win.processed)
				ir.MeanSojourn = time.Duration(in.win.sojNs / in.win.processed)
			}
			res.Instances = append(res.Instances, ir)
		}
		r.Completed += res.Completed
		r.Throughput += res.Throughput
		r.Apps = append(r.Apps, res)
	}

	busy := make([]float64, len(s.nodes))
	for i := range s.nodes {
		n := &s.nodes[i]
		busy[i] = float64(n.areaAt(s.w1)-n.area0) / win
		nr := NodeResult{
			Node: topology.NodeID(i), Name: s.topo.Name(topology.NodeID(i)), Kind: "host",
			Cores: int(n.cores), BusyCores: busy[i], Utilisation: busy[i] / float64(n.cores),
			TMPackets: n.tmPackets, TMQueueMean: float64(n.tmAreaAt(s.w1)-n.tmArea0) / win,
			TMQueueMax: int(n.tmMax),
		}
		if n.nic {
			nr.Kind = "smartnic"
		}
		r.Nodes = append(r.Nodes, nr)
	}
	for srv := range s.topo.Servers() {
		m := s.cluster.Machine(srv)
		var host float64
		var nics []float64
		for n := range s.topo.ServerNodes(srv) {
			b := min(busy[n], float64(s.nodes[n].cores))
			if s.nodes[n].nic {
				nics = append(nics, b)
			} else {
				host = b
			}
		}
		w, err := m.Power(host, nics)
		if err != nil {
			return nil, fmt.Errorf("sim: server %s: %w", s.topo.ServerName(srv), err)
		}
		r.Servers = append(r.Servers, ServerResult{Name: s.topo.ServerName(srv), Model: m.Name, PowerW: w, IdleW: m.IdleW})
		r.PowerW += w
		r.IdleW += m.IdleW
	}
	r.EnergyJ = r.PowerW * sec
	if r.EnergyJ > 0 {
		r.RequestsPerJoule = float64(r.Completed) / r.EnergyJ
	}
	for i := range s.ports {
		ps := &s.ports[i]
		n := ps.node
		pr := PortResult{
			Node: s.topo.Name(n), Index: i - int(s.nodes[n].portLo),
			RxGbps: float64(ps.rxBytes) * 8 / win, TxGbps: float64(ps.txBytes) * 8 / win,
			RxPackets: ps.rxPackets,
		}
		pr.RxUtilisation = pr.RxGbps / ps.gbps
		pr.TxUtilisation = pr.TxGbps / ps.gbps
		r.Ports = append(r.Ports, pr)
	}
	r.Migrations = append([]Migration(nil), s.migrations...)
	return r, nil
}
