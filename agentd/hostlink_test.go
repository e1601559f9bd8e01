package agentd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/services/kvs"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

func TestHelloRoundTrip(t *testing.T) {
	h := hello{From: 4, To: 5, Proof: linkProof("join-0123456789abcdef", 4, 5)}
	b := h.append(nil)
	if len(b) != helloLen {
		t.Fatalf("hello of %d bytes, want %d", len(b), helloLen)
	}
	got, err := decodeHello(b)
	if err != nil || got != h {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", h, got, err)
	}
	if linkProof("join-0123456789abcdef", 4, 5) == linkProof("join-0123456789abcdeX", 4, 5) ||
		linkProof("join-0123456789abcdef", 4, 5) == linkProof("join-0123456789abcdef", 5, 4) {
		t.Fatal("the proof does not depend on the token and the direction")
	}
}

func TestHelloErrors(t *testing.T) {
	good := (&hello{From: 0, To: 1}).append(nil)
	for _, tc := range []struct {
		name  string
		b     []byte
		field string
	}{
		{"short", good[:10], "length"},
		{"long", append(append([]byte(nil), good...), 0), "length"},
		{"magic", append([]byte("XXHL"), good[4:]...), "magic"},
		{"version", append(append([]byte("E3HL"), 9), good[5:]...), "version"},
		{"node", append(append([]byte(nil), good[:5]...), append([]byte{0xff, 0xff, 0xff, 0xff}, good[9:]...)...), "node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeHello(tc.b)
			var he *HelloError
			if !errors.As(err, &he) || he.Field != tc.field {
				t.Fatalf("decodeHello: %v, want an error about %s", err, tc.field)
			}
		})
	}
}

// FuzzHello: any bytes decode to a hello that encodes back to them, or to
// an error; never a panic.
func FuzzHello(f *testing.F) {
	f.Add((&hello{From: 0, To: 1, Proof: linkProof("join-0123456789abcdef", 0, 1)}).append(nil))
	f.Add([]byte("E3HL"))
	f.Add(make([]byte, helloLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHello(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.append(nil), b) {
			t.Fatalf("hello %x decodes to %+v, which encodes to %x", b, h, h.append(nil))
		}
	})
}

// FuzzFrame: the frame reader takes any byte stream without a panic and
// never returns a frame out of bounds; well-formed frames come back
// whole.
func FuzzFrame(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 'a', 'b', 'c'})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var buf []byte
		off := 0
		for {
			msg, err := readFrame(r, buf)
			if err != nil {
				return
			}
			if len(msg) == 0 || len(msg) > maxFrame {
				t.Fatalf("frame of %d bytes", len(msg))
			}
			n := int(binary.LittleEndian.Uint32(b[off:]))
			if n != len(msg) || !bytes.Equal(msg, b[off+4:off+4+n]) {
				t.Fatalf("frame at %d: got %d bytes, the stream has %d", off, len(msg), n)
			}
			off += 4 + n
			buf = msg
		}
	})
}

// linkPair is a host agent and its SmartNIC's agent of a one-server
// Type1-SmartNIC cluster, joined by a host link over TCP, with the kv
// store on the host.
type linkPair struct {
	topo      *topology.Topology
	host, nic *runtime.Agent
	hl        *hostLinks
	nl        *nicLinks
	table     *runtime.Table
	client    *runtime.Client
	mu        sync.Mutex
	replies   map[uint64]chan error
	token     string
}

func newLinkPair(t testing.TB) *linkPair { return newLinkPairWith(t, false) }

// newLinkPairWith joins the two agents over TCP, or with inProcess over
// an in-process transport.HostLink as in the emulated cluster.
func newLinkPairWith(t testing.TB, inProcess bool) *linkPair {
	t.Helper()
	cl, err := hwmodel.ClusterByName("1xType1-SmartNIC")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := hwmodel.Topology(cl)
	if err != nil {
		t.Fatal(err)
	}
	p := &linkPair{topo: topo, replies: map[uint64]chan error{}, token: "join-0123456789abcdef"}
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	hconn, _, err := listenData(lo, false)
	if err != nil {
		t.Fatal(err)
	}
	nconn, ln, err := listenData(lo, true)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for _, a := range []struct {
		dst  **runtime.Agent
		n    topology.NodeID
		conn transport.BatchConn
	}{{&p.host, 0, hconn}, {&p.nic, 1, nconn}} {
		*a.dst, err = runtime.New(runtime.Config{Node: a.n, Topology: topo, Cores: 2, Registry: services.Registry(), Conn: a.conn, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
	}
	kv, err := app.Load("kv.yaml", []byte("name: kv\nclass: IOT\nnodes:\n  kvs: {service: kvs}\n"), services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	p.table = &runtime.Table{Epoch: 1, Addrs: []netip.AddrPort{p.host.Addr(), p.nic.Addr()},
		Apps: []runtime.AppRoute{{ID: 1, App: kv, Nodes: []topology.NodeID{0}, Seed: 1}}}
	if inProcess {
		ln.Close()
		np, hp, err := transport.NewHostLink(transport.HostLinkConfig{Capacity: hostLinkCapacity})
		if err != nil {
			t.Fatal(err)
		}
		p.nic.AttachHostLink(0, np)
		p.host.AttachHostLink(1, hp)
	} else {
		p.nl = &nicLinks{ln: ln, a: p.nic, self: 1, host: 0, token: p.token, link: &linkState{peer: 0}, log: log,
			hostIP: func() netip.Addr { return p.host.Addr().Addr() }}
		p.hl = newHostLinks(p.host, topo, 0, p.host.Addr().Addr(), p.token, log)
		p.nl.wg.Add(1)
		go p.nl.serve()
	}
	p.host.Start()
	p.nic.Start()
	for _, a := range []*runtime.Agent{p.host, p.nic} {
		if err := a.Apply(p.table); err != nil {
			t.Fatal(err)
		}
	}
	if p.hl != nil {
		p.hl.table(p.table)
	}
	cconn, err := transport.ListenUDP(lo, transport.UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p.client, err = runtime.NewClient(cconn, runtime.ClientConfig{Topology: topo, OnReply: func(id uint64, _ []byte, err error, _ int64) {
		p.mu.Lock()
		ch := p.replies[id]
		delete(p.replies, id)
		p.mu.Unlock()
		if ch != nil {
			ch <- err
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.client.SetTable(p.table)
	t.Cleanup(func() {
		p.client.Close()
		if p.hl != nil {
			p.hl.close()
			p.nl.close()
		}
		p.host.Close()
		p.nic.Close()
	})
	return p
}

// set writes a key; the request enters at the SmartNIC (the host has no
// port of its own) and crosses the host link both ways.
func (p *linkPair) set(id uint64, key string) error {
	req, err := service.AppendEvent(nil, &service.Event{Op: service.OpSet, Token: []byte(key), Text: []byte("v")}, 0)
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	p.mu.Lock()
	p.replies[id] = ch
	p.mu.Unlock()
	if err := p.client.Send(1, 0, kvs.KeyHash([]byte(key)), req, id); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-time.After(3 * time.Second):
		return fmt.Errorf("no reply to request %d", id)
	}
}

func (p *linkPair) waitUp(t testing.TB, connects uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !(p.nl.link.up() && p.hl.links[1].up() && p.nl.link.connects.Load() >= connects) {
		if time.Now().After(deadline) {
			t.Fatalf("host link not up (connect %d) after 5 s: nic %+v host %+v", connects, p.nl.link.status(p.topo), p.hl.links[1].status(p.topo))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHostLinkOverTCP sends requests into the host's kv store through its
// SmartNIC (the traffic manager forwards them over the TCP host link and
// the replies back), breaks the link, and checks that the host dials
// again and requests complete again.
func TestHostLinkOverTCP(t *testing.T) {
	p := newLinkPair(t)
	if got := runtime.WireEnd(p.topo, 0, 1); got != 1 {
		t.Fatalf("requests for the host enter at node %d, want its SmartNIC (1)", got)
	}
	p.waitUp(t, 1)
	for i := range 200 {
		if err := p.set(uint64(1+i), fmt.Sprintf("k%d", i)); err != nil {
			t.Fatalf("request %d through the host link: %v", i, err)
		}
	}
	st := p.nl.link.status(p.topo)
	if st.In < 200 || st.Out < 200 {
		t.Fatalf("the SmartNIC's side of the link carried %d in, %d out; want at least 200 each way", st.In, st.Out)
	}
	// The connection breaks (the host's process restarted, a cable):
	// the host dials again.
	p.nl.link.closeBridge()
	p.waitUp(t, 2)
	for i := range 50 {
		if err := p.set(uint64(1000+i), fmt.Sprintf("k%d", i)); err != nil {
			t.Fatalf("request %d after the link came back: %v", i, err)
		}
	}
	if c := p.hl.links[1].connects.Load(); c != 2 {
		t.Errorf("host dialed %d times, want 2", c)
	}
}

// TestHostLinkRefusals: a dialer without the join token, or claiming to
// be another node, or from another address, is refused with a reason,
// and the link in place stays.
func TestHostLinkRefusals(t *testing.T) {
	p := newLinkPair(t)
	p.waitUp(t, 1)
	for _, tc := range []struct {
		name  string
		hello hello
		want  string
	}{
		{"wrong token", hello{From: 0, To: 1, Proof: linkProof("join-not-the-token-0000", 0, 1)}, "proof"},
		{"not its host", hello{From: 1, To: 1, Proof: linkProof(p.token, 1, 1)}, "its host is node 0"},
		{"another SmartNIC", hello{From: 0, To: 3, Proof: linkProof(p.token, 0, 3)}, "this is node 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.nic.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			c.Write(tc.hello.append(nil))
			err = readAnswer(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("answer %v, want a refusal naming %q", err, tc.want)
			}
		})
	}
	if !p.nl.link.up() || p.nl.link.connects.Load() != 1 {
		t.Fatalf("the host's link changed: %+v", p.nl.link.status(p.topo))
	}
	if err := p.set(1, "still"); err != nil {
		t.Fatalf("request after the refusals: %v", err)
	}
}

// BenchmarkHostLink times one kv write through the SmartNIC to its host
// and back, one at a time: over the TCP host link of two processes, and
// over the in-process link of the emulated cluster.
func BenchmarkHostLink(b *testing.B) {
	for _, mode := range []string{"tcp", "in-process"} {
		b.Run(mode, func(b *testing.B) {
			p := newLinkPairWith(b, mode == "in-process")
			if p.nl != nil {
				p.waitUp(b, 1)
			}
			for i := range 100 { // warm up
				if err := p.set(uint64(1+i), "warm"); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if err := p.set(uint64(1000+i), "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
