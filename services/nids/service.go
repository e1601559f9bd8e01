package nids

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// Verdicts, the first byte of a reply.
const (
	VerdictPass  byte = 0 // no rule matched; the packet was forwarded
	VerdictDrop  byte = 1 // rules matched; the packet was not forwarded
	VerdictAlert byte = 2 // rules matched; the packet was forwarded (action "alert")
)

// FlagTruncated in the reply's second byte says more rules matched than
// the reply lists.
const FlagTruncated byte = 1

// MaxReported is the most sids one reply lists: the lowest ones when more
// rules match. A packet matching dozens of rules is already decided;
// bounding the list keeps the reply, and the per-call work, bounded.
const MaxReported = 64

// ReplyHeaderLen is the fixed part of a reply.
const ReplyHeaderLen = 4

// Reply is a decoded reply.
type Reply struct {
	Verdict   byte
	Truncated bool
	SIDs      []uint32 // ascending
}

// DecodeReply decodes a reply:
//
//	0  verdict (VerdictPass, VerdictDrop, VerdictAlert)
//	1  flags (FlagTruncated)
//	2  number of sids n, u16 little endian (at most MaxReported)
//	4  n sids, u32 little endian each, ascending, distinct
func DecodeReply(b []byte) (Reply, error) {
	var r Reply
	if len(b) < ReplyHeaderLen {
		return r, fmt.Errorf("%w: nids reply is %d bytes, shorter than its %d-byte header", service.ErrMalformed, len(b), ReplyHeaderLen)
	}
	if b[0] > VerdictAlert {
		return r, fmt.Errorf("%w: nids reply verdict %d at offset 0 unknown", service.ErrMalformed, b[0])
	}
	n := int(binary.LittleEndian.Uint16(b[2:]))
	if len(b) != ReplyHeaderLen+4*n {
		return r, fmt.Errorf("%w: nids reply declares %d sids at offset 2 but has %d bytes of them", service.ErrMalformed, n, len(b)-ReplyHeaderLen)
	}
	r.Verdict, r.Truncated = b[0], b[1]&FlagTruncated != 0
	for i := 0; i < n; i++ {
		r.SIDs = append(r.SIDs, binary.LittleEndian.Uint32(b[ReplyHeaderLen+4*i:]))
	}
	return r, nil
}

// Config is what an nids instance enforces.
type Config struct {
	// Rules to enforce; their contents feed the matcher.
	Rules []Rule
	// Alert forwards matching packets (and reports them) instead of
	// dropping them.
	Alert bool
}

// ConfigFromEnv reads an instance's configuration:
//
//	action      "drop" (default) or "alert"
//	rules       rule text (see ParseRules); when absent a set is generated:
//	rule_count  rules to generate (default 2000)
//	rule_seed   generator seed (default 1)
//
// The rule set is fixed for the life of the instance: a new set comes from
// the control plane as a new instance, so the handler needs no lock.
func ConfigFromEnv(env service.Env) (Config, error) {
	var cfg Config
	switch a := env.String("action", "drop"); a {
	case "drop":
	case "alert":
		cfg.Alert = true
	default:
		return cfg, fmt.Errorf("nids: config %q: %q is neither drop nor alert", "action", a)
	}
	if text, ok := env.Config["rules"]; ok {
		rules, err := ParseRules(strings.NewReader(text))
		if err != nil {
			return cfg, err
		}
		cfg.Rules = rules
		return cfg, nil
	}
	n, err := env.Int("rule_count", DefaultRuleCount)
	if err != nil {
		return cfg, fmt.Errorf("nids: %w", err)
	}
	if n < 1 || n > 1<<20 {
		return cfg, fmt.Errorf("nids: config %q: %d outside [1, 1048576]", "rule_count", n)
	}
	seed, err := env.Int("rule_seed", DefaultRuleSeed)
	if err != nil {
		return cfg, fmt.Errorf("nids: %w", err)
	}
	cfg.Rules = GenerateRules(int64(seed), n)
	return cfg, nil
}

// Handler is an nids instance: a compiled rule set. It is read-only and
// safe for concurrent calls.
type Handler struct {
	m     *Matcher
	rules []Rule
	alert bool
}

// NewHandler compiles cfg.
func NewHandler(cfg Config) (*Handler, error) {
	m, err := Compile(Patterns(cfg.Rules))
	if err != nil {
		return nil, err
	}
	return &Handler{m: m, rules: cfg.Rules, alert: cfg.Alert}, nil
}

// Matcher returns the handler's compiled matcher.
func (h *Handler) Matcher() *Matcher { return h.m }

// matchSet collects the distinct rules that fire on one packet, keeping the
// MaxReported lowest sids in ascending order. It lives on the stack of
// Handle.
type matchSet struct {
	sids  [MaxReported]uint32
	n     int
	trunc bool
}

func (s *matchSet) add(sid uint32) {
	i := 0
	for i < s.n && s.sids[i] < sid {
		i++
	}
	if i < s.n && s.sids[i] == sid {
		return
	}
	if s.n == MaxReported {
		s.trunc = true
		if i == s.n {
			return
		}
		s.n-- // drop the highest to make room
	}
	copy(s.sids[i+1:s.n+1], s.sids[i:s.n])
	s.sids[i] = sid
	s.n++
}

// Handle scans one IPv4 packet. The payload scanned is the TCP or UDP
// payload; for other protocols and for non-first fragments, which carry no
// transport header, it is the whole IP payload and only rules without a
// port can fire. Rules fire when their content occurs in the payload and
// their protocol and destination port match. A clean packet is emitted
// unchanged; a matching one is dropped, or emitted with action "alert".
// The reply is described at DecodeReply. Fragments are scanned one by one:
// the service is stateless and does not reassemble.
func (h *Handler) Handle(c *service.Context, req []byte) error {
	var ip packet.IPv4
	if err := packet.ParseIPv4(req, &ip); err != nil {
		return err
	}
	seg := ip.Payload(req)
	payload := seg
	proto := ip.Protocol
	var dport uint16
	portKnown := false
	if ip.FragOff == 0 {
		switch proto {
		case packet.ProtoTCP:
			var t packet.TCP
			if err := packet.ParseTCP(seg, &t); err != nil {
				return err
			}
			payload, dport, portKnown = seg[t.HeaderLen:], t.DstPort, true
		case packet.ProtoUDP:
			if ip.Flags&packet.FlagMF != 0 {
				// A first fragment: the UDP length covers the whole
				// datagram, not this fragment.
				if len(seg) < packet.UDPHeaderLen {
					return fmt.Errorf("%w: udp: first fragment holds %d bytes, shorter than the 8-byte header", service.ErrMalformed, len(seg))
				}
				payload, dport = seg[packet.UDPHeaderLen:], binary.BigEndian.Uint16(seg[2:])
			} else {
				var u packet.UDP
				if err := packet.ParseUDP(seg, &u); err != nil {
					return err
				}
				payload, dport = seg[packet.UDPHeaderLen:u.Length], u.DstPort
			}
			portKnown = true
		}
	}

	var set matchSet
	rules := h.rules
	h.m.Scan(payload, func(p, _ int) {
		r := &rules[p]
		if (r.Proto != 0 && r.Proto != proto) || (r.DstPort != 0 && (!portKnown || r.DstPort != dport)) {
			return
		}
		set.add(r.SID)
	})

	verdict := VerdictPass
	if set.n > 0 {
		verdict = VerdictDrop
		if h.alert {
			verdict = VerdictAlert
		}
	}
	out := append(c.Scratch[:0], verdict, 0, byte(set.n), byte(set.n>>8))
	if set.trunc {
		out[1] = FlagTruncated
	}
	for _, sid := range set.sids[:set.n] {
		out = binary.LittleEndian.AppendUint32(out, sid)
	}
	c.Scratch = out[:0]
	c.Respond(out)
	if verdict != VerdictDrop {
		c.Emit(c.Key, req)
	}
	return nil
}

var _ service.Handler = (*Handler)(nil)
