package runtime

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/transport"
)

// fanSpec is a three-stage DAG of echo services (each replies and passes
// its request on) with every routing policy: key_hash into b, round_robin
// into c, broadcast into d (3 copies of each message).
const fanSpec = `
name: fan
class: RTA
nodes:
  a: {service: echo, shards: 2}
  b: {service: echo, shards: 3}
  c: {service: echo, shards: 2}
  d: {service: echo, shards: 3}
edges:
  - {from: a, to: b, policy: key_hash}
  - {from: b, to: c, policy: round_robin}
  - {from: b, to: d, policy: broadcast}
workload: {key_space: 1000}
`

// spread puts instances round the nodes of a 2xType1-SmartNIC cluster, so
// that every mechanism is used: same node, host link, ToR between
// SmartNICs, and a host reached through its SmartNIC.
func spread(i *app.Instance) string {
	nodes := []string{"r0/s0/host", "r0/s0/nic0", "r0/s1/host", "r0/s1/nic0"}
	return nodes[(i.Index*7+i.Shard)%len(nodes)]
}

func sendAll(t *testing.T, tc *testCluster, appID uint32, a *app.App, n int) {
	t.Helper()
	src := a.Sources()[0]
	for i := 0; i < n; i++ {
		key := uint64(i*2654435761) % 1000
		inst := src.Primary(i % src.Shards)
		payload := make([]byte, 16)
		payload[0] = byte(i)
		if err := tc.client.Send(appID, uint32(inst.Index), key, payload, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFanOutCompletes sends requests through a fan-out DAG spread over two
// servers and checks every request completes exactly once with no error,
// and that the reply waited for every leaf: the messages handled at the
// leaves are exactly the request count times the fan-out.
func TestFanOutCompletes(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	a := loadApp(t, fanSpec)
	id := tc.deploy(a, spread)
	const n = 300
	sendAll(t, tc, id, a, n)
	tc.waitReplies(n, 20*time.Second)
	tc.checkExactlyOnce(n)
	counts := map[string]uint64{}
	for _, ag := range tc.agents {
		for _, s := range ag.instanceStats(nil) {
			counts[strings.Split(s.Instance, ".")[0]] += s.Messages
		}
	}
	want := map[string]uint64{"a": n, "b": n, "c": n, "d": 3 * n}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("node %s handled %d messages, want %d", k, counts[k], v)
		}
	}
	var completed uint64
	for _, ag := range tc.agents {
		completed += ag.Stats().Completed
	}
	if completed != n {
		t.Errorf("ingresses completed %d requests, want %d", completed, n)
	}
}

func (tc *testCluster) checkExactlyOnce(n int) {
	tc.t.Helper()
	time.Sleep(50 * time.Millisecond) // a duplicate would arrive now
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for i := 1; i <= n; i++ {
		switch c := tc.replies[uint64(i)]; {
		case c != 1:
			tc.t.Errorf("request %d: %d replies", i, c)
		case tc.errs[uint64(i)] != "":
			tc.t.Errorf("request %d: error %s", i, tc.errs[uint64(i)])
		}
	}
	if len(tc.replies) != n {
		tc.t.Errorf("%d distinct replies, want %d", len(tc.replies), n)
	}
}

// TestLossyNetworkExactlyOnce runs the fan-out DAG over a network that
// loses, duplicates and reorders 10 % of datagrams each: the lossless
// channels must still deliver every message once, so every request
// completes exactly once.
func TestLossyNetworkExactlyOnce(t *testing.T) {
	seed := uint64(42)
	t.Logf("seed %d", seed)
	tc := newTestCluster(t, clusterOpts{seed: seed, link: transport.LinkConfig{Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, ReorderDelay: 200 * time.Microsecond},
		epCfg: transport.EndpointConfig{MinRTO: time.Millisecond, InitialRTO: 2 * time.Millisecond}, timeout: 20 * time.Second})
	a := loadApp(t, fanSpec)
	id := tc.deploy(a, spread)
	const n = 200
	sendAll(t, tc, id, a, n)
	tc.waitReplies(n, 30*time.Second)
	tc.checkExactlyOnce(n)
	st := tc.net.Stats()
	t.Logf("network: %+v", st)
	if st.Lost == 0 || st.Duplicated == 0 || st.Reordered == 0 {
		t.Errorf("the network did not misbehave: %+v", st)
	}
}

// TestStaleEpochRefused: an agent keeps the newest table.
func TestStaleEpochRefused(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	a := loadApp(t, fanSpec)
	tc.deploy(a, spread)
	ag := tc.agents[0]
	old := *tc.table
	old.Epoch = tc.table.Epoch - 1
	err := ag.Apply(&old)
	if !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale table: %v, want ErrStaleEpoch", err)
	}
	same := *tc.table
	if err := ag.Apply(&same); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("table of the same epoch: %v, want ErrStaleEpoch", err)
	}
	if ag.Epoch() != tc.table.Epoch {
		t.Errorf("epoch %d after refusals, want %d", ag.Epoch(), tc.table.Epoch)
	}
	newer := *tc.table
	newer.Epoch++
	if err := ag.Apply(&newer); err != nil {
		t.Fatalf("newer table: %v", err)
	}
}

// TestTimeoutReplies: a request whose message is lost for good (its next
// stage sits on a node whose agent is gone) gets an error reply from the
// ingress when the timeout expires, not silence.
func TestTimeoutReplies(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{timeout: 300 * time.Millisecond,
		epCfg: transport.EndpointConfig{MinRTO: time.Millisecond, InitialRTO: 5 * time.Millisecond, MaxRetries: 1000}})
	a := loadApp(t, `
name: two
class: RTA
nodes:
  a: {service: echo}
  b: {service: echo}
edges:
  - {from: a, to: b}
`)
	id := tc.deploy(a, func(i *app.Instance) string {
		if i.Node.Name == "a" {
			return "r0/s0/nic0"
		}
		return "r0/s1/nic0"
	})
	// Stop b's agent: a's message to it is never acknowledged.
	tc.agents[3].Close()
	start := time.Now()
	if err := tc.client.Send(id, 0, 1, []byte("x"), 1); err != nil {
		t.Fatal(err)
	}
	tc.waitReplies(1, 5*time.Second)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("error reply after %v, before the timeout", d)
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if !strings.Contains(tc.errs[1], "timed out") {
		t.Errorf("reply %q, want a timeout error", tc.errs[1])
	}
}

// TestUnknownInstanceRejected: a request for an instance the agent does
// not run gets an error reply at once.
func TestUnknownInstanceRejected(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{})
	a := loadApp(t, fanSpec)
	id := tc.deploy(a, spread)
	if err := tc.client.Send(id, 4000, 1, nil, 1); err == nil {
		t.Fatal("client sent to an instance outside the table")
	}
	// Drain the instance: new requests are refused with an error.
	src := a.Sources()[0].Primary(0)
	node := tc.table.Apps[0].Nodes[src.Index]
	if err := tc.agents[node].Drain(id, src.ID); err != nil {
		t.Fatal(err)
	}
	if err := tc.client.Send(id, uint32(src.Index), 1, []byte("x"), 9); err != nil {
		t.Fatal(err)
	}
	tc.waitReplies(1, 5*time.Second)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if !strings.Contains(tc.errs[9], "not running") {
		t.Errorf("reply %q, want 'not running'", tc.errs[9])
	}
}
