package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestKillLeaderUnderLoad runs three replicas (raft over TCP, logs in
// bbolt), keeps deploying applications through a client that knows all
// three, stops the leader in the middle, and checks: a new leader takes
// office within 2 s, deploys keep succeeding, and every acknowledged
// deploy is in the surviving replicas' state with the placement its
// answer reported.
func TestKillLeaderUnderLoad(t *testing.T) {
	rs := startReplicas(t, clusterOpts{n: 3})
	agents := startAgents(t, rs.endpoints(), nodeNames)
	defer agents.close()
	c := rs.client(adminTok)
	c.Retry = 8 * time.Second

	type acked struct {
		name  string
		nodes []string
		at    time.Time
	}
	var (
		mu     sync.Mutex
		ok     []acked
		failed []string
		stop   = make(chan struct{})
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("load%d", i)
			resp, err := c.Deploy(context.Background(), deployReq(renamed(tinySpec, name)))
			mu.Lock()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			} else {
				a := acked{name: name, at: time.Now()}
				for _, in := range resp.Instances {
					a.nodes = append(a.nodes, in.Node)
				}
				ok = append(ok, a)
			}
			mu.Unlock()
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(ok)
	}
	for count() < 8 {
		time.Sleep(5 * time.Millisecond)
	}
	old := rs.leader()
	killed := time.Now()
	rs.stop(old)
	newLeader := rs.waitLeader(5 * time.Second)
	elected := time.Since(killed)
	t.Logf("replica c%d stopped; c%d took office %v later", old+1, newLeader+1, elected)
	if elected > 2*time.Second {
		t.Errorf("new leader after %v, want within 2 s", elected)
	}
	before := count()
	for count() < before+8 {
		if time.Since(killed) > 20*time.Second {
			t.Fatalf("deploys stalled after the leader stopped: %d before, %d now; failures %v", before, count(), failed)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-done

	states := rs.converge(5 * time.Second)
	if len(states) != 2 || states[0] != states[1] {
		t.Fatal("the surviving replicas' states differ")
	}
	var st State
	if err := json.Unmarshal([]byte(states[0]), &st); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	afterKill := 0
	for _, a := range ok {
		rec := st.Apps[a.name]
		if rec == nil {
			t.Errorf("acknowledged deploy %s lost", a.name)
			continue
		}
		for i, in := range rec.Instances {
			if in.Node != a.nodes[i] || in.Node == "" {
				t.Errorf("%s/%s on %q, the deploy answered %q", a.name, in.Instance, in.Node, a.nodes[i])
			}
		}
		if a.at.After(killed) {
			afterKill++
		}
	}
	t.Logf("%d deploys acknowledged (%d after the leader stopped), %d failed: %v", len(ok), afterKill, len(failed), failed)
	if afterKill == 0 {
		t.Error("no deploy succeeded after the leader stopped")
	}
}

// TestPartitionedMinority cuts the leader off from the other two replicas
// (raft's in-memory transport) and checks that it commits nothing while
// cut off, that the majority elects a leader and takes writes, and that
// after healing the old leader follows the majority's state.
func TestPartitionedMinority(t *testing.T) {
	rs := startReplicas(t, clusterOpts{n: 3, inmem: true})
	agents := startAgents(t, rs.endpoints(), nodeNames)
	defer agents.close()
	ctx := context.Background()
	if _, err := rs.client(adminTok).Deploy(ctx, deployReq(tinySpec)); err != nil {
		t.Fatal(err)
	}
	rs.converge(5 * time.Second)
	old := rs.leader()
	cut := rs.inmem[old]
	cut.DisconnectAll()
	for i, tr := range rs.inmem {
		if i != old {
			tr.Disconnect(cut.LocalAddr())
		}
	}
	minorityBefore := rs.stateOf(old)
	minority := &Client{Endpoints: []string{rs.servers[old].APIAddr()}, Token: adminTok, HTTP: rs.hc, Retry: -1}
	join := &Client{Endpoints: []string{rs.servers[old].APIAddr()}, Token: joinTok, HTTP: rs.hc, Retry: -1}

	// Writes to the minority fail, before and after it notices.
	attempts := 0
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		name := fmt.Sprintf("minority%d", attempts)
		if _, err := minority.Deploy(ctx, deployReq(renamed(tinySpec, name))); err == nil {
			t.Fatalf("the cut-off replica accepted deploy %s", name)
		} else if !isStatus(err, 503) {
			t.Fatalf("deploy on the cut-off replica: %v, want 503", err)
		}
		if err := minority.Undeploy(ctx, "tiny"); err == nil {
			t.Fatal("the cut-off replica accepted an undeploy")
		}
		if _, err := join.Register(ctx, RegisterRequest{Node: "r0/s0/host", Role: RoleHost, Addr: "127.0.0.1:29999"}); err == nil {
			t.Fatal("the cut-off replica accepted a registration")
		}
		attempts++
		time.Sleep(50 * time.Millisecond)
	}
	minorityAfter := rs.stateOf(old)
	if minorityBefore != minorityAfter {
		t.Fatal("the cut-off replica's state changed while it was cut off")
	}
	t.Logf("%d rounds of writes refused by the cut-off replica", attempts)

	// The majority has a leader and takes writes.
	var majority []string
	for i, s := range rs.servers {
		if i != old {
			majority = append(majority, s.APIAddr())
		}
	}
	mc := &Client{Endpoints: majority, Token: adminTok, HTTP: rs.hc, Retry: 5 * time.Second}
	if _, err := mc.Deploy(ctx, deployReq(renamed(tinySpec, "majority"))); err != nil {
		t.Fatalf("deploy on the majority: %v", err)
	}
	if rs.servers[old].IsLeader() {
		t.Fatal("the cut-off replica still acts as leader")
	}

	// Heal: the old leader catches up with the majority.
	for i, tr := range rs.inmem {
		if i != old {
			tr.Connect(cut.LocalAddr(), cut)
			cut.Connect(tr.LocalAddr(), tr)
		}
	}
	states := rs.converge(10 * time.Second)
	for i := 1; i < len(states); i++ {
		if states[i] != states[0] {
			t.Fatalf("states differ after healing: %s", firstDiff(states[0], states[i]))
		}
	}
	var st State
	json.Unmarshal([]byte(states[0]), &st)
	if st.Apps["majority"] == nil || st.Apps["tiny"] == nil {
		t.Fatalf("after healing the apps are %v", keys(st.Apps))
	}
	for name := range st.Apps {
		if strings.HasPrefix(name, "minority") {
			t.Errorf("a deploy refused by the cut-off replica appeared: %s", name)
		}
	}
}

func withoutIndex(t *testing.T, js string) string {
	var st State
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatal(err)
	}
	st.Index = 0
	b, _ := json.Marshal(&st)
	return string(b)
}

// firstDiff shows where two long strings part.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-80)
	return fmt.Sprintf("at byte %d:\n  %q\n  %q", i, a[lo:min(len(a), i+80)], b[lo:min(len(b), i+80)])
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRestartFromDisk deploys, snapshots, deploys more, stops the replica
// and starts it again on its data directory: the state comes back from
// the snapshot plus the log tail. A replica that joins later gets the
// state by snapshot, the log having been compacted.
func TestRestartFromDisk(t *testing.T) {
	dir := t.TempDir()
	raftAddr := freePort(t)
	cfg := testConfig(t, "c1")
	cfg.DataDir, cfg.RaftAddr, cfg.HTTPAddr = dir, raftAddr, freePort(t)
	cfg.SnapshotThreshold, cfg.TrailingLogs = 4, 2
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs := &replicas{t: t, servers: []*Server{s}, hc: newTestHTTP()}
	t.Cleanup(rs.close)
	rs.waitLeader(5 * time.Second)
	agents := startAgents(t, rs.endpoints(), nodeNames)
	c := rs.client(adminTok)
	for i := range 6 {
		if _, err := c.Deploy(context.Background(), deployReq(renamed(tinySpec, fmt.Sprintf("a%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.Deploy(context.Background(), deployReq(renamed(tinySpec, fmt.Sprintf("b%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Undeploy(context.Background(), "a0"); err != nil {
		t.Fatal(err)
	}
	agents.close()
	want := rs.converge(5 * time.Second)[0]
	rs.stop(0)
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot on disk")
	}
	if fi, err := os.Stat(filepath.Join(dir, "raft.db")); err != nil || fi.Size() == 0 {
		t.Fatalf("raft.db: %v", err)
	}

	s2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs.servers[0] = s2
	rs.waitLeader(5 * time.Second)
	got := rs.converge(5 * time.Second)[0]
	// The new term's leader re-records its replica (a no-op command) and
	// so moves Index on; everything else must be as it was.
	want, got = withoutIndex(t, want), withoutIndex(t, got)
	if got != want {
		t.Fatalf("state after restart differs:\n%s", firstDiff(want, got))
	}

	// A new replica joins; the log before the snapshot is gone, so it
	// must be sent the snapshot.
	if s2.Raft().Stats()["last_snapshot_index"] == "0" {
		t.Fatal("no snapshot taken")
	}
	cfg2 := testConfig(t, "c2")
	cfg2.DataDir, cfg2.Join = t.TempDir(), []string{s2.APIAddr()}
	s3, err := New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	rs.servers = append(rs.servers, s3)
	rs.waitVoters(2, 10*time.Second)
	states := rs.converge(5 * time.Second)
	if states[0] != states[1] {
		t.Fatal("the joined replica's state differs from the leader's")
	}
}

func newTestHTTP() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
}

// TestForwarding sends writes to a follower: it forwards them to the
// leader, and the answer is the leader's.
func TestForwarding(t *testing.T) {
	rs := startReplicas(t, clusterOpts{n: 3, inmem: true})
	agents := startAgents(t, rs.endpoints(), nodeNames)
	defer agents.close()
	l := rs.leader()
	f := (l + 1) % 3
	fc := &Client{Endpoints: []string{rs.servers[f].APIAddr()}, Token: adminTok, HTTP: rs.hc, Retry: -1}
	resp, err := fc.Deploy(context.Background(), deployReq(tinySpec))
	if err != nil {
		t.Fatalf("deploy through follower c%d: %v", f+1, err)
	}
	if resp.AppID != 1 {
		t.Fatalf("answer %+v", resp)
	}
	nodes, err := fc.Nodes(context.Background())
	if err != nil || len(nodes) != 6 || nodes[0].Alive == nil {
		t.Fatalf("nodes through a follower: %+v %v (want the leader's liveness)", nodes, err)
	}
	cs, err := fc.Cluster(context.Background())
	if err != nil || cs.Replica != fmt.Sprintf("c%d", f+1) || cs.LeaderAPI != rs.servers[l].APIAddr() || len(cs.Replicas) != 3 {
		t.Fatalf("cluster through a follower: %+v %v", cs, err)
	}
}
