//go:build !race

package servicetest

// RaceEnabled reports whether the race detector is on. It makes sync.Pool
// drop items at random, so allocation counts of handlers that pool their
// scratch memory mean nothing under it; such tests skip.
const RaceEnabled = false
