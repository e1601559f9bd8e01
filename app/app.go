package app

import (
	"fmt"
	"strings"

	"github.com/e3-platform/e3/service"
)

// Catalog resolves microservice names to descriptors. *service.Registry
// satisfies it; the app package asks for no more so that it does not pull in
// the implementations of every service.
type Catalog interface {
	Lookup(name string) (*service.Descriptor, bool)
}

// Class is the application domain of Table 3.
type Class string

// The three application classes of the paper.
const (
	ClassNFV Class = "NFV" // network function chains on IPv4 packets
	ClassRTA Class = "RTA" // real-time analytics on event streams
	ClassIOT Class = "IOT" // IoT hubs: gateway, store, analytics
)

// Pin restricts where placement may put a node's instances.
type Pin uint8

const (
	// PinAny lets placement choose a host or a SmartNIC.
	PinAny Pin = iota
	// PinHost keeps the node on host processors.
	PinHost
	// PinSmartNIC keeps the node on SmartNIC processors.
	PinSmartNIC
)

var pinNames = [...]string{PinAny: "any", PinHost: "host", PinSmartNIC: "smartnic"}

func (p Pin) String() string {
	if int(p) < len(pinNames) {
		return pinNames[p]
	}
	return fmt.Sprintf("Pin(%d)", uint8(p))
}

// MarshalText writes the spec spelling, so JSON output reads like the YAML.
func (p Pin) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads the spec spelling.
func (p *Pin) UnmarshalText(b []byte) error {
	v, ok := ParsePin(string(b))
	if !ok {
		return fmt.Errorf("app: %q is not a pin; use host, smartnic or any", b)
	}
	*p = v
	return nil
}

// ParsePin returns the pin spelled s in a spec (host, smartnic, any).
func ParsePin(s string) (Pin, bool) {
	for i, n := range pinNames {
		if n == s {
			return Pin(i), true
		}
	}
	return 0, false
}

// Policy is how an edge picks the destination shard of a message.
type Policy uint8

const (
	// KeyHash sends a message to shard ShardOf(key, shards), so all
	// messages of one key meet at one shard (and its state).
	KeyHash Policy = iota + 1
	// RoundRobin spreads messages evenly over the shards regardless of key;
	// for stateless destinations where balance matters more than affinity.
	RoundRobin
	// Broadcast delivers a copy of every message to every shard.
	Broadcast
)

var policyNames = [...]string{KeyHash: "key_hash", RoundRobin: "round_robin", Broadcast: "broadcast"}

func (p Policy) String() string {
	if p >= KeyHash && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// MarshalText writes the spec spelling.
func (p Policy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads the spec spelling.
func (p *Policy) UnmarshalText(b []byte) error {
	v, ok := ParsePolicy(string(b))
	if !ok {
		return fmt.Errorf("app: %q is not a policy; use key_hash, round_robin or broadcast", b)
	}
	*p = v
	return nil
}

// ParsePolicy returns the policy spelled s in a spec (key_hash, round_robin,
// broadcast).
func ParsePolicy(s string) (Policy, bool) {
	for i, n := range policyNames {
		if n != "" && n == s {
			return Policy(i), true
		}
	}
	return 0, false
}

// ShardOf is the shard a KeyHash edge delivers key to. Keys are already
// hashes (service.Generator and service.Context carry key hashes), so a
// plain modulus spreads them evenly; the runtime and the simulator must both
// route with this function so that `key: same` edges line up as Expand
// assumes.
func ShardOf(key uint64, shards int) int { return int(key % uint64(shards)) }

// App is a validated application: its DAG nodes, edges and the instances
// they expand into. It is read-only after Load; share it freely.
type App struct {
	Name        string
	Class       Class
	Description string
	// File is the name the spec was loaded under; errors and listings use it.
	File     string
	Workload Workload

	nodes     []*Node // topological order
	edges     []*Edge // spec order
	sources   []*Node // spec order
	instances []*Instance
	links     []*Link
	byName    map[string]*Node
	byID      map[string]*Instance
}

// Workload describes the requests a load generator sends to the application.
type Workload struct {
	// RequestSize is the size of one request in bytes (default 512, the
	// size the paper's microbenchmarks use).
	RequestSize int
	// KeySpace is the number of distinct keys requests are drawn from.
	KeySpace int
	// Mix is the fraction of requests entering at each source node,
	// normalised to sum to 1; every source has an entry. Without a mix in
	// the spec the sources share requests equally.
	Mix map[string]float64
}

// Node is one DAG node: a microservice with its shard and replica counts.
type Node struct {
	Name    string
	Service string
	// Descriptor is the catalogue entry of Service.
	Descriptor *service.Descriptor
	Shards     int
	Backups    int
	// Pin is the effective pinning: a non-migratable service left at any
	// is pinned to the host here, so placement needs no special case.
	Pin    Pin
	Config map[string]string
	// Line is the line of the node's name in the spec.
	Line int
	// Topo is the node's position in App.Nodes (topological order).
	Topo int
	// In and Out are the node's edges in spec order.
	In, Out []*Edge
	// Rate is the expected number of messages the node's primaries process,
	// together, per request entering the application.
	Rate float64
	// Ingress is the fraction of the application's requests that enter at
	// this node (zero unless it is a source).
	Ingress float64

	instances []*Instance
}

// Family is the message family the node consumes.
func (n *Node) Family() service.Family { return n.Descriptor.Family }

// IsSource reports whether requests enter the application at n.
func (n *Node) IsSource() bool { return n.Ingress > 0 }

// Instances returns the node's instances: for each shard its primary, then
// its backups.
func (n *Node) Instances() []*Instance { return n.instances }

// Primary returns the primary of shard s.
func (n *Node) Primary(s int) *Instance { return n.instances[s*(1+n.Backups)] }

// Primaries returns the primary of every shard, in shard order.
func (n *Node) Primaries() []*Instance {
	out := make([]*Instance, n.Shards)
	for s := range out {
		out[s] = n.Primary(s)
	}
	return out
}

// Edge is a dataflow channel between two DAG nodes.
type Edge struct {
	From, To *Node
	Policy   Policy
	// Share is the fraction of From's messages that take this edge.
	Share float64
	// SameKey says From emits under the key it was routed by, so a KeyHash
	// edge from shard s reaches only the shards d with s ≡ d mod
	// gcd(From.Shards, To.Shards) (one shard when the counts are equal).
	SameKey bool
	// Line is the line of the edge in the spec.
	Line int
	// Index is the edge's position in App.Edges.
	Index int
	// Rate is the expected number of messages sent on the edge per request
	// entering the application; with Broadcast each is delivered to every
	// shard of To.
	Rate float64

	raw *rawEdge // field path and lines, for errors found after decoding
}

func (e *Edge) String() string { return e.From.Name + "->" + e.To.Name }

// Reaches reports whether the primary of From's shard src can send to the
// primary of To's shard dst over e.
func (e *Edge) Reaches(src, dst int) bool {
	if e.Policy == KeyHash && e.SameKey {
		g := gcd(e.From.Shards, e.To.Shards)
		return src%g == dst%g
	}
	return true
}

// KeyTarget is the primary a KeyHash edge delivers a message with key to:
// the router's whole decision for such an edge.
func (e *Edge) KeyTarget(key uint64) *Instance { return e.To.Primary(ShardOf(key, e.To.Shards)) }

// Instance is one running copy of a node: the primary of a shard or one of
// its backups. Backups receive no application traffic, only state
// replication from their primary.
type Instance struct {
	// ID is stable across loads of the same spec: "sql.3" is the primary
	// of shard 3 of node sql, "sql.3.b1" its first backup.
	ID    string
	Node  *Node
	Shard int
	// Replica is 0 for the primary and 1..Backups for backups.
	Replica int
	// Primary is the shard's primary (the instance itself for a primary).
	Primary *Instance
	// Backups are a primary's backups (nil for a backup).
	Backups []*Instance
	// Index is the instance's position in App.Instances.
	Index int
	// Rate is the expected number of messages the instance processes per
	// request entering the application, assuming uniformly spread keys.
	Rate float64
	// Out and In are the instance's links; both are empty for backups.
	Out, In []*Link
}

// IsPrimary reports whether i takes traffic.
func (i *Instance) IsPrimary() bool { return i.Replica == 0 }

// FanOut is the number of distinct instances i sends messages to.
func (i *Instance) FanOut() int { return len(i.Out) }

func (i *Instance) String() string { return i.ID }

// Link is a pair of primaries that exchange messages over an edge.
type Link struct {
	From, To *Instance
	Edge     *Edge
	// Rate is the expected number of messages on the link per request
	// entering the application.
	Rate float64
}

// Nodes returns the DAG nodes in topological order: every node comes after
// all nodes with an edge into it; ties keep spec order.
func (a *App) Nodes() []*Node { return a.nodes }

// Node returns the node called name.
func (a *App) Node(name string) (*Node, bool) {
	n, ok := a.byName[name]
	return n, ok
}

// Edges returns the edges in spec order.
func (a *App) Edges() []*Edge { return a.edges }

// Sources returns the ingress nodes in spec order.
func (a *App) Sources() []*Node { return a.sources }

// Instances returns every instance, backups included, grouped by node in
// topological order, then by shard, primary before backups. Its length is
// the DAG node count N of the paper's Table 3.
func (a *App) Instances() []*Instance { return a.instances }

// Instance returns the instance with the given ID.
func (a *App) Instance(id string) (*Instance, bool) {
	i, ok := a.byID[id]
	return i, ok
}

// Links returns every instance-level link, grouped by edge in spec order.
func (a *App) Links() []*Link { return a.links }

// Services returns the distinct microservices of the application in
// topological order.
func (a *App) Services() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range a.nodes {
		if !seen[n.Service] {
			seen[n.Service] = true
			out = append(out, n.Service)
		}
	}
	return out
}

// FanOutStats summarises instance fan-out.
type FanOutStats struct {
	// Senders is the number of primaries with at least one outgoing link.
	Senders int
	// Mean is the mean fan-out over Senders (sinks are left out, as they
	// send nothing).
	Mean float64
	// Max is the largest fan-out of any instance.
	Max int
}

// FanOut returns the fan-out statistics of the application.
func (a *App) FanOut() FanOutStats {
	var s FanOutStats
	total := 0
	for _, i := range a.instances {
		if f := i.FanOut(); f > 0 {
			s.Senders++
			total += f
			s.Max = max(s.Max, f)
		}
	}
	if s.Senders > 0 {
		s.Mean = float64(total) / float64(s.Senders)
	}
	return s
}

// String summarises the application in one line.
func (a *App) String() string {
	return fmt.Sprintf("%s (%s): %d nodes, %d instances, services %s",
		a.Name, a.Class, len(a.nodes), len(a.instances), strings.Join(a.Services(), ","))
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
