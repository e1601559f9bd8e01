//go:build race

package experiments

// raceEnabled reports whether the race detector is on. It slows every
// message of the emulated cluster several times over, so V1's comparison
// of the emulation against the simulator cannot hold under it.
const raceEnabled = true
