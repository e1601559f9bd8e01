package runtime

import (
	"net/netip"
	"testing"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// BenchmarkBareEchoUDP: requests through a real-mode agent's client socket
// on loopback UDP (admission, echo handler, completion, reply), 256 in
// flight, batches of 64; ns/op is per request, client included (both
// share the machine's cores).
// runtime/bench/run.sh compares the agent with a C server per server core.
func BenchmarkBareEchoUDP(b *testing.B) {
	cl, _ := hwmodel.ClusterByName("1xBeefy")
	topo, _ := hwmodel.Topology(cl)
	data, err := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ag, err := New(Config{Node: 0, Topology: topo, Cores: 1, Registry: services.Registry(), Conn: data, ClientConn: cc})
	if err != nil {
		b.Fatal(err)
	}
	ag.Start()
	defer ag.Close()
	a := loadApp(b, "name: one\nclass: RTA\nnodes:\n  e: {service: echo}\n")
	if err := ag.Apply(&Table{Epoch: 1, Addrs: []netip.AddrPort{ag.Addr()}, Apps: []AppRoute{{ID: 1, App: a, Nodes: []topology.NodeID{0}}}}); err != nil {
		b.Fatal(err)
	}
	client, err := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	const batch = 64
	out := transport.NewMessages(batch, 256)
	in := transport.NewMessages(batch, 2048)
	h := transport.Header{Kind: transport.KindRequest, App: 1, PayloadLen: 64}
	for i := range out {
		h.Request = uint64(i)
		buf, _ := h.Append(out[i].Buf[:0])
		out[i].N = len(buf) + 64
		out[i].Addr = cc.LocalAddr()
	}
	// Keep 256 requests in flight: each batch of replies read is answered
	// by as many new requests, so the agent's loop, not the round trip,
	// sets the pace.
	const window = 256
	b.ResetTimer()
	sent, got := 0, 0
	for sent < min(window, b.N) {
		k := min(batch, b.N-sent, window-sent)
		if _, err := client.WriteBatch(out[:k]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	for got < b.N {
		n, err := client.ReadBatch(in)
		if err != nil {
			b.Fatal(err)
		}
		got += n
		if k := min(n, b.N-sent); k > 0 {
			if _, err := client.WriteBatch(out[:k]); err != nil {
				b.Fatal(err)
			}
			sent += k
		}
	}
}
