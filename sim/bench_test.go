package sim

import (
	"container/heap"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// holdMix is the event mix of the engine benchmark, after the simulator's
// own (an NFV-FIN run on three Type1-SmartNIC servers processes about 40 %
// arrivals at a core queue, 35 % job completions, 15 % port crossings and
// 10 % client and reply events). Each kind schedules its successor after
// a delay of its own scale: a core job tens of microseconds, a hop a
// microsecond, a client's next request tens of microseconds.
var holdMix = []struct {
	kind   evKind
	weight int
	meanNs float64
}{
	{evArrive, 40, 1_500}, // next: a job completes after service
	{evDone, 35, 12_000},  // next: a hop to the next node
	{evPort, 15, 800},     // next: arrival after the link
	{evSend, 10, 40_000},  // next: the client's next request
}

// BenchmarkEngine measures the event engine alone in the hold model, the
// standard benchmark of future event lists: a queue of constant size,
// where each step pops the earliest event, dispatches on its kind and
// schedules one new event. Sizes span the simulator's typical pending
// events (one per busy core, message on a link and client). The
// container-heap variant runs the same workload through container/heap,
// the design's reference, for comparison.
func BenchmarkEngine(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const nInc = 1 << 16
	kinds := make([]evKind, nInc)
	incs := make([]int64, nInc)
	total := 0
	for _, m := range holdMix {
		total += m.weight
	}
	for i := range kinds {
		w := rng.IntN(total)
		for _, m := range holdMix {
			if w < m.weight {
				kinds[i] = m.kind
				incs[i] = int64(rng.ExpFloat64() * m.meanNs)
				break
			}
			w -= m.weight
		}
	}
	for _, size := range []int{1 << 10, 1 << 13, 1 << 16} {
		b.Run("typed/"+strconv.Itoa(size), func(b *testing.B) {
			var q eventQueue
			for i := range size {
				q.push(incs[i%nInc], kinds[i%nInc], int32(i), 0)
			}
			var handled [8]int
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuNow()
			for i := range b.N {
				e := q.pop()
				switch e.kind() { // the simulator's dispatch, minus the model
				case evArrive:
					handled[0]++
				case evDone:
					handled[1]++
				case evPort:
					handled[2]++
				default:
					handled[3]++
				}
				j := i & (nInc - 1)
				q.push(e.at+incs[j], kinds[j], e.a, e.b)
			}
			reportRate(b, float64(b.N), cpu0)
		})
		b.Run("container-heap/"+strconv.Itoa(size), func(b *testing.B) {
			q := &boxedQueue{}
			for i := range size {
				heap.Push(q, event{at: incs[i%nInc], seqKind: uint64(i)<<8 | uint64(kinds[i%nInc]), a: int32(i)})
			}
			seq := uint64(size)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuNow()
			for i := range b.N {
				e := heap.Pop(q).(event)
				j := i & (nInc - 1)
				seq++
				heap.Push(q, event{at: e.at + incs[j], seqKind: seq<<8 | uint64(kinds[j]), a: e.a, b: e.b})
			}
			reportRate(b, float64(b.N), cpu0)
		})
	}
}

// boxedQueue is the event order through container/heap, as in its
// PriorityQueue example, for BenchmarkEngine's comparison.
type boxedQueue []event

func (q boxedQueue) Len() int           { return len(q) }
func (q boxedQueue) Less(i, j int) bool { return q[i].before(&q[j]) }
func (q boxedQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *boxedQueue) Push(x any)        { *q = append(*q, x.(event)) }
func (q *boxedQueue) Pop() any {
	old := *q
	n := len(old)
	e := old[n-1]
	*q = old[:n-1]
	return e
}

// BenchmarkRun measures whole runs: built-in applications on three
// Type1-SmartNIC servers, open loop at 80 % of the analytic capacity
// bound, 20 ms of virtual time after 5 ms of warm-up. It reports events
// per second (wall and CPU) and simulated requests per CPU second.
func BenchmarkRun(b *testing.B) {
	topo := tableCluster(b, "3xType1-SmartNIC")
	for _, name := range []string{"nfv-fin", "iot-ts", "rta-shm"} {
		b.Run(name, func(b *testing.B) {
			a := builtin(b, name)
			cfg := Config{Topology: topo, Seed: 1, Apps: []AppLoad{{App: a, Clients: Closed(1)}},
				Warmup: 5 * time.Millisecond, Duration: 20 * time.Millisecond}
			assign, err := PlaceApps(&cfg)
			if err != nil {
				b.Fatal(err)
			}
			cfg.Apps[0].Assignment = assign[0]
			est, err := Capacity(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			cfg.Apps[0].Clients = Open(0.8 * est)
			if name == "iot-ts" {
				cfg.Duration = 200 * time.Millisecond // a slower application
			}
			var events, requests float64
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuNow()
			for range b.N {
				res, err := Run(cfg)
				if err != nil {
					b.Fatal(err)
				}
				events += float64(res.Events)
				requests += float64(res.Apps[0].Sent)
			}
			reportRate(b, events, cpu0)
			b.ReportMetric(events/requests, "events/request")
		})
	}
}
