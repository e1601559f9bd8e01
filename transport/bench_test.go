package transport

import (
	"context"
	"net/netip"
	"testing"
)

func BenchmarkHeaderEncodeDecode(b *testing.B) {
	h := sampleHeader()
	h.PayloadLen = 0
	buf := make([]byte, HeaderSize)
	var out Header
	b.ReportAllocs()
	for b.Loop() {
		h.Encode(buf)
		if err := out.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUDPBatch moves batches of 32 datagrams of 120 bytes (an E3
// header and 64 bytes of payload) over loopback; one op is one datagram.
func BenchmarkUDPBatch(b *testing.B) {
	for _, xnet := range []bool{false, true} {
		name := "mmsg"
		if xnet {
			name = "xnet"
		}
		b.Run(name, func(b *testing.B) {
			a, c := listenPair(b, UDPConfig{XNet: xnet})
			const batch = 32
			out := NewMessages(batch, 256)
			for i := range out {
				out[i].N = 120
				out[i].Addr = c.LocalAddr()
			}
			in := NewMessages(batch, 256)
			b.ReportAllocs()
			b.SetBytes(120)
			for i := 0; i < b.N; i += batch {
				if _, err := a.WriteBatch(out); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < batch; {
					n, err := c.ReadBatch(in)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}

// benchChannel streams b.N messages of 120 bytes one way over a lossless
// channel and reports messages per second.
func benchChannel(b *testing.B, a, c *Endpoint) {
	ca, _ := a.Open(c.LocalAddr(), 1)
	cc, _ := c.Open(a.LocalAddr(), 1)
	msg := make([]byte, 120)
	done := make(chan error, 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	go func() {
		buf := make([]byte, 0, 256)
		var err error
		for i := 0; i < b.N; i++ {
			if buf, err = cc.Recv(context.Background(), buf[:0]); err != nil {
				break
			}
		}
		done <- err
	}()
	for i := 0; i < b.N; i++ {
		if err := ca.Send(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	st := a.Stats()
	b.ReportMetric(float64(st.MessagesSent)/float64(max(st.DatagramsOut, 1)), "msg/datagram")
}

func BenchmarkChannelMemnet(b *testing.B) {
	n := NewNetwork(nil, nil)
	defer n.Close()
	ca, _ := n.Listen(netip.MustParseAddrPort("127.0.5.1:1"))
	cc, _ := n.Listen(netip.MustParseAddrPort("127.0.5.2:1"))
	a, _ := NewEndpoint(ca, EndpointConfig{})
	c, _ := NewEndpoint(cc, EndpointConfig{})
	defer a.Close()
	defer c.Close()
	benchChannel(b, a, c)
}

func BenchmarkChannelUDP(b *testing.B) {
	a, c := udpEndpoints(b, EndpointConfig{})
	defer a.Close()
	defer c.Close()
	benchChannel(b, a, c)
}

func BenchmarkQueue(b *testing.B) {
	q := NewQueue[[]byte](1024)
	msg := make([]byte, 120)
	done := make(chan struct{})
	go func() {
		for i := 0; i < b.N; i++ {
			q.Pop(context.Background())
		}
		close(done)
	}()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		q.Push(context.Background(), msg)
	}
	<-done
}

func BenchmarkHostLink(b *testing.B) {
	nic, host, _ := NewHostLink(HostLinkConfig{Capacity: 1024})
	defer nic.Close()
	msg := make([]byte, 120)
	done := make(chan struct{})
	go func() {
		buf := make([]byte, 0, 256)
		for i := 0; i < b.N; i++ {
			buf, _ = host.Recv(context.Background(), buf[:0])
		}
		close(done)
	}()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		nic.Send(context.Background(), msg)
	}
	<-done
}
