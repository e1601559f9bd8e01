package transport

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestQueuePushBack(t *testing.T) {
	defer goleak.VerifyNone(t)
	q := NewQueue[int](3)
	for i := range 3 {
		if err := q.TryPush(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.TryPush(3); !errors.Is(err, ErrBackpressure) {
		t.Fatalf("TryPush on a full queue: %v", err)
	}
	if q.Len() != 3 || q.Cap() != 3 {
		t.Fatalf("Len %d Cap %d", q.Len(), q.Cap())
	}
	pushed := make(chan error)
	go func() { pushed <- q.Push(context.Background(), 3) }()
	select {
	case err := <-pushed:
		t.Fatalf("Push on a full queue returned %v instead of waiting", err)
	case <-time.After(10 * time.Millisecond):
	}
	if v, err := q.Pop(context.Background()); v != 0 || err != nil {
		t.Fatalf("Pop = %d, %v", v, err)
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Push(ctx, 9); !errors.Is(err, context.Canceled) {
		t.Fatalf("Push with a cancelled context on a full queue: %v", err)
	}
	q.Close()
	if err := q.TryPush(4); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryPush after Close: %v", err)
	}
	// What was queued before Close is still delivered, in order.
	for want := 1; want <= 3; want++ {
		if v, err := q.Pop(context.Background()); v != want || err != nil {
			t.Fatalf("Pop after Close = %d, %v; want %d", v, err, want)
		}
	}
	if _, err := q.Pop(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pop on a closed, empty queue: %v", err)
	}
	if _, err := q.TryPop(); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryPop on a closed, empty queue: %v", err)
	}
}

// TestQueueManyProducers: every value from every producer arrives once, in
// each producer's order.
func TestQueueManyProducers(t *testing.T) {
	defer goleak.VerifyNone(t)
	const producers, each = 4, 2000
	q := NewQueue[[2]int](16)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := q.Push(context.Background(), [2]int{p, i}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]int, producers)
	for range producers * each {
		v, err := q.Pop(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if v[1] != next[v[0]] {
			t.Fatalf("producer %d: got %d, want %d", v[0], v[1], next[v[0]])
		}
		next[v[0]]++
	}
	wg.Wait()
	if _, err := q.TryPop(); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("extra value: %v", err)
	}
}

func TestQueueNoAllocs(t *testing.T) {
	q := NewQueue[uint64](8)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		q.Push(ctx, 1)
		q.Pop(ctx)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per push+pop", allocs)
	}
}

func TestHostLinkLatency(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := NewManualClock(epoch)
	nic, host, err := NewHostLink(HostLinkConfig{Latency: 3 * time.Microsecond, Capacity: 4, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer nic.Close()
	msg := []byte("packet for the host")
	if err := nic.TrySend(msg); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'X' // the link holds a copy
	if _, err := host.TryRecv(nil); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("message readable before its latency: %v", err)
	}
	if nic.Depth() != 1 {
		t.Fatalf("Depth %d, want 1", nic.Depth())
	}
	got := make(chan string)
	go func() {
		b, err := host.Recv(context.Background(), nil)
		if err != nil {
			t.Error(err)
		}
		got <- string(b)
	}()
	clk.Advance(2 * time.Microsecond)
	select {
	case s := <-got:
		t.Fatalf("Recv returned %q after 2 of 3 µs", s)
	case <-time.After(5 * time.Millisecond):
	}
	// Recv armed a timer for the due time; moving the clock fires it.
	for clk.Pending() == 0 {
		time.Sleep(100 * time.Microsecond)
	}
	clk.Advance(time.Microsecond)
	if s := <-got; s != "packet for the host" {
		t.Fatalf("host got %q", s)
	}
	// The other direction is independent.
	if err := host.TrySend([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(3 * time.Microsecond)
	if b, err := nic.TryRecv(nil); string(b) != "reply" || err != nil {
		t.Fatalf("nic got %q, %v", b, err)
	}
}

func TestHostLinkPushBack(t *testing.T) {
	defer goleak.VerifyNone(t)
	nic, host, _ := NewHostLink(HostLinkConfig{Capacity: 2})
	for i := range 2 {
		if err := nic.TrySend([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nic.TrySend([]byte{2}); !errors.Is(err, ErrBackpressure) {
		t.Fatalf("TrySend on a full link: %v", err)
	}
	done := make(chan error)
	go func() { done <- nic.Send(context.Background(), []byte{2}) }()
	select {
	case err := <-done:
		t.Fatalf("Send on a full link returned %v instead of waiting", err)
	case <-time.After(10 * time.Millisecond):
	}
	for want := range 3 {
		b, err := host.Recv(context.Background(), nil)
		if err != nil || len(b) != 1 || b[0] != byte(want) {
			t.Fatalf("Recv = %v, %v; want [%d]", b, err, want)
		}
		if want == 0 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	nic.TrySend([]byte{3})
	host.Close()
	if err := nic.TrySend([]byte{4}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	if b, err := host.Recv(context.Background(), nil); err != nil || b[0] != 3 {
		t.Fatalf("message sent before close: %v, %v", b, err)
	}
	if _, err := host.Recv(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv on a closed, empty link: %v", err)
	}
	if _, _, err := NewHostLink(HostLinkConfig{Latency: -1}); err == nil {
		t.Fatal("negative latency accepted")
	}
}

func TestHostLinkNoAllocs(t *testing.T) {
	nic, host, _ := NewHostLink(HostLinkConfig{Latency: time.Nanosecond, SpinBelow: time.Millisecond})
	defer nic.Close()
	msg := make([]byte, 200)
	buf := make([]byte, 0, 256)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := nic.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		var err error
		if buf, err = host.Recv(ctx, buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per message", allocs)
	}
}
