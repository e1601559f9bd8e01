package sim

import (
	"syscall"
	"testing"
	"time"
)

// cpuNow returns the CPU time (user + system) the test process has used.
// The benchmarks report events per CPU second besides the usual per-op
// wall time: the machine is shared, and under contention wall time
// measures the neighbours as much as the code.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRate reports events per wall second and per CPU second, in
// millions, for a benchmark that processed events events since the CPU
// clock read cpu0.
func reportRate(b *testing.B, events float64, cpu0 time.Duration) {
	b.ReportMetric(events/b.Elapsed().Seconds()/1e6, "Mevents/s")
	if cpu := cpuNow() - cpu0; cpu > 0 {
		b.ReportMetric(events/cpu.Seconds()/1e6, "Mevents/cpu-s")
	}
}
