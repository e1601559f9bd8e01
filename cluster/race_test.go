//go:build race

package cluster

// raceEnabled reports whether the race detector is on. It slows every
// message several times over, so a test that compares the emulation's
// real-time pacing against the simulator cannot hold under it.
const raceEnabled = true
