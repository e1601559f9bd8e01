package natv4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// ErrDropped is wrapped by the errors of well-formed packets the NAT does
// not forward: no route, no mapping, table full, TTL expired, or a packet
// it cannot translate. Malformed packets get errors wrapping
// service.ErrMalformed instead.
var ErrDropped = errors.New("natv4: packet dropped")

var (
	// ErrNoRoute: no route covers the destination.
	ErrNoRoute = fmt.Errorf("%w: no route", ErrDropped)
	// ErrNoMapping: a packet to an outside address matches no mapping.
	ErrNoMapping = fmt.Errorf("%w: no mapping for inbound packet", ErrDropped)
	// ErrTableFull: a new flow found no room in the translation table.
	ErrTableFull = fmt.Errorf("%w: translation table full", ErrDropped)
	// ErrTTL: the TTL would reach zero here.
	ErrTTL = fmt.Errorf("%w: TTL expired", ErrDropped)
	// ErrUntranslate: a packet that needs translation carries no ports
	// (not TCP or UDP, or a non-first fragment).
	ErrUntranslate = fmt.Errorf("%w: cannot translate", ErrDropped)
)

// Config is the parsed configuration of a natv4 instance.
type Config struct {
	Inside      netip.Prefix // inside (private) network
	Outside     netip.Prefix // pool of outside addresses, /16 to /32
	Routes      []Route      // routing table
	Ports       int          // egress ports; next hop n leaves on port (n-1) mod Ports
	MaxMappings int          // translation table capacity
	IdleTimeout int64        // ns a mapping survives without packets; 0 = forever
}

// Defaults of the config keys.
const (
	DefaultRoutes      = 4000
	DefaultNextHops    = 16
	DefaultPorts       = 4
	DefaultMaxMappings = 1 << 18
	DefaultIdleSeconds = 300 // RFC 4787 REQ-5: UDP mappings live at least 2 min, 5 recommended
)

// ParseConfig reads an instance's config map, fills defaults and
// validates.
//
//	inside        inside prefix                          (10.0.0.0/8)
//	outside       outside address pool, /16../32         (203.0.113.0/24)
//	routes        number of generated routes             (4000)
//	route_seed    seed of the generated routes           (1)
//	next_hops     next hops of the generated routes      (16)
//	default_route add 0.0.0.0/0 to next hop 1: true|false (true)
//	route_list    explicit routes "a.b.c.d/len>hop, ..." (replaces generated ones)
//	ports         egress ports                           (4)
//	max_mappings  translation table capacity             (262144)
//	idle_timeout  seconds an idle mapping lives, 0 = forever (300)
func ParseConfig(m map[string]string) (Config, error) {
	c := Config{
		Inside:      netip.MustParsePrefix("10.0.0.0/8"),
		Outside:     netip.MustParsePrefix("203.0.113.0/24"),
		Ports:       DefaultPorts,
		MaxMappings: DefaultMaxMappings,
		IdleTimeout: DefaultIdleSeconds * 1e9,
	}
	env := service.Env{Config: m}
	var err error
	for _, p := range []struct {
		key string
		dst *netip.Prefix
	}{{"inside", &c.Inside}, {"outside", &c.Outside}} {
		if v, ok := m[p.key]; ok {
			pf, perr := netip.ParsePrefix(strings.TrimSpace(v))
			if perr != nil || !pf.Addr().Is4() {
				return c, fmt.Errorf("natv4: config %s: %q is not an IPv4 prefix", p.key, v)
			}
			*p.dst = pf.Masked()
		}
	}
	if c.Outside.Bits() < 16 {
		return c, fmt.Errorf("natv4: config outside: %s has more than 65536 addresses; use /16 to /32", c.Outside)
	}
	if c.Inside.Overlaps(c.Outside) {
		return c, fmt.Errorf("natv4: config: inside %s and outside %s overlap", c.Inside, c.Outside)
	}
	n, err := env.Int("routes", DefaultRoutes)
	if err != nil || n < 0 || n > 1<<20 {
		return c, fmt.Errorf("natv4: config routes: %q is not a count from 0 to 1048576", m["routes"])
	}
	seed, err := env.Int("route_seed", 1)
	if err != nil {
		return c, fmt.Errorf("natv4: %w", err)
	}
	hops, err := env.Int("next_hops", DefaultNextHops)
	if err != nil || hops < 1 || hops > MaxNextHop {
		return c, fmt.Errorf("natv4: config next_hops: %q is not in 1..%d", m["next_hops"], MaxNextHop)
	}
	def := true
	if v, ok := m["default_route"]; ok {
		if def, err = strconv.ParseBool(strings.TrimSpace(v)); err != nil {
			return c, fmt.Errorf("natv4: config default_route: %q is not true or false", v)
		}
	}
	if v, ok := m["route_list"]; ok {
		if c.Routes, err = ParseRoutes(v); err != nil {
			return c, err
		}
	} else {
		c.Routes = GenerateRoutes(int64(seed), n, hops, def)
	}
	if c.Ports, err = env.Int("ports", DefaultPorts); err != nil || c.Ports < 1 || c.Ports > 1024 {
		return c, fmt.Errorf("natv4: config ports: %q is not in 1..1024", m["ports"])
	}
	if c.MaxMappings, err = env.Int("max_mappings", DefaultMaxMappings); err != nil || c.MaxMappings < natShards || c.MaxMappings > 1<<24 {
		return c, fmt.Errorf("natv4: config max_mappings: %q is not in %d..%d", m["max_mappings"], natShards, 1<<24)
	}
	pool := 1 << (32 - c.Outside.Bits())
	if c.MaxMappings > pool*portsInShard*natShards/2 {
		return c, fmt.Errorf("natv4: config max_mappings %d exceeds half the %d outside endpoints of %s", c.MaxMappings, pool*portsInShard*natShards, c.Outside)
	}
	idle, err := env.Int("idle_timeout", DefaultIdleSeconds)
	if err != nil || idle < 0 {
		return c, fmt.Errorf("natv4: config idle_timeout: %q is not a number of seconds >= 0", m["idle_timeout"])
	}
	c.IdleTimeout = int64(idle) * 1e9
	return c, nil
}

// Handler is a natv4 instance: a router with source NAT. It is safe for
// concurrent use.
type Handler struct {
	cfg          Config
	table        *Table
	nat          *natTable
	inNet, inLen uint32
	outNet       uint32
	outMask      uint32
	portPackets  []atomic.Uint64
}

// New builds a handler for cfg.
func New(cfg Config) (*Handler, error) {
	t, err := NewTable(cfg.Routes)
	if err != nil {
		return nil, err
	}
	pool := make([]uint32, 1<<(32-cfg.Outside.Bits()))
	base := u32(cfg.Outside.Addr())
	for i := range pool {
		pool[i] = base + uint32(i)
	}
	h := &Handler{
		cfg:         cfg,
		table:       t,
		nat:         newNATTable(pool, cfg.MaxMappings, cfg.IdleTimeout),
		inNet:       u32(cfg.Inside.Addr()),
		inLen:       uint32(cfg.Inside.Bits()),
		outNet:      base,
		outMask:     mask(cfg.Outside.Bits()),
		portPackets: make([]atomic.Uint64, cfg.Ports),
	}
	return h, nil
}

func (h *Handler) inside(a uint32) bool { return a&mask(int(h.inLen)) == h.inNet }

func (h *Handler) outside(a uint32) bool { return a&h.outMask == h.outNet }

// Handle translates and forwards one IPv4 packet; the reply and the
// emitted message are the rewritten packet.
func (h *Handler) Handle(c *service.Context, req []byte) error {
	out, err := h.Process(c.Scratch, req, c.Now)
	if err != nil {
		return err
	}
	c.Scratch = out[:0]
	c.Respond(out)
	c.Emit(c.Key, out)
	return nil
}

// Process appends the translated packet to dst[:0]: source NAT for
// packets from the inside network, destination NAT back to the inside for
// packets to an outside address with a mapping, nothing for other
// packets; then the route lookup and the TTL decrement. Checksums are
// updated incrementally (RFC 1624). now is the time in ns, for idle
// timeouts.
func (h *Handler) Process(dst, req []byte, now int64) ([]byte, error) {
	var ip packet.IPv4
	if err := packet.ParseIPv4(req, &ip); err != nil {
		return dst, err
	}
	if !packet.IPv4HeaderOK(req) {
		return dst, fmt.Errorf("%w: natv4: IPv4 header checksum %#04x at offset 10 is wrong", service.ErrMalformed, ip.Checksum)
	}
	if ip.TTL <= 1 {
		return dst, fmt.Errorf("%w (TTL %d, %s > %s)", ErrTTL, ip.TTL, addrString(ip.Src), addrString(ip.Dst))
	}
	b := append(dst[:0], req[:ip.TotalLen]...)
	snat, dnat := h.inside(ip.Src), h.outside(ip.Dst)
	if snat || dnat {
		if err := h.translate(b, &ip, snat, now); err != nil {
			return dst, err
		}
	}
	nh := h.table.Lookup(ip.Dst) // ip.Dst is the translated destination
	if nh == 0 {
		return dst, fmt.Errorf("%w for %s", ErrNoRoute, addrString(ip.Dst))
	}
	h.portPackets[int(nh-1)%len(h.portPackets)].Add(1)
	// TTL shares a 16-bit word with the protocol.
	old := binary.BigEndian.Uint16(b[packet.IPv4OffTTL:])
	b[packet.IPv4OffTTL]--
	hc := binary.BigEndian.Uint16(b[packet.IPv4OffChecksum:])
	binary.BigEndian.PutUint16(b[packet.IPv4OffChecksum:], packet.Update16(hc, old, old-0x100))
	return b, nil
}

// translate rewrites the source (snat) or destination endpoint of the
// packet b and fixes the IPv4 and transport checksums; ip is updated.
func (h *Handler) translate(b []byte, ip *packet.IPv4, snat bool, now int64) error {
	if ip.FragOff != 0 {
		return fmt.Errorf("%w: non-first fragment (offset %d) of %s > %s carries no ports", ErrUntranslate, ip.FragOff*8, addrString(ip.Src), addrString(ip.Dst))
	}
	seg := b[ip.HeaderLen:]
	var csumOff int
	switch ip.Protocol {
	case packet.ProtoTCP:
		if len(seg) < packet.TCPHeaderLen {
			return fmt.Errorf("%w: natv4: TCP segment of %d bytes at offset %d", service.ErrMalformed, len(seg), ip.HeaderLen)
		}
		csumOff = packet.TCPOffChecksum
	case packet.ProtoUDP:
		if len(seg) < packet.UDPHeaderLen {
			return fmt.Errorf("%w: natv4: UDP datagram of %d bytes at offset %d", service.ErrMalformed, len(seg), ip.HeaderLen)
		}
		csumOff = packet.UDPOffChecksum
	default:
		return fmt.Errorf("%w: protocol %d has no ports to translate", ErrUntranslate, ip.Protocol)
	}
	addrOff, portOff := packet.IPv4OffSrc, 0
	oldAddr, oldPort := ip.Src, binary.BigEndian.Uint16(seg)
	var newAddr uint32
	var newPort uint16
	var ok bool
	if snat {
		newAddr, newPort, ok = h.nat.outbound(ip.Protocol, oldAddr, oldPort, now)
		if !ok {
			return fmt.Errorf("%w (%d mappings)", ErrTableFull, h.nat.Len())
		}
		ip.Src = newAddr
	} else {
		addrOff, portOff = packet.IPv4OffDst, 2
		oldAddr, oldPort = ip.Dst, binary.BigEndian.Uint16(seg[2:])
		newAddr, newPort, ok = h.nat.inbound(ip.Protocol, oldAddr, oldPort, now)
		if !ok {
			return fmt.Errorf("%w %d %s:%d", ErrNoMapping, ip.Protocol, addrString(oldAddr), oldPort)
		}
		ip.Dst = newAddr
	}
	binary.BigEndian.PutUint32(b[addrOff:], newAddr)
	hc := binary.BigEndian.Uint16(b[packet.IPv4OffChecksum:])
	binary.BigEndian.PutUint16(b[packet.IPv4OffChecksum:], packet.Update32(hc, oldAddr, newAddr))
	binary.BigEndian.PutUint16(seg[portOff:], newPort)
	tc := binary.BigEndian.Uint16(seg[csumOff:])
	if ip.Protocol == packet.ProtoUDP && tc == 0 {
		return nil // the sender computed no UDP checksum; keep none (RFC 768)
	}
	// The address is in the pseudo-header, the port in the header: both
	// changes go into the transport checksum.
	tc = packet.Update16(packet.Update32(tc, oldAddr, newAddr), oldPort, newPort)
	if ip.Protocol == packet.ProtoUDP && tc == 0 {
		tc = 0xffff
	}
	binary.BigEndian.PutUint16(seg[csumOff:], tc)
	return nil
}

// PortPackets returns how many packets left on each egress port.
func (h *Handler) PortPackets() []uint64 {
	out := make([]uint64, len(h.portPackets))
	for i := range h.portPackets {
		out[i] = h.portPackets[i].Load()
	}
	return out
}

// Mappings returns the number of translation entries.
func (h *Handler) Mappings() int { return h.nat.Len() }

// Table returns the routing table.
func (h *Handler) Table() *Table { return h.table }
