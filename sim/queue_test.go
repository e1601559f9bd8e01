package sim

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

// TestQueueOrder pushes events with many equal times and checks that they
// come out by time, and in scheduling order among equal times.
func TestQueueOrder(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var q eventQueue
	type key struct {
		at  int64
		ord int32
	}
	var want []key
	for i := range 5000 {
		at := int64(rng.IntN(300)) // many ties
		q.push(at, evKind(i%7), int32(i), 0)
		want = append(want, key{at, int32(i)})
		// Interleave pops to exercise the heap in a non-trivial state.
		if i%5 == 4 {
			e := q.pop()
			idx := slices.IndexFunc(want, func(k key) bool { return k.ord == e.a })
			want = slices.Delete(want, idx, idx+1)
			for _, k := range want {
				if k.at < e.at || (k.at == e.at && k.ord < e.a) {
					t.Fatalf("popped (%d, #%d) while (%d, #%d) was pending", e.at, e.a, k.at, k.ord)
				}
			}
		}
	}
	slices.SortStableFunc(want, func(x, y key) int {
		if x.at != y.at {
			if x.at < y.at {
				return -1
			}
			return 1
		}
		return int(x.ord - y.ord)
	})
	for i, k := range want {
		e := q.pop()
		if e.at != k.at || e.a != k.ord {
			t.Fatalf("pop %d: got (%d, #%d), want (%d, #%d)", i, e.at, e.a, k.at, k.ord)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("%d events left", q.Len())
	}
}

// TestQueueNoAllocs checks that the steady state of scheduling allocates
// nothing once the heap's slice has grown.
func TestQueueNoAllocs(t *testing.T) {
	var q eventQueue
	for i := range 1024 {
		q.push(int64(i), evDone, 0, 0)
	}
	var now int64
	allocs := testing.AllocsPerRun(1000, func() {
		e := q.pop()
		now = e.at
		q.push(now+100, evDone, e.a, e.b)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pop+push, want 0", allocs)
	}
}

// holdModel is the classic benchmark of future event lists: a queue of
// constant size where each step removes the earliest event and schedules
// one new event an exponentially distributed time later. The size is that
// of a busy simulation (one event pending per request in flight or core
// busy); the increments mix the simulator's scales, sub-microsecond hops
// and tens of microseconds of service.
func holdIncrements(n int) []int64 {
	rng := rand.New(rand.NewPCG(1, 2))
	inc := make([]int64, n)
	for i := range inc {
		mean := 500.0 // network hop
		if i%3 == 0 {
			mean = 20000 // service
		}
		inc[i] = int64(rng.ExpFloat64() * mean)
	}
	return inc
}

func BenchmarkQueue(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 14, 1 << 17} {
		inc := holdIncrements(1 << 16)
		b.Run("typed/"+strconv.Itoa(size), func(b *testing.B) {
			var q eventQueue
			for i := range size {
				q.push(inc[i&(len(inc)-1)], evDone, int32(i), 0)
			}
			b.ResetTimer()
			cpu0 := cpuNow()
			for i := range b.N {
				e := q.pop()
				q.push(e.at+inc[i&(len(inc)-1)], e.kind, e.a, e.b)
			}
			reportRate(b, float64(b.N), cpu0)
		})
		b.Run("container-heap/"+strconv.Itoa(size), func(b *testing.B) {
			q := &boxedQueue{}
			for i := range size {
				heap.Push(q, event{at: inc[i&(len(inc)-1)], seq: uint64(i), a: int32(i)})
			}
			seq := uint64(size)
			b.ResetTimer()
			cpu0 := cpuNow()
			for i := range b.N {
				e := heap.Pop(q).(event)
				seq++
				heap.Push(q, event{at: e.at + inc[i&(len(inc)-1)], seq: seq, a: e.a, b: e.b, kind: e.kind})
			}
			reportRate(b, float64(b.N), cpu0)
		})
	}
}

// boxedQueue is the same ordering through container/heap, as in its
// PriorityQueue example, for BenchmarkQueue's comparison.
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
