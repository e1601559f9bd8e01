package sim

import (
	"math/rand/v2"
	"slices"
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
		if e.kind() != evKind(e.a%7) {
			t.Fatalf("event #%d came back with kind %d, pushed with %d", e.a, e.kind(), e.a%7)
		}
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
		q.push(now+100, e.kind(), e.a, e.b)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pop+push, want 0", allocs)
	}
}
