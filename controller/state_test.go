package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/services"
)

const tinySpec = `name: tiny
class: RTA
nodes:
  count: {service: count, shards: 2, backups: 1}
  topk:  {service: topk, shards: 1}
edges:
  - {from: count, to: topk}
`

const testCluster = "3xType1-SmartNIC"

// nodeNames of testCluster in topology order.
var nodeNames = []string{"r0/s0/host", "r0/s0/nic0", "r0/s1/host", "r0/s1/nic0", "r0/s2/host", "r0/s2/nic0"}

func roleOf(name string) string {
	if strings.HasSuffix(name, "host") {
		return RoleHost
	}
	return RoleSmartNIC
}

func cmdInit(at int64) *Command {
	return &Command{Op: OpInit, At: at, Init: &InitCmd{Cluster: testCluster}}
}

func cmdRegister(at int64, name string, port int) *Command {
	return &Command{Op: OpRegister, At: at, Register: &RegisterCmd{Node: name, Role: roleOf(name), Addr: fmt.Sprintf("127.0.0.1:%d", port)}}
}

// cmdDeploy deploys spec with instance i on nodes[i % len(nodes)], keeping
// a shard's replicas on different servers by construction of the order.
func cmdDeploy(t testing.TB, at int64, spec string, nodes []string) *Command {
	t.Helper()
	a, err := app.Load("test.yaml", []byte(spec), services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	d := &DeployCmd{File: "test.yaml", Spec: spec, RPS: 1000, Seed: 1, Algo: "hand"}
	for i, in := range a.Instances() {
		d.Instances = append(d.Instances, Placement{Instance: in.ID, Node: nodes[i%len(nodes)], Explanation: "by hand"})
	}
	return &Command{Op: OpDeploy, At: at, Deploy: d}
}

func renamed(spec, name string) string {
	return strings.Replace(spec, "name: tiny", "name: "+name, 1)
}

func stateJSON(t testing.TB, s *State) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// roundTrip encodes and decodes a command, as the log does.
func roundTrip(t testing.TB, c *Command) *Command {
	t.Helper()
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeCommand(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}

func mustApply(t testing.TB, s *State, idx uint64, c *Command) ApplyResult {
	t.Helper()
	res := s.Apply(idx, roundTrip(t, c))
	if res.Err != nil {
		t.Fatalf("apply %s at %d: %v", c.Op, idx, res.Err)
	}
	return res
}

func registered(t testing.TB) *State {
	s := NewState()
	mustApply(t, s, 1, cmdInit(100))
	for i, n := range nodeNames {
		mustApply(t, s, uint64(2+i), cmdRegister(200, n, 9000+i))
	}
	return s
}

func TestDeployUndeploy(t *testing.T) {
	s := registered(t)
	e0 := s.Epoch
	res := mustApply(t, s, 10, cmdDeploy(t, 300, tinySpec, nodeNames))
	if res.AppID != 1 || res.Epoch != e0+1 {
		t.Fatalf("deploy: app id %d epoch %d, want 1 and %d", res.AppID, res.Epoch, e0+1)
	}
	r := s.Apps["tiny"]
	if r == nil || len(r.Instances) != 5 || s.App("tiny") == nil {
		t.Fatalf("deployed record %+v", r)
	}
	if r.Instances[0].Role != RolePrimary || r.Instances[1].Role != RoleBackup {
		t.Errorf("roles %s %s, want primary backup", r.Instances[0].Role, r.Instances[1].Role)
	}
	// The same name again is a conflict and changes nothing.
	before := stateJSON(t, s)
	res = s.Apply(11, roundTrip(t, cmdDeploy(t, 301, tinySpec, nodeNames)))
	if !errors.Is(res.Err, ErrConflict) {
		t.Fatalf("second deploy of tiny: %v, want ErrConflict", res.Err)
	}
	s.Index = 10
	if after := stateJSON(t, s); after != before {
		t.Fatalf("refused deploy changed the state:\n%s\n%s", before, after)
	}
	mustApply(t, s, 12, &Command{Op: OpUndeploy, At: 400, Undeploy: &UndeployCmd{Name: "tiny"}})
	if len(s.Apps) != 0 || s.App("tiny") != nil || s.Epoch != e0+2 {
		t.Fatalf("after undeploy: %d apps, epoch %d", len(s.Apps), s.Epoch)
	}
	res = s.Apply(13, roundTrip(t, &Command{Op: OpUndeploy, At: 401, Undeploy: &UndeployCmd{Name: "tiny"}}))
	if !errors.Is(res.Err, ErrNotFound) {
		t.Fatalf("undeploy of nothing: %v, want ErrNotFound", res.Err)
	}
}

// TestRefused checks that every refused command leaves the state exactly
// as it was and says what is wrong.
func TestRefused(t *testing.T) {
	base := registered(t)
	mustApply(t, base, 20, cmdDeploy(t, 300, tinySpec, nodeNames))
	wrongOrder := cmdDeploy(t, 1, renamed(tinySpec, "other"), nodeNames)
	wrongOrder.Deploy.Instances[0].Instance = "count.1"
	unregistered := cmdDeploy(t, 1, renamed(tinySpec, "other"), []string{"r0/s0/host", "r0/s9/host"})
	short := cmdDeploy(t, 1, renamed(tinySpec, "other"), nodeNames)
	short.Deploy.Instances = short.Deploy.Instances[:3]
	for _, tc := range []struct {
		name string
		c    *Command
		want error
		says string
	}{
		{"re-init other cluster", &Command{Op: OpInit, Init: &InitCmd{Cluster: "4xBeefy"}}, ErrConflict, "3xType1-SmartNIC"},
		{"register unknown node", &Command{Op: OpRegister, Register: &RegisterCmd{Node: "r0/s7/host", Role: RoleHost, Addr: "127.0.0.1:1"}}, ErrInvalid, "s7"},
		{"register wrong role", &Command{Op: OpRegister, Register: &RegisterCmd{Node: "r0/s0/nic0", Role: RoleHost, Addr: "127.0.0.1:1"}}, ErrInvalid, "smartnic"},
		{"register wrong server", &Command{Op: OpRegister, Register: &RegisterCmd{Node: "r0/s0/nic0", Role: RoleSmartNIC, Server: "r0/s1", Addr: "127.0.0.1:1"}}, ErrInvalid, "r0/s0"},
		{"register hostname", &Command{Op: OpRegister, Register: &RegisterCmd{Node: "r0/s0/host", Role: RoleHost, Addr: "localhost:80"}}, ErrInvalid, "localhost"},
		{"register taken addr", &Command{Op: OpRegister, Register: &RegisterCmd{Node: "r0/s0/host", Role: RoleHost, Addr: "127.0.0.1:9003"}}, ErrConflict, "r0/s1/nic0"},
		{"deploy bad spec", &Command{Op: OpDeploy, Deploy: &DeployCmd{File: "x.yaml", Spec: "name: [", Instances: nil}}, ErrInvalid, "x.yaml"},
		{"deploy wrong order", wrongOrder, ErrInvalid, "count.1"},
		{"deploy on unregistered node", unregistered, ErrInvalid, "r0/s9/host"},
		{"deploy short", short, ErrInvalid, "3 placements"},
		{"undeploy unknown", &Command{Op: OpUndeploy, Undeploy: &UndeployCmd{Name: "nope"}}, ErrNotFound, "nope"},
		{"failover unknown instance", &Command{Op: OpFailover, Failover: &FailoverCmd{Publish: true, Changes: []InstanceChange{{App: "tiny", Instance: "count.7", Node: "r0/s0/host"}}}}, ErrNotFound, "count.7"},
		{"failover to failing server", &Command{Op: OpFailover, Failover: &FailoverCmd{Failed: []string{"r0/s0"}, Changes: []InstanceChange{{App: "tiny", Instance: "count.0", Node: "r0/s0/nic0"}}}}, ErrInvalid, "r0/s0/nic0"},
		{"failover bad server", &Command{Op: OpFailover, Failover: &FailoverCmd{Failed: []string{"r9/s0"}}}, ErrInvalid, "r9/s0"},
		{"end unknown migration", &Command{Op: OpMigrationEnd, MigrationEnd: &MigrationEndCmd{ID: 42, OK: true}}, ErrNotFound, "42"},
		{"remove unknown replica", &Command{Op: OpReplica, Replica: &ReplicaCmd{ID: "c9", Remove: true}}, ErrNotFound, "c9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState()
			if err := json.Unmarshal([]byte(stateJSON(t, base)), s); err != nil {
				t.Fatal(err)
			}
			if err := s.rebuild(); err != nil {
				t.Fatal(err)
			}
			before := stateJSON(t, s)
			res := s.Apply(s.Index, roundTrip(t, tc.c))
			if !errors.Is(res.Err, tc.want) || !strings.Contains(res.Err.Error(), tc.says) {
				t.Fatalf("got %v, want %v mentioning %q", res.Err, tc.want, tc.says)
			}
			if after := stateJSON(t, s); after != before {
				t.Fatalf("refused command changed the state")
			}
		})
	}
}

func TestFailoverAndMigration(t *testing.T) {
	s := registered(t)
	mustApply(t, s, 10, cmdDeploy(t, 300, tinySpec, nodeNames))
	// count.0 is on r0/s0/host, its backup count.0.b1 on r0/s0/nic0 by the
	// hand placement; promote the backup's copy elsewhere for the test.
	e := s.Epoch
	f := &FailoverCmd{
		Failed: []string{"r0/s0"},
		Changes: []InstanceChange{
			{App: "tiny", Instance: "count.0", Kind: ChangePromote, Node: "r0/s1/host", PromotedFrom: "count.0.b1", Reason: "promoted"},
			{App: "tiny", Instance: "count.0.b1", Kind: ChangeCreateBackup, Node: "r0/s2/host", Reason: "re-created"},
		},
		Migrations: []MigrationRecord{{App: "tiny", Instance: "topk.0", From: "r0/s2/host", To: "r0/s1/nic0", Reason: "overload"}},
		Publish:    true,
		Events:     []Event{{Kind: "server-failed", Node: "r0/s0/host", Message: "r0/s0 silent"}},
	}
	res := mustApply(t, s, 11, &Command{Op: OpFailover, At: 500, Failover: f})
	if res.Epoch != e+1 || len(res.Migrations) != 1 || res.Migrations[0] != 1 {
		t.Fatalf("failover result %+v, want epoch %d and migration 1", res, e+1)
	}
	if !s.Nodes["r0/s0/host"].Failed || !s.Nodes["r0/s0/nic0"].Failed || s.Nodes["r0/s1/host"].Failed {
		t.Fatal("server r0/s0's nodes not marked failed, or another one marked")
	}
	in := s.Apps["tiny"].Instances
	if in[0].Node != "r0/s1/host" || in[0].PromotedFrom != "count.0.b1" || in[1].Node != "r0/s2/host" {
		t.Fatalf("after failover %+v %+v", in[0], in[1])
	}
	// A deploy onto the failed server is refused.
	if res := s.Apply(12, roundTrip(t, cmdDeploy(t, 600, renamed(tinySpec, "b"), []string{"r0/s0/host"}))); !errors.Is(res.Err, ErrInvalid) {
		t.Fatalf("deploy on a failed node: %v", res.Err)
	}
	mustApply(t, s, 13, &Command{Op: OpMigrationEnd, At: 700, MigrationEnd: &MigrationEndCmd{ID: 1, OK: true}})
	if s.Apps["tiny"].Instances[4].Node != "r0/s1/nic0" || len(s.Migrations) != 0 || s.Epoch != e+2 {
		t.Fatalf("after migration: %+v, %d in flight, epoch %d", s.Apps["tiny"].Instances[4], len(s.Migrations), s.Epoch)
	}
	// A migration started alone is a new table (it lists the move); one
	// that fails is another (the move is dropped, the instance stays).
	e = s.Epoch
	res = mustApply(t, s, 15, &Command{Op: OpFailover, At: 750, Failover: &FailoverCmd{
		Migrations: []MigrationRecord{{App: "tiny", Instance: "topk.0", From: "r0/s1/nic0", To: "r0/s2/host", Reason: "overload"}}}})
	if res.Epoch != e+1 || res.Migrations[0] != 2 {
		t.Fatalf("migration start: %+v, want epoch %d and migration 2", res, e+1)
	}
	mustApply(t, s, 16, &Command{Op: OpMigrationEnd, At: 760, MigrationEnd: &MigrationEndCmd{ID: 2, Why: "destination refused"}})
	if s.Apps["tiny"].Instances[4].Node != "r0/s1/nic0" || len(s.Migrations) != 0 || s.Epoch != e+2 {
		t.Fatalf("after a failed migration: %+v, %d in flight, epoch %d (want %d)", s.Apps["tiny"].Instances[4], len(s.Migrations), s.Epoch, e+2)
	}
	mustApply(t, s, 14, &Command{Op: OpFailover, At: 800, Failover: &FailoverCmd{Rejoined: []string{"r0/s0/host"}}})
	if s.Nodes["r0/s0/host"].Failed {
		t.Fatal("rejoined node still failed")
	}
}

func TestEventRing(t *testing.T) {
	s := registered(t)
	for i := range MaxEvents + 50 {
		mustApply(t, s, uint64(100+i), &Command{Op: OpFailover, At: int64(i), Failover: &FailoverCmd{Events: []Event{{Kind: "alert", Message: fmt.Sprint(i)}}}})
	}
	if len(s.Events) != MaxEvents {
		t.Fatalf("%d events kept, want %d", len(s.Events), MaxEvents)
	}
	last := s.Events[len(s.Events)-1]
	if last.Message != fmt.Sprint(MaxEvents+49) || last.Seq != s.NextEvent-1 || s.Events[0].Seq != s.NextEvent-MaxEvents {
		t.Fatalf("ring ends %+v, starts at seq %d, next %d", last, s.Events[0].Seq, s.NextEvent)
	}
}

// randomCommands is a seeded mix of valid and invalid commands.
func randomCommands(t testing.TB, rng *rand.Rand, n int) []*Command {
	var out []*Command
	out = append(out, cmdInit(1))
	for i, name := range nodeNames {
		out = append(out, cmdRegister(2, name, 7000+i))
	}
	for k := range n {
		at := int64(1000 + k)
		name := fmt.Sprintf("a%d", rng.IntN(6))
		switch rng.IntN(6) {
		case 0, 1:
			perm := rng.Perm(len(nodeNames))
			nodes := make([]string, len(perm))
			for i, p := range perm {
				nodes[i] = nodeNames[p]
			}
			out = append(out, cmdDeploy(t, at, renamed(tinySpec, name), nodes))
		case 2:
			out = append(out, &Command{Op: OpUndeploy, At: at, Undeploy: &UndeployCmd{Name: name}})
		case 3:
			n := nodeNames[rng.IntN(len(nodeNames))]
			out = append(out, &Command{Op: OpFailover, At: at, Failover: &FailoverCmd{
				Publish: true,
				Changes: []InstanceChange{{App: name, Instance: "topk.0", Kind: ChangeReplace, Node: n}},
				Events:  []Event{{Kind: "replace", Message: "moved"}},
			}})
		case 4:
			out = append(out, cmdRegister(at, nodeNames[rng.IntN(len(nodeNames))], 7000+rng.IntN(12)))
		case 5:
			out = append(out, &Command{Op: OpReplica, At: at, Replica: &ReplicaCmd{ID: fmt.Sprint("c", rng.IntN(3)), RaftAddr: "127.0.0.1:1", APIAddr: fmt.Sprint("127.0.0.1:", rng.IntN(3)+2)}})
		}
	}
	return out
}

// TestDeterministic applies one seeded command stream to two replicas,
// one of which is snapshotted and restored halfway, and requires equal
// states after every command.
func TestDeterministic(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	cmds := randomCommands(t, rand.New(rand.NewPCG(seed, 0)), 300)
	a, b := NewFSM(), NewFSM()
	refused := 0
	for i, c := range cmds {
		data, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		l := &raft.Log{Index: uint64(i + 1), Data: data}
		ra, rb := a.Apply(l).(ApplyResult), b.Apply(l).(ApplyResult)
		if (ra.Err == nil) != (rb.Err == nil) || ra.Epoch != rb.Epoch || ra.AppID != rb.AppID {
			t.Fatalf("command %d (%s): results differ: %+v vs %+v", i, c.Op, ra, rb)
		}
		if ra.Err != nil {
			refused++
		}
		if i == len(cmds)/2 {
			b = restoreCopy(t, b)
		}
		var ja, jb string
		a.Read(func(s *State) { ja = stateJSON(t, s) })
		b.Read(func(s *State) { jb = stateJSON(t, s) })
		if ja != jb {
			t.Fatalf("after command %d (%s) the states differ", i, c.Op)
		}
	}
	t.Logf("%d commands, %d refused", len(cmds), refused)
	if refused == 0 || refused == len(cmds) {
		t.Fatalf("%d of %d refused: the stream does not exercise both paths", refused, len(cmds))
	}
}

type bufSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *bufSink) ID() string    { return "test" }
func (s *bufSink) Cancel() error { s.cancelled = true; return nil }
func (s *bufSink) Close() error  { return nil }

func restoreCopy(t testing.TB, f *FSM) *FSM {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	g := NewFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestSnapshotRoundTrip(t *testing.T) {
	f := NewFSM()
	for i, c := range randomCommands(t, rand.New(rand.NewPCG(3, 0)), 100) {
		data, _ := EncodeCommand(c)
		f.Apply(&raft.Log{Index: uint64(i + 1), Data: data})
	}
	g := restoreCopy(t, f)
	var ja, jb string
	var apps int
	f.Read(func(s *State) { ja = stateJSON(t, s); apps = len(s.Apps) })
	g.Read(func(s *State) {
		jb = stateJSON(t, s)
		if s.Topology() == nil || s.Topology().NumNodes() != 6 {
			t.Error("restored state has no topology")
		}
		for name := range s.Apps {
			if s.App(name) == nil {
				t.Errorf("restored app %s not parsed", name)
			}
		}
	})
	if ja != jb {
		t.Fatal("restored state differs")
	}
	if apps == 0 {
		t.Fatal("nothing deployed: the round trip proves little")
	}
	// A damaged snapshot is refused with a reason.
	for _, bad := range []string{``, `{"v":2,"state":{}}`, `{"v":1}`, `{"v":1,"state":{"next_app_id":0}}`, `{"v":1,"state":{"cluster":"9xNope","next_app_id":1,"next_migration":1}}`} {
		if _, err := DecodeSnapshot([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeSnapshot(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	for _, tc := range []struct{ in, says string }{
		{``, "empty"},
		{`{"v":1,"op":"deploy"`, "offset"},
		{`{"v":2,"op":"init","init":{}}`, "version 2"},
		{`{"v":1,"op":"explode","init":{}}`, "explode"},
		{`{"v":1,"op":"init"}`, "without"},
		{`{"v":1,"op":"init","init":{},"undeploy":{}}`, "also carries"},
		{`{"v":1,"op":"init","init":{"cluster":5}}`, "cluster"},
		{`{"v":1,"op":"init","init":{},"extra":1}`, "extra"},
		{`{"v":1,"op":"init","init":{}} {}`, "after"},
	} {
		_, err := DecodeCommand([]byte(tc.in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("DecodeCommand(%q) = %v, want ErrInvalid mentioning %q", tc.in, err, tc.says)
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range randomCommands(f, rand.New(rand.NewPCG(1, 1)), 12) {
		b, _ := EncodeCommand(c)
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"op":"failover","failover":{"changes":[{"app":"a","instance":"x"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		// Whatever decodes must apply without panicking, refused or not.
		s := registered(t)
		s.Apply(100, c)
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	fsm := NewFSM()
	for i, c := range randomCommands(f, rand.New(rand.NewPCG(2, 2)), 20) {
		data, _ := EncodeCommand(c)
		fsm.Apply(&raft.Log{Index: uint64(i + 1), Data: data})
	}
	snap, _ := fsm.Snapshot()
	var sink bufSink
	snap.Persist(&sink)
	f.Add(sink.Bytes())
	f.Add([]byte(`{"v":1,"state":{"next_app_id":1,"next_migration":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeSnapshot(b)
		if err != nil {
			return
		}
		// A restored state must take commands without panicking.
		for i, c := range randomCommands(t, rand.New(rand.NewPCG(4, 4)), 5) {
			st.Apply(uint64(1000+i), c)
		}
	})
}
