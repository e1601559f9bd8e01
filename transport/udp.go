package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// UDPConfig configures [ListenUDP]. The zero value is ready to use.
type UDPConfig struct {
	// SocketBuffer is the size asked for both SO_RCVBUF and SO_SNDBUF, in
	// bytes; 0 means 4 MiB. A burst of a few thousand small datagrams must
	// fit, or the kernel drops them before we ever see them. As root the
	// kernel's rmem_max/wmem_max caps are bypassed (SO_RCVBUFFORCE).
	SocketBuffer int
	// XNet makes ReadBatch and WriteBatch go through golang.org/x/net/ipv4
	// (recvmmsg/sendmmsg on Linux, one datagram per call elsewhere) instead
	// of this package's own recvmmsg/sendmmsg path. The x/net path is the
	// only one on other systems; on Linux it is kept for comparison: its
	// ReadBatch allocates a *net.UDPAddr (two objects) for every datagram
	// received, while ours decodes the source into a netip.AddrPort and
	// allocates nothing.
	XNet bool
}

// UDPConn is a [BatchConn] over a UDP socket. On Linux ReadBatch and
// WriteBatch are one recvmmsg or sendmmsg system call per batch (more only
// when the kernel takes part of a batch) and allocate nothing once the
// connection has seen its largest batch.
type UDPConn struct {
	conn  *net.UDPConn
	raw   syscall.RawConn
	local netip.AddrPort
	v4    bool // socket family is AF_INET (else AF_INET6)

	// Linux path: per-direction scratch, see udp_linux.go. Each direction
	// has a lock so that the connection is safe for concurrent use; the
	// lock is uncontended in the usual one-reader, one-writer pattern.
	rdMu, wrMu sync.Mutex
	rd, wr     mmsgScratch

	// x/net path.
	xnet   bool
	pc     *ipv4.PacketConn
	xrd    []ipv4.Message
	xwr    []ipv4.Message
	xaddrs map[netip.AddrPort]*net.UDPAddr // destination cache: net.Addr values are allocated once per peer
}

// ListenUDP opens a UDP socket bound to addr. A zero port picks a free one;
// [UDPConn.LocalAddr] tells which.
func ListenUDP(addr netip.AddrPort, cfg UDPConfig) (*UDPConn, error) {
	network := "udp6"
	if addr.Addr().Is4() {
		network = "udp4"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("transport: listen udp %v: %w", addr, err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: udp %v: %w", addr, err)
	}
	bufSize := cfg.SocketBuffer
	if bufSize <= 0 {
		bufSize = 4 << 20
	}
	if err := conn.SetReadBuffer(bufSize); err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: udp %v: set read buffer %d: %w", addr, bufSize, err)
	}
	if err := conn.SetWriteBuffer(bufSize); err != nil {
		conn.Close()
		return nil, fmt.Errorf("transport: udp %v: set write buffer %d: %w", addr, bufSize, err)
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	c := &UDPConn{
		conn:  conn,
		raw:   raw,
		local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		v4:    network == "udp4",
		xnet:  cfg.XNet || !haveMmsg,
	}
	c.rd.init(c, true)
	c.wr.init(c, false)
	if c.xnet {
		c.pc = ipv4.NewPacketConn(conn)
		c.xaddrs = make(map[netip.AddrPort]*net.UDPAddr)
	}
	// Past the sysctl caps where we may (root): bursts must not be dropped.
	setSocketBuffers(raw, bufSize)
	return c, nil
}

// LocalAddr returns the bound address.
func (c *UDPConn) LocalAddr() netip.AddrPort { return c.local }

// Close closes the socket; a blocked ReadBatch returns [ErrClosed].
func (c *UDPConn) Close() error {
	err := c.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// SetReadDeadline makes a blocked ReadBatch give up at t with an error
// wrapping os.ErrDeadlineExceeded; the zero time means no deadline. A
// client uses it to notice lost replies.
func (c *UDPConn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// ReadBatch reads at least one datagram, blocking until one arrives.
func (c *UDPConn) ReadBatch(ms []Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	if c.xnet {
		return c.xnetRead(ms)
	}
	return c.rd.read(ms)
}

// WriteBatch sends all of ms. It returns how many datagrams were sent before
// the first failure and an error naming the failing message.
func (c *UDPConn) WriteBatch(ms []Message) (int, error) {
	if len(ms) == 0 {
		return 0, nil
	}
	c.wrMu.Lock()
	defer c.wrMu.Unlock()
	if c.xnet {
		return c.xnetWrite(ms)
	}
	return c.wr.write(ms)
}

func (c *UDPConn) wrapErr(op string, err error) error {
	if errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("transport: udp %s %v: %w", op, c.local, ErrClosed)
	}
	return fmt.Errorf("transport: udp %s %v: %w", op, c.local, err)
}

func (c *UDPConn) xnetRead(ms []Message) (int, error) {
	if cap(c.xrd) < len(ms) {
		c.xrd = make([]ipv4.Message, len(ms))
		for i := range c.xrd {
			c.xrd[i].Buffers = make([][]byte, 1)
		}
	}
	xs := c.xrd[:len(ms)]
	for i := range xs {
		xs[i].Buffers[0] = ms[i].Buf
	}
	n, err := c.pc.ReadBatch(xs, 0)
	for i := 0; i < n; i++ {
		ms[i].N = xs[i].N
		if ua, ok := xs[i].Addr.(*net.UDPAddr); ok {
			ap := ua.AddrPort()
			ms[i].Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
	}
	if err != nil && n == 0 {
		return 0, c.wrapErr("read", err)
	}
	return n, nil
}

func (c *UDPConn) xnetWrite(ms []Message) (int, error) {
	if cap(c.xwr) < len(ms) {
		c.xwr = make([]ipv4.Message, len(ms))
		for i := range c.xwr {
			c.xwr[i].Buffers = make([][]byte, 1)
		}
	}
	xs := c.xwr[:len(ms)]
	for i := range xs {
		xs[i].Buffers[0] = ms[i].Buf[:ms[i].N]
		ua, ok := c.xaddrs[ms[i].Addr]
		if !ok {
			if len(c.xaddrs) > 4096 { // bound the cache; peers are few
				clear(c.xaddrs)
			}
			ua = net.UDPAddrFromAddrPort(ms[i].Addr)
			c.xaddrs[ms[i].Addr] = ua
		}
		xs[i].Addr = ua
	}
	sent := 0
	for sent < len(xs) {
		n, err := c.pc.WriteBatch(xs[sent:], 0)
		sent += n
		if err != nil {
			return sent, fmt.Errorf("transport: udp write %v: message %d to %v: %w", c.local, sent, ms[sent].Addr, err)
		}
	}
	return sent, nil
}
