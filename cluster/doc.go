// Package cluster runs a whole emulated E3 cluster in one process: a
// cluster of the paper's Table 4 (hwmodel), one node agent (package
// runtime) per compute node on its own loopback address 127.0.x.y, the
// host links between SmartNICs and their hosts, and a minimal controller
// that places an application (package placement, HCM by default), pushes
// routing tables with rising epochs and collects heartbeats. `e3 run` and
// the integration tests use it.
//
//	plan, _ := cluster.PlanApp("3xType1-SmartNIC", a, "hcm", seed)
//	d := cluster.ChooseDilation(plan, cluster.MeasureCosts(a))
//	c, _ := cluster.Start(cluster.Config{Cluster: plan.Cluster, Dilation: d})
//	defer c.Stop()
//	dep, _ := c.Deploy(plan, seed)
//	target, _ := c.NewTarget(dep) // a loadgen.Target
//	// drive it with loadgen on c.Clock(); c.PowerBetween gives modelled power
//
// The network's latencies and the SmartNIC traffic manager's cost are
// sim.DefaultParams' (see [LatencyModel]), so the emulated and the
// simulated cluster use the same figures. The software ToR is a function,
// runtime.WireEnd, that every sender applies: a message for a host whose
// traffic enters through its SmartNICs goes to the SmartNIC its flow
// hashes to among the host's ECMP group (topology.HostPorts), whose traffic
// manager forwards it over the host link. A forwarding process would add a
// real hop to every message for nothing the emulation needs.
//
// [Run] is `e3 run`: plan, choose the dilation, start, drive with a knee
// search, and report throughput, latency and modelled power in emulated
// time.
//
// Stateful instances keep their state on disk by default (Config.State):
// a durable store per instance under a per-node state directory,
// replicated to its backup. [Cluster.Migrate] moves an instance by cold
// migration with the agents' table protocol (runtime.Move) and reports its
// real and emulated duration; [Cluster.Kill] and [Cluster.Restart] stop an
// agent as a crash would and bring it back on its directory. With
// Config.Orchestrator the controller feeds every heartbeat to package
// orchestrator and carries out its migrations ([Cluster.Decisions]);
// [RunX6] is experiment X6 on the emulated cluster.
package cluster
