package servicetest

import (
	"runtime"
	"testing"
)

// CPUTimer measures the CPU time of a benchmark loop on its locked OS
// thread. Benchmarks report it beside wall time because the machines they
// run on are often shared: wall time then counts the time other processes
// hold the core, thread CPU time does not.
type CPUTimer struct{ start int64 }

// StartCPU locks the benchmark's goroutine to its OS thread until the
// benchmark ends and starts measuring that thread's CPU time.
func StartCPU(b *testing.B) CPUTimer {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	return CPUTimer{threadCPU()}
}

// Stop reports the CPU time per operation since StartCPU as cpu-ns/op
// and, when bytesPerOp is positive, the throughput per CPU second as
// cpu-MB/s. Where thread CPU time cannot be read it reports nothing.
func (c CPUTimer) Stop(b *testing.B, bytesPerOp float64) {
	d := threadCPU() - c.start
	if d <= 0 || c.start == 0 || b.N == 0 {
		return
	}
	ns := float64(d) / float64(b.N)
	b.ReportMetric(ns, "cpu-ns/op")
	if bytesPerOp > 0 {
		b.ReportMetric(bytesPerOp/ns*1e3, "cpu-MB/s")
	}
}
