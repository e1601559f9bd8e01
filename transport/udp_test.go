package transport

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

func listenPair(t testing.TB, cfg UDPConfig) (a, b *UDPConn) {
	t.Helper()
	a, err := ListenUDP(loopback, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err = ListenUDP(loopback, cfg)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// readAll reads until want datagrams have arrived.
func readAll(t testing.TB, c BatchConn, ms []Message, want int) [][]byte {
	t.Helper()
	var got [][]byte
	for len(got) < want {
		n, err := c.ReadBatch(ms)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			got = append(got, append([]byte(nil), ms[i].Payload()...))
		}
	}
	return got
}

func TestUDPRoundTrip(t *testing.T) {
	for _, cfg := range []UDPConfig{{}, {XNet: true}} {
		t.Run(fmt.Sprintf("xnet=%v", cfg.XNet), func(t *testing.T) {
			a, b := listenPair(t, cfg)
			const count = 100
			out := NewMessages(count, 2048)
			for i := range out {
				// Varying sizes catch an iovec length taken from the wrong message.
				out[i].N = copy(out[i].Buf, fmt.Sprintf("datagram %03d %s", i, make([]byte, i%7)))
				out[i].Addr = b.LocalAddr()
			}
			n, err := a.WriteBatch(out)
			if err != nil || n != count {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			in := NewMessages(16, 2048)
			got := readAll(t, b, in, count)
			for i, g := range got {
				// Loopback keeps order for one sender and one receiver.
				if want := string(out[i].Payload()); string(g) != want {
					t.Fatalf("datagram %d = %q, want %q", i, g, want)
				}
			}
			// The source address is the sender's, so a reply goes back.
			if in[0].Addr != a.LocalAddr() {
				t.Fatalf("source %v, want %v", in[0].Addr, a.LocalAddr())
			}
			in[0].N = copy(in[0].Buf, "reply")
			if _, err := b.WriteBatch(in[:1]); err != nil {
				t.Fatal(err)
			}
			if r := readAll(t, a, NewMessages(4, 64), 1); string(r[0]) != "reply" {
				t.Fatalf("reply %q", r[0])
			}
		})
	}
}

func TestUDPIPv6(t *testing.T) {
	a, err := ListenUDP(netip.MustParseAddrPort("[::1]:0"), UDPConfig{})
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer a.Close()
	b, err := ListenUDP(netip.MustParseAddrPort("[::1]:0"), UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ms := NewMessages(1, 64)
	ms[0].N = copy(ms[0].Buf, "six")
	ms[0].Addr = b.LocalAddr()
	if _, err := a.WriteBatch(ms); err != nil {
		t.Fatal(err)
	}
	in := NewMessages(1, 64)
	readAll(t, b, in, 1)
	if in[0].Addr != a.LocalAddr() || string(in[0].Payload()) != "six" {
		t.Fatalf("got %q from %v", in[0].Payload(), in[0].Addr)
	}
}

func TestUDPWriteErrors(t *testing.T) {
	a, _ := listenPair(t, UDPConfig{})
	ms := NewMessages(2, 64)
	ms[0].N = 3
	ms[0].Addr = a.LocalAddr()
	ms[1].N = 0 // empty datagram: refused before the system call
	ms[1].Addr = a.LocalAddr()
	if _, err := a.WriteBatch(ms); err == nil {
		t.Fatal("WriteBatch accepted a message of length 0")
	}
	ms[1].N = 3
	ms[1].Addr = netip.MustParseAddrPort("[2001:db8::1]:9") // never sent: rejected locally
	if _, err := a.WriteBatch(ms); err == nil {
		t.Fatal("WriteBatch sent an IPv6 destination from an IPv4 socket")
	}
}

func TestUDPCloseUnblocksRead(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, err := ListenUDP(loopback, UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := a.ReadBatch(NewMessages(4, 64))
		done <- err
	}()
	runtime.Gosched()
	a.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadBatch after Close: %v, want ErrClosed", err)
	}
}

// TestUDPNoAllocs asserts the fast path allocates nothing per datagram:
// a batch written and read back on loopback, buffers reused.
func TestUDPNoAllocs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the allocation-free path is recvmmsg/sendmmsg on Linux")
	}
	a, b := listenPair(t, UDPConfig{})
	const batch = 32
	out := NewMessages(batch, 256)
	for i := range out {
		out[i].N = 100
		out[i].Addr = b.LocalAddr()
	}
	in := NewMessages(batch, 256)
	step := func() {
		if _, err := a.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < batch; {
			n, err := b.ReadBatch(in)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	step() // first use sizes the scratch arrays
	if allocs := testing.AllocsPerRun(200, step); allocs != 0 {
		t.Fatalf("%v allocations per batch of %d, want 0", allocs, batch)
	}
}

// TestUDPXNetReadAllocates documents why the Linux path is our own: x/net's
// ReadBatch allocates for every datagram it returns. If a future x/net stops
// doing so, this test says so and the XNet path can become the default.
func TestUDPXNetReadAllocates(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	a, b := listenPair(t, UDPConfig{XNet: true})
	const batch = 32
	out := NewMessages(batch, 256)
	for i := range out {
		out[i].N = 100
		out[i].Addr = b.LocalAddr()
	}
	in := NewMessages(batch, 256)
	step := func() {
		if _, err := a.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < batch; {
			n, err := b.ReadBatch(in)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	step()
	allocs := testing.AllocsPerRun(50, step)
	t.Logf("x/net path: %.1f allocations per batch of %d", allocs, batch)
	if allocs < batch {
		t.Logf("x/net no longer allocates per datagram; consider making it the default")
	}
}
