//go:build race

package topology

// raceEnabled tells tests that the race detector, which changes what
// allocations cost, is on.
const raceEnabled = true
