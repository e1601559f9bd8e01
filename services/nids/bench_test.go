package nids

import (
	"fmt"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// benchPackets returns the benchmark packets and their payloads.
func benchPackets(tb testing.TB, n, size int) (pkts, payloads [][]byte) {
	tb.Helper()
	pkts = BenchPacketSet(n, size, BenchSeed)
	payloads, err := BenchPayloads(n, size, BenchSeed)
	if err != nil {
		tb.Fatal(err)
	}
	return pkts, payloads
}

var benchSink int

// BenchmarkMatch scans the transport payloads of 512-byte packets against
// the default 2,000-rule set, reporting every occurrence; this is the
// figure the C DFA and Hyperscan peers (bench/run.sh) are compared with.
func BenchmarkMatch(b *testing.B) {
	m, err := Compile(Patterns(GenerateRules(DefaultRuleSeed, DefaultRuleCount)))
	if err != nil {
		b.Fatal(err)
	}
	_, payloads := benchPackets(b, BenchPackets, packet.DefaultSize)
	total := 0
	for _, p := range payloads {
		total += len(p)
	}
	one := m.scan1
	force32 = true
	m32, err := Compile(Patterns(GenerateRules(DefaultRuleSeed, DefaultRuleCount)))
	force32 = false
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		scan func([]byte, func(int, int))
	}{{"streams=4", m.Scan}, {"streams=1", one}, {"streams=4/uint32", m32.Scan}} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(total / len(payloads)))
			b.ReportAllocs()
			n := 0
			count := func(int, int) { n++ }
			cpu := servicetest.StartCPU(b)
			for i := 0; i < b.N; i++ {
				v.scan(payloads[i%len(payloads)], count)
			}
			cpu.Stop(b, float64(total)/float64(len(payloads)))
			benchSink = n
		})
	}
}

// BenchmarkHandle runs the whole service on 512-byte packets: parse,
// scan, rule constraints, reply.
func BenchmarkHandle(b *testing.B) {
	h, err := NewHandler(Config{Rules: GenerateRules(DefaultRuleSeed, DefaultRuleCount)})
	if err != nil {
		b.Fatal(err)
	}
	pkts, _ := benchPackets(b, BenchPackets, packet.DefaultSize)
	var c service.Context
	b.SetBytes(int64(len(pkts[0])))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := servicetest.StartCPU(b)
	for i := 0; i < b.N; i++ {
		c.Reset(0, 0, nil)
		if err := h.Handle(&c, pkts[i%len(pkts)]); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Stop(b, float64(len(pkts[0])))
}

// BenchmarkHandleWorstCase measures a 1500-byte packet stuffed with rule
// contents back to back, port-free ones first so that as many rules as
// possible fire: the cost an attacker can force per packet.
func BenchmarkHandleWorstCase(b *testing.B) {
	rules := GenerateRules(DefaultRuleSeed, DefaultRuleCount)
	h, err := NewHandler(Config{Rules: rules})
	if err != nil {
		b.Fatal(err)
	}
	var payload []byte
	for _, r := range rules {
		if r.DstPort == 0 && r.Proto != 17 && len(payload)+len(r.Content) <= 1460 {
			payload = append(payload, r.Content...)
		}
	}
	pkt := mkPacket(b, packet.ProtoTCP, 80, string(payload))
	var c service.Context
	c.Reset(0, 0, nil)
	if err := h.Handle(&c, pkt); err != nil {
		b.Fatal(err)
	}
	r, _ := DecodeReply(c.Response())
	b.Logf("%d-byte packet, %d occurrences, %d sids reported (truncated %v)", len(pkt), h.Matcher().Count(payload), len(r.SIDs), r.Truncated)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := servicetest.StartCPU(b)
	for i := 0; i < b.N; i++ {
		c.Reset(0, 0, nil)
		if err := h.Handle(&c, pkt); err != nil {
			b.Fatal(err)
		}
	}
	cpu.Stop(b, float64(len(pkt)))
}

// BenchmarkHandleSizes runs the service on generated packets of the sizes
// the request-size experiment sweeps.
func BenchmarkHandleSizes(b *testing.B) {
	h, err := NewHandler(Config{Rules: GenerateRules(DefaultRuleSeed, DefaultRuleCount)})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{64, 128, 256, 512, 1024, 1500} {
		pkts := BenchPacketSet(1024, size, BenchSeed)
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			var c service.Context
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu := servicetest.StartCPU(b)
			for i := 0; i < b.N; i++ {
				c.Reset(0, 0, nil)
				if err := h.Handle(&c, pkts[i%len(pkts)]); err != nil {
					b.Fatal(err)
				}
			}
			cpu.Stop(b, float64(size))
		})
	}
}
