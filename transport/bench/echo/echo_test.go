package echo

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/e3-platform/e3/transport"
)

func startGoServer(t testing.TB) (netip.AddrPort, func()) {
	t.Helper()
	conn, err := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := Serve(conn, 64); err != nil {
			t.Error(err)
		}
	}()
	return conn.LocalAddr(), func() { conn.Close(); wg.Wait() }
}

func TestGoEcho(t *testing.T) {
	addr, stop := startGoServer(t)
	defer stop()
	res, err := Load(LoadConfig{Server: addr, Window: 64, Batch: 16, Payload: 32, Requests: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 5000 || res.RPS <= 0 {
		t.Fatalf("result %+v", res)
	}
}

// TestServeDropsGarbage: what is not an E3 request is not echoed.
func TestServeDropsGarbage(t *testing.T) {
	addr, stop := startGoServer(t)
	defer stop()
	c, err := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ms := transport.NewMessages(2, 256)
	ms[0].N = copy(ms[0].Buf, "not an E3 message at all, but long enough to look like a header..")
	h := transport.Header{Kind: transport.KindRequest, Request: 7}
	h.Encode(ms[1].Buf)
	ms[1].N = transport.HeaderSize
	ms[0].Addr, ms[1].Addr = addr, addr
	if _, err := c.WriteBatch(ms); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	in := transport.NewMessages(4, 256)
	n, err := c.ReadBatch(in)
	if err != nil || n != 1 {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	var r transport.Header
	if err := r.Decode(in[0].Payload()); err != nil || r.Kind != transport.KindReply || r.Request != 7 {
		t.Fatalf("reply %+v, %v", r, err)
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.ReadBatch(in); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("garbage was answered: %v", err)
	}
}

// TestCEcho builds the C peer and checks the Go client gets replies from
// it, so run.sh compares two working servers. It needs gcc.
func TestCEcho(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a C program")
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gcc is required under CI (apt-get install gcc)")
		}
		t.Skip("gcc not found: apt-get install gcc to test the C echo peer")
	}
	bin := filepath.Join(t.TempDir(), "echo")
	if out, err := exec.Command(gcc, "-O2", "-Wall", "-Werror", "-o", bin, "../echo.c").CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	// Find a free port, then hand it to the C server.
	probe, err := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.LocalAddr()
	probe.Close()
	cmd := exec.Command(bin, "127.0.0.1", strconv.Itoa(int(addr.Port())), "32")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(100 * time.Millisecond) // let it bind
	res, err := Load(LoadConfig{Server: addr, Window: 64, Batch: 16, Payload: 32, Requests: 5000, ServerPID: cmd.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests < 5000 {
		t.Fatalf("result %+v", res)
	}
	// Burst stops and resumes the server process around each round.
	res, err = Burst(BurstConfig{Server: addr, ServerPID: cmd.Process.Pid, Requests: 2000, Rounds: 2, Batch: 32, Payload: 32})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 4000 || res.ServerCPU <= 0 || res.RPSPerCore <= 0 {
		t.Fatalf("burst result %+v: want 4000 replies and the server's CPU time", res)
	}
}

// BenchmarkUDPEcho is the one-hop echo in one process: the Go server on one
// goroutine, the closed-loop client (256 outstanding) on another, over
// loopback UDP with batches of 64. ../run.sh measures the same code as two
// processes, next to the C peer.
func BenchmarkUDPEcho(b *testing.B) {
	addr, stop := startGoServer(b)
	defer stop()
	b.ResetTimer()
	res, err := Load(LoadConfig{Server: addr, Window: 256, Batch: 64, Payload: 64, Requests: b.N})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.RPS, "req/s")
	b.ReportMetric(float64(res.MeanLatency.Microseconds()), "µs-latency")
}
