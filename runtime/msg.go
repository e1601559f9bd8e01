package runtime

import (
	"net/netip"
	"sync"

	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// maxMessage is the largest E3 message (header and payload) the agent
// moves. It is what one channel datagram carries (an Ethernet MTU less the
// IPv4, UDP and channel framing), so a message that fits here fits every
// mechanism.
const maxMessage = 1472 - 42

// origin says where a message entered this agent, which decides what the
// agent does with it besides its kind and destination.
type origin uint8

const (
	fromLocal    origin = iota // emitted on this node
	fromPeer                   // a channel from another agent
	fromClient                 // a client channel (id ClientChannelID)
	fromHostLink               // the PCIe link between a SmartNIC and its host
	fromBare                   // a bare datagram on the client socket
	fromSubmit                 // Agent.Submit (an in-process ingress)
)

// msg is one message inside an agent: the encoded E3 message, its decoded
// header, and the bookkeeping the engine needs. Messages are recycled
// through a pool, so the data path allocates nothing per message once the
// pool is warm.
type msg struct {
	b   []byte           // header + payload
	h   transport.Header // decoded b
	src origin
	// peer is the node the message came from (fromPeer, fromHostLink), or
	// the client connection index (fromClient).
	peer topology.NodeID
	conn uint32
	addr netip.AddrPort // fromBare: the client's address
	// sink and token deliver the reply of a Submit'ed request.
	sink  ReplySink
	token uint64
	// inst is the instance the message entered (instance.enter), whose
	// active count it holds until the handler is done with it.
	inst *instance
	// Emulated time (ns since the emulation origin): due is when the
	// message reaches this node (the header's Timestamp), start and finish
	// when an emulated core works on it.
	due, start, finish int64
	core               int    // emulated core chosen by the dispatcher
	seq                uint64 // arrival order, to break ties between equal due times
}

var msgPool = sync.Pool{New: func() any { return &msg{b: make([]byte, 0, maxMessage)} }}

func getMsg() *msg {
	m := msgPool.Get().(*msg)
	m.b = m.b[:0]
	return m
}

func putMsg(m *msg) {
	m.sink = nil
	m.inst = nil
	m.addr = netip.AddrPort{}
	msgPool.Put(m)
}

// payload returns the message's payload (after the header).
func (m *msg) payload() []byte { return m.b[transport.HeaderSize:] }

// setHeader re-encodes m.h into m.b (the payload stays).
func (m *msg) setHeader() {
	m.h.PayloadLen = uint32(len(m.b) - transport.HeaderSize)
	_ = m.h.Encode(m.b) // the kinds we write are always valid
}

// inbox is an unbounded multi-producer, single-consumer queue of messages.
// It is unbounded on purpose: the goroutines that feed it (channel and host
// link receivers) must never block on it, or two agents sending to each
// other could each wait for the other's worker. The closed-loop clients
// bound what is in flight; lossless channels push back on senders beyond
// that.
type inbox struct {
	mu    sync.Mutex
	items []*msg
	spare []*msg
	wake  chan struct{}
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

func (q *inbox) push(m *msg) {
	q.mu.Lock()
	q.items = append(q.items, m)
	n := len(q.items)
	q.mu.Unlock()
	if n == 1 {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// take swaps out everything queued; the caller hands the slice back with
// give once it is done with it.
func (q *inbox) take() []*msg {
	q.mu.Lock()
	out := q.items
	q.items = q.spare[:0]
	q.spare = nil
	q.mu.Unlock()
	return out
}

func (q *inbox) give(s []*msg) {
	clear(s)
	q.mu.Lock()
	if q.spare == nil {
		q.spare = s[:0]
	}
	q.mu.Unlock()
}

func (q *inbox) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// mix64 is mix.SplitMix64Next: a bijective mixer that gives every node the
// same answer, for the decisions all nodes must agree on (edge shares,
// ECMP port choice). The simulator hashes with the same function, so it
// makes the same decisions as the emulated cluster it is validated against.
func mix64(x uint64) uint64 { return mix.SplitMix64Next(x) }
