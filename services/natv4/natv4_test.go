package natv4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/internal/servicetest"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func newHandler(t testing.TB, conf map[string]string) *Handler {
	t.Helper()
	h, err := Descriptor.New(service.Env{Config: conf})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*Handler)
}

// checksumsValid recomputes every checksum of pkt from scratch and
// compares: the rewrite must equal a full recomputation (issue 3).
func checksumsValid(t testing.TB, pkt []byte) {
	t.Helper()
	re := append([]byte(nil), pkt...)
	if err := packet.SetChecksums(re); err != nil {
		t.Fatal(err)
	}
	var ip packet.IPv4
	if err := packet.ParseIPv4(pkt, &ip); err != nil {
		t.Fatal(err)
	}
	if ip.Protocol == packet.ProtoUDP && binary.BigEndian.Uint16(pkt[ip.HeaderLen+6:]) == 0 {
		re[ip.HeaderLen+6], re[ip.HeaderLen+7] = 0, 0 // "no checksum" stays
	}
	if !bytes.Equal(re, pkt) {
		t.Fatalf("checksums after incremental update differ from recomputation:\n got %x\nwant %x", pkt[:ip.HeaderLen+20], re[:ip.HeaderLen+20])
	}
}

// TestGenerator checks the descriptor's generator, the one load generation
// uses, against the contract every service generator keeps.
func TestGenerator(t *testing.T) { servicetest.CheckGenerator(t, Descriptor, packet.DefaultSize) }

func TestOutboundTranslation(t *testing.T) {
	h := newHandler(t, nil)
	g := packet.NewGenerator(packet.GenConfig{Seed: 1, Size: 200, Flows: 300})
	flows := g.Flows()
	mapped := map[packet.FiveTuple]packet.FiveTuple{}
	outsideUsed := map[[3]uint32]packet.FiveTuple{}
	for n := 0; n < 3000; n++ {
		in, _ := g.Next(nil)
		ft := flows[g.LastFlow()]
		out, err := h.Process(nil, in, int64(n))
		if err != nil {
			t.Fatal(err)
		}
		checksumsValid(t, out)
		got, err := packet.ParseFiveTuple(out)
		if err != nil {
			t.Fatal(err)
		}
		if !h.outside(got.Src) || got.SrcPort < firstPort {
			t.Fatalf("source %s:%d not from the outside pool", addrString(got.Src), got.SrcPort)
		}
		if got.Dst != ft.Dst || got.DstPort != ft.DstPort || got.Proto != ft.Proto {
			t.Fatalf("destination changed: %v -> %v", ft, got)
		}
		if out[8] != in[8]-1 {
			t.Fatalf("TTL %d -> %d", in[8], out[8])
		}
		hl := ip4Payload(in)
		if !bytes.Equal(out[hl+packet.TCPHeaderLen:], in[hl+packet.TCPHeaderLen:]) {
			t.Fatal("payload changed")
		}
		if prev, ok := mapped[ft]; ok && (prev.Src != got.Src || prev.SrcPort != got.SrcPort) {
			t.Fatalf("flow %v remapped from %v to %v", ft, prev, got)
		}
		mapped[ft] = got
		k := [3]uint32{uint32(got.Proto), got.Src, uint32(got.SrcPort)}
		if other, ok := outsideUsed[k]; ok && (other.Src != ft.Src || other.SrcPort != ft.SrcPort) {
			t.Fatalf("outside endpoint %v given to %v and %v", k, other, ft)
		}
		outsideUsed[k] = ft
		// gopacket agrees the transport checksum is right.
		p := gopacket.NewPacket(out, layers.LayerTypeIPv4, gopacket.DecodeOptions{NoCopy: true, DecodeStreamsAsDatagrams: true})
		if tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
			_ = tcp.SetNetworkLayerForChecksum(p.NetworkLayer())
			if err, res := tcp.VerifyChecksum(); err != nil || !res.Valid {
				t.Fatalf("gopacket: TCP checksum invalid: %v %+v", err, res)
			}
		}
	}
	if h.Mappings() != len(mapped) {
		t.Fatalf("%d mappings for %d flows", h.Mappings(), len(mapped))
	}
	var sum uint64
	for _, n := range h.PortPackets() {
		sum += n
	}
	if sum != 3000 {
		t.Fatalf("port counters sum to %d, want 3000", sum)
	}
}

func ip4Payload(b []byte) int { return int(b[0]&15) * 4 }

// reply builds the packet a server would send back to the translated
// packet out.
func reply(t testing.TB, out []byte) []byte {
	t.Helper()
	ft, err := packet.ParseFiveTuple(out)
	if err != nil {
		t.Fatal(err)
	}
	r := append([]byte(nil), out...)
	binary.BigEndian.PutUint32(r[12:], ft.Dst)
	binary.BigEndian.PutUint32(r[16:], ft.Src)
	r[8] = 60
	hl := ip4Payload(r)
	binary.BigEndian.PutUint16(r[hl:], ft.DstPort)
	binary.BigEndian.PutUint16(r[hl+2:], ft.SrcPort)
	if err := packet.SetChecksums(r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestInboundReverse(t *testing.T) {
	h := newHandler(t, nil)
	g := packet.NewGenerator(packet.GenConfig{Seed: 2, Size: 100})
	for n := 0; n < 500; n++ {
		in, _ := g.Next(nil)
		orig, _ := packet.ParseFiveTuple(in)
		out, err := h.Process(nil, in, 0)
		if err != nil {
			t.Fatal(err)
		}
		back, err := h.Process(nil, reply(t, out), 0)
		if err != nil {
			t.Fatal(err)
		}
		checksumsValid(t, back)
		got, _ := packet.ParseFiveTuple(back)
		if got != orig.Reverse() {
			t.Fatalf("reply arrives as %v, want %v", got, orig.Reverse())
		}
	}
	// An inbound packet for an endpoint nobody mapped is dropped.
	in, _ := g.Next(nil)
	out, _ := h.Process(nil, in, 0)
	r := reply(t, out)
	binary.BigEndian.PutUint16(r[ip4Payload(r)+2:], 1000) // below the NAT's port range
	_ = packet.SetChecksums(r)
	if _, err := h.Process(nil, r, 0); !errors.Is(err, ErrNoMapping) {
		t.Fatalf("unmapped inbound: %v, want ErrNoMapping", err)
	}
}

func TestUDPZeroChecksumKept(t *testing.T) {
	h := newHandler(t, nil)
	in, _ := packet.NewGenerator(packet.GenConfig{Seed: 3, Size: 80, Proto: packet.ProtoUDP}).Next(nil)
	in[26], in[27] = 0, 0
	out, err := h.Process(nil, in, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out[26] != 0 || out[27] != 0 {
		t.Fatalf("UDP checksum 0 became %#x", binary.BigEndian.Uint16(out[26:]))
	}
	checksumsValid(t, out)
}

func TestIdleTimeoutAndFullTable(t *testing.T) {
	h := newHandler(t, map[string]string{"max_mappings": "32", "idle_timeout": "10"})
	g := packet.NewGenerator(packet.GenConfig{Seed: 4, Size: 60, Flows: 200})
	const sec = int64(1e9)
	full := 0
	for n := 0; n < 200; n++ {
		in, _ := g.Next(nil)
		if _, err := h.Process(nil, in, 0); errors.Is(err, ErrTableFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if full == 0 || h.Mappings() > 32 {
		t.Fatalf("%d refusals, %d mappings: the capacity of 32 was not enforced", full, h.Mappings())
	}
	// After the timeout, new flows evict idle ones.
	for n := 0; n < 200; n++ {
		in, _ := g.Next(nil)
		if _, err := h.Process(nil, in, 11*sec); err != nil && !errors.Is(err, ErrTableFull) {
			t.Fatal(err)
		}
	}
	if h.Mappings() == 0 || h.Mappings() > 32 {
		t.Fatalf("%d mappings after expiry", h.Mappings())
	}
	// A mapping whose flow keeps sending survives; its reverse still works.
	h2 := newHandler(t, map[string]string{"idle_timeout": "10"})
	in, _ := packet.NewGenerator(packet.GenConfig{Seed: 5, Size: 60}).Next(nil)
	out, _ := h2.Process(nil, in, 0)
	for s := int64(5); s <= 60; s += 5 {
		if _, err := h2.Process(nil, reply(t, out), s*sec); err != nil {
			t.Fatalf("at %ds: %v", s, err)
		}
		// Churn makes the sweeper visit every slot.
		g2 := packet.NewGenerator(packet.GenConfig{Seed: s, Size: 60, Flows: 64})
		for range 64 {
			p, _ := g2.Next(nil)
			_, _ = h2.Process(nil, p, s*sec)
		}
	}
	if _, err := h2.Process(nil, reply(t, out), 200*sec); err != nil {
		t.Fatalf("mapping kept alive by inbound traffic was lost... (%v)", err)
	}
}

func TestExpiryRemovesMappings(t *testing.T) {
	tab := newNATTable([]uint32{0xcb007101}, 1024, 10)
	for p := uint16(1); p <= 50; p++ {
		if _, _, ok := tab.outbound(17, 0x0a000001, p, 0); !ok {
			t.Fatal("allocation failed")
		}
	}
	if tab.Len() != 50 {
		t.Fatalf("%d mappings", tab.Len())
	}
	for i := range tab.shards {
		tab.expire(&tab.shards[i], len(tab.shards[i].fwd), 100)
	}
	if tab.Len() != 0 {
		t.Fatalf("%d mappings survived expiry", tab.Len())
	}
	for i := range tab.shards {
		for _, r := range tab.shards[i].rev {
			if r.key != 0 {
				t.Fatal("a reverse entry survived expiry")
			}
		}
	}
}

func TestDrops(t *testing.T) {
	g := packet.NewGenerator(packet.GenConfig{Seed: 6, Size: 60, Proto: packet.ProtoTCP})
	in, _ := g.Next(nil)
	noRoute := newHandler(t, map[string]string{"route_list": "198.51.100.0/24>1"})
	if _, err := noRoute.Process(nil, in, 0); !errors.Is(err, ErrNoRoute) {
		t.Errorf("no route: %v", err)
	}
	h := newHandler(t, nil)
	ttl1 := append([]byte(nil), in...)
	ttl1[8] = 1
	_ = packet.SetChecksums(ttl1)
	if _, err := h.Process(nil, ttl1, 0); !errors.Is(err, ErrTTL) {
		t.Errorf("TTL 1: %v", err)
	}
	icmp := append([]byte(nil), in...)
	icmp[9] = packet.ProtoICMP
	_ = packet.SetChecksums(icmp)
	if _, err := h.Process(nil, icmp, 0); !errors.Is(err, ErrUntranslate) {
		t.Errorf("ICMP from inside: %v", err)
	}
	frag := append([]byte(nil), in...)
	frag[7] = 10
	_ = packet.SetChecksums(frag)
	if _, err := h.Process(nil, frag, 0); !errors.Is(err, ErrUntranslate) {
		t.Errorf("fragment: %v", err)
	}
	badsum := append([]byte(nil), in...)
	badsum[10] ^= 0xff
	if _, err := h.Process(nil, badsum, 0); !errors.Is(err, service.ErrMalformed) {
		t.Errorf("bad header checksum: %v", err)
	}
	short := append([]byte(nil), in[:30]...)
	binary.BigEndian.PutUint16(short[2:], 30)
	_ = packet.SetChecksums(short[:20])
	if _, err := h.Process(nil, short, 0); !errors.Is(err, service.ErrMalformed) {
		t.Errorf("truncated TCP: %v", err)
	}
	// Transit traffic (neither inside nor to the pool) is routed untouched.
	transit := append([]byte(nil), in...)
	binary.BigEndian.PutUint32(transit[12:], 0x08080808)
	_ = packet.SetChecksums(transit)
	out, err := h.Process(nil, transit, 0)
	if err != nil || !bytes.Equal(out[12:], transit[12:]) || out[8] != transit[8]-1 {
		t.Errorf("transit packet: %v", err)
	}
	checksumsValid(t, out)
}

func TestConfigErrors(t *testing.T) {
	for _, m := range []map[string]string{
		{"inside": "10.0.0.0"},
		{"outside": "10.1.0.0/16"},
		{"outside": "203.0.0.0/8"},
		{"routes": "-1"},
		{"next_hops": "0"},
		{"default_route": "maybe"},
		{"route_list": "x"},
		{"ports": "0"},
		{"max_mappings": "1"},
		{"outside": "203.0.113.1/32", "max_mappings": "100000"},
		{"idle_timeout": "-5"},
	} {
		if _, err := ParseConfig(m); err == nil {
			t.Errorf("%v accepted", m)
		} else {
			t.Logf("%v: %v", m, err)
		}
	}
}

func TestConcurrent(t *testing.T) {
	h := newHandler(t, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := packet.NewGenerator(packet.GenConfig{Seed: 7, Size: 100, Flows: 200})
			c := &service.Context{}
			for n := range 2000 {
				in, key := g.Next(nil)
				c.Reset(int64(n), key, nil)
				if err := h.Handle(c, in); err != nil {
					t.Error(err)
					return
				}
				if w == 0 {
					checksumsValid(t, c.Response())
				}
			}
		}()
	}
	wg.Wait()
	// All four workers sent the same 200 flows: one mapping each.
	if h.Mappings() > 200 {
		t.Fatalf("%d mappings for at most 200 flows", h.Mappings())
	}
}

func TestNoAllocs(t *testing.T) {
	h := newHandler(t, nil)
	reqs, _ := servicetest.Requests(Descriptor.NewGenerator(1, 512), 1000)
	c := &service.Context{Scratch: make([]byte, 0, 2048)}
	for _, r := range reqs { // first packets of flows allocate nothing either, but warm up anyway
		c.Reset(0, 0, nil)
		if err := h.Handle(c, r); err != nil {
			t.Fatal(err)
		}
	}
	if n := servicetest.HandleAllocs(t, h, c, 1000, reqs); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
	// New flows (allocation in the translation table) do not allocate.
	g2 := packet.NewGenerator(packet.GenConfig{Seed: 99, Flows: 5000})
	var fresh [][]byte
	for range 1000 {
		p, _ := g2.Next(nil)
		fresh = append(fresh, p)
	}
	i := 0
	if n := testing.AllocsPerRun(999, func() {
		c.Reset(0, 0, nil)
		_ = h.Handle(c, fresh[i])
		i++
	}); n != 0 {
		t.Fatalf("%v allocations per packet of new flows", n)
	}
}

func BenchmarkHandle(b *testing.B) {
	h, err := Descriptor.New(service.Env{})
	if err != nil {
		b.Fatal(err)
	}
	g := Descriptor.NewGenerator(1, packet.DefaultSize)
	reqs, keys := servicetest.Requests(g, 4096)
	c := &service.Context{Scratch: make([]byte, 0, 64<<10)}
	b.SetBytes(packet.DefaultSize)
	b.ReportAllocs()
	// Thread CPU time beside wall time: the fair figure on a shared machine.
	cpu := servicetest.StartCPU(b)
	i := 0
	for b.Loop() {
		c.Reset(int64(i), keys[i&4095], nil)
		if err := h.Handle(c, reqs[i&4095]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	cpu.Stop(b, 0)
}
