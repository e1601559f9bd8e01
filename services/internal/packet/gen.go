package packet

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/e3-platform/e3/service"
)

// Generator defaults.
const (
	DefaultSize  = 512  // bytes per packet, the paper's request size
	DefaultFlows = 1024 // distinct 5-tuples
)

// GenConfig configures a [Generator]. The zero value of every field means
// its default.
type GenConfig struct {
	// Seed makes the flow set and the packet sequence reproducible.
	Seed int64
	// Size is the total IPv4 packet length (header included). Default 512.
	// It is raised to the smallest packet of the flow's protocol (28 bytes
	// for UDP, 40 for TCP) and capped at 65535.
	Size int
	// Flows is the number of distinct 5-tuples packets are drawn from.
	// Default 1024.
	Flows int
	// Zipf is the skew exponent s: flow k (0-based) is drawn with
	// probability proportional to 1/(k+1)^s. 0 draws flows uniformly; about
	// 1 resembles measured Internet flow sizes.
	Zipf float64
	// Proto is ProtoTCP or ProtoUDP for one protocol only; 0 gives each
	// flow TCP or UDP with equal probability.
	Proto uint8
}

// Generator produces IPv4 packets for the packet services. Each packet is
// a complete IPv4/TCP or IPv4/UDP packet with valid checksums: the source
// is an inside address in 10.0.0.0/8 with an ephemeral port, the
// destination a public unicast address with a well-known service port, the
// payload random bytes. A Generator is not safe for concurrent use.
// It implements [service.Generator].
type Generator struct {
	rng   *rand.Rand
	size  int
	flows []genFlow
	cdf   []float64 // cumulative flow probabilities; nil for uniform
	ipID  uint16
	last  int
}

type genFlow struct {
	t    FiveTuple
	key  uint64
	seq  uint32
	ack  uint32
	hlen int // IPv4 + transport header bytes
}

var (
	tcpPorts = []uint16{80, 443, 443, 443, 22, 25, 8080, 3306}
	udpPorts = []uint16{53, 53, 123, 443, 4500, 5060, 1194, 3478}
)

// NewGenerator returns a generator for cfg.
func NewGenerator(cfg GenConfig) *Generator {
	if cfg.Size <= 0 {
		cfg.Size = DefaultSize
	}
	cfg.Size = min(cfg.Size, MaxPacketLen)
	if cfg.Flows <= 0 {
		cfg.Flows = DefaultFlows
	}
	g := &Generator{
		rng:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
		size:  cfg.Size,
		flows: make([]genFlow, cfg.Flows),
		ipID:  uint16(cfg.Seed),
	}
	seen := make(map[FiveTuple]bool, cfg.Flows)
	for i := range g.flows {
		var t FiveTuple
		for {
			t = g.randomTuple(cfg.Proto)
			if !seen[t] {
				break
			}
		}
		seen[t] = true
		hl := IPv4HeaderLen + UDPHeaderLen
		if t.Proto == ProtoTCP {
			hl = IPv4HeaderLen + TCPHeaderLen
		}
		g.flows[i] = genFlow{t: t, key: t.Hash(), seq: g.rng.Uint32(), ack: g.rng.Uint32(), hlen: hl}
	}
	if cfg.Zipf > 0 && cfg.Flows > 1 {
		g.cdf = make([]float64, cfg.Flows)
		var s float64
		for k := range g.cdf {
			s += math.Pow(float64(k+1), -cfg.Zipf)
			g.cdf[k] = s
		}
		for k := range g.cdf {
			g.cdf[k] /= s
		}
		g.cdf[len(g.cdf)-1] = 1
	}
	return g
}

func (g *Generator) randomTuple(proto uint8) FiveTuple {
	if proto == 0 {
		proto = ProtoUDP
		if g.rng.IntN(2) == 0 {
			proto = ProtoTCP
		}
	}
	t := FiveTuple{
		Src:     0x0a000000 | g.rng.Uint32N(1<<24),
		Dst:     g.publicAddr(),
		SrcPort: uint16(32768 + g.rng.IntN(61000-32768)),
		Proto:   proto,
	}
	if proto == ProtoTCP {
		t.DstPort = tcpPorts[g.rng.IntN(len(tcpPorts))]
	} else {
		t.DstPort = udpPorts[g.rng.IntN(len(udpPorts))]
	}
	return t
}

// publicAddr draws a unicast address outside the private, loopback,
// link-local, shared (CGN), multicast and reserved ranges.
func (g *Generator) publicAddr() uint32 {
	for {
		a := g.rng.Uint32()
		switch {
		case a>>24 == 0, a>>24 == 10, a>>24 == 127, a>>24 >= 224,
			a>>22 == 0x64<<2|1, // 100.64.0.0/10
			a>>16 == 0xa9fe,    // 169.254.0.0/16
			a>>20 == 0xac1,     // 172.16.0.0/12
			a>>16 == 0xc0a8:    // 192.168.0.0/16
			continue
		}
		return a
	}
}

// Flows returns the generator's flows; index k is the k-th most likely
// under Zipf skew.
func (g *Generator) Flows() []FiveTuple {
	out := make([]FiveTuple, len(g.flows))
	for i := range g.flows {
		out[i] = g.flows[i].t
	}
	return out
}

// LastFlow returns the index in [Generator.Flows] of the flow of the packet
// Next returned last.
func (g *Generator) LastFlow() int { return g.last }

func (g *Generator) pick() int {
	if g.cdf == nil {
		return g.rng.IntN(len(g.flows))
	}
	u := g.rng.Float64()
	return sort.SearchFloat64s(g.cdf, u)
}

// Next appends the next packet to dst[:0] and returns it with its routing
// key, [FiveTuple.Hash] of its flow. It allocates only when dst is too
// small.
func (g *Generator) Next(dst []byte) ([]byte, uint64) {
	i := g.pick()
	g.last = i
	f := &g.flows[i]
	size := max(g.size, f.hlen)
	b := slices.Grow(dst[:0], size)[:size]
	p := b[f.hlen:]
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, g.rng.Uint64())
		p = p[8:]
	}
	if len(p) > 0 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], g.rng.Uint64())
		copy(p, w[:])
	}
	g.ipID++
	PutIPv4(b, &IPv4{
		TotalLen: uint16(size), ID: g.ipID, Flags: FlagDF, TTL: 64,
		Protocol: f.t.Proto, Src: f.t.Src, Dst: f.t.Dst,
	})
	seg := b[IPv4HeaderLen:]
	if f.t.Proto == ProtoTCP {
		PutTCP(seg, &TCP{
			SrcPort: f.t.SrcPort, DstPort: f.t.DstPort, Seq: f.seq, Ack: f.ack,
			Flags: TCPAck | TCPPsh, Window: 65535,
		})
		f.seq += uint32(size - f.hlen)
		PutTCPChecksum(seg, f.t.Src, f.t.Dst)
	} else {
		PutUDP(seg, &UDP{SrcPort: f.t.SrcPort, DstPort: f.t.DstPort, Length: uint16(len(seg))})
		PutUDPChecksum(seg, f.t.Src, f.t.Dst)
	}
	return b, f.key
}

var _ service.Generator = (*Generator)(nil)
