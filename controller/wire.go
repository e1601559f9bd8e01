package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/topology"
)

// The JSON bodies of the HTTP API. docs/controller.md shows each with
// curl. Field names are snake_case; times are Unix nanoseconds.

// ErrorBody is every error response: a message that names the problem,
// a short machine-readable code, and details where there are several
// (every line of a bad spec).
type ErrorBody struct {
	Error   string   `json:"error"`
	Code    string   `json:"code"`
	Details []string `json:"details,omitempty"`
	// Leader is the API address of the leader when the error is about
	// leadership ("not_leader", "no_leader").
	Leader string `json:"leader,omitempty"`
}

// DeployRequest is the body of POST /v1/apps and POST /v1/plan.
type DeployRequest struct {
	// Spec is the application's YAML; File names it in errors.
	Spec string `json:"spec"`
	File string `json:"file,omitempty"`
	// RPS is the offered load to plan for (default 10,000 requests/s).
	RPS float64 `json:"rps,omitempty"`
	// Seed seeds the placer and the instances (default 1).
	Seed uint64 `json:"seed,omitempty"`
	// Algo is the placement algorithm (default the controller's, hcm).
	Algo string `json:"algo,omitempty"`
}

// PlacedInstance is one instance in a deploy or plan answer and in
// GET /v1/placements.
type PlacedInstance struct {
	App      string `json:"app"`
	Instance string `json:"instance"`
	Service  string `json:"service"`
	Role     string `json:"role"`
	Node     string `json:"node"`
	// Kind is the node's role, host or smartnic.
	Kind         string `json:"kind,omitempty"`
	Level        string `json:"level,omitempty"`
	PromotedFrom string `json:"promoted_from,omitempty"`
	Explanation  string `json:"explanation,omitempty"`
}

// PlanResponse answers POST /v1/plan and POST /v1/apps.
type PlanResponse struct {
	App   string  `json:"app"`
	AppID uint32  `json:"app_id,omitempty"`
	Epoch uint64  `json:"epoch,omitempty"`
	Algo  string  `json:"algo"`
	RPS   float64 `json:"rps"`
	Seed  uint64  `json:"seed"`
	// DryRun is true for a plan: nothing was deployed.
	DryRun    bool             `json:"dry_run"`
	Instances []PlacedInstance `json:"instances"`
	// Unplaced says, per instance, why no node took it.
	Unplaced []string `json:"unplaced"`
	// Masked lists nodes placement did not consider: without a registered
	// agent, or failed.
	Masked  []string    `json:"masked"`
	Metrics *PlanMetric `json:"metrics,omitempty"`
	// ElapsedMs is the placer's time.
	ElapsedMs float64 `json:"elapsed_ms"`
}

// PlanMetric is placement's quality figures (modelled) for a plan.
type PlanMetric struct {
	OnSmartNIC       int     `json:"on_smartnic"`
	OnHost           int     `json:"on_host"`
	CommCost         float64 `json:"comm_cost_gbps_hops"`
	PowerW           float64 `json:"modelled_power_w"`
	RequestsPerJoule float64 `json:"modelled_requests_per_joule"`
	MaxCPUUtil       float64 `json:"max_cpu_util"`
}

// AppSummary is one application in GET /v1/apps.
type AppSummary struct {
	Name       string  `json:"name"`
	ID         uint32  `json:"id"`
	File       string  `json:"file"`
	RPS        float64 `json:"rps"`
	Algo       string  `json:"algo"`
	Seed       uint64  `json:"seed"`
	Deployed   int64   `json:"deployed"`
	Epoch      uint64  `json:"epoch"`
	Instances  int     `json:"instances"`
	Unplaced   int     `json:"unplaced"`
	OnSmartNIC int     `json:"on_smartnic"`
	OnHost     int     `json:"on_host"`
}

// NodeStatus is one node in GET /v1/nodes.
type NodeStatus struct {
	NodeRecord
	// Alive is the leader's view: heard within the failure timeout (or
	// within the grace after it took office). Nil when the answering
	// replica could not ask the leader.
	Alive *bool `json:"alive,omitempty"`
	// LastHeardMs is how long ago the leader last heard the node, -1 if
	// never since it took office.
	LastHeardMs *int64 `json:"last_heard_ms,omitempty"`
	Instances   int    `json:"instances"`
}

// ClusterStatus answers GET /v1/cluster.
type ClusterStatus struct {
	// Replica is the answering replica; State its raft state.
	Replica string `json:"replica"`
	State   string `json:"state"`
	// Leader and LeaderAPI are the leader's raft ID and API address ("" if
	// unknown).
	Leader    string          `json:"leader"`
	LeaderAPI string          `json:"leader_api"`
	Term      uint64          `json:"term"`
	LastIndex uint64          `json:"last_index"`
	Applied   uint64          `json:"applied_index"`
	Cluster   string          `json:"cluster"`
	Epoch     uint64          `json:"epoch"`
	Replicas  []ReplicaStatus `json:"replicas"`
	Apps      int             `json:"apps"`
	Nodes     int             `json:"nodes"`
	// Migrations in flight.
	Migrations []*MigrationRecord `json:"migrations"`
}

// ReplicaStatus is one member of the raft configuration.
type ReplicaStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// JoinRequest is the body of POST /v1/cluster/join.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

// EventsResponse answers GET /v1/events.
type EventsResponse struct {
	Events []Event `json:"events"`
	// Next is the sequence number to ask for next (?since=Next).
	Next uint64 `json:"next"`
}

// RegisterRequest is the body of POST /v1/agents/register. Node may be
// omitted when Server and Role say which node it is (Slot picks the
// SmartNIC, default 0).
type RegisterRequest struct {
	Node   string `json:"node,omitempty"`
	Role   string `json:"role"`
	Server string `json:"server,omitempty"`
	Slot   int    `json:"slot,omitempty"`
	Addr   string `json:"addr"`
	Cores  int    `json:"cores,omitempty"`
}

// RegisterResponse tells an agent who it is and how often to report.
type RegisterResponse struct {
	Node             string `json:"node"`
	ID               int    `json:"id"`
	Cluster          string `json:"cluster"`
	Epoch            uint64 `json:"epoch"`
	HeartbeatMs      int64  `json:"heartbeat_ms"`
	FailureTimeoutMs int64  `json:"failure_timeout_ms"`
	Leader           string `json:"leader"`
}

// HeartbeatRequest is the body of POST /v1/agents/heartbeat: the
// orchestrator's heartbeat record (orchestrator.Heartbeat) with node and
// instances by name, because the orchestrator's numeric instance IDs are
// the leader's own and change when the leader does.
type HeartbeatRequest struct {
	Node string `json:"node"`
	// Seq counts the agent's heartbeats (wrapping at 2^16).
	Seq uint16 `json:"seq"`
	// Epoch is the routing epoch the agent runs.
	Epoch uint64 `json:"epoch"`
	// Queue is the traffic manager's mean queue over the period.
	Queue int `json:"queue"`
	// RxBytes and TxBytes crossed the node's ports during the period.
	RxBytes uint64            `json:"rx_bytes"`
	TxBytes uint64            `json:"tx_bytes"`
	Samples []HeartbeatSample `json:"samples,omitempty"`
}

// HeartbeatSample is one instance's execution over the period.
type HeartbeatSample struct {
	App      string `json:"app"`
	Instance string `json:"instance"`
	Count    uint32 `json:"count"`
	MeanNs   uint32 `json:"mean_ns"`
}

// HeartbeatResponse tells the agent the routing epoch in force: an agent
// behind it fetches GET /v1/routes.
type HeartbeatResponse struct {
	Epoch  uint64 `json:"epoch"`
	Leader string `json:"leader"`
}

// MigrationReport is the body of POST /v1/agents/migrations/{id}.
type MigrationReport struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Routes is the routing table in wire form (GET /v1/routes): every
// node's data address and where every instance of every application runs,
// at an epoch. [Routes.Table] turns it into a runtime.Table.
type Routes struct {
	Epoch      uint64             `json:"epoch"`
	Cluster    string             `json:"cluster"`
	Nodes      []RouteNode        `json:"nodes"`
	Apps       []RouteApp         `json:"apps"`
	Migrations []*MigrationRecord `json:"migrations"`
}

// RouteNode is a registered node in a routing table.
type RouteNode struct {
	Name   string `json:"name"`
	ID     int    `json:"id"`
	Addr   string `json:"addr"`
	Failed bool   `json:"failed,omitempty"`
}

// RouteApp is a deployed application in a routing table.
type RouteApp struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
	File string `json:"file"`
	Spec string `json:"spec"`
	Seed uint64 `json:"seed"`
	// Instances are in the application's instance order; the primary
	// slot of each shard is where requests for it go.
	Instances []RouteInstance `json:"instances"`
}

// RouteInstance is one instance slot's node.
type RouteInstance struct {
	Instance     string `json:"instance"`
	Role         string `json:"role"`
	Node         string `json:"node"`
	PromotedFrom string `json:"promoted_from,omitempty"`
}

// routesOf builds the wire routing table from the state.
func routesOf(s *State) *Routes {
	r := &Routes{Epoch: s.Epoch, Cluster: s.Cluster, Nodes: []RouteNode{}, Apps: []RouteApp{}, Migrations: s.SortedMigrations()}
	for _, n := range s.SortedNodes() {
		r.Nodes = append(r.Nodes, RouteNode{Name: n.Name, ID: n.ID, Addr: n.Addr, Failed: n.Failed})
	}
	for _, a := range s.SortedApps() {
		ra := RouteApp{ID: a.ID, Name: a.Name, File: a.File, Spec: a.Spec, Seed: a.Seed}
		for _, in := range a.Instances {
			ra.Instances = append(ra.Instances, RouteInstance{Instance: in.Instance, Role: in.Role, Node: in.Node, PromotedFrom: in.PromotedFrom})
		}
		r.Apps = append(r.Apps, ra)
	}
	return r
}

// Table converts the wire routing table into the runtime's, parsing each
// application's spec through cat (services.Registry()). A runtime.Table
// requires every instance placed, so instances that failover could not
// place yet are mapped as follows. A backup without a node is given the
// first node (lowest ID) with an address on another server than its
// primary's, or failing that another node of the primary's server, never
// the primary's own node: an agent that finds the primary of a shard
// arriving on the node of its backup promotes that backup's state only if
// the backup slot moved elsewhere. An application with a primary without
// a node is left out and named in skipped, so that its requests fail
// rather than go to a wrong node.
func (r *Routes) Table(t *topology.Topology, cat app.Catalog) (tab *runtime.Table, skipped []string, err error) {
	tab = &runtime.Table{Epoch: r.Epoch, Addrs: make([]netip.AddrPort, t.NumNodes())}
	for _, n := range r.Nodes {
		id, err := t.Lookup(n.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("controller: routes epoch %d: %w", r.Epoch, err)
		}
		if n.Failed {
			continue
		}
		ap, err := netip.ParseAddrPort(n.Addr)
		if err != nil {
			return nil, nil, fmt.Errorf("controller: routes epoch %d: node %s: address %q: %w", r.Epoch, n.Name, n.Addr, err)
		}
		tab.Addrs[id] = ap
	}
apps:
	for _, ra := range r.Apps {
		a, err := app.Load(ra.File, []byte(ra.Spec), cat)
		if err != nil {
			return nil, nil, fmt.Errorf("controller: routes epoch %d: app %s: %w", r.Epoch, ra.Name, err)
		}
		if len(a.Instances()) != len(ra.Instances) {
			return nil, nil, fmt.Errorf("controller: routes epoch %d: app %s: %d instance routes for %d instances", r.Epoch, ra.Name, len(ra.Instances), len(a.Instances()))
		}
		nodes := make([]topology.NodeID, len(ra.Instances))
		insts := a.Instances()
		for i, in := range ra.Instances {
			if in.Instance != insts[i].ID {
				return nil, nil, fmt.Errorf("controller: routes epoch %d: app %s: route %d is for %s, the application's instance %d is %s", r.Epoch, ra.Name, i, in.Instance, i, insts[i].ID)
			}
			node := in.Node
			if node == "" && !insts[i].IsPrimary() {
				if pn := ra.Instances[insts[i].Primary.Index].Node; pn != "" {
					if p, err := t.Lookup(pn); err == nil {
						if spare := spareNode(t, tab.Addrs, p); spare >= 0 {
							node = t.Name(spare)
						}
					}
				}
			}
			if node == "" {
				skipped = append(skipped, ra.Name)
				continue apps
			}
			id, err := t.Lookup(node)
			if err != nil {
				return nil, nil, fmt.Errorf("controller: routes epoch %d: app %s instance %s: %w", r.Epoch, ra.Name, in.Instance, err)
			}
			nodes[i] = id
		}
		tab.Apps = append(tab.Apps, runtime.AppRoute{ID: ra.ID, App: a, Nodes: nodes, Seed: int64(ra.Seed)})
	}
	// Migrations in flight become the runtime's moves: the table still
	// routes the instance to its source and lists where it goes.
	for _, m := range r.Migrations {
		var route *runtime.AppRoute
		for i := range tab.Apps {
			if tab.Apps[i].App.Name == m.App {
				route = &tab.Apps[i]
			}
		}
		if route == nil {
			continue // the application was left out above
		}
		in, ok := route.App.Instance(m.Instance)
		if !ok {
			return nil, nil, fmt.Errorf("controller: routes epoch %d: migration m%d: app %s has no instance %s", r.Epoch, m.ID, m.App, m.Instance)
		}
		to, err := t.Lookup(m.To)
		if err != nil {
			return nil, nil, fmt.Errorf("controller: routes epoch %d: migration m%d: %w", r.Epoch, m.ID, err)
		}
		tab.Moves = append(tab.Moves, runtime.Move{ID: m.ID, App: route.ID, Instance: uint32(in.Index), To: to})
	}
	return tab, skipped, nil
}

// spareNode picks a stand-in node for a backup that has none: the lowest
// node with an address on another server than primary, else another node
// of primary's server; -1 if there is none.
func spareNode(t *topology.Topology, addrs []netip.AddrPort, primary topology.NodeID) topology.NodeID {
	same := topology.NodeID(-1)
	for n := range t.Nodes() {
		if n == primary || !addrs[n].IsValid() {
			continue
		}
		if t.ServerOf(n) != t.ServerOf(primary) {
			return n
		}
		if same < 0 {
			same = n
		}
	}
	return same
}

// maxBody bounds request bodies: a spec of a megabyte is already huge.
const maxBody = MaxCommandSize

// decodeBody decodes a JSON request body strictly: unknown fields and
// trailing data are errors that name the field or the offset.
func decodeBody(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("empty body, want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := jsonErr(err, b)
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			msg = strings.TrimPrefix(err.Error(), "json: ")
		}
		return fmt.Errorf("%s", msg)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the JSON object at offset %d", dec.InputOffset())
	}
	return nil
}

// registration resolves a RegisterRequest to a node name.
func (r *RegisterRequest) registration(t *topology.Topology) (*RegisterCmd, error) {
	name := r.Node
	if name == "" {
		if r.Server == "" {
			return nil, fmt.Errorf("%w: give node (r0/s1/nic0), or server and role", ErrInvalid)
		}
		switch r.Role {
		case RoleHost:
			name = r.Server + "/host"
		case RoleSmartNIC:
			name = fmt.Sprintf("%s/nic%d", r.Server, r.Slot)
		default:
			return nil, fmt.Errorf("%w: role %q, want host or smartnic", ErrInvalid, r.Role)
		}
	}
	c := &RegisterCmd{Node: name, Role: r.Role, Server: r.Server, Addr: r.Addr, Cores: r.Cores}
	if _, err := CheckRegistration(t, c); err != nil {
		return nil, err
	}
	return c, nil
}

// sortSamples orders samples and drops duplicates (the orchestrator wants
// strictly increasing instance order).
func sortSamples[S ~[]E, E any](s S, cmp func(a, b E) int) S {
	slices.SortFunc(s, cmp)
	return slices.CompactFunc(s, func(a, b E) bool { return cmp(a, b) == 0 })
}
