// Package app turns an application spec (YAML) into a validated dataflow DAG
// and expands it into the instances the platform places and runs. It also
// embeds the eight applications of the paper's Table 3.
//
// A spec names DAG nodes, each a microservice with a shard count, backups per
// shard, a pin (host, smartnic, any) and a config map; edges between nodes
// with a routing policy (key_hash, round_robin, broadcast) and a traffic
// share; the source nodes where requests enter; and the workload (request
// size, key space, mix over sources). docs/app-spec.md is the reference.
//
// Load does everything in one call and reports every problem it finds, each
// as FILE:LINE: field: message, in an [ErrorList]:
//
//	a, err := app.Load("shop.yaml", data, services.Registry())
//	if err != nil {
//		fmt.Fprintln(os.Stderr, err) // one line per problem
//	}
//	for _, n := range a.Nodes() { ... }          // topological order
//	for _, i := range a.Instances() { ... }      // "sql.3", "sql.3.b1", ...
//	a2, _ := app.Builtin("iot-ts", services.Registry())
//
// Expansion gives every node Shards x (1 + Backups) instances. Primaries take
// traffic; backups take only state replication from their primary. Each edge
// becomes links between primaries: every source shard to every destination
// shard, except a key_hash edge marked `key: same`, whose sender re-emits the
// key it was routed by, so that shard s reaches only the shards d with
// s ≡ d (mod gcd of the shard counts); this is what keeps the fan-out of the
// built-in applications at the paper's average of 6 and maximum of 12. The
// runtime and the simulator route key_hash edges with [ShardOf] so that this
// holds. Nodes, edges, instances and links carry the expected number of
// messages per request entering the application (Rate), assuming uniformly
// spread keys, for placement and the simulator.
//
// The package is pure: it reads no files, clock or network. Microservices
// are resolved through the small [Catalog] interface, which
// *service.Registry satisfies, so it does not depend on the service
// implementations.
package app
