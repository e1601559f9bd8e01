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
	// Moves are the migrations in progress: each instance is still routed
	// to the node Apps gives (its source) and is being moved to Move.To.
	// The table that drops a move commits it if it routes the instance to
	// Move.To, and calls it off if it keeps the instance where it was.
	Moves []Move
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
	ids := map[uint64]bool{}
	for _, mv := range t.Moves {
		r := t.route(mv.App)
		switch {
		case ids[mv.ID]:
			return fmt.Errorf("runtime: table epoch %d: move %d appears twice", t.Epoch, mv.ID)
		case r == nil:
			return fmt.Errorf("runtime: table epoch %d: move %d of app id %d, which the table does not deploy", t.Epoch, mv.ID, mv.App)
		case int(mv.Instance) >= len(r.Nodes):
			return fmt.Errorf("runtime: table epoch %d: move %d: app %s has no instance %d", t.Epoch, mv.ID, r.App.Name, mv.Instance)
		case !r.App.Instances()[mv.Instance].IsPrimary():
			return fmt.Errorf("runtime: table epoch %d: move %d: %s is a backup; backups are re-seeded where they are placed, not migrated", t.Epoch, mv.ID, r.App.Instances()[mv.Instance].ID)
		case mv.To < 0 || int(mv.To) >= topo.NumNodes() || !t.Addrs[mv.To].IsValid():
			return fmt.Errorf("runtime: table epoch %d: move %d of %s to node %d, which has no address", t.Epoch, mv.ID, r.App.Instances()[mv.Instance].ID, mv.To)
		case mv.To == r.Nodes[mv.Instance]:
			return fmt.Errorf("runtime: table epoch %d: move %d of %s to %s, where it already runs", t.Epoch, mv.ID, r.App.Instances()[mv.Instance].ID, topo.Name(mv.To))
		}
		ids[mv.ID] = true
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

// Next returns a copy of t with the next epoch, for a controller to edit
// and publish: the node slices and the moves are copied, the applications
// shared.
func (t *Table) Next() *Table {
	n := &Table{Epoch: t.Epoch + 1, Addrs: t.Addrs, Apps: make([]AppRoute, len(t.Apps)), Moves: append([]Move(nil), t.Moves...)}
	for i, r := range t.Apps {
		r.Nodes = append([]topology.NodeID(nil), r.Nodes...)
		n.Apps[i] = r
	}
	return n
}

// StartMove returns the table of the next epoch that lists mv: the first
// step of a migration (see [Move]).
func (t *Table) StartMove(mv Move) (*Table, error) {
	n := t.Next()
	n.Moves = append(n.Moves, mv)
	r := n.route(mv.App)
	if r == nil {
		return nil, fmt.Errorf("runtime: move %d: no app %d in table epoch %d", mv.ID, mv.App, t.Epoch)
	}
	return n, nil
}

// EndMove returns the table of the next epoch without move id: with
// commit, the moved instance is routed to the move's destination (it
// runs there from then on); without, it stays where it was (the move is
// called off).
func (t *Table) EndMove(id uint64, commit bool) (*Table, error) {
	n := t.Next()
	for i, mv := range n.Moves {
		if mv.ID != id {
			continue
		}
		n.Moves = append(n.Moves[:i], n.Moves[i+1:]...)
		if commit {
			r := n.route(mv.App)
			if r == nil || int(mv.Instance) >= len(r.Nodes) {
				return nil, fmt.Errorf("runtime: move %d: app %d instance %d not in table epoch %d", id, mv.App, mv.Instance, t.Epoch)
			}
			r.Nodes[mv.Instance] = mv.To
		}
		return n, nil
	}
	return nil, fmt.Errorf("runtime: table epoch %d lists no move %d", t.Epoch, id)
}

// Move returns the move id the table lists.
func (t *Table) Move(id uint64) (Move, bool) {
	for _, mv := range t.Moves {
		if mv.ID == id {
			return mv, true
		}
	}
	return Move{}, false
}
