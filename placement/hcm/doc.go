// Package hcm implements HCM, the hierarchical communication-aware
// microservice placement of the E3 paper (§3.3, Algorithm 1).
//
// HCM walks the application DAG breadth first from its sources
// (MS_DAG_TRAVERSE). An instance that is neither deployed nor placed when
// it is dequeued has no placed ancestor and gets find_first_fit: the first
// node, in a fixed scan order, that passes every constraint. Each direct
// descendant not yet placed gets MS_PLACE from its ancestor's node: the
// levels of that node's hierarchical topology (same node, same server,
// SmartNICs of the rack, hosts of the rack, then the pod and the cluster),
// closest first, and within the first level that has a feasible node,
// find_best_fit. Algorithm 1 then falls back to find_first_fit over the
// whole cluster; since the levels already cover every node, that could
// only fail, and the instance is reported unplaced at once. Backups are placed after all primaries, by MS_PLACE from their
// primary's node, where the fault-domain constraint excludes the primary's
// server.
//
// The best-fit score is documented on the run's bestFit method: the node
// kind the service prefers for energy first, then the tightest fit on the
// binding resource. An instance no node fits is left unplaced and reported
// with the node closest to fitting; HCM never overcommits.
//
// The constraints, the incremental state and the candidate iterators are
// placement's, shared with the other algorithms. With the free-capacity
// index, find_first_fit skips full servers in logarithmic time, so
// deploying one microservice into a cluster of 10,000 servers takes
// microseconds (see BenchmarkHCMDeployOne and docs/placement.md).
//
// Importing the package registers it as "hcm" with placement.Register.
package hcm
