//go:build linux

package transport

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const haveMmsg = true

// mmsgScratch is what one direction of a UDPConn needs for recvmmsg or
// sendmmsg: the header, iovec and address arrays the kernel reads and
// writes, and the callback handed to RawConn.Read/Write. It is built once
// and grown only when a larger batch comes along, which is what keeps the
// path free of allocations. The callback is a method value created in init:
// creating it per call would allocate a closure every time.
type mmsgScratch struct {
	c     *UDPConn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	count int                     // messages in the current call
	n     int                     // result of the system call
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

func (s *mmsgScratch) init(c *UDPConn, read bool) {
	s.c = c
	if read {
		s.fn = s.recvmmsg
	} else {
		s.fn = s.sendmmsg
	}
}

func (s *mmsgScratch) grow(n int) {
	if cap(s.hdrs) >= n {
		return
	}
	s.hdrs = make([]unix.Mmsghdr, n)
	s.iovs = make([]unix.Iovec, n)
	s.names = make([]unix.RawSockaddrInet6, n)
}

// recvmmsg runs inside RawConn.Read. Returning false means "would block":
// the runtime parks the goroutine on the netpoller and calls us again when
// the socket is readable.
func (s *mmsgScratch) recvmmsg(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.count), unix.MSG_DONTWAIT, 0, 0)
	for e == unix.EINTR {
		n, _, e = unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.count), unix.MSG_DONTWAIT, 0, 0)
	}
	if e == unix.EAGAIN {
		return false
	}
	s.n, s.errno = int(n), e
	return true
}

func (s *mmsgScratch) sendmmsg(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.count), unix.MSG_DONTWAIT, 0, 0)
	for e == unix.EINTR {
		n, _, e = unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(s.count), unix.MSG_DONTWAIT, 0, 0)
	}
	if e == unix.EAGAIN {
		return false
	}
	s.n, s.errno = int(n), e
	return true
}

func (s *mmsgScratch) read(ms []Message) (int, error) {
	s.grow(len(ms))
	for i := range ms {
		buf := ms[i].Buf
		if len(buf) == 0 {
			return 0, fmt.Errorf("transport: udp read %v: message %d has an empty buffer", s.c.local, i)
		}
		s.iovs[i].Base = &buf[0]
		s.iovs[i].SetLen(len(buf))
		h := &s.hdrs[i].Hdr
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Control = nil
		h.SetControllen(0)
		h.Flags = 0
		s.hdrs[i].Len = 0
	}
	s.count = len(ms)
	if err := s.c.raw.Read(s.fn); err != nil {
		return 0, s.c.wrapErr("read", err)
	}
	if s.errno != 0 {
		return 0, s.c.wrapErr("read", s.errno)
	}
	for i := 0; i < s.n; i++ {
		n := int(s.hdrs[i].Len)
		if n > len(ms[i].Buf) { // truncated (MSG_TRUNC): keep what we have
			n = len(ms[i].Buf)
		}
		ms[i].N = n
		ms[i].Addr = parseSockaddr(&s.names[i])
	}
	return s.n, nil
}

func (s *mmsgScratch) write(ms []Message) (int, error) {
	s.grow(len(ms))
	for i := range ms {
		m := &ms[i]
		if m.N <= 0 || m.N > len(m.Buf) {
			return 0, fmt.Errorf("transport: udp write %v: message %d: length %d outside buffer of %d", s.c.local, i, m.N, len(m.Buf))
		}
		s.iovs[i].Base = &m.Buf[0]
		s.iovs[i].SetLen(m.N)
		h := &s.hdrs[i].Hdr
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
		nl, err := putSockaddr(&s.names[i], m.Addr, s.c.v4)
		if err != nil {
			return 0, fmt.Errorf("transport: udp write %v: message %d: %w", s.c.local, i, err)
		}
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Namelen = nl
		h.Control = nil
		h.SetControllen(0)
		h.Flags = 0
	}
	sent := 0
	for sent < len(ms) {
		// Point the kernel at the unsent tail: sendmmsg may take only part
		// of a batch when the socket buffer fills.
		hdrs := s.hdrs
		s.hdrs = s.hdrs[sent:]
		s.count = len(ms) - sent
		err := s.c.raw.Write(s.fn)
		s.hdrs = hdrs
		if err != nil {
			return sent, s.c.wrapErr("write", err)
		}
		if s.errno != 0 {
			return sent, fmt.Errorf("transport: udp write %v: message %d to %v: %w", s.c.local, sent, ms[sent].Addr, s.errno)
		}
		sent += s.n
	}
	return sent, nil
}

func parseSockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := func(p *uint16) uint16 { // network byte order in memory
		b := (*[2]byte)(unsafe.Pointer(p))
		return uint16(b[0])<<8 | uint16(b[1])
	}
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(&sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port(&sa.Port))
	}
	return netip.AddrPort{}
}

func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort, v4 bool) (uint32, error) {
	addr := ap.Addr()
	if !addr.IsValid() {
		return 0, errors.New("invalid destination address")
	}
	pb := (*[2]byte)(unsafe.Pointer(&sa.Port))
	if v4 {
		addr = addr.Unmap()
		if !addr.Is4() {
			return 0, fmt.Errorf("destination %v is not IPv4 (the socket is)", ap)
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		pb = (*[2]byte)(unsafe.Pointer(&sa4.Port))
		pb[0], pb[1] = byte(ap.Port()>>8), byte(ap.Port())
		sa4.Addr = addr.As4()
		sa4.Zero = [8]uint8{}
		return unix.SizeofSockaddrInet4, nil
	}
	sa.Family = unix.AF_INET6
	pb[0], pb[1] = byte(ap.Port()>>8), byte(ap.Port())
	sa.Flowinfo = 0
	sa.Addr = addr.As16() // As16 maps an IPv4 address into ::ffff:a.b.c.d
	sa.Scope_id = 0
	return unix.SizeofSockaddrInet6, nil
}

// setSocketBuffers asks for buffers past the sysctl caps; it needs
// CAP_NET_ADMIN and silently does nothing without it (the plain
// SetReadBuffer/SetWriteBuffer calls still apply, capped).
func setSocketBuffers(raw syscall.RawConn, size int) {
	_ = raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
	})
}
