// Package localcluster brings up a whole E3 deployment on one machine, for
// trying it and for testing failures: what `e3 up` runs.
//
// It starts N replicas of the controller (the first bootstraps the raft
// cluster, the others join it) and one node agent (package agentd) for
// every host and SmartNIC of a Table 4 cluster, and returns once every
// agent has registered. Three layouts:
//
//   - in this process (the default of Up): replicas and agents as
//     goroutines on their own loopback addresses;
//   - as processes (Config.Procs): every member runs the e3 binary
//     (`e3 controller`, `e3 agent`) in a process group of its own, with a
//     log file, on loopback addresses 127.0.100.i for replicas and
//     127.0.x.y per compute node (the numbering e3 run uses);
//   - in network namespaces (Config.Netns, root and iproute2 needed):
//     every server and every replica is its own network host, its veth
//     plugged into a bridge in a ToR namespace, and the root namespace
//     plugged in too so that clients reach everything; Partition unplugs
//     a member.
//
// Down stops the agents and then the replicas (SIGTERM, SIGKILL after a
// grace period) and removes the namespaces. Children also die with their
// parent (Pdeathsig), so a crashed or killed e3 up or test leaves no
// processes behind. Kill and KillServer end members with SIGKILL for
// failure drills.
//
//	c, err := localcluster.Up(ctx, localcluster.Config{Procs: true, Controllers: 3})
//	...
//	defer c.Down()
//	c.Client().Deploy(ctx, controller.DeployRequest{Spec: spec})
//	c.KillServer("r0/s1")
package localcluster
