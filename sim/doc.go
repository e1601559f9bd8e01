// Package sim is E3's discrete-event simulator. It runs microservice
// applications (package app) on a modelled cluster (packages topology and
// hwmodel), placed by the same placement code the controller runs, and
// measures what the paper measures: throughput, client-observed latency,
// power, energy and requests per joule, at any scale a laptop can hold in
// memory. It answers what-if questions cheaply; the experiments package
// builds the paper's figures on it.
//
// # Using it
//
//	topo, _ := hwmodel.Topology(cluster)           // e.g. 3xType1-SmartNIC
//	a, _ := app.Builtin("iot-ts", services.Registry())
//	res, err := sim.Run(sim.Config{
//		Topology: topo,
//		Apps:     []sim.AppLoad{{App: a, Clients: sim.Closed(64)}},
//		Seed:     1,
//		Warmup:   20 * time.Millisecond,
//		Duration: 200 * time.Millisecond,
//	})
//	// res.Throughput, res.Apps[0].P99, res.PowerW, res.RequestsPerJoule ...
//
//	k, err := sim.Knee(cfg, sim.KneeOptions{})      // throughput at the knee
//
// An application without an Assignment is placed first ([PlaceApps]) by
// Config.Placer, HCM by default, provisioned for AppLoad.PlanRPS or, if
// that is zero, for the largest load the placer can place
// ([PlaceableRPS]). [Capacity] bounds the throughput analytically;
// [UnloadedLatency] and [ClientLatency] give the model's latency of one
// message on an idle cluster (X3). An [Orchestrator] plugged into
// Config.Orchestrator hears every node each heartbeat and may migrate
// instances.
//
// # Engine
//
// Virtual time is an int64 count of nanoseconds. Pending events sit in a
// binary heap of small values ordered by time and then by the order they
// were scheduled, so equal times never depend on the heap's layout;
// handlers are a switch on the event kind, and messages and requests live
// in pools addressed by index, so the steady state allocates nothing.
// Randomness comes only from PCG generators seeded by Config.Seed, one
// stream per purpose (arrivals, keys and flows, service times, routing),
// so that open-loop runs differing only inside the cluster (placement,
// orchestrator, parameters) see the same requests at the same times. No
// code reads the wall clock (TestNoWallClock). The same Config gives the
// same Result byte for byte on one platform; across processor
// architectures the floating-point results of math.Exp and math.Log may
// differ in the last bit, and a run then diverges.
//
// # Model
//
// Compute nodes. A host or SmartNIC has its cores and one FIFO queue that
// all of them serve (M/G/c): E3's execution engine is work-conserving and
// runs every request to completion, so no core idles while a request
// waits. Steering requests round-robin to per-core queues, as E3's engine
// does at arrival, would leave cores idle beside a queue unless cores
// steal work; "work-conserving" says they do, and the shared queue is that
// limit. A message's service time has the mean of hwmodel.Demand (Table
// 1, at the node's core kind) and, by default, a lognormal spread with
// coefficient of variation 0.5 ([DefaultParams] says why; Exponential and
// Deterministic are the alternatives). Table 1 was measured with 512-byte
// requests only; Params.Demand is the hook for a size-aware model (X2).
//
// Network. A message between two instances takes the mechanism
// topology.Path names: an in-memory queue on one node; the PCIe link
// between a host and its own SmartNIC; otherwise the network, through
// the sender's NIC port, the ToR (and aggregation and core switches), and
// the receiver's port. Every NIC port is a FIFO link in each direction at
// its rate, and the PCIe link one in each direction; frames carry
// Params.WireOverhead bytes of headers. A host behind SmartNICs is reached
// through all of its SmartNICs' ports by ECMP on the flow's hash (a
// client request is its own flow; a channel between two instances is one
// flow), and its SmartNIC's traffic manager forwards each such packet,
// both ways, as a job of Params.TMDemand in the SmartNIC's core queue: it
// consumes SmartNIC cores (and power), and when the SmartNIC's own
// microservices saturate its cores, packets for the host queue behind
// them. That standing queue is the host starvation of §3.4; its depth is
// reported per SmartNIC and observed by the orchestrator. Switch links
// above the ToR add latency only: the fat tree is taken to be
// non-blocking. Latencies per mechanism are Params fields; their values
// and sources are on [DefaultParams].
//
// Clients. Closed loop ([Closed]): N clients with one request each,
// optional think time and a client-side rate limiter (a generic cell-rate
// algorithm), for X5's sweep from idle to peak. Open loop ([Open]):
// Poisson arrivals at a rate, with a cap on requests in flight. Keys are
// drawn from the workload's key space, uniform or Zipf (rejection-
// inversion, exact for any exponent). Clients sit outside the cluster,
// one ToR hop from the node they talk to; their own NICs are not
// modelled.
//
// DAG flow. A request enters at a source node chosen by the workload mix,
// at the shard the ToR's ECMP hash of its flow picks. After an instance
// processes a message, each outgoing edge takes it with probability
// Share; key_hash sends it to app.ShardOf(key) (re-keyed by a hash unless
// the edge is `key: same`), round_robin cycles each sender through the
// shards, broadcast copies it to every shard. Completion follows E3's
// weight scheme: a message that emits nothing returns its weight to the
// node the request entered at (a bare header, sent like any message: it
// queues on the links and, to or from a host behind SmartNICs, takes
// traffic-manager work on a SmartNIC core, as the runtime's completion
// message does; no core at the ingress), and
// when no message of the request is left and its last weight is back, the
// ingress replies. The reply is a message like the others, out through
// the port the request came in by, and the client's latency is from send
// to the reply's arrival. Backups take no traffic; state replication to
// them is not modelled.
//
// Power and energy. Busy cores are integrated over time per node; a
// server's power is hwmodel.Machine.Power at the mean busy host and
// SmartNIC cores over the window, which, power being linear in busy
// cores, makes energy = power x window exact. Energy efficiency is
// completed requests over joules of whole-server wall power.
//
// Migrations. Every Params.HeartbeatPeriod the [Orchestrator] gets
// [Observations] (per node: busy cores, traffic-manager queue now, mean
// and peak, bytes through its ports; per instance: messages processed,
// mean execution and sojourn times) and returns [Action]s. A cold
// migration makes the instance unavailable for Params.MigrationFixed plus
// its state (a stateful service's memory) over the path's slowest link;
// messages for it wait, and are sent on from where they waited to its new
// node when it resumes. Messages already queued at the old node drain
// there. An action that cannot be carried out ends the run with an error.
//
// Measurement. A run simulates Warmup, then Duration; the Result covers
// the Duration: requests whose reply arrives in it, busy time and power
// over it, traffic through the ports in it. Queues are unbounded (E3's
// flow-controlled channels would push back on the senders instead); an
// overloaded open-loop run shows that as growing latency and requests in
// flight.
//
// # Speed
//
// BenchmarkEngine runs the engine alone in the hold model; BenchmarkRun
// whole runs of built-in applications; both report events per wall and
// per CPU second. On the 2-core AMD EPYC build machine (Go 1.26) the
// engine did 14 M events per CPU second with 1,024 events pending and 7 M
// with 65,536, about three times container/heap on the same workload;
// whole runs did about 10 M events per CPU second, at 17 to 22 events per
// request (NFV-FIN 19).
package sim
