package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// drive moves the manual clock in small steps, letting the endpoints'
// goroutines run in between, until cond holds. The clock only moves here,
// so timers and link delays happen at virtual times the test controls; the
// short real sleep is only a chance for the other goroutines to run.
func drive(t *testing.T, clk *ManualClock, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	start := clk.Now()
	for !cond() {
		if clk.Now().Sub(start) > limit {
			t.Fatalf("%s: not done after %v of virtual time", what, limit)
		}
		clk.Advance(100 * time.Microsecond)
		time.Sleep(20 * time.Microsecond)
	}
}

func memEndpoints(t *testing.T, clk Clock, seed uint64, link LinkConfig, cfg EndpointConfig) (*Network, *Endpoint, *Endpoint) {
	t.Helper()
	n := NewNetwork(clk, rand.New(rand.NewPCG(seed, seed)))
	n.SetDefaultLink(link)
	ca, err := n.Listen(netip.MustParseAddrPort("127.0.3.1:7000"))
	if err != nil {
		t.Fatal(err)
	}
	cb, err := n.Listen(netip.MustParseAddrPort("127.0.3.2:7000"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Clock = clk
	a, err := NewEndpoint(ca, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewEndpoint(cb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n, a, b
}

// stream sends n numbered messages on c and, in another goroutine, expects
// them in order on d. It returns a function that waits for both.
func stream(t *testing.T, c, d *Channel, n int, seed uint64) (wait func(), received *atomic.Int64) {
	var wg sync.WaitGroup
	received = new(atomic.Int64)
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, 1))
		for i := 0; i < n; i++ {
			if err := c.Send(context.Background(), simMessage(rng, i)); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		var buf []byte
		for i := 0; i < n; i++ {
			var err error
			buf, err = d.Recv(context.Background(), buf[:0])
			if err != nil {
				errs <- err
				return
			}
			if int(binary.LittleEndian.Uint32(buf)) != i {
				errs <- errors.New("out of order or duplicated")
				return
			}
			received.Add(1)
		}
	}()
	return func() {
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}, received
}

// TestChannelLossyMemnet is the channel property end to end, through
// Endpoint's goroutines on the in-memory network: with 10 % loss, 10 %
// duplication and 10 % reordering every message of the run arrives exactly
// once and in order, both directions at once.
func TestChannelLossyMemnet(t *testing.T) {
	defer goleak.VerifyNone(t)
	const seed = 77
	t.Logf("seed %d", seed)
	clk := NewManualClock(epoch)
	link := LinkConfig{Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, ReorderDelay: time.Millisecond, Delay: 200 * time.Microsecond, Jitter: 200 * time.Microsecond}
	n, a, b := memEndpoints(t, clk, seed, link, EndpointConfig{Window: 64})
	defer n.Close()
	defer b.Close()
	defer a.Close()
	ca, err := a.Open(b.LocalAddr(), 1)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := b.Open(a.LocalAddr(), 1)
	if err != nil {
		t.Fatal(err)
	}
	const count = 2000
	wait1, got1 := stream(t, ca, cb, count, seed)
	wait2, got2 := stream(t, cb, ca, count, seed+1)
	drive(t, clk, time.Minute, "lossy transfer", func() bool { return got1.Load() == count && got2.Load() == count })
	wait1()
	wait2()
	drive(t, clk, time.Minute, "final acks", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		return ca.Flush(ctx) == nil && cb.Flush(ctx) == nil
	})
	sa, sb, ns := a.Stats(), b.Stats(), n.Stats()
	t.Logf("network %+v", ns)
	t.Logf("a %+v", sa)
	t.Logf("b %+v", sb)
	if ns.Lost == 0 || ns.Duplicated == 0 || ns.Reordered == 0 || sa.Retransmits+sb.Retransmits == 0 || sa.Duplicates+sb.Duplicates == 0 {
		t.Fatal("the faults did not happen: the test proved nothing")
	}
}

// TestChannelFlowControl: a receiver that stops reading makes the sender
// block after one window; resuming releases it; nothing is lost.
func TestChannelFlowControl(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := NewManualClock(epoch)
	const window = 8
	n, a, b := memEndpoints(t, clk, 1, LinkConfig{Delay: 100 * time.Microsecond}, EndpointConfig{Window: window})
	defer n.Close()
	defer b.Close()
	defer a.Close()
	ca, _ := a.Open(b.LocalAddr(), 5)
	cb, _ := b.Open(a.LocalAddr(), 5)

	const count = 100
	var sent atomic.Int64
	senderDone := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(2, 2))
		for i := 0; i < count; i++ {
			if err := ca.Send(context.Background(), simMessage(rng, i)); err != nil {
				senderDone <- err
				return
			}
			sent.Add(1)
		}
		senderDone <- nil
	}()
	drive(t, clk, time.Second, "first window", func() bool { return sent.Load() == window })
	// Give the sender plenty of (virtual) time: it must stay blocked.
	for range 200 {
		clk.Advance(5 * time.Millisecond)
		time.Sleep(20 * time.Microsecond)
	}
	if s := sent.Load(); s != window {
		t.Fatalf("sender got %d messages past a receiver that reads nothing, window %d", s, window)
	}
	select {
	case err := <-senderDone:
		t.Fatalf("sender returned while it should block: %v", err)
	default:
	}
	if err := ca.TrySend([]byte("more")); !errors.Is(err, ErrBackpressure) {
		t.Fatalf("TrySend on a full channel: %v, want ErrBackpressure", err)
	}
	if ca.Err() != nil {
		t.Fatalf("a slow receiver must not fail the channel: %v", ca.Err())
	}
	// The receiver resumes: everything arrives, in order.
	var got atomic.Int64
	recvDone := make(chan error, 1)
	go func() {
		var buf []byte
		for i := 0; i < count; i++ {
			var err error
			if buf, err = cb.Recv(context.Background(), buf[:0]); err != nil {
				recvDone <- err
				return
			}
			checkMessage(t, buf, i)
			got.Add(1)
		}
		recvDone <- nil
	}()
	drive(t, clk, time.Minute, "resume", func() bool { return got.Load() == count })
	if err := <-senderDone; err != nil {
		t.Fatal(err)
	}
	if err := <-recvDone; err != nil {
		t.Fatal(err)
	}
	if _, err := cb.TryRecv(nil); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("TryRecv after the last message: %v, want ErrNoMessage", err)
	}
}

func TestChannelAcceptAndUnhandled(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := NewNetwork(nil, nil)
	defer n.Close()
	ca, _ := n.Listen(netip.MustParseAddrPort("127.0.4.1:1"))
	cb, _ := n.Listen(netip.MustParseAddrPort("127.0.4.2:1"))
	bare := make(chan string, 1)
	a, err := NewEndpoint(ca, EndpointConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewEndpoint(cb, EndpointConfig{Unhandled: func(p []byte, from netip.AddrPort) {
		bare <- string(Payload(p)) + " from " + from.String()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c, _ := a.Open(b.LocalAddr(), 42)
	if err := c.Send(context.Background(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID() != 42 || d.Peer() != a.LocalAddr() {
		t.Fatalf("accepted channel %d from %v", d.ID(), d.Peer())
	}
	if again, _ := b.Open(a.LocalAddr(), 42); again != d {
		t.Fatal("Open after Accept made a second channel")
	}
	msg, err := d.Recv(ctx, nil)
	if err != nil || string(msg) != "hello" {
		t.Fatalf("Recv = %q, %v", msg, err)
	}
	// A bare E3 message on the same socket goes to Unhandled.
	h := Header{Kind: KindRequest, PayloadLen: 3}
	raw, _ := h.Append(nil)
	raw = append(raw, "req"...)
	ms := NewMessages(1, 128)
	ms[0].N = copy(ms[0].Buf, raw)
	ms[0].Addr = b.LocalAddr()
	probe, _ := n.Listen(netip.MustParseAddrPort("127.0.4.3:1"))
	if _, err := probe.WriteBatch(ms); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-bare:
		if s != "req from 127.0.4.3:1" {
			t.Fatalf("Unhandled got %q", s)
		}
	case <-ctx.Done():
		t.Fatal("bare message never reached Unhandled")
	}
	// A garbage frame is counted and dropped, not fatal.
	ms[0].N = copy(ms[0].Buf, []byte{frameMagic, 9, 0, 0})
	probe.WriteBatch(ms)
	for b.Stats().BadFrames == 0 {
		if ctx.Err() != nil {
			t.Fatal("bad frame not counted")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestChannelCloseReleasesWaiters(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := NewManualClock(epoch)
	n, a, b := memEndpoints(t, clk, 1, LinkConfig{}, EndpointConfig{Window: 1})
	defer n.Close()
	defer b.Close()
	ca, _ := a.Open(b.LocalAddr(), 1)
	recvErr := make(chan error, 1)
	go func() {
		_, err := ca.Recv(context.Background(), nil)
		recvErr <- err
	}()
	if err := ca.TrySend([]byte("1")); err != nil {
		t.Fatal(err)
	}
	sendErr := make(chan error, 1)
	go func() { sendErr <- ca.Send(context.Background(), []byte("2")) }() // window 1, nobody reads: blocks
	time.Sleep(time.Millisecond)
	a.Close()
	for _, ch := range []chan error{recvErr, sendErr} {
		if err := <-ch; !errors.Is(err, ErrClosed) {
			t.Fatalf("waiter released with %v, want ErrClosed", err)
		}
	}
	if _, err := a.Open(b.LocalAddr(), 2); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cb, _ := b.Open(a.LocalAddr(), 9)
	if _, err := cb.Recv(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with a cancelled context: %v", err)
	}
}

// TestChannelPeerGone: when the peer disappears, a sender learns it with
// ErrPeerUnreachable after its retries instead of waiting forever.
func TestChannelPeerGone(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := NewManualClock(epoch)
	n, a, b := memEndpoints(t, clk, 1, LinkConfig{}, EndpointConfig{MaxRetries: 3, MinRTO: time.Millisecond, InitialRTO: time.Millisecond, MaxRTO: 4 * time.Millisecond})
	defer n.Close()
	defer a.Close()
	b.Close()
	ca, _ := a.Open(b.LocalAddr(), 1)
	if err := ca.Send(context.Background(), []byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	drive(t, clk, time.Second, "failure detection", func() bool { return ca.Err() != nil })
	if err := ca.Err(); !errors.Is(err, ErrPeerUnreachable) {
		t.Fatalf("Err = %v, want ErrPeerUnreachable", err)
	}
	if err := ca.Flush(context.Background()); !errors.Is(err, ErrPeerUnreachable) {
		t.Fatalf("Flush = %v", err)
	}
}

func TestEndpointConfigErrors(t *testing.T) {
	for _, cfg := range []EndpointConfig{
		{Window: -1}, {MaxDatagram: 10}, {MaxDatagram: 70000}, {Batch: -2},
		{MinRTO: time.Second, MaxRTO: time.Millisecond}, {MaxRetries: -1}, {AcceptQueue: -2},
	} {
		if _, err := cfg.fill(); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func udpEndpoints(t testing.TB, cfg EndpointConfig) (*Endpoint, *Endpoint) {
	t.Helper()
	ua, err := ListenUDP(loopback, UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ub, err := ListenUDP(loopback, UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewEndpoint(ua, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewEndpoint(ub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func TestChannelUDP(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b := udpEndpoints(t, EndpointConfig{})
	defer a.Close()
	defer b.Close()
	ca, _ := a.Open(b.LocalAddr(), 1)
	cb, _ := b.Open(a.LocalAddr(), 1)
	count := 5000
	if testing.Short() {
		count = 1000
	}
	wait1, _ := stream(t, ca, cb, count, 1)
	wait2, _ := stream(t, cb, ca, count, 2)
	wait1()
	wait2()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ca.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("a %+v", a.Stats())
}

// TestChannelNoAllocs: a message sent on one end and received on the other
// over UDP loopback allocates nothing once the channel is warm, counting
// every goroutine involved (the endpoints' readers and writers too).
func TestChannelNoAllocs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the allocation-free UDP path is Linux only")
	}
	a, b := udpEndpoints(t, EndpointConfig{})
	defer a.Close()
	defer b.Close()
	ca, _ := a.Open(b.LocalAddr(), 1)
	cb, _ := b.Open(a.LocalAddr(), 1)
	msg := make([]byte, 100)
	buf := make([]byte, 0, 256)
	ctx := context.Background()
	step := func() {
		if err := ca.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		var err error
		if buf, err = cb.Recv(ctx, buf[:0]); err != nil {
			t.Fatal(err)
		}
	}
	for range 1000 { // warm up: slots, scratch arrays, timers
		step()
	}
	if allocs := testing.AllocsPerRun(2000, step); allocs > 0.01 {
		t.Fatalf("%v allocations per message, want 0", allocs)
	}
}

// TestChannelOpenLate: with accepting off, frames for a channel the
// receiver has not opened yet are dropped, and resent until it does:
// opening late costs time, not messages.
func TestChannelOpenLate(t *testing.T) {
	defer goleak.VerifyNone(t)
	clk := NewManualClock(epoch)
	n, a, b := memEndpoints(t, clk, 1, LinkConfig{Delay: 100 * time.Microsecond}, EndpointConfig{AcceptQueue: -1})
	defer n.Close()
	defer a.Close()
	defer b.Close()
	ca, _ := a.Open(b.LocalAddr(), 3)
	for i := range 3 {
		if err := ca.TrySend([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	drive(t, clk, time.Second, "dropped frames", func() bool { return b.Stats().UnknownChannel > 0 })
	cb, _ := b.Open(a.LocalAddr(), 3)
	var got []byte
	drive(t, clk, time.Minute, "late delivery", func() bool {
		for {
			m, err := cb.TryRecv(nil)
			if err != nil {
				return len(got) == 3
			}
			got = append(got, m...)
		}
	})
	if string(got) != "\x00\x01\x02" {
		t.Fatalf("got %v", got)
	}
}
