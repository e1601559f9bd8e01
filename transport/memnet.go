package transport

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// LinkConfig is the behaviour of the path from one endpoint to another on a
// [Network]. The zero value is a perfect link: no loss, no delay, in order.
type LinkConfig struct {
	// Loss is the probability that a datagram is dropped.
	Loss float64
	// Duplicate is the probability that a datagram is delivered twice (the
	// copy takes its own delay, so it may arrive before or after).
	Duplicate float64
	// Reorder is the probability that a datagram is held back by
	// ReorderDelay so that later ones overtake it.
	Reorder float64
	// ReorderDelay is how long a reordered datagram is held; 0 means 1 ms.
	ReorderDelay time.Duration
	// Delay is the fixed one-way delay, and Jitter the bound of a uniform
	// random delay added to it.
	Delay, Jitter time.Duration
	// Capacity bounds the datagrams in flight on the link (being delayed);
	// more are dropped, as a full switch buffer would. 0 means no bound.
	Capacity int
}

// NetworkStats counts what a [Network] did to the datagrams sent on it.
type NetworkStats struct {
	Sent       uint64 // datagrams handed to WriteBatch
	Delivered  uint64 // datagrams put in a receive queue (copies included)
	Lost       uint64 // dropped by the Loss draw
	Duplicated uint64 // extra copies made
	Reordered  uint64 // held back by ReorderDelay
	Overflow   uint64 // dropped: link capacity or receive queue full
	NoRoute    uint64 // dropped: nobody listens on the destination
}

// Network is an in-memory datagram network for tests, in the spirit of
// tailscale's memnet: endpoints are named by address and port, and each
// directed link can lose, duplicate, reorder, delay and bound datagrams.
// Every random decision is drawn from one seeded *rand.Rand and every delay
// is measured on the network's [Clock], so a test that drives the network
// from one goroutine with a [ManualClock] sees the same run for the same
// seed.
type Network struct {
	clock Clock

	mu       sync.Mutex
	rng      *rand.Rand
	conns    map[netip.AddrPort]*MemConn
	links    map[[2]netip.AddrPort]LinkConfig
	def      LinkConfig
	inFlight map[[2]netip.AddrPort]int // delayed datagrams per link, for Capacity
	pending  packetHeap
	seq      uint64
	timer    Timer
	timerAt  time.Time // deadline the timer is armed for; zero when idle
	stats    NetworkStats
	nextPort map[netip.Addr]uint16
	closed   bool
	queueCap int
}

// memPacket is a datagram inside the network. Packets are recycled through
// a pool so that a long test run does not churn the garbage collector.
type memPacket struct {
	buf      []byte
	from, to netip.AddrPort
	at       time.Time // delivery time, for delayed packets
	seq      uint64    // tie-break: equal times deliver in send order
}

var packetPool = sync.Pool{New: func() any { return new(memPacket) }}

// NewNetwork returns an empty network that takes time from clock (nil means
// the wall clock) and randomness from rng (nil means a fixed seed, 1).
func NewNetwork(clock Clock, rng *rand.Rand) *Network {
	if clock == nil {
		clock = RealClock{}
	}
	if rng == nil {
		rng = rand.New(rand.NewPCG(1, 1))
	}
	return &Network{
		clock:    clock,
		rng:      rng,
		conns:    make(map[netip.AddrPort]*MemConn),
		links:    make(map[[2]netip.AddrPort]LinkConfig),
		inFlight: make(map[[2]netip.AddrPort]int),
		nextPort: make(map[netip.Addr]uint16),
		queueCap: 4096,
	}
}

// SetDefaultLink sets the behaviour of every link without its own setting.
func (n *Network) SetDefaultLink(cfg LinkConfig) {
	n.mu.Lock()
	n.def = cfg
	n.mu.Unlock()
}

// SetLink sets the behaviour of the directed link from one address to
// another.
func (n *Network) SetLink(from, to netip.AddrPort, cfg LinkConfig) {
	n.mu.Lock()
	n.links[[2]netip.AddrPort{from, to}] = cfg
	n.mu.Unlock()
}

// SetQueueCap sets the receive queue size of endpoints opened afterwards,
// in datagrams (the socket buffer analogue; default 4096). A full queue
// drops, counted as Overflow.
func (n *Network) SetQueueCap(datagrams int) {
	n.mu.Lock()
	n.queueCap = datagrams
	n.mu.Unlock()
}

// Stats returns the counters so far.
func (n *Network) Stats() NetworkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Listen opens an endpoint at addr. Port 0 picks an unused port from 49152.
func (n *Network) Listen(addr netip.AddrPort) (*MemConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("transport: memnet listen %v: %w", addr, ErrClosed)
	}
	if !addr.Addr().IsValid() {
		return nil, fmt.Errorf("transport: memnet listen: invalid address %v", addr)
	}
	if addr.Port() == 0 {
		ip := addr.Addr()
		for tries := 0; ; tries++ {
			if tries > 16384 {
				return nil, fmt.Errorf("transport: memnet listen %v: no free port", ip)
			}
			p := n.nextPort[ip]
			if p < 49152 {
				p = 49152
			}
			n.nextPort[ip] = p + 1
			if cand := netip.AddrPortFrom(ip, p); n.conns[cand] == nil {
				addr = cand
				break
			}
		}
	}
	if n.conns[addr] != nil {
		return nil, fmt.Errorf("transport: memnet listen %v: address in use", addr)
	}
	c := &MemConn{
		net:    n,
		addr:   addr,
		queue:  make([]*memPacket, n.queueCap),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	n.conns[addr] = c
	return c, nil
}

// Close closes every endpoint and discards datagrams still in flight.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	if n.timer != nil {
		n.timer.Stop()
	}
	for _, p := range n.pending {
		packetPool.Put(p)
	}
	n.pending = nil
	conns := make([]*MemConn, 0, len(n.conns))
	for _, c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// send routes one datagram. Called with n.mu held.
func (n *Network) send(from, to netip.AddrPort, b []byte, now time.Time) {
	n.stats.Sent++
	key := [2]netip.AddrPort{from, to}
	cfg, ok := n.links[key]
	if !ok {
		cfg = n.def
	}
	if cfg.Loss > 0 && n.rng.Float64() < cfg.Loss {
		n.stats.Lost++
		return
	}
	copies := 1
	if cfg.Duplicate > 0 && n.rng.Float64() < cfg.Duplicate {
		copies = 2
		n.stats.Duplicated++
	}
	for range copies {
		delay := cfg.Delay
		if cfg.Jitter > 0 {
			delay += time.Duration(n.rng.Int64N(int64(cfg.Jitter)))
		}
		if cfg.Reorder > 0 && n.rng.Float64() < cfg.Reorder {
			rd := cfg.ReorderDelay
			if rd <= 0 {
				rd = time.Millisecond
			}
			delay += rd
			n.stats.Reordered++
		}
		if delay <= 0 {
			n.deliver(from, to, b)
			continue
		}
		if cfg.Capacity > 0 && n.inFlight[key] >= cfg.Capacity {
			n.stats.Overflow++
			continue
		}
		n.inFlight[key]++
		p := packetPool.Get().(*memPacket)
		p.buf = append(p.buf[:0], b...)
		p.from, p.to = from, to
		p.at = now.Add(delay)
		n.seq++
		p.seq = n.seq
		heap.Push(&n.pending, p)
	}
	n.armTimer(now)
}

// armTimer makes sure the timer fires by the earliest pending delivery.
// Called with n.mu held.
func (n *Network) armTimer(now time.Time) {
	if len(n.pending) == 0 || n.closed {
		return
	}
	first := n.pending[0].at
	if !n.timerAt.IsZero() && !first.Before(n.timerAt) {
		return // already armed early enough
	}
	n.timerAt = first
	d := first.Sub(now)
	if n.timer == nil {
		n.timer = n.clock.AfterFunc(d, n.fire)
	} else {
		n.timer.Reset(d)
	}
}

// fire delivers every datagram that is due and re-arms the timer.
func (n *Network) fire() {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.clock.Now()
	n.timerAt = time.Time{}
	for len(n.pending) > 0 && !n.pending[0].at.After(now) {
		p := heap.Pop(&n.pending).(*memPacket)
		n.inFlight[[2]netip.AddrPort{p.from, p.to}]--
		n.deliver(p.from, p.to, p.buf)
		packetPool.Put(p)
	}
	n.armTimer(now)
}

// deliver puts a copy of b in the destination's receive queue. Called with
// n.mu held.
func (n *Network) deliver(from, to netip.AddrPort, b []byte) {
	c := n.conns[to]
	if c == nil {
		n.stats.NoRoute++
		return
	}
	if !c.enqueue(from, b) {
		n.stats.Overflow++
		return
	}
	n.stats.Delivered++
}

// MemConn is an endpoint on a [Network]; it implements [BatchConn].
type MemConn struct {
	net  *Network
	addr netip.AddrPort

	mu     sync.Mutex
	queue  []*memPacket // ring buffer
	head   int
	count  int
	closed bool
	notify chan struct{} // a datagram arrived (capacity 1: a wake-up, not a count)
	done   chan struct{} // closed by Close
}

func (c *MemConn) enqueue(from netip.AddrPort, b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.count == len(c.queue) {
		return false
	}
	p := packetPool.Get().(*memPacket)
	p.buf = append(p.buf[:0], b...)
	p.from = from
	c.queue[(c.head+c.count)%len(c.queue)] = p
	c.count++
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return true
}

// LocalAddr returns the endpoint's address.
func (c *MemConn) LocalAddr() netip.AddrPort { return c.addr }

// ReadBatch blocks until a datagram is queued, then returns as many as fit.
func (c *MemConn) ReadBatch(ms []Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	for {
		c.mu.Lock()
		if c.count > 0 {
			n := 0
			for n < len(ms) && c.count > 0 {
				p := c.queue[c.head]
				c.queue[c.head] = nil
				c.head = (c.head + 1) % len(c.queue)
				c.count--
				ms[n].N = copy(ms[n].Buf, p.buf)
				ms[n].Addr = p.from
				packetPool.Put(p)
				n++
			}
			c.mu.Unlock()
			return n, nil
		}
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return 0, fmt.Errorf("transport: memnet read %v: %w", c.addr, ErrClosed)
		}
		select {
		case <-c.notify:
		case <-c.done:
		}
	}
}

// WriteBatch sends every message; the network decides each one's fate.
func (c *MemConn) WriteBatch(ms []Message) (int, error) {
	n := c.net
	n.mu.Lock()
	defer n.mu.Unlock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed || n.closed {
		return 0, fmt.Errorf("transport: memnet write %v: %w", c.addr, ErrClosed)
	}
	now := n.clock.Now()
	for i := range ms {
		if ms[i].N <= 0 || ms[i].N > len(ms[i].Buf) {
			return i, fmt.Errorf("transport: memnet write %v: message %d: length %d outside buffer of %d", c.addr, i, ms[i].N, len(ms[i].Buf))
		}
		n.send(c.addr, ms[i].Addr, ms[i].Buf[:ms[i].N], now)
	}
	return len(ms), nil
}

// Close removes the endpoint from the network and unblocks ReadBatch.
func (c *MemConn) Close() error {
	c.net.mu.Lock()
	if c.net.conns[c.addr] == c {
		delete(c.net.conns, c.addr)
	}
	c.net.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	for c.count > 0 {
		packetPool.Put(c.queue[c.head])
		c.queue[c.head] = nil
		c.head = (c.head + 1) % len(c.queue)
		c.count--
	}
	close(c.done)
	return nil
}

// packetHeap orders delayed datagrams by delivery time, then send order.
type packetHeap []*memPacket

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*memPacket)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}
