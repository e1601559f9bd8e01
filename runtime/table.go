package runtime

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/topology"
)

// ErrStaleEpoch is returned (wrapped, with both epochs) when an agent is
// handed a routing table whose epoch is not newer than the one it has: a
// table from a controller that has since been superseded, or a retransmitted
// old update. Applying it would route requests by an outdated placement.
var ErrStaleEpoch = errors.New("runtime: stale routing table epoch")

// Table is a routing table: where every instance of every deployed
// application runs, and how to reach every compute node. The controller
// pushes a new table, with a higher Epoch, whenever a placement changes;
// agents refuse older ones. A Table is read-only once applied (agents keep
// a pointer to it and read it without locks).
type Table struct {
	// Epoch orders tables; every new table has a larger one.
	Epoch uint64
	// Addrs is the data endpoint (lossless channels) of every compute node,
	// indexed by topology.NodeID. An invalid address marks a node with no
	// agent.
	Addrs []netip.AddrPort
	// Apps are the deployed applications.
	Apps []AppRoute
}

// AppRoute is one deployed application in a [Table].
type AppRoute struct {
	// ID is the application's number on the wire (transport.Header.App).
	ID uint32
	// App is the validated application; instance i of the wire is
	// App.Instances()[i].
	App *app.App
	// Nodes holds the node of every instance (backups included), indexed
	// like App.Instances().
	Nodes []topology.NodeID
	// Seed seeds the instances' randomness (service.Env.Seed is derived
	// from it and the instance index).
	Seed int64
}

// validate checks the table against the topology.
func (t *Table) validate(topo *topology.Topology) error {
	if len(t.Addrs) != topo.NumNodes() {
		return fmt.Errorf("runtime: table epoch %d: %d node addresses for a topology of %d nodes", t.Epoch, len(t.Addrs), topo.NumNodes())
	}
	seen := map[uint32]bool{}
	for _, r := range t.Apps {
		if r.App == nil {
			return fmt.Errorf("runtime: table epoch %d: app id %d has no application", t.Epoch, r.ID)
		}
		if seen[r.ID] {
			return fmt.Errorf("runtime: table epoch %d: app id %d appears twice", t.Epoch, r.ID)
		}
		seen[r.ID] = true
		if len(r.Nodes) != len(r.App.Instances()) {
			return fmt.Errorf("runtime: table epoch %d: app %s: %d nodes for %d instances", t.Epoch, r.App.Name, len(r.Nodes), len(r.App.Instances()))
		}
		for i, n := range r.Nodes {
			if n < 0 || int(n) >= topo.NumNodes() {
				return fmt.Errorf("runtime: table epoch %d: app %s: instance %s on node %d, the topology has nodes 0..%d",
					t.Epoch, r.App.Name, r.App.Instances()[i].ID, n, topo.NumNodes()-1)
			}
			if !t.Addrs[n].IsValid() {
				return fmt.Errorf("runtime: table epoch %d: app %s: instance %s on node %s, which has no address",
					t.Epoch, r.App.Name, r.App.Instances()[i].ID, topo.Name(n))
			}
		}
	}
	return nil
}

// route finds an application by wire id.
func (t *Table) route(id uint32) *AppRoute {
	for i := range t.Apps {
		if t.Apps[i].ID == id {
			return &t.Apps[i]
		}
	}
	return nil
}
