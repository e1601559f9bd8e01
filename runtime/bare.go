package runtime

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/e3-platform/e3/transport"
)

// bareBatch is how many datagrams the client socket reads and writes per
// system call.
const bareBatch = 64

// bareLoop serves the client socket: bare E3 requests, one per datagram,
// answered by one datagram each. In real mode a request for an instance on
// this node runs to completion right here, on the reading goroutine, and
// the replies of a batch leave in one write: the shape of a kernel-bypass
// server loop, and of the C echo server the transport benchmark compares
// against.
func (a *Agent) bareLoop() {
	defer a.wg.Done()
	conn := a.cfg.ClientConn
	ms := transport.NewMessages(bareBatch, maxMessage+64)
	var w *worker
	if a.emu == nil {
		w = newWorker(a, -1)
	}
	for {
		n, err := conn.ReadBatch(ms)
		if err != nil {
			if errors.Is(err, transport.ErrClosed) || a.ctx.Err() != nil {
				return
			}
			a.stats.badMessages.Add(1)
			continue
		}
		a.tick()
		a.bare.hold()
		for i := 0; i < n; i++ {
			a.bareDatagram(ms[i].Payload(), ms[i].Addr, w)
		}
		a.bare.release()
	}
}

// bareDatagram handles one datagram of the client socket; w runs it
// inline (real mode) or, nil, it goes to the engine.
func (a *Agent) bareDatagram(b []byte, from netip.AddrPort, w *worker) {
	if len(b) > maxMessage {
		a.stats.badMessages.Add(1)
		return
	}
	m := getMsg()
	m.b = append(m.b[:0], b...)
	if m.h.Decode(m.b) != nil || m.h.Kind != transport.KindRequest {
		a.stats.badMessages.Add(1)
		putMsg(m)
		return
	}
	// Whatever weight a client wrote means nothing here: a request from
	// outside is fresh, and the ingress gives it its weight.
	m.h.Weight = 0
	a.stats.bytesIn.Add(uint64(len(m.b)))
	m.src, m.addr = fromBare, from
	if w != nil {
		a.dispatchOn(m, w)
	} else {
		a.input(m)
	}
}

// bareOut batches replies to bare clients: the client loop holds it while
// it works through a batch, so the replies of that batch go out in one
// write; replies that complete elsewhere go out at once.
type bareOut struct {
	conn transport.BatchConn
	mu   sync.Mutex
	held bool
	ms   []transport.Message
	n    int
}

func newBareOut(conn transport.BatchConn) *bareOut {
	return &bareOut{conn: conn, ms: transport.NewMessages(bareBatch, maxMessage+64)}
}

func (o *bareOut) hold() {
	o.mu.Lock()
	o.held = true
	o.mu.Unlock()
}

func (o *bareOut) release() {
	o.mu.Lock()
	o.held = false
	o.flushLocked()
	o.mu.Unlock()
}

func (o *bareOut) add(h transport.Header, payload []byte, to netip.AddrPort) {
	if len(payload) > maxMessage-transport.HeaderSize {
		payload = payload[:maxMessage-transport.HeaderSize]
	}
	h.PayloadLen = uint32(len(payload))
	o.mu.Lock()
	if o.n == len(o.ms) {
		o.flushLocked()
	}
	m := &o.ms[o.n]
	_ = h.Encode(m.Buf)
	m.N = transport.HeaderSize + copy(m.Buf[transport.HeaderSize:], payload)
	m.Addr = to
	o.n++
	if !o.held {
		o.flushLocked()
	}
	o.mu.Unlock()
}

func (o *bareOut) flushLocked() {
	if o.n == 0 {
		return
	}
	o.conn.WriteBatch(o.ms[:o.n]) // a lost reply is the datagram client's to retry
	o.n = 0
}

// Submit starts a request for instance (an index into the application's
// instances, which must run on this node) of application appID, as an
// in-process ingress does: the request is admitted here and sink.Reply is
// called exactly once with its outcome and token. payload is copied. at is
// the emulated time of arrival (ignored in real mode).
func (a *Agent) Submit(appID, instance uint32, key uint64, payload []byte, sink ReplySink, token uint64, at int64) error {
	if sink == nil {
		return errors.New("runtime: Submit: nil ReplySink")
	}
	if transport.HeaderSize+len(payload) > maxMessage {
		return fmt.Errorf("runtime: Submit: payload of %d bytes, at most %d fit a message", len(payload), maxMessage-transport.HeaderSize)
	}
	m := getMsg()
	m.h = transport.Header{Kind: transport.KindRequest, App: appID, Instance: instance, KeyHash: key, Timestamp: at, PayloadLen: uint32(len(payload))}
	m.b, _ = m.h.Append(m.b[:0])
	m.b = append(m.b, payload...)
	m.src, m.sink, m.token = fromSubmit, sink, token
	a.input(m)
	return nil
}

// SubmitInline is Submit for real mode, run on the caller's goroutine with
// the caller's worker state w (from NewInlineWorker): a request for a local
// instance runs to completion before it returns. The memcached ingress
// uses it to answer a datagram in the same loop iteration.
func (a *Agent) SubmitInline(w *InlineWorker, appID, instance uint32, key uint64, payload []byte, sink ReplySink, token uint64) error {
	if a.emu != nil {
		return a.Submit(appID, instance, key, payload, sink, token, a.emuNow())
	}
	if transport.HeaderSize+len(payload) > maxMessage {
		return fmt.Errorf("runtime: Submit: payload of %d bytes, at most %d fit a message", len(payload), maxMessage-transport.HeaderSize)
	}
	m := getMsg()
	m.h = transport.Header{Kind: transport.KindRequest, App: appID, Instance: instance, KeyHash: key, PayloadLen: uint32(len(payload))}
	m.b, _ = m.h.Append(m.b[:0])
	m.b = append(m.b, payload...)
	m.src, m.sink, m.token = fromSubmit, sink, token
	a.dispatchOn(m, w.w)
	return nil
}

// InlineWorker is the per-goroutine execution state of [Agent.SubmitInline]:
// a service.Context and emit buffers, reused call after call.
type InlineWorker struct{ w *worker }

// NewInlineWorker returns execution state for one goroutine that calls
// SubmitInline.
func (a *Agent) NewInlineWorker() *InlineWorker { return &InlineWorker{w: newWorker(a, -1)} }
