package packet

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
	"github.com/e3-platform/e3/service"
)

// FiveTupleLen is the length of the canonical encoding of a [FiveTuple].
const FiveTupleLen = 13

// FiveTuple identifies a flow. Ports are zero for protocols without ports
// and for non-first fragments, which carry no transport header.
type FiveTuple struct {
	Src, Dst         uint32 // host order
	SrcPort, DstPort uint16
	Proto            uint8
}

// ParseFiveTuple extracts the 5-tuple of the IPv4 packet pkt. A TCP or UDP
// packet (other than a non-first fragment) must hold its whole transport
// header; otherwise it is malformed.
func ParseFiveTuple(pkt []byte) (FiveTuple, error) {
	var h IPv4
	if err := ParseIPv4(pkt, &h); err != nil {
		return FiveTuple{}, err
	}
	return FiveTupleOf(pkt, &h)
}

// FiveTupleOf is [ParseFiveTuple] for a packet whose IPv4 header h has
// already been parsed from pkt.
func FiveTupleOf(pkt []byte, h *IPv4) (FiveTuple, error) {
	t := FiveTuple{Src: h.Src, Dst: h.Dst, Proto: h.Protocol}
	if h.FragOff != 0 {
		return t, nil
	}
	l4 := pkt[h.HeaderLen:h.TotalLen]
	switch h.Protocol {
	case ProtoTCP:
		if len(l4) < TCPHeaderLen {
			return t, fmt.Errorf("%w: tcp: segment at offset %d is %d bytes, shorter than the 20-byte header", service.ErrMalformed, h.HeaderLen, len(l4))
		}
	case ProtoUDP:
		if len(l4) < UDPHeaderLen {
			return t, fmt.Errorf("%w: udp: datagram at offset %d is %d bytes, shorter than the 8-byte header", service.ErrMalformed, h.HeaderLen, len(l4))
		}
	default:
		return t, nil
	}
	t.SrcPort = binary.BigEndian.Uint16(l4)
	t.DstPort = binary.BigEndian.Uint16(l4[2:])
	return t, nil
}

// Put writes the canonical encoding of t, big endian: source, destination,
// source port, destination port, protocol (13 bytes). It panics if b is
// shorter.
func (t FiveTuple) Put(b []byte) {
	_ = b[FiveTupleLen-1]
	binary.BigEndian.PutUint32(b, t.Src)
	binary.BigEndian.PutUint32(b[4:], t.Dst)
	binary.BigEndian.PutUint16(b[8:], t.SrcPort)
	binary.BigEndian.PutUint16(b[10:], t.DstPort)
	b[12] = t.Proto
}

// Append appends the canonical encoding of t to dst.
func (t FiveTuple) Append(dst []byte) []byte {
	var b [FiveTupleLen]byte
	t.Put(b[:])
	return append(dst, b[:]...)
}

// DecodeFiveTuple decodes the canonical encoding written by [FiveTuple.Put].
func DecodeFiveTuple(b []byte) (FiveTuple, error) {
	if len(b) != FiveTupleLen {
		return FiveTuple{}, fmt.Errorf("%w: five-tuple encoding is %d bytes, want %d", service.ErrMalformed, len(b), FiveTupleLen)
	}
	return FiveTuple{
		Src:     binary.BigEndian.Uint32(b),
		Dst:     binary.BigEndian.Uint32(b[4:]),
		SrcPort: binary.BigEndian.Uint16(b[8:]),
		DstPort: binary.BigEndian.Uint16(b[10:]),
		Proto:   b[12],
	}, nil
}

// Hash returns the xxhash64 of the canonical encoding of t. It is the
// routing key of packet requests: the same on every node and every run
// (unlike hash/maphash), so shards and ECMP choices agree cluster-wide.
func (t FiveTuple) Hash() uint64 {
	var b [FiveTupleLen]byte
	t.Put(b[:])
	return xxhash.Sum64(b[:])
}

// Reverse returns the tuple of the opposite direction of the flow.
func (t FiveTuple) Reverse() FiveTuple {
	return FiveTuple{Src: t.Dst, Dst: t.Src, SrcPort: t.DstPort, DstPort: t.SrcPort, Proto: t.Proto}
}

// String formats t as "proto src:port > dst:port".
func (t FiveTuple) String() string {
	return fmt.Sprintf("%d %s:%d > %s:%d", t.Proto, AddrString(t.Src), t.SrcPort, AddrString(t.Dst), t.DstPort)
}
