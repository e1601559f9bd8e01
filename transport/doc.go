// Package transport moves E3 messages between DAG instances: on the wire
// between nodes, inside a node, and between a SmartNIC and its host.
//
// It has four layers; each is usable on its own and the runtime picks one
// per edge by distance (same node: a [Queue]; SmartNIC and its host: a
// [HostLink]; otherwise: a [Channel] over UDP).
//
// # Header
//
// Every E3 message starts with a fixed-size, versioned, little-endian
// [Header] (56 bytes): kind, application, destination DAG instance, request
// id, origin (ingress node and slot, so completions find their way back),
// completion weight, key hash, timestamp and payload length. [Header.Decode]
// validates version, kind, flags and the payload length against the buffer,
// and its errors name the field and the value. Encoding and decoding do not
// allocate.
//
// Completion by weight: the ingress gives a request [InitialWeight]; every
// emit divides the sender's weight among its messages with [SplitWeight]
// (exactly: the remainder goes to the first), and a handler that emits
// nothing returns its weight in a [KindCompletion] message. The request is
// complete when the ingress has received InitialWeight back.
//
// # Datagram connections
//
// [BatchConn] is an unreliable datagram socket that moves a batch of
// [Message] values per call, reusing their buffers. [UDPConn] implements it
// with one recvmmsg or sendmmsg system call per batch on Linux and no
// allocation per datagram; [Network] is an in-memory network for tests whose
// links drop, duplicate, reorder, delay and bound datagrams, driven by a
// seeded random source and a [Clock] (a [ManualClock] in tests), so a run
// can be replayed.
//
// # Channels
//
// An [Endpoint] runs lossless, in-order, flow-controlled channels over any
// BatchConn. Per direction, messages carry 64-bit sequence numbers; the
// receiver acknowledges cumulatively with a 64-message selective-ack bitmap;
// the sender retransmits on selective-ack evidence at once (fast
// retransmit) and otherwise on a timeout that follows the measured round
// trip and backs off exponentially; duplicates are suppressed. Several
// messages travel in one datagram whenever they are queued together.
//
// Flow control is by credit: a receiver grants room for Window messages
// beyond the last one its application consumed, so credit returns only as
// the application reads. A sender without credit waits in [Channel.Send] or
// gets [ErrBackpressure] from [Channel.TrySend]: a full receiver pushes back
// on its sender and no message is dropped silently. If the peer stays
// silent through MaxRetries timeouts, the channel fails with
// [ErrPeerUnreachable], so the caller always learns the fate of its
// messages. Time comes from the endpoint's Clock.
//
// # Queues and the host link
//
// [Queue] is a bounded queue between instances on one node with the same
// push-back contract. [NewHostLink] joins a SmartNIC agent and its host
// agent (one process in the emulated cluster) with a bounded link that
// delays each message by a configured latency, the PCIe analogue.
//
// # Example
//
// Two endpoints on loopback UDP, one channel between them:
//
//	a, _ := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
//	b, _ := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
//	ea, _ := transport.NewEndpoint(a, transport.EndpointConfig{})
//	eb, _ := transport.NewEndpoint(b, transport.EndpointConfig{})
//	defer ea.Close()
//	defer eb.Close()
//
//	ch, _ := ea.Open(eb.LocalAddr(), 1) // channel id 1 between the two
//	h := transport.Header{Kind: transport.KindRequest, App: 3, Instance: 7,
//		Request: 42, Weight: transport.InitialWeight, PayloadLen: 5}
//	msg, _ := h.Append(nil)
//	msg = append(msg, "hello"...)
//	_ = ch.Send(ctx, msg) // waits while the receiver has no room
//
//	in, _ := eb.Accept(ctx) // or eb.Open(ea.LocalAddr(), 1)
//	got, _ := in.Recv(ctx, nil)
//	var rh transport.Header
//	_ = rh.Decode(got) // rh.Request == 42, transport.Payload(got) == "hello"
//
// Tests swap the UDP sockets for [Network] endpoints and the wall clock for
// a ManualClock; nothing else changes.
package transport
