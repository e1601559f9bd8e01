package transport

import (
	"context"
	"fmt"
	"sync"
)

// Queue is a bounded multi-producer queue between instances on the same
// node. It has the same push-back contract as a [Channel]: a full queue
// makes Push wait and TryPush fail with [ErrBackpressure]; nothing is ever
// dropped. It is a buffered Go channel underneath, which is already a
// well-tuned bounded MPMC ring with blocking, so there is nothing to gain
// from a ring of our own here.
//
// Values are passed as they are: a Queue of []byte hands the consumer the
// producer's slice, so the producer must not reuse it (use a pool, or a
// Queue of values).
type Queue[T any] struct {
	ch   chan T
	done chan struct{}
	once sync.Once
}

// NewQueue returns a queue that holds up to capacity values (at least 1).
func NewQueue[T any](capacity int) *Queue[T] {
	if capacity < 1 {
		capacity = 1
	}
	return &Queue[T]{ch: make(chan T, capacity), done: make(chan struct{})}
}

// TryPush adds v without waiting; ErrBackpressure if the queue is full,
// ErrClosed after Close.
func (q *Queue[T]) TryPush(v T) error {
	select {
	case <-q.done:
		return fmt.Errorf("transport: queue push: %w", ErrClosed)
	default:
	}
	select {
	case q.ch <- v:
		return nil
	default:
		return ErrBackpressure
	}
}

// Push adds v, waiting while the queue is full.
func (q *Queue[T]) Push(ctx context.Context, v T) error {
	if err := q.TryPush(v); err != ErrBackpressure {
		return err
	}
	select {
	case q.ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-q.done:
		return fmt.Errorf("transport: queue push: %w", ErrClosed)
	}
}

// TryPop takes the oldest value without waiting; ErrNoMessage if the queue
// is empty, ErrClosed once it is closed and drained.
func (q *Queue[T]) TryPop() (T, error) {
	select {
	case v := <-q.ch:
		return v, nil
	default:
	}
	var zero T
	select {
	case <-q.done:
		return zero, fmt.Errorf("transport: queue pop: %w", ErrClosed)
	default:
		return zero, ErrNoMessage
	}
}

// Pop takes the oldest value, waiting for one. After Close it still
// returns what was queued, then ErrClosed.
func (q *Queue[T]) Pop(ctx context.Context) (T, error) {
	select {
	case v := <-q.ch:
		return v, nil
	default:
	}
	var zero T
	select {
	case v := <-q.ch:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-q.done:
		select {
		case v := <-q.ch:
			return v, nil
		default:
			return zero, fmt.Errorf("transport: queue pop: %w", ErrClosed)
		}
	}
}

// C exposes the queue for a consumer that selects over several sources
// (a worker serving many instances). Receiving from it is a Pop.
func (q *Queue[T]) C() <-chan T { return q.ch }

// Len is the number of queued values: the queue depth a heartbeat reports.
func (q *Queue[T]) Len() int { return len(q.ch) }

// Cap is the queue's capacity.
func (q *Queue[T]) Cap() int { return cap(q.ch) }

// Close stops further pushes; waiting producers get ErrClosed. Values
// already queued can still be popped. Close is idempotent.
func (q *Queue[T]) Close() {
	q.once.Do(func() { close(q.done) })
}
