// Package agentd is the node agent as a process: what `e3 agent` runs on
// every host and every SmartNIC (or DPU) of a deployed E3 cluster.
//
// It binds the node's data endpoint, registers with the replicated
// controller through a controller.AgentLink (with the cluster's join
// token), learns its cluster and node from the answer, and runs a
// runtime.Agent for that node in real mode: the execution engine, durable
// state for stateful instances under a data directory (recovered after a
// restart), heartbeats every 50 ms, and every newer routing table the
// controller publishes (an older epoch is refused and counted). The
// migrations and promotions the controller orders arrive in those tables
// and are carried out by the runtime; the link reports their progress.
//
// A host and its SmartNIC are two processes, possibly two machines (a
// BlueField DPU runs its own Linux), so the host link between them runs
// over TCP: the SmartNIC listens on its data address, the host dials it
// whenever the routing table gives the SmartNIC a new address, and each
// side bridges the connection into an in-process transport.HostLink that
// the runtime holds (see hostlink.go for the wire format). The SmartNIC's
// runtime then forwards its host's traffic (the traffic manager) exactly
// as in the emulated cluster.
//
// An HTTP endpoint serves Prometheus metrics (the runtime's and the
// process's own: heartbeats, tables, host links, modelled power, RAPL
// energy where the kernel exposes it, durable instances' replication),
// /healthz and /v1/status (JSON).
//
//	a, err := agentd.Start(ctx, agentd.Config{Role: agentd.RoleHost, Server: "r0/s1",
//		Controllers: []string{"10.0.0.1:7400"}, JoinToken: tok,
//		Listen: netip.MustParseAddrPort("10.0.1.11:7000"), HTTP: "10.0.1.11:7100",
//		DataDir: "/var/lib/e3/agent"})
//	...
//	a.Close() // on SIGTERM
package agentd
