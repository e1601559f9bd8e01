package transport_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/e3-platform/e3/transport"
)

// A request message: header, then payload.
func ExampleHeader() {
	h := transport.Header{Kind: transport.KindRequest, App: 3, Instance: 7, Request: 42,
		Weight: transport.InitialWeight, PayloadLen: 5}
	msg, _ := h.Append(nil)
	msg = append(msg, "hello"...)

	var got transport.Header
	if err := got.Decode(msg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Kind, got.Request, string(transport.Payload(msg)))

	msg[0] = 9 // a version we do not speak
	fmt.Println(got.Decode(msg))
	// Output:
	// request 42 hello
	// transport: bad header: version 9: want 1
}

// A handler that emits three messages splits its weight exactly.
func ExampleSplitWeight() {
	first, each := transport.SplitWeight(100, 3)
	fmt.Println(first, each, first+2*each)
	// Output: 34 33 100
}

// A channel across a lossy in-memory network: everything arrives, in order.
func ExampleEndpoint() {
	net := transport.NewNetwork(nil, rand.New(rand.NewPCG(1, 1)))
	defer net.Close()
	net.SetDefaultLink(transport.LinkConfig{Loss: 0.2, Duplicate: 0.1, Reorder: 0.1})
	ca, _ := net.Listen(netip.MustParseAddrPort("127.0.0.1:1000"))
	cb, _ := net.Listen(netip.MustParseAddrPort("127.0.0.2:1000"))
	a, _ := transport.NewEndpoint(ca, transport.EndpointConfig{})
	b, _ := transport.NewEndpoint(cb, transport.EndpointConfig{})
	defer a.Close()
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := a.Open(b.LocalAddr(), 1)
	in, _ := b.Open(a.LocalAddr(), 1)
	go func() {
		for i := range 5 {
			out.Send(ctx, fmt.Appendf(nil, "message %d", i))
		}
	}()
	for range 5 {
		m, err := in.Recv(ctx, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(string(m))
	}
	// Output:
	// message 0
	// message 1
	// message 2
	// message 3
	// message 4
}
