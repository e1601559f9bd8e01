// Package orchestrator is E3's data-plane orchestrator and failover
// manager as a pure state machine: heartbeats, controller reports and the
// time go in, actions with their reasons come out. It never touches the
// network, a disk or a clock; the controller carries its actions out on
// real nodes and the simulator on modelled ones, as etcd's raft hands its
// caller a Ready value and leaves the I/O to it.
//
// # Heartbeats
//
// Every agent (host and SmartNIC) sends a [Heartbeat] every period (50 ms)
// as the payload of a transport message of kind heartbeat: a fixed 16-byte
// core (node, sequence number, traffic-manager queue, bytes in and out)
// followed by optional 12-byte execution samples (instance, requests
// finished, mean execution time). [Heartbeat.Decode] parses one without
// allocating; [Orchestrator.ObservePayload] decodes and ingests in O(1)
// per heartbeat plus O(1) per sample, on dense arrays indexed by node and
// instance, and [Orchestrator.ObserveBatch] does a receive batch at a time,
// overlapping the cache misses of heartbeats that arrive in no useful
// order. [Reporter] is the agent's side: cumulative counters in,
// per-period heartbeats out.
//
// # Detection
//
// Host starvation: a SmartNIC whose mean traffic-manager queue stands
// above QueueThreshold for QueueHeartbeats consecutive heartbeats while
// the busier direction of its ports carries less than PortFraction of
// their rate. Microservice overload: an instance whose mean execution time
// exceeds its exponential moving average (weight EMAAlpha) by more than
// OverloadThreshold (the paper's 20 %) for OverloadHeartbeats consecutive
// heartbeats. Either way the orchestrator migrates the SmartNIC's movable
// instance with the highest CPU use to a host: its own server's host if it
// fits, otherwise wherever the placer (HCM) finds room among hosts.
// Non-migratable instances (SQL) never move. A node with a migration in
// flight is left alone until it completes, then for NodeCoolDown; an
// instance that moved stays put for InstanceCoolDown.
//
// Failure: a node not heard for longer than FailureTimeout (500 ms) fails
// with its whole server, the fault domain. Its migrations are aborted (and
// redone elsewhere if only the destination died), backups of its primaries
// are promoted (and moved on if the promotion overloads their node), lost
// backups are re-created on other servers from the primaries, primaries
// without a surviving backup are placed afresh, what fits nowhere waits for
// capacity, and the routes are published at a new epoch.
//
// The scenario files in testdata show every decision with its timing and
// reason; [RunScale] is the scale experiment X11.
//
// # Use
//
//	o, err := orchestrator.New(orchestrator.Config{Load: load}, now)
//	ids, err := o.Deploy(problem, result)   // placed on o.Load()
//	...
//	o.ObserveBatch(now, payloads)           // heartbeats as they arrive
//	for _, a := range o.Decide(now) {       // every period
//		carryOut(a)                         // Migrate, Promote, ...
//		log.Print(o.Describe(a))            // the action and its reason
//	}
//	epoch, err := o.MigrationDone(now, id)  // or MigrationFailed
//
// docs/orchestrator.md describes the detectors, their defaults and the
// reasoning behind them, the failover decisions and the measured cost at
// 50,000 servers.
package orchestrator
