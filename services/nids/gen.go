package nids

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// DefaultAttackRate is the share of generated packets that carry a rule's
// content. Real traffic alerts far less often; one packet in 32 keeps the
// match, report and drop path in every benchmark without letting it
// dominate the cost.
const DefaultAttackRate = 1.0 / 32

// GenConfig configures a [Generator]. Zero fields take their defaults.
type GenConfig struct {
	Seed int64
	Size int // total IPv4 packet length; default 512
	// Rules are the rules attacks are drawn from; default
	// GenerateRules(DefaultRuleSeed, DefaultRuleCount).
	Rules []Rule
	// AttackRate is the share of packets carrying some rule's content;
	// 0 means DefaultAttackRate, a negative value none.
	AttackRate float64
}

// Generator produces the requests of the nids service: IPv4/TCP and
// IPv4/UDP packets from [packet.Generator] (valid headers and checksums,
// a fixed set of flows to well-known ports) whose payload is replaced by
// traffic of the kind the destination port carries:
//
//   - 80, 8080: HTTP requests (request line, browser headers, form body);
//   - 25: an SMTP dialogue; 5060: SIP INVITE messages;
//   - 53: DNS queries (binary header, length-prefixed labels);
//   - 3306: MySQL packets with SQL text;
//   - everything else (443, 22, 123, 4500, 1194, 3478): random bytes, as
//     encrypted traffic looks.
//
// A share AttackRate of packets additionally carries the content of a rule
// that applies to its protocol and port, at a random offset and, for a
// nocase rule, in randomly mixed case, so the matching path is exercised.
// A Generator is not safe for concurrent use.
type Generator struct {
	pg     *packet.Generator
	rng    *rand.Rand
	rules  []Rule
	attack float64
	// applicable[k]: rules that can fire on packets of flow class k.
	applicable map[uint32][]int32
	attacked   bool
	hdr        [10]uint8 // header order scratch; len(httpHeaders)
}

// NewGenerator returns a generator for cfg.
func NewGenerator(cfg GenConfig) *Generator {
	if cfg.Rules == nil {
		cfg.Rules = GenerateRules(DefaultRuleSeed, DefaultRuleCount)
	}
	switch {
	case cfg.AttackRate == 0:
		cfg.AttackRate = DefaultAttackRate
	case cfg.AttackRate < 0:
		cfg.AttackRate = 0
	}
	g := &Generator{
		pg:         packet.NewGenerator(packet.GenConfig{Seed: cfg.Seed, Size: cfg.Size}),
		rng:        rand.New(rand.NewPCG(uint64(cfg.Seed), 0x1d5)),
		rules:      cfg.Rules,
		attack:     cfg.AttackRate,
		applicable: map[uint32][]int32{},
	}
	for _, f := range g.pg.Flows() {
		k := uint32(f.Proto)<<16 | uint32(f.DstPort)
		if _, ok := g.applicable[k]; ok {
			continue
		}
		var idx []int32
		for i, r := range cfg.Rules {
			if (r.Proto == 0 || r.Proto == f.Proto) && (r.DstPort == 0 || r.DstPort == f.DstPort) {
				idx = append(idx, int32(i))
			}
		}
		g.applicable[k] = idx
	}
	return g
}

// Attacked reports whether the packet Next returned last carries a rule's
// content on purpose (benign payload may still match a rule by chance).
func (g *Generator) Attacked() bool { return g.attacked }

// Next appends the next packet to dst[:0] and returns it with its routing
// key, the hash of its 5-tuple.
func (g *Generator) Next(dst []byte) ([]byte, uint64) {
	pkt, key := g.pg.Next(dst)
	var h packet.IPv4
	if err := packet.ParseIPv4(pkt, &h); err != nil {
		panic("nids: packet generator built a bad packet: " + err.Error())
	}
	seg := h.Payload(pkt)
	hl := packet.UDPHeaderLen
	if h.Protocol == packet.ProtoTCP {
		hl = packet.TCPHeaderLen
	}
	dport := uint16(seg[2])<<8 | uint16(seg[3])
	payload := seg[hl:]
	g.fillPayload(payload, dport)
	g.attacked = false
	if g.attack > 0 && g.rng.Float64() < g.attack {
		cands := g.applicable[uint32(h.Protocol)<<16|uint32(dport)]
		if len(cands) > 0 {
			r := &g.rules[cands[g.rng.IntN(len(cands))]]
			if len(r.Content) <= len(payload) {
				at := g.rng.IntN(len(payload) - len(r.Content) + 1)
				copy(payload[at:], r.Content)
				if r.NoCase {
					for i := at; i < at+len(r.Content); i++ {
						if isLetter(payload[i]) && g.rng.IntN(2) == 0 {
							payload[i] ^= 0x20
						}
					}
				}
				g.attacked = true
			}
		}
	}
	if err := packet.SetChecksums(pkt); err != nil {
		panic("nids: packet generator built a bad packet: " + err.Error())
	}
	return pkt, key
}

var (
	httpPaths = []string{"/", "/index.html", "/static/js/app.", "/images/banner", "/css/site.css", "/api/v1/items?page=",
		"/favicon.ico", "/news/2019/07/", "/products/", "/search?q=", "/assets/fonts/", "/blog/post-", "/about", "/cart"}
	httpHeaders = []string{
		"Host: www.example.com\r\n",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/75.0.3770.100 Safari/537.36\r\n",
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n",
		"Accept-Language: en-US,en;q=0.9\r\n",
		"Accept-Encoding: gzip, deflate\r\n",
		"Connection: keep-alive\r\n",
		"Cache-Control: max-age=0\r\n",
		"Referer: http://www.example.com/\r\n",
		"Upgrade-Insecure-Requests: 1\r\n",
		"Content-Type: application/x-www-form-urlencoded\r\n",
	}
	smtpLines = []string{"EHLO mail.example.org\r\n", "MAIL FROM:<alice@example.org>\r\n", "RCPT TO:<bob@example.net>\r\n",
		"DATA\r\n", "Subject: quarterly report\r\n", "From: Alice <alice@example.org>\r\n", "Date: Wed, 10 Jul 2019 09:00:00 +0000\r\n",
		"Please find the figures attached. Regards, Alice\r\n", "Content-Type: text/plain; charset=utf-8\r\n"}
	sipLines = []string{"INVITE sip:bob@example.net SIP/2.0\r\n", "Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK776asdhds\r\n",
		"Max-Forwards: 70\r\n", "To: Bob <sip:bob@example.net>\r\n", "From: Alice <sip:alice@example.org>;tag=1928301774\r\n",
		"Call-ID: a84b4c76e66710@pc33.example.org\r\n", "CSeq: 314159 INVITE\r\n", "Content-Type: application/sdp\r\n",
		"v=0\r\no=alice 2890844526 2890844526 IN IP4 10.0.0.7\r\nm=audio 49170 RTP/AVP 0\r\n"}
	sqlText = []string{"SELECT id, name, price FROM products WHERE category = ? ORDER BY price LIMIT 20",
		"INSERT INTO orders (customer, item, qty) VALUES (?, ?, ?)", "UPDATE sessions SET seen = NOW() WHERE token = ?",
		"SELECT COUNT(*) FROM events WHERE day >= ?"}
	words = []string{"alpha", "report", "meeting", "invoice", "order", "summer", "photo", "weather", "market", "update",
		"travel", "music", "garden", "recipe", "football", "science", "history", "energy"}
)

// fillPayload overwrites p with traffic typical of port dport.
func (g *Generator) fillPayload(p []byte, dport uint16) {
	switch dport {
	case 80, 8080:
		g.fillHTTP(p)
	case 25:
		g.fillLines(p, smtpLines)
	case 5060:
		g.fillLines(p, sipLines)
	case 53:
		g.fillDNS(p)
	case 3306:
		g.fillMySQL(p)
	default:
		g.fillRandom(p)
	}
}

func (g *Generator) fillRandom(p []byte) {
	for i := range p {
		p[i] = byte(g.rng.Uint32())
	}
}

// put copies s into p at i and returns the new offset; it stops at the
// end of p.
func put(p []byte, i int, s string) int { return i + copy(p[i:], s) }

func (g *Generator) fillHTTP(p []byte) {
	i := 0
	post := g.rng.IntN(4) == 0
	if post {
		i = put(p, i, "POST ")
	} else {
		i = put(p, i, "GET ")
	}
	i = put(p, i, httpPaths[g.rng.IntN(len(httpPaths))])
	i = put(p, i, words[g.rng.IntN(len(words))])
	i = put(p, i, " HTTP/1.1\r\n")
	// Six of the headers in random order (a partial shuffle).
	for k := range g.hdr {
		g.hdr[k] = uint8(k)
	}
	for k := 0; k < 6; k++ {
		j := k + g.rng.IntN(len(g.hdr)-k)
		g.hdr[k], g.hdr[j] = g.hdr[j], g.hdr[k]
		i = put(p, i, httpHeaders[g.hdr[k]])
	}
	i = put(p, i, "Cookie: session=")
	for k := 0; k < 16 && i < len(p); k++ {
		p[i] = "0123456789abcdef"[g.rng.IntN(16)]
		i++
	}
	i = put(p, i, "\r\n\r\n")
	for i < len(p) { // form body
		i = put(p, i, words[g.rng.IntN(len(words))])
		i = put(p, i, "=")
		var num [8]byte
		i += copy(p[i:], strconv.AppendInt(num[:0], int64(g.rng.IntN(10000)), 10))
		i = put(p, i, "&")
	}
}

func (g *Generator) fillLines(p []byte, lines []string) {
	i := 0
	for i < len(p) {
		i = put(p, i, lines[g.rng.IntN(len(lines))])
	}
}

func (g *Generator) fillDNS(p []byte) {
	i := 0
	for i < len(p) {
		// 12-byte header: id, flags (standard query, RD), 1 question.
		var h [12]byte
		h[0], h[1] = byte(g.rng.Uint32()), byte(g.rng.Uint32())
		h[2], h[5] = 0x01, 0x01
		i += copy(p[i:], h[:])
		for _, l := range []string{words[g.rng.IntN(len(words))], "example", "com"} {
			if i < len(p) {
				p[i] = byte(len(l))
				i++
			}
			i = put(p, i, l)
		}
		i = put(p, i, "\x00\x00\x01\x00\x01") // root, type A, class IN
	}
}

func (g *Generator) fillMySQL(p []byte) {
	i := 0
	for i < len(p) {
		q := sqlText[g.rng.IntN(len(sqlText))]
		n := len(q) + 1
		h := [5]byte{byte(n), byte(n >> 8), 0, 0, 0x03} // length, sequence, COM_QUERY
		i += copy(p[i:], h[:])
		i = put(p, i, q)
	}
}

var _ service.Generator = (*Generator)(nil)

// Benchmark inputs shared by BenchmarkMatch, BenchmarkHandle and the C
// peers in bench/ (written by bench/export), so all of them scan the same
// bytes.
const (
	BenchPackets = 4096
	BenchSeed    = 1
)

// BenchPacketSet returns n packets of size bytes from the default generator
// with seed.
func BenchPacketSet(n, size int, seed int64) [][]byte {
	g := NewGenerator(GenConfig{Seed: seed, Size: size})
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i], _ = g.Next(nil)
	}
	return pkts
}

// BenchPayloads returns the TCP or UDP payloads of BenchPacketSet(n, size,
// seed).
func BenchPayloads(n, size int, seed int64) ([][]byte, error) {
	pkts := BenchPacketSet(n, size, seed)
	out := make([][]byte, n)
	for i, p := range pkts {
		var err error
		if out[i], err = TransportPayload(p); err != nil {
			return nil, fmt.Errorf("nids: packet %d: %w", i, err)
		}
	}
	return out, nil
}

// TransportPayload returns the TCP or UDP payload of an unfragmented IPv4
// packet.
func TransportPayload(pkt []byte) ([]byte, error) {
	var ip packet.IPv4
	if err := packet.ParseIPv4(pkt, &ip); err != nil {
		return nil, err
	}
	seg := ip.Payload(pkt)
	switch {
	case ip.IsFragment():
		return nil, fmt.Errorf("%w: nids: packet is a fragment", service.ErrMalformed)
	case ip.Protocol == packet.ProtoTCP:
		var t packet.TCP
		if err := packet.ParseTCP(seg, &t); err != nil {
			return nil, err
		}
		return seg[t.HeaderLen:], nil
	case ip.Protocol == packet.ProtoUDP:
		var u packet.UDP
		if err := packet.ParseUDP(seg, &u); err != nil {
			return nil, err
		}
		return seg[packet.UDPHeaderLen:u.Length], nil
	}
	return nil, fmt.Errorf("%w: nids: protocol %d at offset 9 is neither TCP nor UDP", service.ErrMalformed, ip.Protocol)
}
