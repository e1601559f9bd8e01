package transport

import (
	"errors"
	"net/netip"
)

// Message is one datagram in a batch. The same slice of Messages is reused
// from batch to batch, so that steady-state I/O allocates nothing: Buf is
// set up once with its full capacity and only N changes.
type Message struct {
	// Buf is the datagram buffer. ReadBatch fills Buf[:N] and never
	// reallocates it, so its length (not only its capacity) must be the
	// largest datagram the caller accepts. WriteBatch sends Buf[:N].
	Buf []byte
	// N is the number of valid bytes in Buf.
	N int
	// Addr is the source after ReadBatch and the destination for WriteBatch.
	Addr netip.AddrPort
}

// Payload returns Buf[:N].
func (m *Message) Payload() []byte { return m.Buf[:m.N] }

// NewMessages returns n messages, each with a buffer of size bytes carved
// out of one allocation.
func NewMessages(n, size int) []Message {
	ms := make([]Message, n)
	backing := make([]byte, n*size)
	for i := range ms {
		ms[i].Buf = backing[i*size : (i+1)*size : (i+1)*size]
	}
	return ms
}

// BatchConn is an unreliable datagram socket that moves many datagrams per
// call. Datagrams may be lost, duplicated or reordered (the in-memory
// [Network] does all three on purpose); [Endpoint] builds lossless channels
// on top.
//
// Implementations are safe for concurrent use: concurrent calls of the same
// method are serialised, and a reader never blocks a writer. (Each direction
// keeps its own scratch space, so that neither allocates.)
type BatchConn interface {
	// ReadBatch blocks until at least one datagram has arrived, then fills
	// as many of ms as are ready without blocking again and returns how
	// many it filled. A datagram longer than len(Buf) is truncated. After
	// Close it returns an error wrapping [ErrClosed].
	ReadBatch(ms []Message) (int, error)
	// WriteBatch sends every message of ms (each to its own Addr) and
	// returns how many were handed to the network; it is less than len(ms)
	// only together with an error.
	WriteBatch(ms []Message) (int, error)
	// LocalAddr is the address peers send to.
	LocalAddr() netip.AddrPort
	// Close releases the socket and unblocks a pending ReadBatch.
	Close() error
}

// ErrClosed is returned (possibly wrapped) by operations on a closed
// connection, channel, queue or host link.
var ErrClosed = errors.New("transport: closed")
