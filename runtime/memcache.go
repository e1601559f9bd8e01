package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/kvs"
	"github.com/e3-platform/e3/transport"
)

// The memcached UDP frame header (memcached's doc/protocol.txt, "UDP
// protocol"): request id, sequence number, total datagrams, reserved (0),
// each 16 bits big endian, before the text of every datagram.
const (
	mcFrameHeader = 8
	// mcMaxDatagram is memcached's UDP_MAX_PAYLOAD_SIZE: a response longer
	// than this goes out in several datagrams, each with the frame header.
	mcMaxDatagram = 1400
)

// MemcacheIngress serves the memcached text protocol over UDP (get, set,
// delete, as package kvs decodes them) in front of a KVS node of a deployed
// application, so that memcached clients (memaslap) drive E3's KVS through
// the runtime: each key becomes a kvs event, routed by its key hash to its
// shard (app.ShardOf), admitted and completed like any request, and the
// replies are put back together into memcached's answer.
//
// The shards must run on the ingress's agent (the ingress is that agent's
// client socket for memcached). In real mode a datagram's requests run to
// completion in the ingress loop and its answer leaves with the batch.
type MemcacheIngress struct {
	a        *Agent
	appID    uint32
	node     *app.Node
	conn     transport.BatchConn
	maxValue int
	w        *InlineWorker

	mu      sync.Mutex
	pending []*mcDatagram // by slot; nil when free
	free    []int
	out     []transport.Message
	nout    int
	held    bool

	wg sync.WaitGroup
}

// mcDatagram is one request datagram in progress.
type mcDatagram struct {
	addr  netip.AddrPort
	reqID uint16
	buf   []byte // the datagram's text (requests alias it)
	reqs  []mcReq
	left  int // key replies outstanding
	resp  [][]byte
	// parsing: serve is still reading requests from the datagram and will
	// finish it itself; a reply that completes it meanwhile must not.
	parsing bool
}

type mcReq struct {
	cmd     kvs.Command
	keys    [][2]int // key bounds in buf
	noreply bool
	first   int // index of the first key's reply in resp
	errLine string
}

// NewMemcacheIngress serves memcached on conn for node nodeName (a kvs
// node) of application appID deployed on agent a. The ingress owns conn;
// Close stops it.
func NewMemcacheIngress(a *Agent, appID uint32, nodeName string, conn transport.BatchConn) (*MemcacheIngress, error) {
	st := a.state.Load()
	if int(appID) >= len(st.apps) || st.apps[appID] == nil {
		return nil, fmt.Errorf("runtime: memcache ingress: app %d is not deployed on %s", appID, a.Name())
	}
	as := st.apps[appID]
	nd, ok := as.route.App.Node(nodeName)
	if !ok || nd.Service != "kvs" {
		return nil, fmt.Errorf("runtime: memcache ingress: app %s has no kvs node %q", as.route.App.Name, nodeName)
	}
	for _, p := range nd.Primaries() {
		if as.local[p.Index] == nil {
			return nil, fmt.Errorf("runtime: memcache ingress: shard %s does not run on %s", p.ID, a.Name())
		}
	}
	maxValue, err := service.Env{Config: nd.Config}.Int(kvs.ConfigMaxValue, kvs.DefaultMaxValue)
	if err != nil {
		return nil, fmt.Errorf("runtime: memcache ingress: %w", err)
	}
	g := &MemcacheIngress{a: a, appID: appID, node: nd, conn: conn, maxValue: maxValue, w: a.NewInlineWorker(),
		out: transport.NewMessages(bareBatch, mcMaxDatagram)}
	g.wg.Add(1)
	go g.loop()
	return g, nil
}

// Close stops the ingress and closes its socket.
func (g *MemcacheIngress) Close() error {
	err := g.conn.Close()
	g.wg.Wait()
	return err
}

func (g *MemcacheIngress) loop() {
	defer g.wg.Done()
	ms := transport.NewMessages(bareBatch, 64<<10)
	for {
		n, err := g.conn.ReadBatch(ms)
		if err != nil {
			if errors.Is(err, transport.ErrClosed) || g.a.ctx.Err() != nil {
				return
			}
			continue
		}
		g.a.tick()
		g.mu.Lock()
		g.held = true
		g.mu.Unlock()
		for i := 0; i < n; i++ {
			g.serve(ms[i].Payload(), ms[i].Addr)
		}
		g.mu.Lock()
		g.held = false
		g.flushLocked()
		g.mu.Unlock()
	}
}

// serve handles one datagram: every complete request in it.
func (g *MemcacheIngress) serve(b []byte, from netip.AddrPort) {
	if len(b) < mcFrameHeader {
		return // not a memcached UDP frame: memcached drops those too
	}
	reqID := binary.BigEndian.Uint16(b)
	total := binary.BigEndian.Uint16(b[4:])
	if total != 1 {
		// memcached takes requests of one datagram only.
		g.send(from, reqID, []byte("SERVER_ERROR multi-packet request not supported\r\n"))
		return
	}
	d := &mcDatagram{addr: from, reqID: reqID, buf: append([]byte(nil), b[mcFrameHeader:]...), parsing: true}
	var r kvs.Request
	text := d.buf
	used := 0
	for used < len(text) {
		n, err := kvs.ParseRequest(text[used:], &r, g.maxValue)
		if err == kvs.ErrIncomplete {
			d.reqs = append(d.reqs, mcReq{errLine: "CLIENT_ERROR incomplete request in datagram"})
			break
		}
		if err != nil {
			var pe *kvs.ProtocolError
			if errors.As(err, &pe) && pe.Reply != "" {
				d.reqs = append(d.reqs, mcReq{errLine: pe.Reply})
			}
			if pe == nil || pe.Close || n <= 0 {
				break
			}
			used += min(n, len(text)-used)
			continue
		}
		q := mcReq{cmd: r.Command, noreply: r.NoReply, first: len(d.resp)}
		for _, k := range r.Keys {
			off := cap(d.buf) - cap(k) // k aliases d.buf
			q.keys = append(q.keys, [2]int{off, off + len(k)})
			d.resp = append(d.resp, nil)
		}
		d.reqs = append(d.reqs, q)
		// Submit the request's keys; replies may come back before the
		// next request is parsed.
		g.submitAll(d, &r, len(d.reqs)-1)
		used += n
	}
	g.mu.Lock()
	d.parsing = false
	done := d.left == 0
	g.mu.Unlock()
	if done {
		g.finish(d)
	}
}

// submitAll turns each key of request r into a kvs event and submits it.
func (g *MemcacheIngress) submitAll(d *mcDatagram, r *kvs.Request, qi int) {
	q := &d.reqs[qi]
	now := g.a.coarseNow().UnixNano()
	g.mu.Lock()
	slot := g.slotLocked(d)
	d.left += len(r.Keys)
	g.mu.Unlock()
	var ev []byte
	for i := range r.Keys {
		var key uint64
		var err error
		ev, key, err = r.AppendEvent(ev[:0], i, now)
		token := uint64(slot)<<32 | uint64(q.first+i)
		if err == nil {
			inst := g.node.Primary(app.ShardOf(key, g.node.Shards))
			err = g.a.SubmitInline(g.w, g.appID, uint32(inst.Index), key, ev, g, token)
		}
		if err != nil {
			g.Reply(token, nil, err, 0)
		}
	}
}

func (g *MemcacheIngress) slotLocked(d *mcDatagram) int {
	for i, p := range g.pending {
		if p == d {
			return i
		}
	}
	if n := len(g.free); n > 0 {
		i := g.free[n-1]
		g.free = g.free[:n-1]
		g.pending[i] = d
		return i
	}
	g.pending = append(g.pending, d)
	return len(g.pending) - 1
}

// Reply implements ReplySink: the kvs reply to one key.
func (g *MemcacheIngress) Reply(token uint64, resp []byte, err error, _ int64) {
	slot, idx := int(token>>32), int(uint32(token))
	g.mu.Lock()
	if slot >= len(g.pending) || g.pending[slot] == nil {
		g.mu.Unlock()
		return
	}
	d := g.pending[slot]
	if err != nil {
		d.resp[idx] = append([]byte{0xff}, "SERVER_ERROR "+oneLineErr(err)...)
	} else {
		d.resp[idx] = append([]byte(nil), resp...)
	}
	d.left--
	done := d.left == 0 && !d.parsing
	g.mu.Unlock()
	if done {
		g.finish(d)
	}
}

func oneLineErr(err error) string {
	b := []byte(err.Error())
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

// finish formats the answers of d's requests and sends them.
func (g *MemcacheIngress) finish(d *mcDatagram) {
	g.mu.Lock()
	for i, p := range g.pending {
		if p == d {
			g.pending[i] = nil
			g.free = append(g.free, i)
			break
		}
	}
	g.mu.Unlock()
	var out []byte
	for _, q := range d.reqs {
		if q.errLine != "" {
			out = append(append(out, q.errLine...), "\r\n"...)
			continue
		}
		failed := false
		for i, kb := range q.keys {
			resp := d.resp[q.first+i]
			if len(resp) > 0 && resp[0] == 0xff {
				out = append(append(out, resp[1:]...), "\r\n"...)
				failed = true
				break
			}
			var err error
			out, err = kvs.AppendResponse(out, q.cmd, d.buf[kb[0]:kb[1]], q.noreply, resp)
			if err != nil {
				out = append(append(out, "SERVER_ERROR "...), oneLineErr(err)+"\r\n"...)
				failed = true
				break
			}
		}
		if q.cmd == kvs.CmdGet && !failed {
			out = kvs.AppendEnd(out)
		}
	}
	if len(out) > 0 {
		g.send(d.addr, d.reqID, out)
	}
}

// send writes text to addr in as many datagrams as it takes, each with
// the frame header (same request id, sequence numbers, total).
func (g *MemcacheIngress) send(addr netip.AddrPort, reqID uint16, text []byte) {
	per := mcMaxDatagram - mcFrameHeader
	total := (len(text) + per - 1) / per
	g.mu.Lock()
	defer g.mu.Unlock()
	for seq := 0; seq < total; seq++ {
		if g.nout == len(g.out) {
			g.flushLocked()
		}
		m := &g.out[g.nout]
		chunk := text[seq*per : min(len(text), (seq+1)*per)]
		binary.BigEndian.PutUint16(m.Buf, reqID)
		binary.BigEndian.PutUint16(m.Buf[2:], uint16(seq))
		binary.BigEndian.PutUint16(m.Buf[4:], uint16(total))
		binary.BigEndian.PutUint16(m.Buf[6:], 0)
		m.N = mcFrameHeader + copy(m.Buf[mcFrameHeader:], chunk)
		m.Addr = addr
		g.nout++
	}
	if !g.held {
		g.flushLocked()
	}
}

func (g *MemcacheIngress) flushLocked() {
	if g.nout > 0 {
		g.conn.WriteBatch(g.out[:g.nout])
		g.nout = 0
	}
}
