package nids

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

const testRules = `# hand-written rules for the service tests
alert tcp any any -> any 80 (msg:"WEB phf"; content:"/cgi-bin/phf"; nocase; sid:1;)
alert udp any any -> any any (msg:"NOP sled"; content:"|90 90 90 90|"; sid:2;)
alert ip any any -> any any (msg:"word"; content:"attack"; sid:3;)
alert tcp any any -> any 21 (msg:"FTP site exec"; content:"SITE EXEC"; sid:4;)
alert tcp any any -> any any (msg:"case-sensitive"; content:"EvilBot"; sid:5;)
`

// mkPacket builds an IPv4 packet with valid checksums. For ICMP the
// payload follows the IP header directly.
func mkPacket(t testing.TB, proto uint8, dport uint16, payload string) []byte {
	t.Helper()
	hl := 0
	switch proto {
	case packet.ProtoTCP:
		hl = packet.TCPHeaderLen
	case packet.ProtoUDP:
		hl = packet.UDPHeaderLen
	}
	b := make([]byte, packet.IPv4HeaderLen+hl+len(payload))
	packet.PutIPv4(b, &packet.IPv4{TotalLen: uint16(len(b)), TTL: 64, Protocol: proto, Src: 0x0a000001, Dst: 0x08080808})
	seg := b[packet.IPv4HeaderLen:]
	switch proto {
	case packet.ProtoTCP:
		packet.PutTCP(seg, &packet.TCP{SrcPort: 40000, DstPort: dport, Flags: packet.TCPAck, Window: 1000})
	case packet.ProtoUDP:
		packet.PutUDP(seg, &packet.UDP{SrcPort: 40000, DstPort: dport, Length: uint16(len(seg))})
	}
	copy(seg[hl:], payload)
	if err := packet.SetChecksums(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// fragment turns an IPv4 packet into a fragment at offset off (8-byte
// units) with the more-fragments flag mf.
func fragment(t testing.TB, b []byte, off uint16, mf bool) []byte {
	t.Helper()
	w := off
	if mf {
		w |= uint16(packet.FlagMF) << 13
	}
	b[6], b[7] = byte(w>>8), byte(w)
	b[10], b[11] = 0, 0
	c := packet.Checksum(b[:packet.IPv4HeaderLen])
	b[10], b[11] = byte(c>>8), byte(c)
	return b
}

type recorder struct{ msgs [][]byte }

func (r *recorder) Emit(_ uint64, p []byte) { r.msgs = append(r.msgs, slices.Clone(p)) }

func newTestHandler(t testing.TB, config map[string]string) *Handler {
	t.Helper()
	if config == nil {
		config = map[string]string{}
	}
	if _, ok := config["rules"]; !ok {
		config["rules"] = testRules
	}
	h, err := Descriptor.New(service.Env{Instance: "test/nids.0", Config: config})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h.(*Handler)
}

func handle(t testing.TB, h *Handler, pkt []byte) (Reply, int, error) {
	t.Helper()
	var c service.Context
	var rec recorder
	c.Reset(0, 7, &rec)
	if err := h.Handle(&c, pkt); err != nil {
		return Reply{}, 0, err
	}
	r, err := DecodeReply(c.Response())
	if err != nil {
		t.Fatalf("reply does not decode: %v", err)
	}
	for _, m := range rec.msgs {
		if !slices.Equal(m, pkt) {
			t.Fatal("emitted packet differs from the request")
		}
	}
	return r, len(rec.msgs), nil
}

func TestHandleHandChecked(t *testing.T) {
	tcp := func(port uint16, p string) func(t testing.TB) []byte {
		return func(t testing.TB) []byte { return mkPacket(t, packet.ProtoTCP, port, p) }
	}
	udp := func(port uint16, p string) func(t testing.TB) []byte {
		return func(t testing.TB) []byte { return mkPacket(t, packet.ProtoUDP, port, p) }
	}
	tests := []struct {
		name    string
		alert   bool
		pkt     func(t testing.TB) []byte
		verdict byte
		sids    []uint32
	}{
		{"clean web request", false, tcp(80, "GET /index.html HTTP/1.1\r\n"), VerdictPass, nil},
		{"nocase content on its port", false, tcp(80, "GET /CGI-BIN/Phf?x HTTP/1.0"), VerdictDrop, []uint32{1}},
		{"port constraint not met", false, tcp(8080, "GET /cgi-bin/phf HTTP/1.0"), VerdictPass, nil},
		{"two rules, one listed once despite two hits", false, udp(53, "attack\x90\x90\x90\x90\x90 attack"), VerdictDrop, []uint32{2, 3}},
		{"udp rule does not fire on tcp", false, tcp(80, "\x90\x90\x90\x90"), VerdictPass, nil},
		{"case-sensitive rule, exact case", false, tcp(443, "UA: EvilBot/1.0"), VerdictDrop, []uint32{5}},
		{"case-sensitive rule, other case", false, tcp(443, "UA: evilbot/1.0"), VerdictPass, nil},
		{"ftp", false, tcp(21, "SITE EXEC /bin/sh"), VerdictDrop, []uint32{4}},
		{"alert forwards", true, tcp(21, "SITE EXEC /bin/sh"), VerdictAlert, []uint32{4}},
		{"icmp payload, port-less rule", false, func(t testing.TB) []byte { return mkPacket(t, packet.ProtoICMP, 0, "\x08\x00ping attack") }, VerdictDrop, []uint32{3}},
		{"icmp payload, tcp rule", false, func(t testing.TB) []byte { return mkPacket(t, packet.ProtoICMP, 0, "SITE EXEC") }, VerdictPass, nil},
		{"non-first fragment: no port rules", false, func(t testing.TB) []byte {
			return fragment(t, mkPacket(t, packet.ProtoTCP, 80, "xx/cgi-bin/phf attack"), 10, false)
		}, VerdictDrop, []uint32{3}},
		{"first udp fragment longer datagram", false, func(t testing.TB) []byte {
			b := mkPacket(t, packet.ProtoUDP, 53, "\x90\x90\x90\x90 and more")
			b[packet.IPv4HeaderLen+4], b[packet.IPv4HeaderLen+5] = 0x05, 0xdc // UDP length 1500
			return fragment(t, b, 0, true)
		}, VerdictDrop, []uint32{2}},
		{"empty payload", false, tcp(80, ""), VerdictPass, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]string{}
			if tc.alert {
				cfg["action"] = "alert"
			}
			h := newTestHandler(t, cfg)
			r, emitted, err := handle(t, h, tc.pkt(t))
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			if r.Verdict != tc.verdict || !slices.Equal(r.SIDs, tc.sids) || r.Truncated {
				t.Errorf("reply = %+v, want verdict %d sids %v", r, tc.verdict, tc.sids)
			}
			wantEmit := 1
			if tc.verdict == VerdictDrop {
				wantEmit = 0
			}
			if emitted != wantEmit {
				t.Errorf("emitted %d packets, want %d", emitted, wantEmit)
			}
		})
	}
}

func TestHandleMalformed(t *testing.T) {
	h := newTestHandler(t, nil)
	good := mkPacket(t, packet.ProtoTCP, 80, "hello")
	tests := []struct {
		name string
		pkt  []byte
		want string
	}{
		{"empty", nil, "ipv4"},
		{"truncated header", good[:12], "ipv4"},
		{"version 6", append([]byte{0x60}, good[1:]...), "version"},
		{"tcp data offset past the end", func() []byte {
			b := slices.Clone(good)
			b[packet.IPv4HeaderLen+12] = 0xf0
			return b
		}(), "data offset"},
		{"udp header cut", mkPacket(t, packet.ProtoUDP, 53, "")[:packet.IPv4HeaderLen+4], "udp"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := tc.pkt
			if tc.name == "udp header cut" {
				pkt[2], pkt[3] = 0, byte(len(pkt)) // total length matches the cut
			}
			_, _, err := handle(t, h, pkt)
			if !errors.Is(err, service.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestHandleTruncatesLongSIDLists(t *testing.T) {
	var text strings.Builder
	var payload strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&text, "alert ip any any -> any any (content:\"tok%03d\"; sid:%d;)\n", i, 500-i)
		fmt.Fprintf(&payload, "tok%03d ", i)
	}
	h := newTestHandler(t, map[string]string{"rules": text.String()})
	r, _, err := handle(t, h, mkPacket(t, packet.ProtoUDP, 9, payload.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated || len(r.SIDs) != MaxReported {
		t.Fatalf("truncated %v with %d sids, want truncated with %d", r.Truncated, len(r.SIDs), MaxReported)
	}
	// sids 401..500 matched; the lowest 64 are 401..464.
	for i, sid := range r.SIDs {
		if sid != uint32(401+i) {
			t.Fatalf("sid[%d] = %d, want %d (lowest sids in order)", i, sid, 401+i)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  map[string]string
		want string
	}{
		{map[string]string{"action": "block"}, `"block" is neither drop nor alert`},
		{map[string]string{"rule_count": "many"}, `"rule_count"`},
		{map[string]string{"rule_count": "0"}, `"rule_count": 0 outside`},
		{map[string]string{"rule_seed": "x"}, `"rule_seed"`},
		{map[string]string{"rules": "alert tcp any any -> any 80 (content:\"x\";)"}, "line 1: no sid"},
	}
	for _, tc := range tests {
		_, err := Descriptor.New(service.Env{Config: tc.cfg})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %v: err = %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
	h, err := Descriptor.New(service.Env{Config: map[string]string{"rule_count": "50", "rule_seed": "9"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := h.(*Handler).Matcher().Stats().Patterns; n != 50 {
		t.Errorf("rule_count 50 compiled %d patterns", n)
	}
}

func TestDecodeReplyErrors(t *testing.T) {
	for _, b := range [][]byte{nil, {0, 0, 0}, {9, 0, 0, 0}, {1, 0, 1, 0}, {1, 0, 0, 0, 1, 2, 3, 4}} {
		if _, err := DecodeReply(b); !errors.Is(err, service.ErrMalformed) {
			t.Errorf("DecodeReply(%x) err = %v, want ErrMalformed", b, err)
		}
	}
}

// TestGeneratedTraffic runs the default service on its own generator: every
// packet is valid, has the requested size, and every packet carrying an
// attack is caught. It logs how often benign traffic matches by chance.
func TestGeneratedTraffic(t *testing.T) {
	h, err := Descriptor.New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for _, size := range []int{64, 512, 1500} {
		g := NewGenerator(GenConfig{Seed: 42, Size: size})
		attacks, caught, falsePos := 0, 0, 0
		var c service.Context
		for i := 0; i < n; i++ {
			pkt, key := g.Next(nil)
			if len(pkt) != size {
				t.Fatalf("size %d: packet %d is %d bytes", size, i, len(pkt))
			}
			if !packet.IPv4HeaderOK(pkt) {
				t.Fatalf("size %d: packet %d has a bad header checksum", size, i)
			}
			if tuple, err := packet.ParseFiveTuple(pkt); err != nil || tuple.Hash() != key {
				t.Fatalf("size %d: packet %d: key %x, tuple %v, err %v", size, i, key, tuple, err)
			}
			c.Reset(0, key, nil)
			if err := h.Handle(&c, pkt); err != nil {
				t.Fatalf("size %d: packet %d: %v", size, i, err)
			}
			r, err := DecodeReply(c.Response())
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case g.Attacked():
				attacks++
				if r.Verdict == VerdictDrop {
					caught++
				}
			case r.Verdict != VerdictPass:
				falsePos++
			}
		}
		t.Logf("size %d: %d attacks, %d caught; %d of %d benign packets matched a rule by chance", size, attacks, caught, falsePos, n-attacks)
		if caught != attacks {
			t.Errorf("size %d: %d of %d attack packets passed", size, attacks-caught, attacks)
		}
		if size == 512 && (attacks < n/64 || attacks > n/16) {
			t.Errorf("size 512: %d attacks in %d packets, want about 1 in 32", attacks, n)
		}
		if falsePos > n/20 {
			t.Errorf("size %d: %d benign packets matched; the rule set flags too much ordinary traffic", size, falsePos)
		}
	}
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, packet.DefaultSize)
}

func TestHandleNoAllocs(t *testing.T) {
	h, err := NewHandler(Config{Rules: GenerateRules(DefaultRuleSeed, DefaultRuleCount)})
	if err != nil {
		t.Fatal(err)
	}
	pkts := BenchPacketSet(256, 512, 5)
	pkts = append(pkts, mkPacket(t, packet.ProtoTCP, 80, strings.Repeat(string(h.rules[0].Content)+" ", 3)))
	var c service.Context
	var rec countEmitter
	i := 0
	allocs := testing.AllocsPerRun(len(pkts)*4, func() {
		c.Reset(0, 1, &rec)
		if err := h.Handle(&c, pkts[i%len(pkts)]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("Handle allocates %.2f times per packet, want 0", allocs)
	}
}

type countEmitter struct{ n int }

func (e *countEmitter) Emit(uint64, []byte) { e.n++ }

// TestHandleConcurrent calls one handler from several goroutines and checks
// that each reply equals the one a single caller gets. Run it with -race.
func TestHandleConcurrent(t *testing.T) {
	h, err := NewHandler(Config{Rules: GenerateRules(DefaultRuleSeed, DefaultRuleCount)})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.CheckConcurrent(t, h, BenchPacketSet(400, 512, 11))
}

func TestGeneratorNoAllocs(t *testing.T) {
	g := NewGenerator(GenConfig{Seed: 8, Size: 512})
	buf, _ := g.Next(nil)
	if a := testing.AllocsPerRun(500, func() { buf, _ = g.Next(buf) }); a != 0 {
		t.Errorf("Next with a large enough buffer allocates %.2f times", a)
	}
}
