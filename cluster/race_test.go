//go:build race

package cluster

// raceEnabled: the race detector slows the emulation several times over.
const raceEnabled = true
