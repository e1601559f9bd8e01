package runtime

import (
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

const kvsSpec = `
name: cache
class: RTA
nodes:
  kvs: {service: kvs, shards: 4}
`

// memcacheAgent starts a real-mode agent running a 4-shard KVS with a
// memcached ingress on conn.
func memcacheAgent(t testing.TB, nw *transport.Network, conn transport.BatchConn) *MemcacheIngress {
	t.Helper()
	cl, _ := hwmodel.ClusterByName("1xBeefy")
	topo, _ := hwmodel.Topology(cl)
	var data transport.BatchConn
	var err error
	if nw != nil {
		data, err = nw.Listen(netip.MustParseAddrPort("10.0.0.1:7000"))
	} else {
		data, err = transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
	}
	if err != nil {
		t.Fatal(err)
	}
	ag, err := New(Config{Node: 0, Topology: topo, Cores: 1, Registry: services.Registry(), Conn: data})
	if err != nil {
		t.Fatal(err)
	}
	ag.Start()
	a := loadApp(t, kvsSpec)
	tbl := &Table{Epoch: 1, Addrs: []netip.AddrPort{ag.Addr()}, Apps: []AppRoute{{ID: 1, App: a, Nodes: []topology.NodeID{0, 0, 0, 0}}}}
	if err := ag.Apply(tbl); err != nil {
		t.Fatal(err)
	}
	g, err := NewMemcacheIngress(ag, 1, "kvs", conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.Close()
		ag.Close()
	})
	return g
}

// TestMemcacheUDP plays set, get (one and several keys, hit and miss),
// delete and a malformed line through the ingress and checks memcached's
// answers, frame headers included.
func TestMemcacheUDP(t *testing.T) {
	nw := transport.NewNetwork(nil, nil)
	defer nw.Close()
	conn, _ := nw.Listen(netip.MustParseAddrPort("10.0.0.1:11211"))
	memcacheAgent(t, nw, conn)
	client, _ := nw.Listen(netip.MustParseAddrPort("10.0.1.1:5000"))
	out := transport.NewMessages(1, 2048)
	in := transport.NewMessages(4, 2048)
	var id uint16
	ask := func(text string) string {
		t.Helper()
		id++
		b := out[0].Buf
		binary.BigEndian.PutUint16(b, id)
		binary.BigEndian.PutUint16(b[2:], 0)
		binary.BigEndian.PutUint16(b[4:], 1)
		binary.BigEndian.PutUint16(b[6:], 0)
		out[0].N = 8 + copy(b[8:], text)
		out[0].Addr = conn.LocalAddr()
		if _, err := client.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		n, err := client.ReadBatch(in)
		if err != nil || n != 1 {
			t.Fatalf("read: %d, %v", n, err)
		}
		r := in[0].Payload()
		if got := binary.BigEndian.Uint16(r); got != id {
			t.Fatalf("reply to request %d, want %d", got, id)
		}
		if seq, total := binary.BigEndian.Uint16(r[2:]), binary.BigEndian.Uint16(r[4:]); seq != 0 || total != 1 {
			t.Fatalf("frame seq %d total %d, want 0 of 1", seq, total)
		}
		return string(r[8:])
	}
	steps := []struct{ send, want string }{
		{"set alpha 5 0 3\r\nabc\r\n", "STORED\r\n"},
		{"set beta 0 0 2\r\nxy\r\n", "STORED\r\n"},
		{"get alpha\r\n", "VALUE alpha 5 3\r\nabc\r\nEND\r\n"},
		{"get alpha nope beta\r\n", "VALUE alpha 5 3\r\nabc\r\nVALUE beta 0 2\r\nxy\r\nEND\r\n"},
		{"delete alpha\r\n", "DELETED\r\n"},
		{"delete alpha\r\n", "NOT_FOUND\r\n"},
		{"get alpha\r\n", "END\r\n"},
		{"bogus\r\n", "ERROR\r\n"},
		{"set a 0 0 1\r\nz\r\nget a\r\n", "STORED\r\nVALUE a 0 1\r\nz\r\nEND\r\n"},
	}
	for _, s := range steps {
		if got := ask(s.send); got != s.want {
			t.Errorf("%q: got %q, want %q", s.send, got, s.want)
		}
	}
}

// TestMemaslapUDP drives the ingress with libmemcached's memaslap over
// loopback UDP and requires its run to finish without failures.
func TestMemaslapUDP(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a real client for a few seconds")
	}
	bin, err := exec.LookPath("memcaslap")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("memcaslap not found: CI must install Debian's libmemcached-tools")
		}
		t.Skip("memcaslap not found: install Debian's libmemcached-tools")
	}
	conn, err := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	memcacheAgent(t, nil, conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-s", conn.LocalAddr().String(), "-U", "-T", "1", "-c", "4",
		"-x", "20000", "-X", "512").CombinedOutput()
	t.Logf("memcaslap:\n%s", out)
	if err != nil {
		t.Fatalf("memcaslap: %v", err)
	}
	if !regexp.MustCompile(`(?m)^Run time: `).Match(out) {
		t.Fatal("no summary from memcaslap")
	}
	m := regexp.MustCompile(`(?m)TPS:\s*(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatal("no TPS in memcaslap's summary")
	}
	if tps, _ := strconv.Atoi(string(m[1])); tps == 0 {
		t.Error("memcaslap completed nothing")
	}
}
