//go:build race

package localcluster_test

// raceEnabled reports whether the race detector is on: it slows every
// process several times over, so tests that hold failover to real-time
// bounds skip under it.
const raceEnabled = true
