package controller

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
)

// MaxEvents is the capacity of the replicated event ring. It is part of
// the state machine (every replica must drop the same events), so it is a
// constant, not a setting: 1024 events hold the story of a few hundred
// deploys and failovers at a few hundred kilobytes of snapshot.
const MaxEvents = 1024

// Roles of compute nodes, as agents register them.
const (
	RoleHost     = "host"
	RoleSmartNIC = "smartnic"
)

// Roles of instances within their shard.
const (
	RolePrimary = "primary"
	RoleBackup  = "backup"
)

// Errors that Apply hands back (wrapped, with detail) for commands the
// state refuses. They are outcomes, not failures of the replica: the state
// is unchanged and the API maps each to an HTTP status.
var (
	// ErrConflict: the command clashes with the state (an application of
	// that name is deployed, a node is registered as something else).
	ErrConflict = errors.New("controller: conflict")
	// ErrNotFound: the command names something the state does not hold.
	ErrNotFound = errors.New("controller: not found")
	// ErrInvalid: the command is malformed or does not fit the cluster.
	ErrInvalid = errors.New("controller: invalid")
)

// NodeRecord is a registered compute node: the agent of one host or one
// SmartNIC. Liveness (the last heartbeat) is not here: it is the leader's
// own knowledge and is not replicated.
type NodeRecord struct {
	// Name is the node's topology name, "r0/s1/nic0".
	Name string `json:"name"`
	// ID is its topology.NodeID.
	ID int `json:"id"`
	// Role is RoleHost or RoleSmartNIC; Server is the server's name
	// ("r0/s1"), the fault domain.
	Role   string `json:"role"`
	Server string `json:"server"`
	// Addr is the agent's data endpoint (host:port), the address routing
	// tables carry.
	Addr string `json:"addr"`
	// Cores the agent runs (0: the topology's).
	Cores int `json:"cores,omitempty"`
	// Registered is when the node first registered and Incarnation how
	// many times it did (a restarted agent registers again).
	Registered  int64  `json:"registered"`
	Incarnation uint64 `json:"incarnation"`
	// Failed is set when failover declared the node's server failed, and
	// cleared when the node reports again.
	Failed   bool  `json:"failed"`
	FailedAt int64 `json:"failed_at,omitempty"`
}

// InstanceRecord is where one instance of an application runs.
type InstanceRecord struct {
	// Instance is the instance's ID in the application ("sql.3.b1");
	// records are kept in the application's instance order, so the slot
	// index is the runtime's instance index.
	Instance string `json:"instance"`
	Service  string `json:"service"`
	// Role is the slot's role: RolePrimary for the shard's primary slot.
	// After a promotion the primary slot runs on the node that held the
	// promoted backup (see PromotedFrom).
	Role string `json:"role"`
	// Node is the node's name, "" while the instance has no node.
	Node string `json:"node"`
	// Level is the node's distance level from the upstream instance the
	// placer started from ("" if none).
	Level string `json:"level,omitempty"`
	// Explanation is the placer's account of the decision (for the
	// deploy) or the failover's reason (after a change).
	Explanation string `json:"explanation,omitempty"`
	// PromotedFrom names the backup slot whose replica now serves as this
	// primary: the agent on Node holds the shard's state under that name.
	PromotedFrom string `json:"promoted_from,omitempty"`
}

// AppRecord is a deployed application.
type AppRecord struct {
	Name string `json:"name"`
	// ID is the application's number on the wire (transport.Header.App).
	ID uint32 `json:"id"`
	// File and Spec are the YAML spec as deployed.
	File string `json:"file"`
	Spec string `json:"spec"`
	// RPS is the offered load placement planned for; Seed seeds the
	// placer and the instances; Algo is the placer.
	RPS  float64 `json:"rps"`
	Seed uint64  `json:"seed"`
	Algo string  `json:"algo"`
	// Deployed is when (leader's clock, Unix ns) and at which epoch.
	Deployed int64  `json:"deployed"`
	Epoch    uint64 `json:"epoch"`
	// Instances are in the application's instance order.
	Instances []InstanceRecord `json:"instances"`
}

// MigrationRecord is a migration in flight.
type MigrationRecord struct {
	ID       uint64 `json:"id"`
	App      string `json:"app"`
	Instance string `json:"instance"`
	From     string `json:"from"`
	To       string `json:"to"`
	Started  int64  `json:"started"`
	Reason   string `json:"reason"`
}

// ReplicaRecord is a controller replica: its raft identity and the
// address of its HTTP API, which followers need to forward to the leader.
type ReplicaRecord struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

// Event is one entry of the event log: placements, failures, migrations.
type Event struct {
	Seq      uint64 `json:"seq"`
	At       int64  `json:"at"`
	Kind     string `json:"kind"`
	App      string `json:"app,omitempty"`
	Instance string `json:"instance,omitempty"`
	Node     string `json:"node,omitempty"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Message  string `json:"message"`
}

// State is the controller's replicated state. Only [State.Apply] changes
// it, and Apply is deterministic: the same commands in the same order give
// every replica the same State.
type State struct {
	// Cluster is the hwmodel cluster the controller manages; the
	// topology, node names and IDs derive from it.
	Cluster string `json:"cluster"`
	// Epoch is the routing-table epoch; it grows with every change of
	// routes (deploy, undeploy, failover, migration, a node's address).
	Epoch         uint64                      `json:"epoch"`
	NextAppID     uint32                      `json:"next_app_id"`
	NextMigration uint64                      `json:"next_migration"`
	Nodes         map[string]*NodeRecord      `json:"nodes"`
	Apps          map[string]*AppRecord       `json:"apps"`
	Migrations    map[uint64]*MigrationRecord `json:"migrations"`
	Replicas      map[string]*ReplicaRecord   `json:"replicas"`
	// Events is a ring of the last MaxEvents events, oldest first;
	// NextEvent is the sequence number of the next.
	Events    []Event `json:"events"`
	NextEvent uint64  `json:"next_event"`
	// Index is the raft index of the last command applied.
	Index uint64 `json:"index"`

	// Derived from the fields above, rebuilt on restore; not replicated.
	topo *topology.Topology
	apps map[string]*app.App
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		NextAppID: 1, NextMigration: 1,
		Nodes: map[string]*NodeRecord{}, Apps: map[string]*AppRecord{},
		Migrations: map[uint64]*MigrationRecord{}, Replicas: map[string]*ReplicaRecord{},
		apps: map[string]*app.App{},
	}
}

// Topology returns the cluster's topology (nil before the cluster is set).
func (s *State) Topology() *topology.Topology { return s.topo }

// App returns the parsed application of a deployed app record.
func (s *State) App(name string) *app.App { return s.apps[name] }

// TopologyOf builds the topology of a cluster name (a Table 4 cluster or
// NxMACHINE), as every replica does.
func TopologyOf(cluster string) (*topology.Topology, error) {
	hc, err := hwmodel.ClusterByName(cluster)
	if err != nil {
		return nil, err
	}
	return hwmodel.Topology(hc)
}

// rebuild recomputes the derived fields after a restore.
func (s *State) rebuild() error {
	s.topo, s.apps = nil, map[string]*app.App{}
	if s.Nodes == nil {
		s.Nodes = map[string]*NodeRecord{}
	}
	if s.Apps == nil {
		s.Apps = map[string]*AppRecord{}
	}
	if s.Migrations == nil {
		s.Migrations = map[uint64]*MigrationRecord{}
	}
	if s.Replicas == nil {
		s.Replicas = map[string]*ReplicaRecord{}
	}
	if s.Cluster != "" {
		t, err := TopologyOf(s.Cluster)
		if err != nil {
			return fmt.Errorf("%w: snapshot cluster %q: %w", ErrInvalid, s.Cluster, err)
		}
		s.topo = t
	}
	for name, r := range s.Apps {
		a, err := app.Load(r.File, []byte(r.Spec), services.Registry())
		if err != nil {
			return fmt.Errorf("%w: snapshot application %s: %w", ErrInvalid, name, err)
		}
		if len(a.Instances()) != len(r.Instances) {
			return fmt.Errorf("%w: snapshot application %s: %d instance records for %d instances", ErrInvalid, name, len(r.Instances), len(a.Instances()))
		}
		s.apps[name] = a
	}
	return nil
}

// event appends an event to the ring.
func (s *State) event(at int64, e Event) {
	e.Seq, e.At = s.NextEvent, at
	s.NextEvent++
	if len(s.Events) >= MaxEvents {
		s.Events = slices.Delete(s.Events, 0, len(s.Events)-MaxEvents+1)
	}
	s.Events = append(s.Events, e)
}

// ApplyResult is what applying a command returns to the replica that
// proposed it.
type ApplyResult struct {
	// Epoch is the routing epoch after the command.
	Epoch uint64
	// AppID is the id given to a deployed application.
	AppID uint32
	// Migrations are the ids given to the migrations a failover command
	// started, in its order.
	Migrations []uint64
	// Err is the reason the command was refused (state unchanged).
	Err error
}

// Apply applies one command at raft index idx. A refused command leaves
// the state as it was and says why in ApplyResult.Err; Apply itself never
// fails, because every replica must take the same decision.
func (s *State) Apply(idx uint64, c *Command) ApplyResult {
	var res ApplyResult
	var err error
	switch c.Op {
	case OpInit:
		err = s.applyInit(c)
	case OpRegister:
		err = s.applyRegister(c)
	case OpDeploy:
		res.AppID, err = s.applyDeploy(c)
	case OpUndeploy:
		err = s.applyUndeploy(c)
	case OpFailover:
		res.Migrations, err = s.applyFailover(c)
	case OpMigrationEnd:
		err = s.applyMigrationEnd(c)
	case OpReplica:
		err = s.applyReplica(c)
	default:
		err = fmt.Errorf("%w: unknown command %q", ErrInvalid, c.Op)
	}
	if idx > s.Index {
		s.Index = idx
	}
	res.Epoch, res.Err = s.Epoch, err
	return res
}

func (s *State) needCluster(op string) error {
	if s.topo == nil {
		return fmt.Errorf("%w: %s before the cluster is initialised", ErrInvalid, op)
	}
	return nil
}

func (s *State) applyInit(c *Command) error {
	in := c.Init
	if in == nil {
		return fmt.Errorf("%w: init command without its body", ErrInvalid)
	}
	if s.Cluster != "" {
		if strings.EqualFold(s.Cluster, in.Cluster) {
			return nil
		}
		return fmt.Errorf("%w: the cluster is %s, not %s", ErrConflict, s.Cluster, in.Cluster)
	}
	t, err := TopologyOf(in.Cluster)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.Cluster, s.topo = in.Cluster, t
	s.event(c.At, Event{Kind: "cluster", Message: fmt.Sprintf("cluster %s: %d servers, %d compute nodes", in.Cluster, t.NumServers(), t.NumNodes())})
	return nil
}

// CheckRegistration validates a registration against the topology: the
// node exists, its role is its kind, its server is its server. It returns
// the node's ID.
func CheckRegistration(t *topology.Topology, r *RegisterCmd) (topology.NodeID, error) {
	id, err := t.Lookup(r.Node)
	if err != nil {
		return -1, fmt.Errorf("%w: node: %w", ErrInvalid, err)
	}
	kind := RoleHost
	if t.Node(id).Kind == topology.SmartNIC {
		kind = RoleSmartNIC
	}
	if r.Role != kind {
		return -1, fmt.Errorf("%w: role %q: node %s is a %s", ErrInvalid, r.Role, r.Node, kind)
	}
	if srv := t.ServerName(t.ServerOf(id)); r.Server != "" && r.Server != srv {
		return -1, fmt.Errorf("%w: server %q: node %s belongs to server %s", ErrInvalid, r.Server, r.Node, srv)
	}
	if err := checkAddr(r.Addr); err != nil {
		return -1, fmt.Errorf("%w: addr: %w", ErrInvalid, err)
	}
	if r.Cores < 0 || r.Cores > 1024 {
		return -1, fmt.Errorf("%w: cores %d, want 0..1024 (0: the topology's)", ErrInvalid, r.Cores)
	}
	return id, nil
}

func (s *State) applyRegister(c *Command) error {
	r := c.Register
	if r == nil {
		return fmt.Errorf("%w: register command without its body", ErrInvalid)
	}
	if err := s.needCluster("register"); err != nil {
		return err
	}
	id, err := CheckRegistration(s.topo, r)
	if err != nil {
		return err
	}
	name := s.topo.Name(id)
	for _, o := range s.Nodes {
		if o.Name != name && o.Addr == r.Addr {
			return fmt.Errorf("%w: addr %s is registered to node %s", ErrConflict, r.Addr, o.Name)
		}
	}
	n := s.Nodes[name]
	if n == nil {
		n = &NodeRecord{Name: name, ID: int(id), Role: r.Role, Server: s.topo.ServerName(s.topo.ServerOf(id)), Registered: c.At}
		s.Nodes[name] = n
	}
	moved := n.Addr != r.Addr
	n.Addr, n.Cores = r.Addr, r.Cores
	n.Incarnation++
	msg := fmt.Sprintf("%s registered at %s (incarnation %d)", name, r.Addr, n.Incarnation)
	if moved {
		// Routing tables carry node addresses: a new address is a new
		// table.
		s.Epoch++
		msg += fmt.Sprintf("; routes at epoch %d", s.Epoch)
	}
	s.event(c.At, Event{Kind: "node-registered", Node: name, Message: msg})
	return nil
}

func (s *State) applyDeploy(c *Command) (uint32, error) {
	d := c.Deploy
	if d == nil {
		return 0, fmt.Errorf("%w: deploy command without its body", ErrInvalid)
	}
	if err := s.needCluster("deploy"); err != nil {
		return 0, err
	}
	a, err := app.Load(d.File, []byte(d.Spec), services.Registry())
	if err != nil {
		return 0, fmt.Errorf("%w: spec: %w", ErrInvalid, err)
	}
	if old := s.Apps[a.Name]; old != nil {
		return 0, fmt.Errorf("%w: application %s is already deployed (id %d, epoch %d); undeploy it first", ErrConflict, a.Name, old.ID, old.Epoch)
	}
	insts := a.Instances()
	if len(d.Instances) != len(insts) {
		return 0, fmt.Errorf("%w: %d placements for the %d instances of %s", ErrInvalid, len(d.Instances), len(insts), a.Name)
	}
	recs := make([]InstanceRecord, len(insts))
	onNIC, onHost := 0, 0
	for i, in := range insts {
		p := d.Instances[i]
		if p.Instance != in.ID {
			return 0, fmt.Errorf("%w: placement %d is for %q, the application's instance %d is %s", ErrInvalid, i, p.Instance, i, in.ID)
		}
		if p.Node != "" {
			nr, err := s.liveNode(p.Node)
			if err != nil {
				return 0, fmt.Errorf("instance %s: %w", in.ID, err)
			}
			if nr.Role == RoleSmartNIC {
				onNIC++
			} else {
				onHost++
			}
		}
		role := RolePrimary
		if !in.IsPrimary() {
			role = RoleBackup
		}
		recs[i] = InstanceRecord{Instance: in.ID, Service: in.Node.Service, Role: role, Node: p.Node, Level: p.Level, Explanation: p.Explanation}
	}
	s.Epoch++
	r := &AppRecord{Name: a.Name, ID: s.NextAppID, File: d.File, Spec: d.Spec, RPS: d.RPS, Seed: d.Seed, Algo: d.Algo,
		Deployed: c.At, Epoch: s.Epoch, Instances: recs}
	s.NextAppID++
	s.Apps[a.Name] = r
	s.apps[a.Name] = a
	s.event(c.At, Event{Kind: "deployed", App: a.Name, Message: fmt.Sprintf("%s deployed as app %d by %s at %.0f requests/s: %d instances, %d on SmartNICs, %d on hosts, %d unplaced; routes at epoch %d",
		a.Name, r.ID, d.Algo, d.RPS, len(recs), onNIC, onHost, len(recs)-onNIC-onHost, s.Epoch)})
	return r.ID, nil
}

// liveNode returns the record of a registered node that is not failed.
func (s *State) liveNode(name string) (*NodeRecord, error) {
	nr := s.Nodes[name]
	if nr == nil {
		return nil, fmt.Errorf("%w: node %s has no registered agent", ErrInvalid, name)
	}
	if nr.Failed {
		return nil, fmt.Errorf("%w: node %s is failed", ErrInvalid, name)
	}
	return nr, nil
}

func (s *State) applyUndeploy(c *Command) error {
	u := c.Undeploy
	if u == nil {
		return fmt.Errorf("%w: undeploy command without its body", ErrInvalid)
	}
	r := s.Apps[u.Name]
	if r == nil {
		return fmt.Errorf("%w: no application %s is deployed", ErrNotFound, u.Name)
	}
	delete(s.Apps, u.Name)
	delete(s.apps, u.Name)
	for id, m := range s.Migrations {
		if m.App == u.Name {
			delete(s.Migrations, id)
		}
	}
	s.Epoch++
	s.event(c.At, Event{Kind: "undeployed", App: u.Name, Message: fmt.Sprintf("%s (app %d) undeployed; routes at epoch %d", u.Name, r.ID, s.Epoch)})
	return nil
}

// slot finds an application's instance record.
func (s *State) slot(appName, inst string) (*AppRecord, int, error) {
	r := s.Apps[appName]
	if r == nil {
		return nil, -1, fmt.Errorf("%w: no application %s", ErrNotFound, appName)
	}
	for i := range r.Instances {
		if r.Instances[i].Instance == inst {
			return r, i, nil
		}
	}
	return nil, -1, fmt.Errorf("%w: application %s has no instance %s", ErrNotFound, appName, inst)
}

func (s *State) applyFailover(c *Command) ([]uint64, error) {
	f := c.Failover
	if f == nil {
		return nil, fmt.Errorf("%w: failover command without its body", ErrInvalid)
	}
	if err := s.needCluster("failover"); err != nil {
		return nil, err
	}
	// Check everything before changing anything: a refused command must
	// leave the state as it was.
	for _, srv := range f.Failed {
		if _, err := s.topo.Lookup(srv + "/host"); err != nil {
			return nil, fmt.Errorf("%w: failed server %q: %w", ErrInvalid, srv, err)
		}
	}
	for _, n := range f.Rejoined {
		if s.Nodes[n] == nil {
			return nil, fmt.Errorf("%w: rejoined node %s is not registered", ErrInvalid, n)
		}
	}
	failing := map[string]bool{}
	for _, srv := range f.Failed {
		failing[srv] = true
	}
	for _, ch := range f.Changes {
		if _, _, err := s.slot(ch.App, ch.Instance); err != nil {
			return nil, err
		}
		if ch.Node != "" {
			nr := s.Nodes[ch.Node]
			if nr == nil || failing[nr.Server] {
				return nil, fmt.Errorf("%w: %s/%s moves to %s, which is not a live registered node", ErrInvalid, ch.App, ch.Instance, ch.Node)
			}
		}
	}
	for _, m := range f.Migrations {
		if _, _, err := s.slot(m.App, m.Instance); err != nil {
			return nil, err
		}
	}

	for _, srv := range f.Failed {
		for _, n := range s.Nodes {
			if n.Server == srv {
				n.Failed, n.FailedAt = true, c.At
			}
		}
	}
	for _, name := range f.Rejoined {
		n := s.Nodes[name]
		n.Failed, n.FailedAt = false, 0
	}
	for _, ch := range f.Changes {
		r, i, _ := s.slot(ch.App, ch.Instance)
		rec := &r.Instances[i]
		rec.Node = ch.Node
		rec.Level = ""
		rec.Explanation = ch.Reason
		// PromotedFrom describes how the slot's current node got its
		// state; any other move makes it stale.
		rec.PromotedFrom = ""
		if ch.Kind == ChangePromote {
			rec.PromotedFrom = ch.PromotedFrom
		}
	}
	for _, id := range f.Aborted {
		delete(s.Migrations, id)
	}
	var ids []uint64
	for _, m := range f.Migrations {
		m.ID = s.NextMigration
		s.NextMigration++
		m.Started = c.At
		mm := m
		s.Migrations[m.ID] = &mm
		ids = append(ids, m.ID)
	}
	// Routing tables list the migrations in flight (agents start a move
	// when a table lists it and call it off when one drops it), so a new
	// or ended migration is a new table too.
	publish := f.Publish || len(f.Migrations) > 0 || len(f.Aborted) > 0
	if publish {
		s.Epoch++
	}
	for _, e := range f.Events {
		s.event(c.At, e)
	}
	if publish {
		s.event(c.At, Event{Kind: "routes", Message: fmt.Sprintf("routes published at epoch %d", s.Epoch)})
	}
	return ids, nil
}

func (s *State) applyMigrationEnd(c *Command) error {
	m := c.MigrationEnd
	if m == nil {
		return fmt.Errorf("%w: migration-end command without its body", ErrInvalid)
	}
	rec := s.Migrations[m.ID]
	if rec == nil {
		return fmt.Errorf("%w: no migration %d in flight", ErrNotFound, m.ID)
	}
	delete(s.Migrations, m.ID)
	if !m.OK {
		// The table without the move calls it off: the source resumes,
		// the destination drops its copy.
		s.Epoch++
		s.event(c.At, Event{Kind: "migration-failed", App: rec.App, Instance: rec.Instance, From: rec.From, To: rec.To,
			Message: fmt.Sprintf("migration m%d of %s/%s %s -> %s failed: %s; called off at epoch %d", m.ID, rec.App, rec.Instance, rec.From, rec.To, m.Why, s.Epoch)})
		return nil
	}
	r, i, err := s.slot(rec.App, rec.Instance)
	if err != nil {
		return err
	}
	r.Instances[i].Node = rec.To
	r.Instances[i].Level = ""
	r.Instances[i].Explanation = "migrated: " + rec.Reason
	r.Instances[i].PromotedFrom = ""
	s.Epoch++
	s.event(c.At, Event{Kind: "migrated", App: rec.App, Instance: rec.Instance, From: rec.From, To: rec.To,
		Message: fmt.Sprintf("migration m%d of %s/%s %s -> %s done; routes at epoch %d", m.ID, rec.App, rec.Instance, rec.From, rec.To, s.Epoch)})
	return nil
}

func (s *State) applyReplica(c *Command) error {
	r := c.Replica
	if r == nil || r.ID == "" {
		return fmt.Errorf("%w: replica command without an id", ErrInvalid)
	}
	if r.Remove {
		if s.Replicas[r.ID] == nil {
			return fmt.Errorf("%w: no replica %s", ErrNotFound, r.ID)
		}
		delete(s.Replicas, r.ID)
		s.event(c.At, Event{Kind: "replica-removed", Message: fmt.Sprintf("controller replica %s removed", r.ID)})
		return nil
	}
	old := s.Replicas[r.ID]
	if old != nil && old.RaftAddr == r.RaftAddr && old.APIAddr == r.APIAddr {
		return nil
	}
	s.Replicas[r.ID] = &ReplicaRecord{ID: r.ID, RaftAddr: r.RaftAddr, APIAddr: r.APIAddr}
	s.event(c.At, Event{Kind: "replica", Message: fmt.Sprintf("controller replica %s: raft %s, api %s", r.ID, r.RaftAddr, r.APIAddr)})
	return nil
}

// SortedNodes returns the node records in topology order.
func (s *State) SortedNodes() []*NodeRecord {
	out := make([]*NodeRecord, 0, len(s.Nodes))
	for _, n := range s.Nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SortedApps returns the application records by id.
func (s *State) SortedApps() []*AppRecord {
	out := make([]*AppRecord, 0, len(s.Apps))
	for _, a := range s.Apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SortedMigrations returns the migrations in flight by id.
func (s *State) SortedMigrations() []*MigrationRecord {
	out := make([]*MigrationRecord, 0, len(s.Migrations))
	for _, m := range s.Migrations {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
