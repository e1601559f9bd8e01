package orchestrator

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the calling thread's CPU time. The benchmarks lock their
// goroutine to a thread and time with it: the machine is shared, and
// wall time would measure the neighbours too.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func BenchmarkHeartbeatDecode(b *testing.B) {
	for _, k := range []int{0, 4, 16} {
		b.Run(fmt.Sprintf("samples=%d", k), func(b *testing.B) {
			h := Heartbeat{Node: 12345, Seq: 7, Queue: 3, RxBytes: 1 << 20, TxBytes: 1 << 19}
			for i := range k {
				h.Samples = append(h.Samples, ExecSample{Instance: InstanceID(100 + i), Count: 1000, MeanNs: 9000})
			}
			buf, _ := h.Append(nil)
			var got Heartbeat
			got.Samples = make([]ExecSample, 0, k)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if err := got.Decode(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchScale runs whole heartbeat periods: ns/op is one period (every
// heartbeat decoded and observed, then Decide), and the metrics split it.
func benchScale(b *testing.B, o ScaleOptions) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	o.Clock = threadCPU
	s, err := NewScale(o)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var ingest, decide, worst time.Duration
	migrations := 0
	for b.Loop() {
		in, de, m, err := s.Period()
		if err != nil {
			b.Fatal(err)
		}
		ingest += in
		decide += de
		worst = max(worst, de)
		migrations += m
	}
	n := float64(b.N)
	hb := float64(s.Heartbeats())
	b.ReportMetric(float64(ingest)/n/hb, "ingest-ns/heartbeat")
	b.ReportMetric(float64(decide)/n/1e3, "decide-µs/period")
	b.ReportMetric(float64(worst)/1e3, "decide-max-µs")
	b.ReportMetric(float64(ingest+decide)/n/float64(DefaultHeartbeatPeriod), "core-share")
	b.ReportMetric(hb/DefaultHeartbeatPeriod.Seconds()/1e6, "Mheartbeats/s")
	b.ReportMetric(float64(migrations)/n, "migrations/period")
}

// BenchmarkX11Servers is X11 against the cluster size: SmartNIC
// heartbeats only, as in the paper, two instances per SmartNIC.
func BenchmarkX11Servers(b *testing.B) {
	for _, servers := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprintf("servers=%d", servers), func(b *testing.B) {
			benchScale(b, ScaleOptions{Servers: servers, Seed: 1})
		})
	}
}

// BenchmarkX11WithHosts adds the hosts' heartbeats (failure detection
// needs them): five heartbeats a server a period.
func BenchmarkX11WithHosts(b *testing.B) {
	for _, servers := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprintf("servers=%d", servers), func(b *testing.B) {
			benchScale(b, ScaleOptions{Servers: servers, Hosts: true, Seed: 1})
		})
	}
}

// BenchmarkX11Instances is X11 against the number of deployed
// microservices at 10,000 servers.
func BenchmarkX11Instances(b *testing.B) {
	for _, per := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("servers=10000/per-nic=%d", per), func(b *testing.B) {
			benchScale(b, ScaleOptions{Servers: 10000, InstancesPerNIC: per, Seed: 1})
		})
	}
}

// BenchmarkX11Arrival puts the batched ingest at 50,000 servers beside
// its references in one run: one heartbeat at a time, and heartbeats
// arriving in node order (the caches' best case).
func BenchmarkX11Arrival(b *testing.B) {
	for _, c := range []struct {
		name string
		o    ScaleOptions
	}{
		{"batched", ScaleOptions{}},
		{"unbatched", ScaleOptions{Unbatched: true}},
		{"in-order", ScaleOptions{InOrder: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.o.Servers, c.o.Seed = 50000, 1
			benchScale(b, c.o)
		})
	}
}

// BenchmarkDecideQuiet is Decide with nothing to do: its cost must not
// grow with the cluster.
func BenchmarkDecideQuiet(b *testing.B) {
	for _, servers := range []int{1000, 50000} {
		b.Run(fmt.Sprintf("servers=%d", servers), func(b *testing.B) {
			s, err := NewScale(ScaleOptions{Servers: servers, StarvePerPeriod: 1e-12, Seed: 1, Clock: threadCPU, InstancesPerNIC: 1})
			if err != nil {
				b.Fatal(err)
			}
			o := s.Orchestrator()
			b.ReportAllocs()
			for b.Loop() {
				if len(o.Decide(s.now)) != 0 {
					b.Fatal("actions in a quiet cluster")
				}
			}
		})
	}
}
