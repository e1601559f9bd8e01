package runtime

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/collections/durable"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

func TestMain(m *testing.M) {
	if runAgentChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

// agentChildEnv, when set, makes the test binary run one agent (see
// runAgentChild) instead of the tests.
const agentChildEnv = "E3_RUNTIME_AGENT_CHILD"

// childSpec is what the parent tells a child agent.
type childSpec struct {
	Cluster string   `json:"cluster"`
	Node    string   `json:"node"`
	Dir     string   `json:"dir"`
	Epoch   uint64   `json:"epoch"`
	Addrs   []string `json:"addrs"` // data address of every node
}

// runAgentChild runs the agent of childSpec: it deploys the KVS store
// (kvsBackupSpec placed by kvsPlace) with the table the spec gives,
// recovering from the state directory, with fsync on; prints "ready" once
// its instance's backup is attached; and serves until it is killed.
func runAgentChild() bool {
	js := os.Getenv(agentChildEnv)
	if js == "" {
		return false
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "agent child:", err)
		os.Exit(2)
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(js), &spec); err != nil {
		fail(err)
	}
	topo, tab, err := childTable(spec)
	if err != nil {
		fail(err)
	}
	self, _ := topo.Lookup(spec.Node)
	conn, err := transport.ListenUDP(tab.Addrs[self], transport.UDPConfig{})
	if err != nil {
		fail(err)
	}
	ag, err := New(Config{Node: self, Topology: topo, CoreKind: hwmodel.CnMIPS64, Cores: 2, Registry: services.Registry(), Conn: conn,
		DataDir: spec.Dir, Durable: durable.Options{}, Recover: true})
	if err != nil {
		fail(err)
	}
	ag.Start()
	if err := ag.Apply(tab); err != nil {
		fail(err)
	}
	for {
		if s := ag.InstanceStats(); len(s) == 1 && s[0].Replicated {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("ready")
	select {}
}

// childTable builds the topology and the table of a child spec: the
// parent builds the same.
func childTable(spec childSpec) (*topology.Topology, *Table, error) {
	cl, err := hwmodel.ClusterByName(spec.Cluster)
	if err != nil {
		return nil, nil, err
	}
	topo, err := hwmodel.Topology(cl)
	if err != nil {
		return nil, nil, err
	}
	a, err := app.Load("store.yaml", []byte(kvsBackupSpec), services.Registry())
	if err != nil {
		return nil, nil, err
	}
	t := &Table{Epoch: spec.Epoch, Addrs: make([]netip.AddrPort, topo.NumNodes())}
	for i, s := range spec.Addrs {
		if t.Addrs[i], err = netip.ParseAddrPort(s); err != nil {
			return nil, nil, err
		}
	}
	nodes := make([]topology.NodeID, len(a.Instances()))
	for _, in := range a.Instances() {
		if nodes[in.Index], err = topo.Lookup(kvsPlace(in)); err != nil {
			return nil, nil, err
		}
	}
	t.Apps = []AppRoute{{ID: 1, App: a, Nodes: nodes, Seed: 1}}
	return topo, t, nil
}

// freeUDPPort returns a loopback address with a port nobody uses now.
func freeUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// TestKillAgentProcessRecoversState is the issue's "kill an agent process
// mid-run and restart it": the agent that runs a KVS primary is a child
// process (this test binary, re-executed), with fsync on and its backup
// on an agent of this process. Four writers set keys through it; it is
// killed with SIGKILL while they write, restarted on the same state
// directory (at a new address, as a restarted agent registers), and every
// write it had acknowledged is read back from it.
func TestKillAgentProcessRecoversState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const cluster = "2xType1-SmartNIC"
	childNode := "r0/s0/nic0"
	dir := t.TempDir()
	spec := childSpec{Cluster: cluster, Node: childNode, Dir: dir + "/child", Epoch: 1}
	topo, _, err := childTable(childSpec{Cluster: cluster, Addrs: nil, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	self, _ := topo.Lookup(childNode)
	// The other agents run here, on loopback UDP.
	var agents []*Agent
	spec.Addrs = make([]string, topo.NumNodes())
	for n := range topo.Nodes() {
		if n == self {
			spec.Addrs[n] = freeUDPPort(t)
			agents = append(agents, nil)
			continue
		}
		conn, err := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
		if err != nil {
			t.Fatal(err)
		}
		kind := hwmodel.XeonE5v3
		if topo.Node(n).Kind == topology.SmartNIC {
			kind = hwmodel.CnMIPS64
		}
		ag, err := New(Config{Node: n, Topology: topo, CoreKind: kind, Cores: 2, Registry: services.Registry(), Conn: conn,
			DataDir: fmt.Sprintf("%s/n%d", dir, n), Durable: durable.Options{}})
		if err != nil {
			t.Fatal(err)
		}
		ag.Start()
		defer ag.Close()
		agents = append(agents, ag)
		spec.Addrs[n] = ag.Addr().String()
	}

	acked := map[string]string{}
	for round := range 2 {
		_, tab, err := childTable(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, ag := range agents {
			if ag != nil {
				if err := ag.Apply(tab); err != nil {
					t.Fatal(err)
				}
			}
		}
		js, _ := json.Marshal(spec)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), agentChildEnv+"="+string(js))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		defer func() {
			if !killed {
				cmd.Process.Kill()
				cmd.Wait()
			}
		}()
		ready := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(out)
			if sc.Scan() && sc.Text() == "ready" {
				ready <- nil
			} else {
				ready <- fmt.Errorf("child said %q (%v)", sc.Text(), sc.Err())
			}
			for sc.Scan() {
			}
		}()
		select {
		case err := <-ready:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("child agent not ready after 20 s")
		}
		cl := newKVSClient(t, topo, tab)
		if round == 1 {
			// After the restart: every write acknowledged before the kill
			// is back.
			for k, v := range acked {
				got, ok, err := cl.get(k)
				if err != nil || !ok || got != v {
					t.Fatalf("after the restart key %s: got %q (found %v, err %v), want %q", k, got, ok, err, v)
				}
			}
			t.Logf("all %d keys acknowledged before SIGKILL read back from the restarted agent", len(acked))
			cl.close()
			break
		}
		// Write until well into the run, then kill the child mid-write.
		var mu sync.Mutex
		var count atomic.Int64
		var stop atomic.Bool
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					k, v := fmt.Sprintf("w%d-%d", w, i%150), fmt.Sprintf("round %d write %d of writer %d", round, i, w)
					if err := cl.set(k, v); err != nil {
						return // the child is gone
					}
					mu.Lock()
					acked[k] = v
					mu.Unlock()
					count.Add(1)
				}
			}()
		}
		for deadline := time.Now().Add(20 * time.Second); count.Load() < 300 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed = true
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, not by SIGKILL", werr)
		}
		stop.Store(true)
		cl.close() // the writers' calls in flight fail now
		wg.Wait()
		if count.Load() < 100 {
			t.Fatalf("only %d writes acknowledged before the kill", count.Load())
		}
		t.Logf("round %d: %d writes acknowledged (%d keys) before SIGKILL", round, count.Load(), len(acked))
		// The restarted agent registers anew, at another address.
		spec.Addrs[self] = freeUDPPort(t)
		spec.Epoch++
	}
}

// kvsClient calls the store through its own runtime.Client.
type kvsClient struct {
	t   *testing.T
	cl  *Client
	mu  sync.Mutex
	ws  map[uint64]chan reply
	seq atomic.Uint64
}

func newKVSClient(t *testing.T, topo *topology.Topology, tab *Table) *kvsClient {
	conn, err := transport.ListenUDP(netip.MustParseAddrPort("127.0.0.1:0"), transport.UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	k := &kvsClient{t: t, ws: map[uint64]chan reply{}}
	k.cl, err = NewClient(conn, ClientConfig{Topology: topo, OnReply: func(id uint64, p []byte, err error, _ int64) {
		k.mu.Lock()
		w := k.ws[id]
		delete(k.ws, id)
		k.mu.Unlock()
		if w != nil {
			w <- reply{payload: append([]byte(nil), p...), err: err}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	k.cl.SetTable(tab)
	return k
}

// close closes the client and fails the calls waiting for replies.
func (k *kvsClient) close() {
	k.cl.Close()
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, w := range k.ws {
		w <- reply{err: fmt.Errorf("client closed")}
		delete(k.ws, id)
	}
}

func (k *kvsClient) call(key string, payload []byte) ([]byte, error) {
	id := k.seq.Add(1)
	ch := make(chan reply, 1)
	k.mu.Lock()
	k.ws[id] = ch
	k.mu.Unlock()
	if err := k.cl.Send(1, 0, kvsKeyHash(key), payload, id); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.payload, r.err
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("no reply for %s", key)
	}
}

func (k *kvsClient) set(key, value string) error {
	resp, err := k.call(key, kvsRequest(service.OpSet, key, value))
	return checkSet(key, resp, err)
}

func (k *kvsClient) get(key string) (string, bool, error) {
	resp, err := k.call(key, kvsRequest(service.OpGet, key, ""))
	return parseGet(key, resp, err)
}
