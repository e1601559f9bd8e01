// Package controller is E3's replicated resource controller: the replicas
// that hold the cluster's state (registered agents, deployed applications
// and where their instances run, migrations in flight, the routing epoch),
// decide placements, watch the agents' heartbeats and fail servers over.
// docs/controller.md is the operator's guide and the API reference.
//
// # Replication
//
// One to five replicas ([Server]) keep the [State] replicated with
// hashicorp/raft over TCP; the log and raft's stable state live in one
// bbolt file (package raftbolt), snapshots in files. Every change is a
// [Command] in the log, and [State.Apply] is deterministic: commands carry
// decisions already taken (the placement the leader computed, what the
// orchestrator decided), stamped with the leader's clock, so followers
// never decide anything again. A command the state refuses (a name already
// deployed, a node that is not registered) changes nothing on any replica
// and comes back to the proposer as [ApplyResult].Err.
//
// Only the leader decides. A follower forwards the requests that change
// state to the leader's API (its address is in the replicated replica
// records) and answers reads from its own copy.
//
// # The leader's own state
//
// Liveness is not replicated: the leader keeps the time it last heard each
// agent and an orchestrator (package orchestrator) that it builds from the
// state when it takes office. Deploys are placed (package placement, HCM
// by default) on a copy of the orchestrator's load, with nodes that have no
// live agent masked as full, and the decided assignment is proposed. Every
// half heartbeat period the leader asks the orchestrator for decisions and
// replicates them as one failover command: servers failed, backups
// promoted (the shard's primary slot moves to the node of the backup whose
// replica took over), backups re-created, instances re-placed, migrations
// ordered, routes republished at a new epoch. A new leader waits
// [Config].LeaderGrace before it declares anyone failed, so that agents
// have time to find it.
//
// # Agents
//
// Agents register and report with the cluster join token
// (POST /v1/agents/register, /v1/agents/heartbeat) and long-poll the
// routing table (GET /v1/routes?wait=EPOCH). [AgentLink] is the agent's
// side: it implements runtime.Controller, so a runtime.Agent reports
// through it, and it hands every newer routing table to a callback;
// [Routes.Table] converts it into a runtime.Table.
//
//	link := controller.NewAgentLink(controller.AgentConfig{
//		Controllers: []string{"10.0.0.1:7400", "10.0.0.2:7400"},
//		JoinToken:   joinToken,
//		Register:    controller.RegisterRequest{Node: "r0/s1/nic0", Role: "smartnic", Addr: agentAddr},
//		OnRoutes: func(r *controller.Routes) {
//			tab, skipped, err := r.Table(topo, services.Registry())
//			... agent.Apply(tab)
//		},
//	})
//	link.Register(ctx)
//	agent, _ := runtime.New(runtime.Config{..., Controller: link})
//	agent.Start(); link.Start()
//
// # Clients
//
// [Client] is the Go client of the HTTP API; `e3 deploy`, `e3 undeploy`,
// `e3 plan` and `e3 status` use it. It knows several replicas, follows
// the leader and retries through elections.
package controller
