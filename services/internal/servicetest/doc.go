// Package servicetest holds the checks and fixtures the services' tests
// share: the parts of their tests that are the same logic in every service,
// written once so that each test says only what is particular to its
// service.
//
//   - [CheckGenerator]: what every generator promises (same seed, same
//     requests and keys, whatever buffer it is given; requests of the asked
//     size that decode);
//   - [RecordingStore], [Rebuilt], [CopySnapshots] and [Lockstep]: state
//     that lives only in reliable collections, rebuilt from the mutation
//     log as a backup replica does or from snapshots as a migration does,
//     and then checked to answer like the original;
//   - [CheckConcurrent]: a read-only handler answers alike from several
//     goroutines;
//   - [Reply] and [CheckMalformed]: the error contract every handler keeps
//     on any input, the core of the fuzz and malformed-request tests;
//   - [Requests], [HandleAllocs], [StartCPU] and [RaceEnabled]: benchmark
//     and allocation-test plumbing;
//   - [Digest]: SHA-256 fingerprints of generated data, for tests that pin
//     behaviour.
//
// Only test files import it. It imports no service package, so any
// service's in-package tests can use it.
package servicetest
