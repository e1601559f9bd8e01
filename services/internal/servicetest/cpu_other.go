//go:build !linux

package servicetest

// threadCPU is not available here: benchmarks report wall time only.
func threadCPU() int64 { return 0 }
