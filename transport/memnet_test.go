package transport

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var epoch = time.Date(2019, 7, 10, 0, 0, 0, 0, time.UTC)

func memPair(t testing.TB, clk Clock, seed uint64) (*Network, *MemConn, *MemConn) {
	t.Helper()
	n := NewNetwork(clk, rand.New(rand.NewPCG(seed, seed)))
	a, err := n.Listen(netip.MustParseAddrPort("127.0.1.1:7000"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Listen(netip.MustParseAddrPort("127.0.1.2:7000"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n, a, b
}

// drain reads whatever is queued at c without blocking for more.
func drain(c *MemConn) []uint32 {
	var got []uint32
	ms := NewMessages(64, 16)
	for {
		c.mu.Lock()
		empty := c.count == 0
		c.mu.Unlock()
		if empty {
			return got
		}
		n, _ := c.ReadBatch(ms)
		for i := 0; i < n; i++ {
			got = append(got, binary.LittleEndian.Uint32(ms[i].Payload()))
		}
	}
}

func sendSeq(t testing.TB, from *MemConn, to netip.AddrPort, lo, hi int) {
	t.Helper()
	ms := NewMessages(1, 4)
	for i := lo; i < hi; i++ {
		binary.LittleEndian.PutUint32(ms[0].Buf, uint32(i))
		ms[0].N = 4
		ms[0].Addr = to
		if _, err := from.WriteBatch(ms); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMemnetPerfectLink(t *testing.T) {
	_, a, b := memPair(t, NewManualClock(epoch), 1)
	sendSeq(t, a, b.LocalAddr(), 0, 100)
	got := drain(b)
	if len(got) != 100 {
		t.Fatalf("got %d datagrams, want 100", len(got))
	}
	for i, v := range got {
		if v != uint32(i) {
			t.Fatalf("datagram %d is %d: a perfect link keeps order", i, v)
		}
	}
}

// TestMemnetFaults checks each fault does what it says, at about the rate
// asked, and that the same seed gives the same run.
func TestMemnetFaults(t *testing.T) {
	const seed = 42
	t.Logf("seed %d", seed)
	run := func() ([]uint32, NetworkStats) {
		clk := NewManualClock(epoch)
		n, a, b := memPair(t, clk, seed)
		n.SetLink(a.LocalAddr(), b.LocalAddr(), LinkConfig{Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, Delay: time.Millisecond, Jitter: 100 * time.Microsecond})
		sendSeq(t, a, b.LocalAddr(), 0, 5000)
		if got := drain(b); len(got) != 0 {
			t.Fatalf("%d datagrams arrived before their delay", len(got))
		}
		clk.Advance(time.Second)
		return drain(b), n.Stats()
	}
	got, st := run()
	if st.Sent != 5000 || st.Delivered != uint64(len(got)) {
		t.Fatalf("stats %+v, received %d", st, len(got))
	}
	rate := func(x uint64) float64 { return float64(x) / 5000 }
	for name, r := range map[string]float64{"loss": rate(st.Lost), "duplication": rate(st.Duplicated), "reordering": rate(st.Reordered) / 1.1} {
		if r < 0.08 || r > 0.12 {
			t.Errorf("%s rate %.3f, want about 0.1", name, r)
		}
	}
	seen := map[uint32]int{}
	inversions := 0
	for i, v := range got {
		seen[v]++
		if i > 0 && v < got[i-1] {
			inversions++
		}
	}
	if inversions == 0 {
		t.Error("no datagram overtook another")
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	if dups == 0 || len(seen) == 5000 {
		t.Errorf("dups %d, distinct %d: want some of each fault", dups, len(seen))
	}
	got2, st2 := run()
	if st2 != st || len(got2) != len(got) {
		t.Fatalf("same seed, different run: %+v vs %+v", st, st2)
	}
	for i := range got {
		if got[i] != got2[i] {
			t.Fatalf("same seed, different order at %d", i)
		}
	}
}

func TestMemnetDelayAndCapacity(t *testing.T) {
	clk := NewManualClock(epoch)
	n, a, b := memPair(t, clk, 7)
	n.SetLink(a.LocalAddr(), b.LocalAddr(), LinkConfig{Delay: 5 * time.Millisecond, Capacity: 10})
	sendSeq(t, a, b.LocalAddr(), 0, 15)
	clk.Advance(4 * time.Millisecond)
	if got := drain(b); len(got) != 0 {
		t.Fatalf("%d datagrams before the 5 ms delay", len(got))
	}
	clk.Advance(time.Millisecond)
	if got := drain(b); len(got) != 10 {
		t.Fatalf("got %d datagrams, want the 10 the link holds", len(got))
	}
	if st := n.Stats(); st.Overflow != 5 {
		t.Fatalf("overflow %d, want 5", st.Overflow)
	}
	// The reverse direction has the default (perfect) link.
	sendSeq(t, b, a.LocalAddr(), 0, 1)
	if got := drain(a); len(got) != 1 {
		t.Fatalf("reverse link: %d datagrams", len(got))
	}
}

func TestMemnetQueueOverflowAndNoRoute(t *testing.T) {
	n := NewNetwork(NewManualClock(epoch), nil)
	defer n.Close()
	n.SetQueueCap(3)
	a, _ := n.Listen(netip.MustParseAddrPort("127.0.1.1:1"))
	b, _ := n.Listen(netip.MustParseAddrPort("127.0.1.2:0"))
	if b.LocalAddr().Port() != 49152 {
		t.Errorf("port 0 picked %v", b.LocalAddr())
	}
	if _, err := n.Listen(b.LocalAddr()); err == nil {
		t.Error("second Listen on the same address succeeded")
	}
	sendSeq(t, a, b.LocalAddr(), 0, 5)
	sendSeq(t, a, netip.MustParseAddrPort("127.0.9.9:9"), 0, 2)
	st := n.Stats()
	if st.Overflow != 2 || st.NoRoute != 2 || st.Delivered != 3 {
		t.Fatalf("stats %+v: want 3 delivered, 2 overflow, 2 no route", st)
	}
}

func TestMemnetCloseUnblocks(t *testing.T) {
	defer goleak.VerifyNone(t)
	n := NewNetwork(nil, nil)
	c, _ := n.Listen(netip.MustParseAddrPort("127.0.1.1:1"))
	done := make(chan error)
	go func() {
		_, err := c.ReadBatch(NewMessages(1, 8))
		done <- err
	}()
	n.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadBatch after Close: %v", err)
	}
	if _, err := c.WriteBatch(NewMessages(1, 8)); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v", err)
	}
}
