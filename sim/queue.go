package sim

// event is one entry of the simulator's future event list. It is a small
// value (24 bytes) kept directly in the heap's slice, so scheduling an event
// allocates nothing and involves no interface: the model's handlers are a
// switch on its kind.
type event struct {
	at int64 // virtual time, nanoseconds
	// seqKind is the scheduling order shifted left by 8 bits, with the
	// event's kind in the low byte. The order is unique, so comparing
	// seqKind compares scheduling order.
	seqKind uint64
	a, b    int32 // arguments; their meaning depends on the kind
}

func (e *event) kind() evKind { return evKind(e.seqKind) }

// before orders events by time, then by the order they were scheduled. The
// sequence number makes the order total, so a run never depends on how the
// heap happens to arrange equal keys: the same seed replays the same run.
func (e *event) before(f *event) bool {
	return e.at < f.at || (e.at == f.at && e.seqKind < f.seqKind)
}

// eventQueue is a binary min-heap of events ordered by (at, seq): the
// algorithm of container/heap (the ordering follows its PriorityQueue
// example), written for the concrete event type. container/heap goes
// through heap.Interface, whose Push and Pop box every element into an
// interface value (an allocation for a 32-byte struct) and whose Less and
// Swap are indirect calls; this version moves elements into a hole instead
// of swapping them. BenchmarkQueue compares the two on the same workload.
type eventQueue struct {
	h   []event
	seq uint64
}

// Len returns the number of pending events.
func (q *eventQueue) Len() int { return len(q.h) }

// push schedules an event.
func (q *eventQueue) push(at int64, kind evKind, a, b int32) {
	q.seq++
	e := event{at: at, seqKind: q.seq<<8 | uint64(kind), a: a, b: b}
	h := append(q.h, e)
	// Sift up: move parents down into the hole until e fits.
	j := len(h) - 1
	for j > 0 {
		i := (j - 1) / 2
		if !e.before(&h[i]) {
			break
		}
		h[j] = h[i]
		j = i
	}
	h[j] = e
	q.h = h
}

// pop removes and returns the earliest event. The queue must not be empty.
func (q *eventQueue) pop() event {
	h := q.h
	top := h[0]
	n := len(h) - 1
	last := h[n]
	h = h[:n]
	q.h = h
	if n == 0 {
		return top
	}
	// Sift down: move the smaller child up into the hole until last fits.
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h[r].before(&h[l]) {
			c = r
		}
		if !h[c].before(&last) {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = last
	return top
}

// peekTime returns the time of the earliest event. The queue must not be
// empty.
func (q *eventQueue) peekTime() int64 { return q.h[0].at }
