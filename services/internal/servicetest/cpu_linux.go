package servicetest

import "golang.org/x/sys/unix"

// threadCPU returns the CPU time of the calling OS thread in nanoseconds,
// or 0 if it cannot be read.
func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
