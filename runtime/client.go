package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// ClientConfig configures a [Client].
type ClientConfig struct {
	// Topology and Table locate instances (the client needs the table's
	// node addresses and instance placement, as a real client would get
	// them from the controller).
	Topology *topology.Topology
	// Endpoint tunes the client's channels; use the agents' Window.
	Endpoint transport.EndpointConfig
	// ClientLatency, if set, is the emulated one-way delay between the
	// client and node n; Now then reads emulated time, and requests are
	// stamped with their due time at the node they enter.
	ClientLatency func(n topology.NodeID, bytes int) time.Duration
	Now           func() int64
	// OnReply is called for every reply or error from the cluster, on a
	// receiver goroutine: id is the request id the client chose, err is
	// the error text for an error reply, at the emulated time the reply
	// reached the client (0 in real mode). payload is valid during the
	// call only.
	OnReply func(id uint64, payload []byte, err error, at int64)
}

// Client sends requests into a cluster over lossless channels, one per
// agent its requests enter at (the ToR's ECMP choice for a host behind
// SmartNICs), and hands replies to OnReply. It is safe for concurrent use.
type Client struct {
	cfg   ClientConfig
	ep    *transport.Endpoint
	table atomic.Pointer[Table]

	mu    sync.Mutex
	chans []*transport.Channel

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewClient starts a client on conn (which it owns and closes).
func NewClient(conn transport.BatchConn, cfg ClientConfig) (*Client, error) {
	if cfg.Topology == nil || cfg.OnReply == nil {
		return nil, errors.New("runtime: ClientConfig needs Topology and OnReply")
	}
	if cfg.Endpoint.Window == 0 {
		cfg.Endpoint.Window = 1024
	}
	cfg.Endpoint.AcceptQueue = -1
	ep, err := transport.NewEndpoint(conn, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, ep: ep, chans: make([]*transport.Channel, cfg.Topology.NumNodes())}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// SetTable gives the client the routing table to use. Channels to nodes
// whose address changed (a restarted agent) are closed; the next request
// opens one to the new address.
func (c *Client) SetTable(t *Table) {
	old := c.table.Swap(t)
	if old == nil {
		return
	}
	var stale []*transport.Channel
	c.mu.Lock()
	for n, ch := range c.chans {
		if ch != nil && old.addr(topology.NodeID(n)) != t.addr(topology.NodeID(n)) {
			stale = append(stale, ch)
			c.chans[n] = nil
		}
	}
	c.mu.Unlock()
	for _, ch := range stale {
		ch.Close()
	}
}

// Target returns the node a request for instance of app enters at: the
// instance's node, or the SmartNIC the ToR picks for its host.
func (c *Client) Target(appID, instance uint32, id uint64) (topology.NodeID, error) {
	t := c.table.Load()
	if t == nil {
		return -1, errors.New("runtime: client has no routing table")
	}
	r := t.route(appID)
	if r == nil || int(instance) >= len(r.Nodes) {
		return -1, fmt.Errorf("runtime: client: no app %d instance %d in table epoch %d", appID, instance, t.Epoch)
	}
	return WireEnd(c.cfg.Topology, r.Nodes[instance], FlowOf(^uint32(0), id)), nil
}

// Send sends one request for instance (an index into the application's
// instances; a source instance) of application appID, routed by key,
// with the client's id. It blocks only while the entry agent pushes back.
func (c *Client) Send(appID, instance uint32, key uint64, payload []byte, id uint64) error {
	n, err := c.Target(appID, instance, id)
	if err != nil {
		return err
	}
	ch, err := c.channel(n)
	if err != nil {
		return err
	}
	h := transport.Header{Kind: transport.KindRequest, App: appID, Instance: instance, Request: id, KeyHash: key, PayloadLen: uint32(len(payload))}
	if c.cfg.ClientLatency != nil {
		h.Timestamp = c.cfg.Now() + int64(c.cfg.ClientLatency(n, transport.HeaderSize+len(payload)))
	}
	m := getMsg()
	defer putMsg(m)
	m.b, err = h.Append(m.b[:0])
	if err != nil {
		return err
	}
	m.b = append(m.b, payload...)
	if err := ch.TrySend(m.b); err != transport.ErrBackpressure {
		return err
	}
	return ch.Send(c.ctx, m.b)
}

func (c *Client) channel(n topology.NodeID) (*transport.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.chans[n]; ch != nil {
		return ch, nil
	}
	addr := c.table.Load().addr(n)
	if !addr.IsValid() {
		return nil, fmt.Errorf("runtime: client: no address for node %s", c.cfg.Topology.Name(n))
	}
	ch, err := c.ep.Open(addr, ClientChannelID)
	if err != nil {
		return nil, err
	}
	c.chans[n] = ch
	c.wg.Add(1)
	go c.recv(ch)
	return ch, nil
}

func (c *Client) recv(ch *transport.Channel) {
	defer c.wg.Done()
	buf := make([]byte, 0, maxMessage)
	var h transport.Header
	for {
		b, err := ch.Recv(c.ctx, buf[:0])
		if err != nil {
			return
		}
		if h.Decode(b) != nil {
			continue
		}
		p := transport.Payload(b)
		switch h.Kind {
		case transport.KindReply:
			c.cfg.OnReply(h.Request, p, nil, h.Timestamp)
		case transport.KindError:
			c.cfg.OnReply(h.Request, nil, errors.New(string(p)), h.Timestamp)
		}
	}
}

// Close stops the client and closes its socket.
func (c *Client) Close() error {
	c.cancel()
	err := c.ep.Close()
	c.wg.Wait()
	return err
}
