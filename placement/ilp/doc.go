// Package ilp is the integer-programming placement baseline of the E3
// paper: the same problem HCM and the annealing solve, written as an
// integer linear program and solved to proven optimality (or to a time
// or node limit) by COIN-OR's cbc.
//
// [Build] formulates a placement.Problem ([Model] documents every variable
// and row): a binary x_i_n for each instance and each node the shared
// checkers accept for it alone, each instance on exactly one node, the
// CPU, memory and NIC-port capacities of the core's model, pinning (by the
// candidate nodes), and fault domains (two replicas of a shard never on one
// server). The objective, like the annealing's energy, weighs balance and
// co-execution interference highest and communication second: the largest
// CPU utilisation of any node, the pairs of active instances sharing a
// node (linearised exactly by the chords of k(k-1)/2), and traffic x hops
// with the hop count linearised exactly from per-edge separation
// indicators.
//
// [Placer] writes the model as a CPLEX LP file, runs cbc on it as a
// separate program with a wall-time limit (and, for reproducible
// answers, a node limit: Options.NodeLimit), and parses cbc's solution file
// ([ParseSolution]: optimal, stopped on a limit with or without a
// solution, infeasible, unbounded; malformed input is an error naming
// file:line). If the model that places every instance is infeasible, an
// elastic one that may leave instances out, at a penalty above any
// placement's cost, finds the most that fit. The answer is re-checked with
// the shared checkers before it is returned.
//
// cbc is Debian's coinor-cbc package; without it Place returns an error
// wrapping [ErrNoSolver] that names the package. Running a program and
// writing files make this package impure, by design: the purity guard
// leaves it out.
//
// Importing the package registers it as "ilp" with placement.Register.
package ilp
