package runtime

import (
	"net/netip"
	"sync"
	"time"

	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// ReplySink receives the outcome of a request submitted with
// [Agent.Submit]: an in-process ingress (the memcached front end) uses it
// instead of a client connection. Reply is called exactly once per
// submitted request, on an agent goroutine; resp is valid only during the
// call. at is the emulated time (ns since the emulation origin) the reply
// is due at the client, 0 in real mode.
type ReplySink interface {
	Reply(token uint64, resp []byte, err error, at int64)
}

// sinkKind is how an admitted request's reply leaves the ingress.
type sinkKind uint8

const (
	sinkClient sinkKind = iota + 1 // a client channel at node edge, index conn
	sinkBare                       // a bare datagram to addr on the client socket
	sinkSubmit                     // a ReplySink
)

// slot is the ingress's record of one admitted request.
type slot struct {
	gen      uint32
	busy     bool
	app      uint32
	instance uint32
	weight   uint64 // completion weight returned so far
	kind     sinkKind
	edge     topology.NodeID
	conn     uint32
	clientID uint64
	addr     netip.AddrPort
	sink     ReplySink
	token    uint64
	resp     []byte
	admitted time.Time // real time, for the timeout
	next     int32     // free list
}

// ingress is the table of requests this agent admitted and is waiting for.
// Requests ids are gen<<32 | slot index, so a completion for a slot that
// has since been reused (after a timeout) is recognised by its generation
// and ignored: every request ends exactly once.
type ingress struct {
	mu    sync.Mutex
	slots []slot
	free  int32 // head of the free list, -1 if empty
	busy  int
}

func newIngress() *ingress { return &ingress{free: -1} }

// admit records a new request and returns its id (gen<<32 | slot).
func (g *ingress) admit(s slot) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var i int32
	if g.free >= 0 {
		i = g.free
		g.free = g.slots[i].next
	} else {
		i = int32(len(g.slots))
		g.slots = append(g.slots, slot{})
	}
	sl := &g.slots[i]
	gen := sl.gen + 1
	resp := sl.resp[:0]
	*sl = s
	sl.gen, sl.busy, sl.resp, sl.next = gen, true, resp, -1
	g.busy++
	return uint64(gen)<<32 | uint64(i)
}

// outcome is a finished request, handed to the reply path. Outcomes are
// pooled so that the response buffer they carry is reused.
type outcome struct {
	s   slot
	err string
}

var outcomePool = sync.Pool{New: func() any { return new(outcome) }}

func getOutcome() *outcome { return outcomePool.Get().(*outcome) }

func putOutcome(o *outcome) {
	o.s.sink = nil
	o.err = ""
	outcomePool.Put(o)
}

// complete adds weight to request id and reports whether the request is now
// complete (then out holds it and the slot is free again). resp, if not
// empty and the request has no response yet, becomes its response.
func (g *ingress) complete(id, weight uint64, resp []byte, out *outcome) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	sl := g.get(id)
	if sl == nil {
		return false // already finished (timed out or failed): a late completion
	}
	if len(resp) > 0 && len(sl.resp) == 0 {
		sl.resp = append(sl.resp[:0], resp...)
	}
	sl.weight += weight
	if sl.weight < transport.InitialWeight {
		return false
	}
	g.finishLocked(id, out)
	return true
}

// fail ends request id with an error; it reports false if it had ended.
func (g *ingress) fail(id uint64, reason string, out *outcome) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.get(id) == nil {
		return false
	}
	g.finishLocked(id, out)
	out.err = reason
	return true
}

// noteResponse records a response for id without returning weight.
func (g *ingress) noteResponse(id uint64, resp []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if sl := g.get(id); sl != nil && len(sl.resp) == 0 {
		sl.resp = append(sl.resp[:0], resp...)
	}
}

func (g *ingress) get(id uint64) *slot {
	i := int(uint32(id))
	if i >= len(g.slots) {
		return nil
	}
	sl := &g.slots[i]
	if !sl.busy || sl.gen != uint32(id>>32) {
		return nil
	}
	return sl
}

// finishLocked copies the slot into out (the response is copied into out's
// own buffer, so the slot can be reused at once) and frees it.
func (g *ingress) finishLocked(id uint64, out *outcome) {
	i := int32(uint32(id))
	sl := &g.slots[i]
	resp := out.s.resp[:0]
	out.s = *sl
	out.s.resp = append(resp, sl.resp...)
	out.err = ""
	sl.busy = false
	sl.sink = nil
	sl.resp = sl.resp[:0]
	sl.next = g.free
	g.free = i
	g.busy--
}

// expired collects the ids of requests admitted before cutoff.
func (g *ingress) expired(cutoff time.Time, ids []uint64) []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.slots {
		sl := &g.slots[i]
		if sl.busy && sl.admitted.Before(cutoff) {
			ids = append(ids, uint64(sl.gen)<<32|uint64(i))
		}
	}
	return ids
}

// pending returns the number of requests in flight.
func (g *ingress) pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.busy
}
