package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/topology"
)

// MigrationResult is the outcome of one migration the controller drove.
type MigrationResult struct {
	ID       uint64
	App      string
	Instance string
	From, To string
	// Committed: the instance runs at To now. Otherwise the migration was
	// called off and the instance stayed at From; Reason says why.
	Committed bool
	Reason    string
	// Source is the source's last report: drain, ship and pause times
	// (real), the messages held, the state's size and LSN.
	Source runtime.MigrationStatus
	// Real is the wall-clock time from publishing the table that starts
	// the move to publishing the one that ends it; Emulated is the same
	// in emulated time (Real / D), as are PauseEmulated (the source held
	// new messages for so long) and DrainEmulated.
	Real, Emulated          time.Duration
	PauseEmulated           time.Duration
	DrainEmulated           time.Duration
	StartedAt, EndedAt      int64 // emulated ns: the move's start and end
	StartEpoch, FinishEpoch uint64
}

func (r *MigrationResult) String() string {
	out := "committed"
	if !r.Committed {
		out = "called off (" + r.Reason + ")"
	}
	return fmt.Sprintf("migration %d of %s/%s %s -> %s %s: %v real (%v emulated), source paused %v real, held %d messages, %d bytes of state up to LSN %d",
		r.ID, r.App, r.Instance, r.From, r.To, out, r.Real.Round(time.Microsecond), r.Emulated.Round(time.Microsecond),
		r.Source.Pause.Round(time.Microsecond), r.Source.Held, r.Source.Bytes, r.Source.LSN)
}

// emulated converts a real duration into emulated time.
func (c *Cluster) emulated(d time.Duration) time.Duration {
	if c.emu == nil {
		return d
	}
	return time.Duration(float64(d) / c.emu.Dilation)
}

// Migrate moves instance id (a primary, "ema.3") of dep to node to by
// cold migration, through the agents' table protocol (runtime.Move):
//
//  1. publish a table listing the move (the destination first: it
//     prepares an instance on a new state file); the source holds the
//     instance's new messages, drains, ships its state; the destination
//     restores it, seeds the instance's backup and acknowledges;
//  2. when the source reports the move ready, publish a table routing the
//     instance to the destination (the destination first, the source
//     last: it then forwards what it held and frees the instance);
//     if the source reports failure, or says nothing within the
//     migration timeout (it crashed), publish a table without the move
//     that keeps the instance where it was: the source serves again, or
//     recovers it from its file when it restarts, and the destination
//     discards its copy.
//
// The error is for what went wrong in the driver itself (bad arguments, a
// table an agent refused); a migration called off is a result.
func (c *Cluster) Migrate(ctx context.Context, dep *Deployment, id string, to topology.NodeID) (*MigrationResult, error) {
	ai, ok := dep.App.Instance(id)
	if !ok || !ai.IsPrimary() {
		return nil, fmt.Errorf("cluster: migrate: %s has no primary instance %q", dep.App.Name, id)
	}
	if to < 0 || int(to) >= c.topo.NumNodes() {
		return nil, fmt.Errorf("cluster: migrate %s: node %d not in the topology", id, to)
	}
	ct := c.ctrl
	ct.pubMu.Lock()
	t0 := ct.Table()
	from := c.NodeOf(dep, ai.Index)
	if from == to {
		ct.pubMu.Unlock()
		return nil, fmt.Errorf("cluster: migrate %s: it runs on %s already", id, c.topo.Name(to))
	}
	ct.mu.Lock()
	ct.nextMove++
	mv := runtime.Move{ID: ct.nextMove, App: dep.ID, Instance: uint32(ai.Index), To: to}
	watch := make(chan runtime.MigrationStatus, 1)
	ct.watch[mv.ID] = watch
	ct.mu.Unlock()
	defer func() {
		ct.mu.Lock()
		delete(ct.watch, mv.ID)
		ct.mu.Unlock()
	}()
	res := &MigrationResult{ID: mv.ID, App: dep.App.Name, Instance: id, From: c.topo.Name(from), To: c.topo.Name(to)}
	t1, err := t0.StartMove(mv)
	if err != nil {
		ct.pubMu.Unlock()
		return nil, err
	}
	start := time.Now()
	res.StartedAt, res.StartEpoch = c.Now(), t1.Epoch
	err = ct.publish(t1, []topology.NodeID{to}, []topology.NodeID{from})
	ct.pubMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("cluster: migrate %s: %w", id, err)
	}

	// Wait for the source's verdict.
	timeout := c.cfg.MigrationTimeout
	deadline := time.NewTimer(timeout + time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	var last runtime.MigrationStatus
wait:
	for {
		select {
		case s := <-watch:
			last = s
			if s.Phase >= runtime.PhaseReady {
				break wait
			}
		case <-poll.C:
			// A source that crashed reports nothing more.
			if c.dead(from) {
				last.Phase, last.Err = runtime.PhaseFailed, "source "+c.topo.Name(from)+" is down"
				break wait
			}
		case <-deadline.C:
			last.Phase, last.Err = runtime.PhaseFailed, fmt.Sprintf("no answer from the source within %v", timeout+time.Second)
			break wait
		case <-ctx.Done():
			last.Phase, last.Err = runtime.PhaseFailed, ctx.Err().Error()
			break wait
		}
	}
	commit := last.Phase == runtime.PhaseReady
	if commit && c.dead(to) {
		commit, last.Err = false, "destination "+c.topo.Name(to)+" is down"
	}

	ct.pubMu.Lock()
	t2, err := ct.Table().EndMove(mv.ID, commit)
	if err != nil {
		ct.pubMu.Unlock()
		return nil, err
	}
	if commit {
		err = ct.publish(t2, []topology.NodeID{to}, []topology.NodeID{from})
	} else {
		err = ct.publish(t2, []topology.NodeID{from}, nil)
	}
	ct.pubMu.Unlock()
	res.Real = time.Since(start)
	res.EndedAt, res.FinishEpoch = c.Now(), t2.Epoch
	if err != nil {
		return nil, fmt.Errorf("cluster: migrate %s: %w", id, err)
	}
	// The source finished the move while applying t2 and reported it
	// (unless it had finished already, or is down).
	if !last.Phase.Final() && !c.dead(from) {
		select {
		case s := <-watch:
			last = s
		case <-time.After(time.Second):
		}
	}
	res.Committed, res.Source = commit, last
	if !commit {
		res.Reason = last.Err
		if res.Reason == "" {
			res.Reason = "source reported " + last.Phase.String()
		}
	}
	res.Emulated = c.emulated(res.Real)
	res.PauseEmulated = c.emulated(last.Pause)
	res.DrainEmulated = c.emulated(last.Drain)
	return res, nil
}

// dead reports whether node n's agent was killed and not restarted.
func (c *Cluster) dead(n topology.NodeID) bool {
	c.agMu.RLock()
	defer c.agMu.RUnlock()
	return c.agents[n].Closed()
}

// Kill stops node n's agent abruptly, as if its process died: it answers
// nothing more, its requests in flight fail at their clients, and its
// state files stay on disk. The routes are left as they are (the
// controller has not noticed); Restart brings it back.
func (c *Cluster) Kill(n topology.NodeID) error {
	if n < 0 || int(n) >= c.topo.NumNodes() {
		return fmt.Errorf("cluster: kill: no node %d", n)
	}
	return c.Agent(n).Close()
}

// Restart starts a new agent for node n on its state directory, at a new
// address (as a restarted agent registers anew), joins it to its host
// links, and publishes the routes with its address at a new epoch. The
// new agent recovers the instances the table places on it from their
// files; every other agent opens new channels to it.
func (c *Cluster) Restart(n topology.NodeID) error {
	if n < 0 || int(n) >= c.topo.NumNodes() {
		return fmt.Errorf("cluster: restart: no node %d", n)
	}
	if !c.dead(n) {
		return fmt.Errorf("cluster: restart %s: its agent is running", c.topo.Name(n))
	}
	ct := c.ctrl
	ct.pubMu.Lock()
	defer ct.pubMu.Unlock()
	a, err := c.newAgent(n)
	if err != nil {
		return err
	}
	c.agMu.Lock()
	c.agents[n] = a
	c.addrs[n] = a.Addr()
	c.restarts++
	c.agMu.Unlock()
	nd := c.topo.Node(n)
	var links []error
	if nd.Kind == topology.SmartNIC {
		links = append(links, c.linkHost(n))
	} else {
		srv := c.topo.Server(nd.Server)
		for i := range srv.SmartNICs {
			nic := srv.Host + 1 + topology.NodeID(i)
			if !c.dead(nic) {
				links = append(links, c.linkHost(nic))
			}
		}
	}
	if err := errors.Join(links...); err != nil {
		return err
	}
	a.Start()
	t := ct.Table()
	if t == nil {
		return nil
	}
	t = t.Next()
	t.Addrs = c.addresses()
	return ct.publish(t, []topology.NodeID{n}, nil)
}
