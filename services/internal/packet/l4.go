package packet

import (
	"encoding/binary"
	"fmt"

	"github.com/e3-platform/e3/service"
)

// Byte offsets of the checksum fields within the transport headers.
const (
	UDPOffChecksum = 6
	TCPOffChecksum = 16
)

// TCP flag bits.
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPPsh uint8 = 0x08
	TCPAck uint8 = 0x10
)

// UDP is a decoded UDP header.
type UDP struct {
	SrcPort, DstPort uint16
	Length           uint16 // header plus payload
	Checksum         uint16 // 0 means none was computed
}

// ParseUDP decodes the UDP header at the start of b, the IPv4 payload.
func ParseUDP(b []byte, u *UDP) error {
	if len(b) < UDPHeaderLen {
		return fmt.Errorf("%w: udp: segment is %d bytes, shorter than the 8-byte header", service.ErrMalformed, len(b))
	}
	l := binary.BigEndian.Uint16(b[4:])
	if l < UDPHeaderLen || int(l) > len(b) {
		return fmt.Errorf("%w: udp: length %d at offset 4 outside [8, %d]", service.ErrMalformed, l, len(b))
	}
	*u = UDP{
		SrcPort:  binary.BigEndian.Uint16(b),
		DstPort:  binary.BigEndian.Uint16(b[2:]),
		Length:   l,
		Checksum: binary.BigEndian.Uint16(b[UDPOffChecksum:]),
	}
	return nil
}

// PutUDP writes u at the start of b with a zero checksum. It panics if b is
// shorter than 8 bytes.
func PutUDP(b []byte, u *UDP) {
	_ = b[UDPHeaderLen-1]
	binary.BigEndian.PutUint16(b, u.SrcPort)
	binary.BigEndian.PutUint16(b[2:], u.DstPort)
	binary.BigEndian.PutUint16(b[4:], u.Length)
	b[6], b[7] = 0, 0
}

// PutUDPChecksum computes the checksum of the UDP segment seg (whose
// checksum field may hold anything) and stores it, writing 0xffff for a
// computed zero as RFC 768 requires.
func PutUDPChecksum(seg []byte, src, dst uint32) {
	seg[6], seg[7] = 0, 0
	c := TransportChecksum(src, dst, ProtoUDP, seg)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(seg[UDPOffChecksum:], c)
}

// TCP is a decoded TCP header. Options are not decoded; HeaderLen says how
// many bytes the header with its options takes.
type TCP struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	HeaderLen        int // data offset * 4: 20..60
	Flags            uint8
	Window           uint16
	Checksum         uint16
	Urgent           uint16
}

// ParseTCP decodes the TCP header at the start of b, the IPv4 payload.
func ParseTCP(b []byte, t *TCP) error {
	if len(b) < TCPHeaderLen {
		return fmt.Errorf("%w: tcp: segment is %d bytes, shorter than the 20-byte header", service.ErrMalformed, len(b))
	}
	hl := int(b[12]>>4) * 4
	if hl < TCPHeaderLen || hl > len(b) {
		return fmt.Errorf("%w: tcp: data offset %d bytes at offset 12 outside [20, %d]", service.ErrMalformed, hl, len(b))
	}
	*t = TCP{
		SrcPort:   binary.BigEndian.Uint16(b),
		DstPort:   binary.BigEndian.Uint16(b[2:]),
		Seq:       binary.BigEndian.Uint32(b[4:]),
		Ack:       binary.BigEndian.Uint32(b[8:]),
		HeaderLen: hl,
		Flags:     b[13],
		Window:    binary.BigEndian.Uint16(b[14:]),
		Checksum:  binary.BigEndian.Uint16(b[TCPOffChecksum:]),
		Urgent:    binary.BigEndian.Uint16(b[18:]),
	}
	return nil
}

// PutTCP writes t as a 20-byte header without options at the start of b,
// with a zero checksum; t.HeaderLen is ignored. It panics if b is shorter
// than 20 bytes.
func PutTCP(b []byte, t *TCP) {
	_ = b[TCPHeaderLen-1]
	binary.BigEndian.PutUint16(b, t.SrcPort)
	binary.BigEndian.PutUint16(b[2:], t.DstPort)
	binary.BigEndian.PutUint32(b[4:], t.Seq)
	binary.BigEndian.PutUint32(b[8:], t.Ack)
	b[12] = 5 << 4
	b[13] = t.Flags
	binary.BigEndian.PutUint16(b[14:], t.Window)
	b[16], b[17] = 0, 0
	binary.BigEndian.PutUint16(b[18:], t.Urgent)
}

// PutTCPChecksum computes the checksum of the TCP segment seg (whose
// checksum field may hold anything) and stores it.
func PutTCPChecksum(seg []byte, src, dst uint32) {
	seg[16], seg[17] = 0, 0
	binary.BigEndian.PutUint16(seg[TCPOffChecksum:], TransportChecksum(src, dst, ProtoTCP, seg))
}

// SetChecksums recomputes the IPv4 header checksum and, for an unfragmented
// TCP or UDP packet, the transport checksum of pkt in place. Tests and
// generators use it after editing a packet's payload.
func SetChecksums(pkt []byte) error {
	var h IPv4
	if err := ParseIPv4(pkt, &h); err != nil {
		return err
	}
	pkt[IPv4OffChecksum], pkt[IPv4OffChecksum+1] = 0, 0
	binary.BigEndian.PutUint16(pkt[IPv4OffChecksum:], Checksum(pkt[:h.HeaderLen]))
	if h.IsFragment() {
		return nil
	}
	seg := h.Payload(pkt)
	switch h.Protocol {
	case ProtoTCP:
		if len(seg) < TCPHeaderLen {
			return fmt.Errorf("%w: tcp: segment is %d bytes, shorter than the 20-byte header", service.ErrMalformed, len(seg))
		}
		PutTCPChecksum(seg, h.Src, h.Dst)
	case ProtoUDP:
		if len(seg) < UDPHeaderLen {
			return fmt.Errorf("%w: udp: datagram is %d bytes, shorter than the 8-byte header", service.ErrMalformed, len(seg))
		}
		PutUDPChecksum(seg, h.Src, h.Dst)
	}
	return nil
}
