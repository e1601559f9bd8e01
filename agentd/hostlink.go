package agentd

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// The host link between a host agent and its SmartNIC's agent. In one
// process (package cluster) it is a transport.HostLink, a pair of rings.
// Between two processes, or between a host and a DPU that sees it as a
// network device, it is a TCP connection carrying the same messages:
// each side keeps an in-process HostLink whose one end the runtime agent
// holds and whose other end a bridge pumps to and from the connection.
//
// The SmartNIC listens on its data address (the same IP and port number
// as its UDP data socket, but TCP); the host dials it, from its own data
// IP, whenever the routing table gives the SmartNIC a new address or the
// link is down. The host opens with a hello:
//
//	0  magic   "E3HL"
//	4  version u8 (1)
//	5  from    u32 LE  the host's node id
//	9  to      u32 LE  the SmartNIC's node id
//	13 proof   16 bytes: SHA-256("e3 host link\x00" token "\x00" from to)[:16]
//
// and the SmartNIC answers "E3HL", a status byte (0 accepted, 1 refused),
// a reason length byte and the reason. The proof shows that the dialer
// holds the cluster's join token, so that no other process on the network
// can take the link over; it is not encryption (nor is the data path's UDP).
// After the answer each message travels as a 4-byte little-endian length
// and the message, at most maxFrame bytes.

const (
	helloMagic   = "E3HL"
	helloVersion = 1
	helloLen     = 4 + 1 + 4 + 4 + 16
	// maxFrame bounds one message on the link. The runtime's messages fit
	// a datagram (under 1.5 KB); the bound only protects the reader.
	maxFrame = 64 << 10
	// hostLinkCapacity is the ring size of each side's in-process half, as
	// in the emulated cluster.
	hostLinkCapacity = 4096
	// handshakeTimeout bounds the hello and its answer.
	handshakeTimeout = 2 * time.Second
)

// hello is the host's opening message.
type hello struct {
	From, To topology.NodeID
	Proof    [16]byte
}

// linkProof is what a holder of the join token sends to open the link
// from node from to node to.
func linkProof(token string, from, to topology.NodeID) [16]byte {
	h := sha256.New()
	h.Write([]byte("e3 host link\x00"))
	h.Write([]byte(token))
	h.Write([]byte{0})
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(from))
	binary.LittleEndian.PutUint32(b[4:], uint32(to))
	h.Write(b[:])
	var p [16]byte
	copy(p[:], h.Sum(nil))
	return p
}

func (h *hello) append(dst []byte) []byte {
	dst = append(dst, helloMagic...)
	dst = append(dst, helloVersion)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.From))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(h.To))
	return append(dst, h.Proof[:]...)
}

// HelloError says what is wrong with a host link's hello.
type HelloError struct {
	Offset int
	Field  string
	Detail string
}

func (e *HelloError) Error() string {
	return fmt.Sprintf("agentd: host link hello: %s at offset %d: %s", e.Field, e.Offset, e.Detail)
}

// decodeHello parses a hello of exactly helloLen bytes.
func decodeHello(b []byte) (hello, error) {
	var h hello
	if len(b) != helloLen {
		return h, &HelloError{Offset: len(b), Field: "length", Detail: fmt.Sprintf("%d bytes, want %d", len(b), helloLen)}
	}
	if string(b[:4]) != helloMagic {
		return h, &HelloError{Offset: 0, Field: "magic", Detail: fmt.Sprintf("%q, want %q", b[:4], helloMagic)}
	}
	if b[4] != helloVersion {
		return h, &HelloError{Offset: 4, Field: "version", Detail: fmt.Sprintf("%d, want %d", b[4], helloVersion)}
	}
	from, to := binary.LittleEndian.Uint32(b[5:]), binary.LittleEndian.Uint32(b[9:])
	if from > 1<<30 || to > 1<<30 {
		return h, &HelloError{Offset: 5, Field: "node", Detail: fmt.Sprintf("from %d to %d, want node ids below 2^30", from, to)}
	}
	h.From, h.To = topology.NodeID(from), topology.NodeID(to)
	copy(h.Proof[:], b[13:])
	return h, nil
}

// readAnswer reads the SmartNIC's answer to a hello: nil if accepted.
func readAnswer(r io.Reader) error {
	var b [6]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("agentd: host link answer: %w", err)
	}
	if string(b[:4]) != helloMagic {
		return fmt.Errorf("agentd: host link answer: magic %q, want %q", b[:4], helloMagic)
	}
	reason := make([]byte, b[5])
	if _, err := io.ReadFull(r, reason); err != nil {
		return fmt.Errorf("agentd: host link answer: %w", err)
	}
	if b[4] != 0 {
		return fmt.Errorf("agentd: host link refused by the SmartNIC: %s", reason)
	}
	return nil
}

func writeAnswer(w io.Writer, reason string) error {
	if len(reason) > 255 {
		reason = reason[:255]
	}
	b := []byte(helloMagic)
	if reason == "" {
		b = append(b, 0, 0)
	} else {
		b = append(b, 1, byte(len(reason)))
		b = append(b, reason...)
	}
	_, err := w.Write(b)
	return err
}

// readFrame reads one length-prefixed message into dst (reusing it).
func readFrame(r *bufio.Reader, dst []byte) ([]byte, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return dst, err
	}
	n := binary.LittleEndian.Uint32(lb[:])
	if n == 0 || n > maxFrame {
		return dst, fmt.Errorf("agentd: host link frame of %d bytes, want 1..%d", n, maxFrame)
	}
	if cap(dst) < int(n) {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	_, err := io.ReadFull(r, dst)
	return dst, err
}

// bridge pumps one in-process host-link end to and from a connection.
type bridge struct {
	conn net.Conn
	port *transport.HostPort // the end the agent does not hold
	peer topology.NodeID
	once sync.Once
	done chan struct{}
	in   atomic.Uint64 // messages from the connection
	out  atomic.Uint64 // messages to the connection
}

// newBridge attaches a fresh host link to agent a toward peer, to be
// pumped over conn once start is called (after the handshake's last
// byte, so that no message overtakes it).
func newBridge(a *runtime.Agent, peer topology.NodeID, conn net.Conn) (*bridge, error) {
	mine, theirs, err := transport.NewHostLink(transport.HostLinkConfig{Capacity: hostLinkCapacity})
	if err != nil {
		return nil, err
	}
	if err := a.AttachHostLink(peer, mine); err != nil {
		mine.Close()
		return nil, err
	}
	return &bridge{conn: conn, port: theirs, peer: peer, done: make(chan struct{})}, nil
}

// start runs the pumps.
func (b *bridge) start() {
	go b.toConn()
	go b.fromConn()
}

// close ends the bridge: the connection and both ends of the in-process
// link (the agent's link loop ends; its sends fail until a new link).
func (b *bridge) close() {
	b.once.Do(func() {
		b.conn.Close()
		b.port.Close()
		close(b.done)
	})
}

// toConn writes what the agent sends, batching whatever is ready into
// one write.
func (b *bridge) toConn() {
	defer b.close()
	w := bufio.NewWriterSize(b.conn, 64<<10)
	buf := make([]byte, 0, 2048)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-b.done
		cancel()
	}()
	var lb [4]byte
	for {
		msg, err := b.port.Recv(ctx, buf[:0])
		for err == nil {
			binary.LittleEndian.PutUint32(lb[:], uint32(len(msg)))
			w.Write(lb[:])
			w.Write(msg)
			b.out.Add(1)
			buf = msg
			msg, err = b.port.TryRecv(buf[:0])
		}
		if !errors.Is(err, transport.ErrNoMessage) {
			w.Flush()
			return
		}
		if w.Flush() != nil {
			return
		}
	}
}

// fromConn hands what the peer sends to the agent.
func (b *bridge) fromConn() {
	defer b.close()
	r := bufio.NewReaderSize(b.conn, 64<<10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-b.done
		cancel()
	}()
	var buf []byte
	for {
		msg, err := readFrame(r, buf)
		if err != nil {
			return
		}
		buf = msg
		if err := b.port.TrySend(msg); err == transport.ErrBackpressure {
			err = b.port.Send(ctx, msg)
			if err != nil {
				return
			}
		} else if err != nil {
			return
		}
		b.in.Add(1)
	}
}

// linkState is one host link's state, for status and metrics.
type linkState struct {
	peer     topology.NodeID
	mu       sync.Mutex
	br       *bridge
	remote   string
	since    time.Time
	lastErr  string
	connects atomic.Uint64
}

func (s *linkState) set(br *bridge, remote string) {
	s.mu.Lock()
	old := s.br
	s.br, s.remote, s.since, s.lastErr = br, remote, time.Now(), ""
	s.mu.Unlock()
	s.connects.Add(1)
	if old != nil && old != br {
		old.close()
	}
}

func (s *linkState) fail(err error) {
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
}

// up reports whether the link's bridge runs.
func (s *linkState) up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.br == nil {
		return false
	}
	select {
	case <-s.br.done:
		return false
	default:
		return true
	}
}

func (s *linkState) closeBridge() {
	s.mu.Lock()
	br := s.br
	s.mu.Unlock()
	if br != nil {
		br.close()
	}
}

// LinkStatus describes a host link in Status.
type LinkStatus struct {
	Peer     string `json:"peer"`
	Up       bool   `json:"up"`
	Remote   string `json:"remote,omitempty"`
	SinceMs  int64  `json:"since_ms,omitempty"`
	Connects uint64 `json:"connects"`
	In       uint64 `json:"messages_in"`
	Out      uint64 `json:"messages_out"`
	LastErr  string `json:"last_error,omitempty"`
}

func (s *linkState) status(t *topology.Topology) LinkStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := LinkStatus{Peer: t.Name(s.peer), Remote: s.remote, Connects: s.connects.Load(), LastErr: s.lastErr}
	if s.br != nil {
		select {
		case <-s.br.done:
		default:
			ls.Up = true
			ls.SinceMs = time.Since(s.since).Milliseconds()
		}
		ls.In, ls.Out = s.br.in.Load(), s.br.out.Load()
	}
	return ls
}

// nicLinks is a SmartNIC's side: it accepts its host's connections.
type nicLinks struct {
	ln    net.Listener
	a     *runtime.Agent
	self  topology.NodeID
	host  topology.NodeID
	token string
	// hostIP returns the host's data IP in the table in force (invalid
	// when the table has none yet).
	hostIP func() netip.Addr
	link   *linkState
	log    *slog.Logger
	wg     sync.WaitGroup
}

func (n *nicLinks) serve() {
	defer n.wg.Done()
	for {
		c, err := n.ln.Accept()
		if err != nil {
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.accept(c); err != nil {
				n.log.Warn("host link refused", "remote", c.RemoteAddr().String(), "err", err)
				n.link.fail(err)
				c.Close()
			}
		}()
	}
}

// accept checks a host's hello and, if it is the host, bridges it.
func (n *nicLinks) accept(c net.Conn) error {
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	b := make([]byte, helloLen)
	if _, err := io.ReadFull(c, b); err != nil {
		return fmt.Errorf("reading the hello: %w", err)
	}
	h, err := decodeHello(b)
	if err != nil {
		writeAnswer(c, err.Error())
		return err
	}
	want := linkProof(n.token, n.host, n.self)
	var refuse string
	switch {
	case h.To != n.self || h.From != n.host:
		refuse = fmt.Sprintf("hello from node %d to node %d; this is node %d and its host is node %d", h.From, h.To, n.self, n.host)
	case subtle.ConstantTimeCompare(h.Proof[:], want[:]) != 1:
		refuse = "the proof does not match this cluster's join token"
	default:
		if ip := n.hostIP(); ip.IsValid() {
			if ra, ok := c.RemoteAddr().(*net.TCPAddr); ok && ra.AddrPort().Addr().Unmap() != ip {
				refuse = fmt.Sprintf("connection from %v; the routing table has the host at %v", ra.IP, ip)
			}
		}
	}
	if refuse != "" {
		writeAnswer(c, refuse)
		return errors.New(refuse)
	}
	br, err := newBridge(n.a, n.host, c)
	if err != nil {
		writeAnswer(c, err.Error())
		return err
	}
	if err := writeAnswer(c, ""); err != nil {
		br.close()
		return err
	}
	c.SetDeadline(time.Time{})
	br.start()
	n.link.set(br, c.RemoteAddr().String())
	n.log.Info("host link up", "host", c.RemoteAddr().String())
	return nil
}

func (n *nicLinks) close() {
	n.ln.Close()
	n.link.closeBridge()
	n.wg.Wait()
}

// hostLinks is a host's side: it keeps a link to each of its SmartNICs,
// dialing the address the routing table gives.
type hostLinks struct {
	a      *runtime.Agent
	self   topology.NodeID
	local  netip.Addr // the host's data IP, the links' source address
	token  string
	links  map[topology.NodeID]*linkState
	addrs  map[topology.NodeID]chan netip.AddrPort // latest address per SmartNIC
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// retry is the pause between dials.
	retry time.Duration
}

func newHostLinks(a *runtime.Agent, t *topology.Topology, self topology.NodeID, local netip.Addr, token string, log *slog.Logger) *hostLinks {
	h := &hostLinks{a: a, self: self, local: local, token: token, links: map[topology.NodeID]*linkState{},
		addrs: map[topology.NodeID]chan netip.AddrPort{}, log: log, retry: 100 * time.Millisecond}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	srv := t.Server(t.ServerOf(self))
	for i := range srv.SmartNICs {
		nic := srv.Host + 1 + topology.NodeID(i)
		h.links[nic] = &linkState{peer: nic}
		h.addrs[nic] = make(chan netip.AddrPort, 1)
		h.wg.Add(1)
		go h.keep(nic)
	}
	return h
}

// table tells the dialers the SmartNICs' addresses in a new table.
func (h *hostLinks) table(t *runtime.Table) {
	for nic, ch := range h.addrs {
		var ad netip.AddrPort
		if int(nic) < len(t.Addrs) {
			ad = t.Addrs[nic]
		}
		select {
		case <-ch:
		default:
		}
		ch <- ad
	}
}

// keep keeps the link to one SmartNIC up: it dials the SmartNIC's
// current address, bridges, and dials again when the bridge ends or the
// address changes.
func (h *hostLinks) keep(nic topology.NodeID) {
	defer h.wg.Done()
	ls := h.links[nic]
	var addr netip.AddrPort
	for {
		// Wait for an address, or take a newer one.
		if !addr.IsValid() {
			select {
			case <-h.ctx.Done():
				return
			case addr = <-h.addrs[nic]:
			}
			continue
		}
		br, err := h.dial(nic, addr)
		if err != nil {
			ls.fail(err)
			h.log.Debug("host link dial failed", "smartnic", addr.String(), "err", err)
			select {
			case <-h.ctx.Done():
				return
			case addr = <-h.addrs[nic]:
			case <-time.After(h.retry):
			}
			continue
		}
		ls.set(br, addr.String())
		h.log.Info("host link up", "smartnic", addr.String())
		// Stay until the bridge ends or the SmartNIC moves.
		for up := true; up; {
			select {
			case <-h.ctx.Done():
				br.close()
				return
			case <-br.done:
				up = false
			case na := <-h.addrs[nic]:
				if na != addr {
					addr = na
					br.close()
					up = false
				}
			}
		}
		h.log.Info("host link down; dialing again", "smartnic", addr.String())
	}
}

func (h *hostLinks) dial(nic topology.NodeID, addr netip.AddrPort) (*bridge, error) {
	d := net.Dialer{Timeout: handshakeTimeout}
	if h.local.IsValid() && !h.local.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: h.local.AsSlice()}
	}
	ctx, cancel := context.WithTimeout(h.ctx, handshakeTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	hl := hello{From: h.self, To: nic, Proof: linkProof(h.token, h.self, nic)}
	if _, err := c.Write(hl.append(nil)); err != nil {
		c.Close()
		return nil, err
	}
	if err := readAnswer(c); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	br, err := newBridge(h.a, nic, c)
	if err != nil {
		c.Close()
		return nil, err
	}
	br.start()
	return br, nil
}

func (h *hostLinks) close() {
	h.cancel()
	h.wg.Wait()
	for _, ls := range h.links {
		ls.closeBridge()
	}
}
