package sim

import (
	"fmt"
	"time"

	"github.com/e3-platform/e3/topology"
)

// Orchestrator is the seat of the data-plane orchestrator (§3.4) in the
// simulator. Every heartbeat period of virtual time the simulator hands
// it what the nodes' agents would report, and carries out the actions it
// returns, as the controller does in a deployment. Like everything that
// decides in E3, it gets time and observations as arguments and returns
// values; the orchestrator package plugs in here through a small adapter.
type Orchestrator interface {
	// Decide is called at the end of each heartbeat period with the
	// observations of that period. obs and its slices are valid until
	// Decide returns; copy what must outlive the call. An action the
	// simulator cannot carry out ends the run with an error naming it.
	Decide(now time.Duration, obs *Observations) []Action
}

// OrchestratorFunc adapts a function to [Orchestrator].
type OrchestratorFunc func(now time.Duration, obs *Observations) []Action

// Decide calls f.
func (f OrchestratorFunc) Decide(now time.Duration, obs *Observations) []Action { return f(now, obs) }

// Observations are one heartbeat period's reports from every node: what
// an orchestrator agent measures (traffic-manager queue depth, bytes in
// and out, per-instance execution times) plus the busy cores.
type Observations struct {
	// Period is the length of the period observed, ending now.
	Period time.Duration
	// Topology is the cluster; NodeIDs index Nodes.
	Topology *topology.Topology
	// Nodes holds one entry per compute node, indexed by NodeID.
	Nodes []NodeObservation
	// Instances holds one entry per instance of every application, in
	// the order of Config.Apps and, within one, app.App.Instances().
	Instances []InstanceObservation
}

// NodeObservation is one node's report for a period.
type NodeObservation struct {
	// Node and Kind identify the node.
	Node topology.NodeID
	Kind topology.Kind
	// Cores is the node's core count; BusyCores the mean number busy.
	Cores     int
	BusyCores float64
	// TMQueue is the number of packets at the SmartNIC's traffic manager
	// (waiting for a core or being forwarded) at the heartbeat;
	// TMQueueMean and TMQueueMax its mean and peak over the period. Zero
	// on hosts.
	TMQueue     int
	TMQueueMean float64
	TMQueueMax  int
	// RxBytes and TxBytes crossed the node's own NIC ports during the
	// period (wire bytes); PortGbps is their combined rate, each way.
	RxBytes, TxBytes int64
	PortGbps         float64
}

// InstanceObservation is one instance's report for a period.
type InstanceObservation struct {
	// App indexes Config.Apps; Instance indexes that application's
	// Instances().
	App, Instance int
	// ID is the instance's ID ("kvs.3"), Service its microservice, Node
	// where it runs (-1 for an unplaced backup).
	ID      string
	Service string
	Node    topology.NodeID
	// Primary, Migratable and Migrating describe its state.
	Primary    bool
	Migratable bool
	Migrating  bool
	// Processed counts the messages it finished in the period; MeanExec
	// is their mean execution (service) time on a core and MeanSojourn
	// their mean time from joining the node's queue to finishing.
	Processed   int64
	MeanExec    time.Duration
	MeanSojourn time.Duration
}

// ActionKind says what an [Action] does.
type ActionKind uint8

// The actions.
const (
	// Migrate moves an instance to another node by cold migration.
	Migrate ActionKind = iota + 1
)

// Action is one decision of an orchestrator.
type Action struct {
	// Kind is what to do (Migrate).
	Kind ActionKind
	// App and Instance name the instance as in InstanceObservation.
	App, Instance int
	// To is the destination node.
	To topology.NodeID
}

// Migration records one migration the simulator carried out.
type Migration struct {
	// App indexes Config.Apps; Instance is the instance's ID; From and To
	// name the nodes.
	App      int    `json:"app"`
	Instance string `json:"instance"`
	From     string `json:"from"`
	To       string `json:"to"`
	// Start and End are virtual times since the start of the run.
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
	// StateBytes is the state moved; Held the messages that waited.
	StateBytes int64 `json:"state_bytes"`
	Held       int   `json:"held"`
}

type pendingMigration struct {
	inst     int32
	from, to topology.NodeID
	start    int64
	state    int64
}

// hbStart snapshots the counters at the start of a heartbeat period.
func (s *sim) hbStart() {
	for i := range s.nodes {
		n := &s.nodes[i]
		n.hbArea0 = n.areaAt(s.now)
		n.hbTMArea0 = n.tmAreaAt(s.now)
		n.hbTMMax = n.tm
	}
	for i := range s.ports {
		s.ports[i].hbRxByt, s.ports[i].hbTxBytes = 0, 0
	}
	for i := range s.insts {
		s.insts[i].hb = instStats{}
	}
}

// heartbeat builds the period's observations, consults the orchestrator
// and starts the migrations it asks for.
func (s *sim) heartbeat() error {
	period := int64(s.p.HeartbeatPeriod)
	o := &s.obs
	if o.Nodes == nil {
		o.Topology = s.topo
		o.Nodes = make([]NodeObservation, len(s.nodes))
		o.Instances = make([]InstanceObservation, len(s.insts))
	}
	o.Period = s.p.HeartbeatPeriod
	for i := range s.nodes {
		n := &s.nodes[i]
		no := &o.Nodes[i]
		*no = NodeObservation{
			Node: topology.NodeID(i), Cores: int(n.cores),
			BusyCores:   float64(n.areaAt(s.now)-n.hbArea0) / float64(period),
			TMQueue:     int(n.tm),
			TMQueueMean: float64(n.tmAreaAt(s.now)-n.hbTMArea0) / float64(period),
			TMQueueMax:  int(n.hbTMMax),
		}
		if n.nic {
			no.Kind = topology.SmartNIC
		}
		for p := n.portLo; p < n.portHi; p++ {
			ps := &s.ports[p]
			no.RxBytes += ps.hbRxByt
			no.TxBytes += ps.hbTxBytes
			no.PortGbps += ps.gbps
		}
	}
	for i := range s.insts {
		in := &s.insts[i]
		ar := &s.apps[in.app]
		idx := i - int(ar.instBase)
		ai := ar.a.Instances()[idx]
		io := &o.Instances[i]
		*io = InstanceObservation{
			App: int(in.app), Instance: idx, ID: ai.ID, Service: ai.Node.Service,
			Node: in.node, Primary: in.primary, Migratable: in.migratable, Migrating: in.migrating,
			Processed: in.hb.processed,
		}
		if in.hb.processed > 0 {
			io.MeanExec = time.Duration(in.hb.serviceNs / in.hb.processed)
			io.MeanSojourn = time.Duration(in.hb.sojNs / in.hb.processed)
		}
	}
	actions := s.cfg.Orchestrator.Decide(time.Duration(s.now), o)
	s.hbStart()
	for k, act := range actions {
		if err := s.apply(act); err != nil {
			return fmt.Errorf("sim: orchestrator action %d at %v: %w", k, time.Duration(s.now), err)
		}
	}
	return nil
}

// apply carries out one action.
func (s *sim) apply(act Action) error {
	if act.Kind != Migrate {
		return fmt.Errorf("unknown action kind %d (only Migrate)", act.Kind)
	}
	if act.App < 0 || act.App >= len(s.apps) {
		return fmt.Errorf("migrate: app %d, the run has apps 0..%d", act.App, len(s.apps)-1)
	}
	ar := &s.apps[act.App]
	insts := ar.a.Instances()
	if act.Instance < 0 || act.Instance >= len(insts) {
		return fmt.Errorf("migrate: %s: instance %d, the application has 0..%d", ar.a.Name, act.Instance, len(insts)-1)
	}
	gi := ar.instBase + int32(act.Instance)
	in := &s.insts[gi]
	id := insts[act.Instance].ID
	switch {
	case act.To < 0 || int(act.To) >= len(s.nodes):
		return fmt.Errorf("migrate %s/%s: to node %d, the cluster has nodes 0..%d", ar.a.Name, id, act.To, len(s.nodes)-1)
	case !in.migratable:
		return fmt.Errorf("migrate %s/%s: its service cannot migrate (state outside reliable collections)", ar.a.Name, id)
	case in.migrating:
		return fmt.Errorf("migrate %s/%s: already migrating", ar.a.Name, id)
	case in.node < 0:
		return fmt.Errorf("migrate %s/%s: it has no node (an unplaced backup)", ar.a.Name, id)
	case in.node == act.To:
		return fmt.Errorf("migrate %s/%s: already on %s", ar.a.Name, id, s.topo.Name(act.To))
	}
	gbps := s.p.MigrationGbps
	if gbps == 0 {
		gbps = s.pathGbps(in.node, act.To)
	}
	d := int64(s.p.MigrationFixed) + int64(float64(in.stateBytes)*8/gbps+0.5)
	in.migrating = true
	s.pending = append(s.pending, pendingMigration{inst: gi, from: in.node, to: act.To, start: s.now, state: in.stateBytes})
	s.q.push(s.now+d, evMigrated, int32(len(s.pending)-1), 0)
	return nil
}

// pathGbps is the rate of the slowest link between nodes a and b.
func (s *sim) pathGbps(a, b topology.NodeID) float64 {
	p := s.topo.Path(a, b)
	na, nb := s.topo.Node(a), s.topo.Node(b)
	if p.Via == topology.ViaHostLink {
		return max(na.HostLinkGbps, nb.HostLinkGbps)
	}
	g := min(portGbps(s.topo, na), portGbps(s.topo, nb))
	if p.SwitchHops > 1 {
		g = min(g, s.topo.Fabric().UplinkGbps)
	}
	return g
}

// migrated finishes migration k: the instance runs on its new node and
// the messages held for it are sent there.
func (s *sim) migrated(k int32) {
	pm := &s.pending[k]
	in := &s.insts[pm.inst]
	in.node = pm.to
	in.migrating = false
	ar := &s.apps[in.app]
	held := in.held
	in.held = nil
	s.migrations = append(s.migrations, Migration{
		App: int(in.app), Instance: ar.a.Instances()[pm.inst-ar.instBase].ID,
		From: s.topo.Name(pm.from), To: s.topo.Name(pm.to),
		Start: time.Duration(pm.start), End: time.Duration(s.now),
		StateBytes: pm.state, Held: len(held),
	})
	ar.assignment[pm.inst-ar.instBase] = pm.to
	for _, m := range held {
		if s.msgs[m].from < 0 {
			s.fromClient(m)
		} else {
			s.send(m, s.msgs[m].from)
		}
	}
}
