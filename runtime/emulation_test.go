package runtime

import (
	"sync"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/topology"
)

// testEmulation: every hop 1 µs, clients 2 µs away, echo costs demand.
func testEmulation(d float64, demand, tm time.Duration) *Emulation {
	return &Emulation{
		Dilation: d, Origin: time.Now(),
		Latency:       func(a, b topology.NodeID, _ int) time.Duration { return time.Microsecond },
		ClientLatency: func(topology.NodeID, int) time.Duration { return 2 * time.Microsecond },
		TMDemand:      tm,
		Demand:        func(string) time.Duration { return demand },
	}
}

// timedReplies records the emulated arrival time of every reply.
type timedReplies struct {
	mu sync.Mutex
	at map[uint64]int64
}

// TestEmulatedCoresSaturate: 400 requests sent at once to an echo
// instance on a 2-core SmartNIC whose service time is 100 µs keep both
// emulated cores busy back to back, so the last reply is due 400 x 100 µs
// / 2 = 20 ms (plus the path) after the first request, whatever the real
// machine did meanwhile: the emulated figures come from timestamps.
func TestEmulatedCoresSaturate(t *testing.T) {
	emu := testEmulation(20, 100*time.Microsecond, 0)
	tc := newTestCluster(t, clusterOpts{emu: emu, cores: 2, timeout: 30 * time.Second})
	rec := &timedReplies{at: map[uint64]int64{}}
	tc.client.cfg.OnReply = func(id uint64, _ []byte, err error, at int64) {
		if err != nil {
			t.Errorf("request %d: %v", id, err)
		}
		rec.mu.Lock()
		rec.at[id] = at
		rec.mu.Unlock()
		tc.done <- id
	}
	a := loadApp(t, "name: one\nclass: RTA\nnodes:\n  e: {service: echo}\n")
	id := tc.deploy(a, func(*app.Instance) string { return "r0/s0/nic0" })
	const n = 400
	t0 := tc.client.cfg.Now()
	for i := 1; i <= n; i++ {
		if err := tc.client.Send(id, 0, uint64(i), []byte("x"), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	tc.waitReplies(n, 30*time.Second)
	var last int64
	for _, at := range rec.at {
		last = max(last, at)
	}
	// Sending 400 requests takes a little real time; their emulated send
	// times spread over that, so allow 2 % either way.
	got := time.Duration(last - t0)
	want := n * 100 * time.Microsecond / 2
	if got < want || got > want*102/100+time.Millisecond {
		t.Errorf("last reply %v after the first send, want %v (+ the path)", got, want)
	}
	st := tc.agents[1].Stats()
	if busy := time.Duration(st.BusyNs); busy != n*100*time.Microsecond {
		t.Errorf("busy %v, want %v", busy, n*100*time.Microsecond)
	}
	t.Logf("last reply after %v (want %v); late %d of %d", got, want, st.Late, st.Paced)
}

// TestHostStarvation: requests for an instance on the host enter through
// the SmartNIC, whose traffic manager competes for the SmartNIC's cores
// with a compute-heavy microservice there. With the microservice busy, the
// host's requests queue at the traffic manager: their latency grows by the
// microservice's work and the queue depth is visible.
func TestHostStarvation(t *testing.T) {
	emu := testEmulation(20, 200*time.Microsecond, 3*time.Microsecond)
	// One core per node: the SmartNIC's traffic manager and the heavy
	// microservice share it.
	tc := newTestCluster(t, clusterOpts{emu: emu, cores: 1, timeout: 30 * time.Second})
	rec := &timedReplies{at: map[uint64]int64{}}
	sent := map[uint64]int64{}
	var sentMu sync.Mutex
	tc.client.cfg.OnReply = func(id uint64, _ []byte, err error, at int64) {
		if err != nil {
			t.Errorf("request %d: %v", id, err)
		}
		rec.mu.Lock()
		rec.at[id] = at
		rec.mu.Unlock()
		tc.done <- id
	}
	a := loadApp(t, `
name: two
class: RTA
nodes:
  heavy: {service: echo}
  hostside: {service: echo}
`)
	id := tc.deploy(a, func(i *app.Instance) string {
		if i.Node.Name == "heavy" {
			return "r0/s0/nic0"
		}
		return "r0/s0/host"
	})
	heavy := a.Instances()[0]
	hostside := a.Instances()[1]
	if heavy.Node.Name != "heavy" {
		heavy, hostside = hostside, heavy
	}
	send := func(inst *app.Instance, rid uint64) {
		sentMu.Lock()
		sent[rid] = tc.client.cfg.Now()
		sentMu.Unlock()
		if err := tc.client.Send(id, uint32(inst.Index), rid, []byte("x"), rid); err != nil {
			t.Fatal(err)
		}
	}
	send(hostside, 3) // opens the client's channel, which takes real time
	tc.waitReplies(1, 10*time.Second)
	send(hostside, 1)
	tc.waitReplies(1, 10*time.Second)
	alone := time.Duration(rec.at[1] - sent[1])
	// Now 20 heavy requests occupy the SmartNIC's only core for 4 ms,
	// and a host request arrives behind them.
	for i := uint64(100); i < 120; i++ {
		send(heavy, i)
	}
	send(hostside, 2)
	tc.waitReplies(21, 30*time.Second)
	starved := time.Duration(rec.at[2] - sent[2])
	t.Logf("host request alone %v, behind the SmartNIC's heavy work %v", alone, starved)
	// Alone: 200 µs of service on the host plus the path (a few hops and
	// traffic-manager passes of a few µs).
	if alone < 200*time.Microsecond || alone > 260*time.Microsecond {
		t.Errorf("host request alone took %v, want its 200 µs service plus the path", alone)
	}
	if starved < alone+2*time.Millisecond {
		t.Errorf("host request behind heavy SmartNIC work took %v, want it delayed by that work (ms)", starved)
	}
	if st := tc.agents[1].Stats(); st.TMPackets < 4 || st.TMBusyNs != int64(st.TMPackets)*3000 {
		t.Errorf("traffic manager: %d forwardings, %v busy", st.TMPackets, time.Duration(st.TMBusyNs))
	}
}
