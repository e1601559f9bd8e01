// Package runtime is the E3 node agent: the process that runs on every
// compute node (a host or a SmartNIC), holds its microservice instances,
// executes them, moves their messages, tracks requests to completion and
// reports to the controller. docs/runtime.md walks through it.
//
// An [Agent] is configured with its node of the topology, a data socket
// (lossless channels to the other agents and to clients, package
// transport), host links to its SmartNICs or its host, and optionally
// emulated hardware ([Emulation]). The controller hands it a routing
// [Table] with [Agent.Apply]: where every instance runs and how to reach
// every node, under an epoch that only grows (a stale table is refused
// with [ErrStaleEpoch]); Apply creates the instances the table puts here
// and stops those it moved away.
//
// Execution: one worker per core the node owns; a handler runs to
// completion with the worker's service.Context, and what it emits is
// routed after it returns: along each out-edge of its DAG node (key_hash by
// app.ShardOf, round_robin, broadcast; an edge's share by a hash of the
// request every node agrees on), to the node of the target instance by the
// table, by the mechanism the distance calls for (the same node: the
// agent's own queue; a host and its SmartNIC: the host link; otherwise a
// channel, through the software ToR of [WireEnd]).
//
// Completion: the ingress (the agent that runs the source instance a
// client request names) gives the request an id and
// transport.InitialWeight; every emit splits the weight exactly; a handler
// that emits nothing returns its weight, and its response, to the ingress;
// when the whole weight is back the client gets its reply. A request that
// cannot complete gets an error reply, at the latest after the timeout.
//
// A SmartNIC agent is also its host's traffic manager: messages for the
// host arrive at the SmartNIC (the ToR spreads them over the server's
// SmartNIC ports) and are forwarded over the host link, and host traffic to
// the network leaves the same way; in emulation each forwarding costs
// SmartNIC core time on the cores the microservices use, so a busy
// SmartNIC delays its host's packets, and the backlog is the traffic
// manager's queue depth in the heartbeat.
//
// In emulation every message carries its emulated due time in the header
// timestamp; the agent's pacer releases it when real time reaches the due
// time times the dilation factor D, the earliest-free emulated core takes
// it for the service time hwmodel gives its service on this node's cores,
// and what it emits is due at its finish time plus the hop's latency. The
// real handler runs too, for real results. Every figure is in emulated
// time.
//
// State: with Config.DataDir, instances of stateful services keep their
// reliable collections in a durable store (collections/durable), one
// bbolt file per instance, replicated to the instance's backup, which the
// agent of the backup's node runs; a handler's emits and its request's
// completion leave only once its writes are on disk and at the backup
// (the barrier, without blocking the worker). Replication and state
// transfers use control channels between agents ([ControlChannelID],
// [BulkChannelID]). With Config.Recover a restarted agent recovers its
// instances from their files.
//
// Migration: a table's [Move] starts a cold migration, which the agents
// carry out themselves (the source holds, drains and ships the state, the
// destination restores it and seeds the backup); the next table commits
// it (the instance routed to the destination) or calls it off. Progress
// is in heartbeats ([Heartbeat].Migrations) and, at once, to a Controller
// that implements [MigrationObserver]. docs/runtime.md, "State and
// migration", has the protocol and what a controller must call.
package runtime
