package natv4

import (
	"sync"

	"github.com/e3-platform/e3/internal/mix"
)

// natShards splits the translation state so cores working on different
// flows rarely meet on a lock. A flow's shard is a hash of its inside
// endpoint; the outside ports a shard hands out are those congruent to its
// number modulo natShards, so an inbound packet finds the shard from its
// destination port alone.
const natShards = 16

const (
	firstPort    = 1024 // outside ports below 1024 are never allocated
	portsInShard = (65536 - firstPort) / natShards
	occupied     = uint64(1) << 63
	maxProbe     = 4096 // outside endpoints tried before giving up
	sweepPerNew  = 4    // forward slots examined for expiry per allocation
)

// endpointKey packs protocol, address and port into a table key. Bit 63
// marks a used slot. Keys are hashed to shards and slots with
// mix.Murmur3, in which every input bit affects every output bit, so
// adjacent ports land in unrelated slots.
func endpointKey(proto uint8, addr uint32, port uint16) uint64 {
	return occupied | uint64(proto)<<48 | uint64(addr)<<16 | uint64(port)
}

type fwdSlot struct {
	key  uint64 // inside endpoint
	out  uint64 // outside address << 16 | port
	last int64  // time of the last packet either way, ns
}

type revSlot struct {
	key uint64 // outside endpoint
	in  uint64 // inside address << 16 | port
}

// natShard holds the mappings of one shard in two open-addressing tables
// with linear probing, sized at creation so the per-packet path never
// allocates.
type natShard struct {
	mu    sync.Mutex
	fwd   []fwdSlot
	rev   []revSlot
	count int
	sweep int
	_     [64]byte // keep neighbouring shards' locks off one cache line
}

// natTable is the translation state of an instance: source NAT with
// endpoint-independent mapping (RFC 4787 §4.1): one outside endpoint per
// inside (protocol, address, port), whatever the destination.
type natTable struct {
	pool    []uint32 // outside addresses
	maxPer  int      // mappings per shard
	timeout int64    // idle timeout, ns; 0 keeps mappings forever
	shards  [natShards]natShard
}

func newNATTable(pool []uint32, maxMappings int, timeout int64) *natTable {
	t := &natTable{pool: pool, maxPer: max(1, maxMappings/natShards), timeout: timeout}
	size := 1
	for size < 2*t.maxPer {
		size <<= 1
	}
	for i := range t.shards {
		t.shards[i].fwd = make([]fwdSlot, size)
		t.shards[i].rev = make([]revSlot, size)
	}
	return t
}

func (s *natShard) findFwd(key uint64) int {
	m := len(s.fwd) - 1
	for i := int(mix.Murmur3(key)>>8) & m; ; i = (i + 1) & m {
		switch s.fwd[i].key {
		case key:
			return i
		case 0:
			return -1 - i // the free slot where key would go
		}
	}
}

func (s *natShard) findRev(key uint64) int {
	m := len(s.rev) - 1
	for i := int(mix.Murmur3(key)>>8) & m; ; i = (i + 1) & m {
		switch s.rev[i].key {
		case key:
			return i
		case 0:
			return -1 - i
		}
	}
}

// outbound returns the outside endpoint of the inside endpoint (addr,
// port), allocating one for a new flow. ok is false when the shard is full.
func (t *natTable) outbound(proto uint8, addr uint32, port uint16, now int64) (oaddr uint32, oport uint16, ok bool) {
	key := endpointKey(proto, addr, port)
	h := mix.Murmur3(key)
	sh := int(h & (natShards - 1))
	s := &t.shards[sh]
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.findFwd(key)
	if i >= 0 {
		s.fwd[i].last = now
		o := s.fwd[i].out
		return uint32(o >> 16), uint16(o), true
	}
	t.expire(s, sweepPerNew, now)
	if s.count >= t.maxPer {
		t.expire(s, len(s.fwd), now)
		if s.count >= t.maxPer {
			return 0, 0, false
		}
	}
	// Probe the shard's outside endpoints from a hash-chosen start: the
	// first one no mapping uses is taken.
	space := uint64(len(t.pool)) * portsInShard
	j := (h >> 32) % space
	for range min(maxProbe, int(space)) {
		oa := t.pool[j%uint64(len(t.pool))]
		op := uint16(firstPort + sh + natShards*int(j/uint64(len(t.pool))))
		rk := endpointKey(proto, oa, op)
		if r := s.findRev(rk); r < 0 {
			s.rev[-1-r] = revSlot{key: rk, in: uint64(addr)<<16 | uint64(port)}
			i = s.findFwd(key) // the expiry above may have moved slots
			s.fwd[-1-i] = fwdSlot{key: key, out: uint64(oa)<<16 | uint64(op), last: now}
			s.count++
			return oa, op, true
		}
		if j++; j == space {
			j = 0
		}
	}
	return 0, 0, false
}

// inbound returns the inside endpoint that the outside endpoint (addr,
// port) maps to.
func (t *natTable) inbound(proto uint8, addr uint32, port uint16, now int64) (iaddr uint32, iport uint16, ok bool) {
	if port < firstPort {
		return 0, 0, false
	}
	s := &t.shards[(int(port)-firstPort)%natShards]
	rk := endpointKey(proto, addr, port)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.findRev(rk)
	if r < 0 {
		return 0, 0, false
	}
	in := s.rev[r].in
	iaddr, iport = uint32(in>>16), uint16(in)
	if i := s.findFwd(endpointKey(proto, iaddr, iport)); i >= 0 {
		s.fwd[i].last = now
	}
	return iaddr, iport, true
}

// expire examines n forward slots from the shard's sweep cursor and
// removes mappings idle for longer than the timeout.
func (t *natTable) expire(s *natShard, n int, now int64) {
	if t.timeout <= 0 {
		return
	}
	m := len(s.fwd) - 1
	for range n {
		i := s.sweep & m
		s.sweep++
		// Deleting shifts a later entry into slot i; examine it again
		// until the slot is empty or holds a live mapping.
		for {
			f := s.fwd[i]
			if f.key == 0 || now-f.last <= t.timeout {
				break
			}
			proto := uint8(f.key >> 48)
			if r := s.findRev(endpointKey(proto, uint32(f.out>>16), uint16(f.out))); r >= 0 {
				deleteRev(s.rev, r)
			}
			deleteFwd(s.fwd, i)
			s.count--
		}
	}
}

// deleteFwd and deleteRev remove slot i by backward shifting (Knuth,
// TAOCP vol. 3, 6.4 Algorithm R), which keeps linear probing correct
// without tombstones.
func deleteFwd(tab []fwdSlot, i int) {
	m := len(tab) - 1
	for {
		tab[i] = fwdSlot{}
		j := i
		for {
			j = (j + 1) & m
			if tab[j].key == 0 {
				return
			}
			if k := int(mix.Murmur3(tab[j].key)>>8) & m; !between(i, k, j) {
				tab[i] = tab[j]
				i = j
				break
			}
		}
	}
}

func deleteRev(tab []revSlot, i int) {
	m := len(tab) - 1
	for {
		tab[i] = revSlot{}
		j := i
		for {
			j = (j + 1) & m
			if tab[j].key == 0 {
				return
			}
			if k := int(mix.Murmur3(tab[j].key)>>8) & m; !between(i, k, j) {
				tab[i] = tab[j]
				i = j
				break
			}
		}
	}
}

// between reports whether home slot k lies cyclically in (i, j]: then the
// entry at j may stay where it is.
func between(i, k, j int) bool {
	if i <= j {
		return i < k && k <= j
	}
	return i < k || k <= j
}

// Len returns the number of mappings.
func (t *natTable) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.count
		s.mu.Unlock()
	}
	return n
}
