package runtime

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/kvs"
	"github.com/e3-platform/e3/topology"
)

// kvsBackupSpec is one KVS shard with a backup.
const kvsBackupSpec = `
name: store
class: IOT
nodes:
  kvs: {service: kvs, backups: 1}
`

// kvsPlace puts the primary on the first server's SmartNIC and the backup
// on the second server's host.
func kvsPlace(i *app.Instance) string {
	if i.IsPrimary() {
		return "r0/s0/nic0"
	}
	return "r0/s1/host"
}

var callID atomic.Uint64

func init() { callID.Store(1 << 40) }

// call sends one request to instance inst of app appID and waits for its
// reply.
func (tc *testCluster) call(appID, inst uint32, key uint64, payload []byte) ([]byte, error) {
	id := callID.Add(1)
	ch := make(chan reply, 1)
	tc.mu.Lock()
	tc.waiters[id] = ch
	tc.mu.Unlock()
	if err := tc.client.Send(appID, inst, key, payload, id); err != nil {
		tc.mu.Lock()
		delete(tc.waiters, id)
		tc.mu.Unlock()
		return nil, err
	}
	select {
	case r := <-ch:
		return r.payload, r.err
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("request %d: no reply in 10 s", id)
	}
}

func kvsRequest(op service.Op, key, value string) []byte {
	b, err := service.AppendEvent(nil, &service.Event{Op: op, Token: []byte(key), Text: []byte(value)}, 0)
	if err != nil {
		panic(err)
	}
	return b
}

// kvsSet and kvsGet talk to the store's only shard.
func (tc *testCluster) kvsSet(appID uint32, key, value string) error {
	resp, err := tc.call(appID, 0, kvsKeyHash(key), kvsRequest(service.OpSet, key, value))
	return checkSet(key, resp, err)
}

func (tc *testCluster) kvsGet(appID uint32, key string) (string, bool, error) {
	resp, err := tc.call(appID, 0, kvsKeyHash(key), kvsRequest(service.OpGet, key, ""))
	return parseGet(key, resp, err)
}

func kvsKeyHash(k string) uint64 { return kvs.KeyHash([]byte(k)) }

func checkSet(key string, resp []byte, err error) error {
	if err != nil {
		return err
	}
	if len(resp) < 1 || kvs.Status(resp[0]) != kvs.StatusOK {
		return fmt.Errorf("set %s: reply %x", key, resp)
	}
	return nil
}

func parseGet(key string, resp []byte, err error) (string, bool, error) {
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

func (tc *testCluster) node(name string) topology.NodeID {
	tc.t.Helper()
	n, err := tc.topo.Lookup(name)
	if err != nil {
		tc.t.Fatal(err)
	}
	return n
}

// publish applies t everywhere, first to the nodes in first (a move's
// destination before the others, so that what the source releases finds
// it routed), and gives it to the client.
func (tc *testCluster) publish(t *Table, first ...topology.NodeID) {
	tc.t.Helper()
	done := map[topology.NodeID]bool{}
	order := append([]topology.NodeID(nil), first...)
	for n := range tc.agents {
		order = append(order, topology.NodeID(n))
	}
	for _, n := range order {
		if done[n] {
			continue
		}
		done[n] = true
		if tc.agents[n].closed.Load() {
			continue
		}
		if err := tc.agents[n].Apply(t); err != nil {
			tc.t.Fatal(err)
		}
	}
	tc.table = t
	tc.client.SetTable(t)
}

var moveID atomic.Uint64

// migrate moves instance inst of app appID to node to with the table
// protocol, and returns the source's final status.
func (tc *testCluster) migrate(appID uint32, inst int, to topology.NodeID) MigrationStatus {
	tc.t.Helper()
	mv := Move{ID: moveID.Add(1), App: appID, Instance: uint32(inst), To: to}
	src := tc.table.route(appID).Nodes[inst]
	t1, err := tc.table.StartMove(mv)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.publish(t1, to)
	var st MigrationStatus
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, ok := tc.agents[src].MigrationStatus(mv.ID)
		if !ok {
			tc.t.Fatalf("source %s does not know migration %d", tc.topo.Name(src), mv.ID)
		}
		if s.Phase >= PhaseReady {
			st = s
			break
		}
		if time.Now().After(deadline) {
			tc.t.Fatalf("migration %d still %v after 20 s", mv.ID, s.Phase)
		}
		time.Sleep(200 * time.Microsecond)
	}
	t2, err := t1.EndMove(mv.ID, st.Phase == PhaseReady)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.publish(t2, to)
	return st
}

// TestMigrationUnderLoadKVS moves a KVS primary with a backup from a
// SmartNIC to a host while four writers keep writing: no request fails,
// every acknowledged write is read back from the destination, the
// source's file is gone and the backup was seeded from the destination.
func TestMigrationUnderLoadKVS(t *testing.T) {
	dir := t.TempDir()
	tc := newTestCluster(t, clusterOpts{dataDir: dir, cores: 2})
	a := loadApp(t, kvsBackupSpec)
	id := tc.deploy(a, kvsPlace)
	waitReplicated(t, tc, 1)
	var (
		mu    sync.Mutex
		acked = map[string]string{}
		stop  atomic.Bool
		wg    sync.WaitGroup
		fails atomic.Int64
		count atomic.Int64
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k, v := fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("value %d of writer %d", i, w)
				if i%3 == 2 {
					k = fmt.Sprintf("w%d-counter", w) // overwritten: the last acknowledged value must win
				}
				if err := tc.kvsSet(id, k, v); err != nil {
					fails.Add(1)
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
				count.Add(1)
			}
		}()
	}
	waitCount := func(n int64) {
		for target := count.Load() + n; count.Load() < target && fails.Load() == 0; {
			time.Sleep(time.Millisecond)
		}
	}
	waitCount(200)
	st := tc.migrate(id, 0, tc.node("r0/s0/host"))
	waitCount(200)
	stop.Store(true)
	wg.Wait()
	if st.Phase != PhaseReady {
		t.Fatalf("migration ended %v: %s", st.Phase, st.Err)
	}
	t.Logf("migration: drain %v, ship %v, %d bytes of state up to LSN %d; %d writes acknowledged", st.Drain, st.Ship, st.Bytes, st.LSN, count.Load())
	if got := tc.agents[tc.node("r0/s0/host")].Instances(id); len(got) != 1 || got[0] != "kvs.0" {
		t.Fatalf("destination runs %v", got)
	}
	if got := tc.agents[tc.node("r0/s0/nic0")].Instances(id); len(got) != 0 {
		t.Fatalf("source still runs %v", got)
	}
	for k, v := range acked {
		got, ok, err := tc.kvsGet(id, k)
		if err != nil || !ok || got != v {
			t.Fatalf("key %s: got %q (found %v, err %v), want %q", k, got, ok, err, v)
		}
	}
	t.Logf("all %d keys read back from the destination", len(acked))
	srcFile := tc.agents[tc.node("r0/s0/nic0")].statePath(a, a.Instances()[0])
	if _, err := os.Stat(srcFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("source file %s still there: %v", srcFile, err)
	}
	waitReplicated(t, tc, 1)
	// The status the source reported at the end.
	src := tc.agents[tc.node("r0/s0/nic0")]
	if _, ok := src.MigrationStatus(st.ID); ok {
		t.Errorf("the source still lists migration %d after the commit", st.ID)
	}
}

// waitReplicated waits until n durable primaries report a backup attached.
func waitReplicated(t *testing.T, tc *testCluster, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		for _, ag := range tc.agents {
			for _, s := range ag.InstanceStats() {
				if s.Durable && s.Replicated {
					got++
				}
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d primaries have a backup after 10 s", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMigrationMovesMemoryState moves a KVS instance of a cluster without
// state directories: the collections' contents move with it.
func TestMigrationMovesMemoryState(t *testing.T) {
	tc := newTestCluster(t, clusterOpts{cores: 2})
	a := loadApp(t, kvsBackupSpec)
	id := tc.deploy(a, kvsPlace)
	for i := range 100 {
		if err := tc.kvsSet(id, fmt.Sprint("k", i), fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	st := tc.migrate(id, 0, tc.node("r0/s1/nic0"))
	if st.Phase != PhaseReady || st.Bytes == 0 {
		t.Fatalf("migration: %+v", st)
	}
	for i := range 100 {
		got, ok, err := tc.kvsGet(id, fmt.Sprint("k", i))
		if err != nil || !ok || got != fmt.Sprint("v", i) {
			t.Fatalf("key k%d after the move: %q %v %v", i, got, ok, err)
		}
	}
}
