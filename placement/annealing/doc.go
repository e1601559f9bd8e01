// Package annealing is the simulated-annealing placement baseline, in the
// manner of Azure Service Fabric's Cluster Resource Manager, which the E3
// paper compares HCM against (§3.3 and experiment X8).
//
// Service Fabric places new replicas by a random walk and then balances
// them by simulated annealing (Searcher::SearchForPlacement and
// Searcher::SimulatedAnnealing in microsoft/service-fabric). This package
// does the same with the constraints, state and scan order shared by every
// E3 placer:
//
//  1. Start from a feasible first fit: each instance on the first node, in
//     the core's scan order, that every checker accepts.
//  2. Anneal in rounds of 1,000 transitions. A transition is a random move
//     (with probability 0.3 a swap of two instances' nodes, otherwise one
//     instance moved to a node drawn uniformly from those every checker
//     accepts), kept by the Metropolis rule: always if the energy falls,
//     otherwise with probability exp(-ΔE/T). The first temperature is 50
//     times the largest energy change of 50 probe moves; it falls by a
//     factor 0.8 after each round that found no new best; the run ends when
//     10 rounds in a row changed the energy by less than 0.1 % and found no
//     new best. These are Service Fabric's constants; [Options] documents
//     where each is set there.
//  3. Return the best solution seen, after one more first-fit attempt for
//     any instance the start could not place.
//
// Every intermediate state satisfies every constraint, so does the result.
//
// The energy ([Energy]) weighs balanced load and the avoidance of
// co-execution interference highest and communication second: Service
// Fabric's AvgStdDev (the weighted mean over load metrics of their
// normalised standard deviation across nodes) of CPU and memory, the pairs
// of active instances sharing a node, and traffic x hops. Service Fabric
// itself ignores network topology; the communication term is the paper's
// addition for a fair baseline, at Service Fabric's Medium weight.
//
// The package is pure: no I/O, no clock. Service Fabric bounds a search by
// 0.5 s of wall time; here the bound is [Options].MaxRounds, a count. The
// same seed gives the same assignment.
//
// Importing the package registers it as "annealing" with
// placement.Register.
package annealing
