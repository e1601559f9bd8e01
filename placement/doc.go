// Package placement decides where the instances of microservice
// applications run: on which compute node (a host or a SmartNIC) of which
// server. It holds what every placement algorithm shares: the problem, the
// constraints and their checkers, the incremental state, results with
// explanations, quality metrics, and a registry of algorithms. The
// algorithms live in subpackages: hcm (the paper's Algorithm 1),
// annealing and ilp (the baselines).
//
// # The problem
//
// A [Problem] lists instances (the primary of each shard of a DAG node,
// and its backups) with their demands: message rate, per-message core time
// on every core kind (hwmodel's Table 1 calibration), memory, message
// size, pinning; the edges between them with their traffic; and the
// cluster ([Cluster]: a topology plus each node's core kind and each
// server's machine) with its current [Load]. Instances may already be
// deployed: placement is incremental, and deploying one more microservice
// into a running cluster is the common case. [FromApp] builds a problem
// from an application at an offered load.
//
// # Constraints
//
// Five constraints, each one [Checker], shared by every algorithm: pinning
// (non-migratable services such as SQL, and host-pinned instances, on
// hosts; SmartNIC-pinned ones on SmartNICs), fault domain (the replicas of
// a shard on different servers), memory, CPU (busy cores within
// [Limits].CPU of the node's cores) and network bandwidth (see
// [BandwidthCheck] for the traffic model). A checker that rejects says
// why, e.g. "memory: needs 1024 MB, 312 MB free". [Validate] re-checks a
// finished assignment from scratch, independently of the checkers.
//
// # Placing
//
//	load := placement.NewLoad(cluster)          // once; kept up to date
//	p := placement.NewProblem(load)
//	a := p.AddInstance(placement.Instance{Name: "kvs.0", Service: "kvs", RPS: 1e5, MemoryMB: 1024})
//	...
//	placer, _ := placement.New("hcm")            // after importing placement/hcm
//	res, err := placer.Place(p, rand.New(rand.NewPCG(seed, 0)))
//	if err != nil { ... }                        // broken input only
//	for _, u := range res.Unplaced { ... }       // what could not be placed, and why
//	err = load.Apply(p, res)                     // commit; skip it for a dry run
//
// A placer never changes the Load. It works on a [State], which records
// what it adds sparsely, for the nodes it touches only, so deploying one
// microservice into a 10,000-server cluster costs time and memory in
// proportion to the nodes examined. The Load keeps a free-capacity index
// (a segment tree over servers) through which [State.ScanCandidates] and
// [State.LevelCandidates] skip full servers in logarithmic time.
//
// # Quality and explanations
//
// [Evaluate] computes communication cost (traffic x [Hops]), modelled
// cluster power and requests per joule at the offered load, instances on
// SmartNICs and hosts, and CPU load balance. With Problem.Explain set, a
// Result carries an [Explanation] per instance: the node chosen, its level
// from its ancestor, and the candidates each constraint eliminated, with a
// few examples.
//
// The package is pure: no I/O, no clock, and randomness only from the
// *rand.Rand a caller passes to a Placer.
package placement
