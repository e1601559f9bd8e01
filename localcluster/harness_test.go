package localcluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/controller"
	"github.com/e3-platform/e3/internal/cli"
	"github.com/e3-platform/e3/localcluster"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/services/kvs"
	"github.com/e3-platform/e3/topology"
	"github.com/e3-platform/e3/transport"
)

// cliEnv makes the test binary run the e3 command line with its
// arguments instead of the tests: the local cluster's processes (e3
// controller, e3 agent, e3 up) are this binary re-executed.
const cliEnv = "E3_LOCALCLUSTER_TEST_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) == "1" {
		os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// e3Argv is the command line that runs "e3 args...", and e3Env its
// environment.
func e3Argv(args ...string) []string { return append([]string{os.Args[0]}, args...) }

// The race detector's runtime sleeps a second before a process exits
// (to let reports finish); the children need not.
var e3Env = []string{cliEnv + "=1", "GORACE=atexit_sleep_ms=0"}

// upProcs brings up a cluster of processes on loopback with free ports,
// torn down when the test ends (failed or not).
func upProcs(t *testing.T, cfg localcluster.Config) *localcluster.Cluster {
	t.Helper()
	cfg.Procs = true
	cfg.Exe, cfg.Env = os.Args[0], e3Env
	if exe := os.Getenv("E3_TEST_EXE"); exe != "" {
		// The members run another e3 binary (an arm64 build under
		// qemu-user, say); the tests' clients stay in this one.
		cfg.Exe = exe
	}
	cfg.EphemeralPorts = true
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
		if keep := os.Getenv("E3_TEST_KEEP"); keep != "" {
			// Keep the logs and data of a run to look at.
			cfg.Dir = keep + "/" + t.Name()
			os.RemoveAll(cfg.Dir)
		}
	}
	if cfg.AgentCores == 0 {
		cfg.AgentCores = 2 // the test machine has two cores
	}
	start := time.Now()
	c, err := localcluster.Up(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Down(); err != nil {
			t.Errorf("tearing down: %v", err)
		}
	})
	t.Logf("%d replicas and %d agents up as processes in %v", len(c.Controllers()), len(c.Agents()), time.Since(start).Round(time.Millisecond))
	return c
}

// kvSpec is a key-value store of two shards, each with a backup on
// another server: a reliable collection (kvs.items) whose writes are
// replicated to the backup before they are acknowledged.
const kvSpec = `name: kv
class: IOT
nodes:
  kvs: {service: kvs, shards: 2, backups: 1}
`

// deploy deploys spec at a low offered load (the tests deploy many).
func deploy(t *testing.T, cl *controller.Client, spec string) *controller.PlanResponse {
	t.Helper()
	resp, err := cl.Deploy(context.Background(), controller.DeployRequest{Spec: spec, File: "test.yaml", RPS: 500})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// kvClient drives the kv application through a runtime.Client, with the
// routing table it long-polls from the controller (as a real client's
// proxy would), one call at a time per caller.
type kvClient struct {
	t     *testing.T
	topo  *topology.Topology
	ctl   *controller.Client
	cl    *runtime.Client
	app   string
	seq   atomic.Uint64
	mu    sync.Mutex
	ws    map[uint64]chan kvReply
	route atomic.Pointer[kvRoute]
	// tables receives the epoch and arrival time of every table taken.
	tables chan tableAt
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type kvRoute struct {
	table *runtime.Table
	id    uint32
	node  *app.Node
	at    time.Time
}

type tableAt struct {
	epoch uint64
	at    time.Time
}

type kvReply struct {
	payload []byte
	err     error
}

func newKVClient(t *testing.T, c *localcluster.Cluster, appName string, bind netip.Addr) *kvClient {
	t.Helper()
	conn, err := transport.ListenUDP(netip.AddrPortFrom(bind, 0), transport.UDPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	k := &kvClient{t: t, topo: c.Topology(), app: appName, ws: map[uint64]chan kvReply{}, tables: make(chan tableAt, 1024),
		ctl: &controller.Client{Endpoints: c.Endpoints(), Token: c.AdminToken(), Retry: -1}}
	k.cl, err = runtime.NewClient(conn, runtime.ClientConfig{Topology: k.topo, OnReply: k.onReply})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	k.wg.Add(1)
	go k.watch(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for k.route.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no routing table with application %s after 10 s", appName)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(k.close)
	return k
}

// watch long-polls the routing table and takes every newer one.
func (k *kvClient) watch(ctx context.Context) {
	defer k.wg.Done()
	var epoch uint64
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		r, err := k.ctl.Routes(cctx, epoch, 2*time.Second)
		cancel()
		if err != nil || r.Epoch <= epoch {
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		epoch = r.Epoch
		tab, _, err := r.Table(k.topo, services.Registry())
		if err != nil {
			continue
		}
		now := time.Now()
		for _, a := range tab.Apps {
			if a.App.Name == k.app {
				k.route.Store(&kvRoute{table: tab, id: a.ID, node: a.App.Sources()[0], at: now})
				k.cl.SetTable(tab)
				select {
				case k.tables <- tableAt{tab.Epoch, now}:
				default:
				}
			}
		}
	}
}

func (k *kvClient) onReply(id uint64, p []byte, err error, _ int64) {
	k.mu.Lock()
	w := k.ws[id]
	delete(k.ws, id)
	k.mu.Unlock()
	if w != nil {
		w <- kvReply{payload: append([]byte(nil), p...), err: err}
	}
}

var errTimeout = errors.New("no reply in time")

// call sends a request for key and waits up to timeout for its reply.
func (k *kvClient) call(key string, payload []byte, timeout time.Duration) (int, []byte, error) {
	r := k.route.Load()
	h := kvs.KeyHash([]byte(key))
	shard := app.ShardOf(h, r.node.Shards)
	id := k.seq.Add(1)
	ch := make(chan kvReply, 1)
	k.mu.Lock()
	k.ws[id] = ch
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		delete(k.ws, id)
		k.mu.Unlock()
	}()
	if err := k.cl.Send(r.id, uint32(r.node.Primary(shard).Index), h, payload, id); err != nil {
		return shard, nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case rep := <-ch:
		return shard, rep.payload, rep.err
	case <-t.C:
		return shard, nil, errTimeout
	}
}

func kvRequest(op service.Op, key, value string) []byte {
	b, err := service.AppendEvent(nil, &service.Event{Op: op, Token: []byte(key), Text: []byte(value)}, 0)
	if err != nil {
		panic(err)
	}
	return b
}

// set writes key; nil means the store acknowledged it.
func (k *kvClient) set(key, value string, timeout time.Duration) (int, error) {
	shard, resp, err := k.call(key, kvRequest(service.OpSet, key, value), timeout)
	if err != nil {
		return shard, err
	}
	if len(resp) < 1 || kvs.Status(resp[0]) != kvs.StatusOK {
		return shard, fmt.Errorf("set %s: reply %x", key, resp)
	}
	return shard, nil
}

// get reads key.
func (k *kvClient) get(key string, timeout time.Duration) (string, bool, error) {
	_, resp, err := k.call(key, kvRequest(service.OpGet, key, ""), timeout)
	if err != nil {
		return "", false, err
	}
	if len(resp) < kvs.ReplyHeaderLen {
		return "", false, fmt.Errorf("get %s: reply %x", key, resp)
	}
	if kvs.Status(resp[0]) == kvs.StatusNotFound {
		return "", false, nil
	}
	return string(resp[kvs.ReplyHeaderLen:]), true, nil
}

func (k *kvClient) close() {
	k.cancel()
	k.wg.Wait()
	k.cl.Close()
}

// ack is one acknowledged write.
type ack struct {
	key, value string
	shard      int
	at         time.Time
}

// writers runs n closed-loop writers of unique keys until stop is
// closed; each call waits up to timeout. It records acknowledged writes
// and counts the others.
type writers struct {
	mu     sync.Mutex
	acks   []ack
	failed atomic.Int64
	wg     sync.WaitGroup
	stop   chan struct{}
}

func startWriters(k *kvClient, n int, timeout time.Duration) *writers {
	w := &writers{stop: make(chan struct{})}
	for i := range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for j := 0; ; j++ {
				select {
				case <-w.stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", i, j)
				val := fmt.Sprintf("value of %s written at %d", key, time.Now().UnixNano())
				shard, err := k.set(key, val, timeout)
				if err != nil {
					w.failed.Add(1)
					if !errors.Is(err, errTimeout) {
						time.Sleep(5 * time.Millisecond) // an error reply comes fast: do not spin
					}
					continue
				}
				w.mu.Lock()
				w.acks = append(w.acks, ack{key, val, shard, time.Now()})
				w.mu.Unlock()
			}
		}()
	}
	return w
}

func (w *writers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

func (w *writers) halt() []ack {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]ack(nil), w.acks...)
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReplicated waits until every durable instance of the cluster's
// agents has a backup attached (as their /v1/status reports).
func waitReplicated(t *testing.T, c *localcluster.Cluster, app string, primaries int) {
	t.Helper()
	waitFor(t, 15*time.Second, "every primary replicated to its backup", func() bool {
		n := 0
		for _, m := range c.Agents() {
			st, err := agentStatus(m.HTTP)
			if err != nil {
				return false
			}
			for _, in := range st.Instances {
				if in.App == app && in.Durable && in.Replicated {
					n++
				}
			}
		}
		return n >= primaries
	})
}

func serverOf(node string) string {
	i := strings.LastIndexByte(node, '/')
	return node[:i]
}
