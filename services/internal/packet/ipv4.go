package packet

import (
	"encoding/binary"
	"fmt"

	"github.com/e3-platform/e3/service"
)

// IP protocol numbers the packet services care about.
const (
	ProtoICMP uint8 = 1
	ProtoIPIP uint8 = 4 // IPv4 in IPv4: the ESP next header of a tunnelled packet
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoESP  uint8 = 50
)

// Header lengths without options.
const (
	IPv4HeaderLen = 20
	UDPHeaderLen  = 8
	TCPHeaderLen  = 20
	// MaxPacketLen is the largest IPv4 total length.
	MaxPacketLen = 65535
)

// Byte offsets of IPv4 header fields, for in-place rewrites.
const (
	IPv4OffTotalLen = 2
	IPv4OffID       = 4
	IPv4OffTTL      = 8
	IPv4OffProto    = 9
	IPv4OffChecksum = 10
	IPv4OffSrc      = 12
	IPv4OffDst      = 16
)

// IPv4 flags (the top three bits of the fragment word).
const (
	FlagDF uint8 = 0x2 // don't fragment
	FlagMF uint8 = 0x1 // more fragments
)

// IPv4 is a decoded IPv4 header. Options are not decoded; HeaderLen says
// how many bytes the header with its options takes.
type IPv4 struct {
	HeaderLen int // IHL*4: 20..60
	TOS       uint8
	TotalLen  uint16 // header plus payload
	ID        uint16
	Flags     uint8  // FlagDF, FlagMF
	FragOff   uint16 // fragment offset in 8-byte units
	TTL       uint8
	Protocol  uint8
	Checksum  uint16
	Src, Dst  uint32 // host order
}

// ParseIPv4 decodes the IPv4 header at the start of b into h. It checks the
// version, the header length and that the total length fits b; bytes of b
// after TotalLen (link-layer padding) are ignored. It does not verify the
// checksum: see [IPv4HeaderOK].
func ParseIPv4(b []byte, h *IPv4) error {
	if len(b) < IPv4HeaderLen {
		return fmt.Errorf("%w: ipv4: packet is %d bytes, shorter than the 20-byte header", service.ErrMalformed, len(b))
	}
	if v := b[0] >> 4; v != 4 {
		return fmt.Errorf("%w: ipv4: version %d at offset 0, want 4", service.ErrMalformed, v)
	}
	hl := int(b[0]&0x0f) * 4
	if hl < IPv4HeaderLen {
		return fmt.Errorf("%w: ipv4: header length %d bytes (IHL %d) at offset 0, minimum is 20", service.ErrMalformed, hl, hl/4)
	}
	if hl > len(b) {
		return fmt.Errorf("%w: ipv4: header length %d exceeds the %d-byte packet", service.ErrMalformed, hl, len(b))
	}
	tl := binary.BigEndian.Uint16(b[IPv4OffTotalLen:])
	if int(tl) < hl {
		return fmt.Errorf("%w: ipv4: total length %d at offset 2 is less than the header length %d", service.ErrMalformed, tl, hl)
	}
	if int(tl) > len(b) {
		return fmt.Errorf("%w: ipv4: total length %d at offset 2 exceeds the %d bytes received", service.ErrMalformed, tl, len(b))
	}
	frag := binary.BigEndian.Uint16(b[6:])
	*h = IPv4{
		HeaderLen: hl,
		TOS:       b[1],
		TotalLen:  tl,
		ID:        binary.BigEndian.Uint16(b[IPv4OffID:]),
		Flags:     uint8(frag >> 13),
		FragOff:   frag & 0x1fff,
		TTL:       b[IPv4OffTTL],
		Protocol:  b[IPv4OffProto],
		Checksum:  binary.BigEndian.Uint16(b[IPv4OffChecksum:]),
		Src:       binary.BigEndian.Uint32(b[IPv4OffSrc:]),
		Dst:       binary.BigEndian.Uint32(b[IPv4OffDst:]),
	}
	return nil
}

// IsFragment reports whether the packet is part of a fragmented datagram.
func (h *IPv4) IsFragment() bool { return h.Flags&FlagMF != 0 || h.FragOff != 0 }

// Payload returns the bytes after the header up to TotalLen. b must be the
// slice h was parsed from.
func (h *IPv4) Payload(b []byte) []byte { return b[h.HeaderLen:h.TotalLen] }

// IPv4HeaderOK reports whether the header checksum of the IPv4 header at the
// start of b is correct; it is false for a truncated header.
func IPv4HeaderOK(b []byte) bool {
	if len(b) < IPv4HeaderLen {
		return false
	}
	hl := int(b[0]&0x0f) * 4
	if hl < IPv4HeaderLen || hl > len(b) {
		return false
	}
	return Checksum(b[:hl]) == 0
}

// PutIPv4 writes h as a 20-byte header without options at the start of b
// and fills in its checksum; h.HeaderLen and h.Checksum are ignored. It
// panics if b is shorter than 20 bytes, like [binary.BigEndian.PutUint32].
func PutIPv4(b []byte, h *IPv4) {
	_ = b[IPv4HeaderLen-1]
	b[0] = 0x45
	b[1] = h.TOS
	binary.BigEndian.PutUint16(b[2:], h.TotalLen)
	binary.BigEndian.PutUint16(b[4:], h.ID)
	binary.BigEndian.PutUint16(b[6:], uint16(h.Flags)<<13|h.FragOff&0x1fff)
	b[8] = h.TTL
	b[9] = h.Protocol
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint32(b[12:], h.Src)
	binary.BigEndian.PutUint32(b[16:], h.Dst)
	binary.BigEndian.PutUint16(b[10:], Checksum(b[:IPv4HeaderLen]))
}

// AddrBytes returns a host-order address as the four bytes of its dotted
// form, for netip.AddrFrom4.
func AddrBytes(a uint32) [4]byte {
	return [4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}
}

// AddrString formats a host-order address in dotted-quad form.
func AddrString(a uint32) string {
	return fmt.Sprintf("%d.%d.%d.%d", byte(a>>24), byte(a>>16), byte(a>>8), byte(a))
}
