package raftbolt

import (
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countFSM appends every command it applies.
type countFSM struct {
	mu   sync.Mutex
	cmds []string
}

func (f *countFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, string(l.Data))
	return len(f.cmds)
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, raft.ErrNothingNewToSnapshot }
func (f *countFSM) Restore(io.ReadCloser) error         { return nil }

func (f *countFSM) applied() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func startRaft(t *testing.T, st *Store, fsm raft.FSM, bootstrap bool) (*raft.Raft, raft.Transport) {
	t.Helper()
	cfg := raft.DefaultConfig()
	cfg.LocalID = "n1"
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.Logger = hclog.NewNullLogger()
	addr, tr := raft.NewInmemTransport("n1")
	if bootstrap {
		err := raft.BootstrapCluster(cfg, st, st, raft.NewInmemSnapshotStore(), tr,
			raft.Configuration{Servers: []raft.Server{{ID: "n1", Address: addr}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := raft.NewRaft(cfg, fsm, st, st, raft.NewInmemSnapshotStore(), tr)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.LeaderCh():
	case <-time.After(5 * time.Second):
		t.Fatal("no leadership within 5 s")
	}
	return r, tr
}

// TestRaftRestart runs a real raft node on the store, restarts it from the
// file, and checks that every committed command is applied again from the
// log and that the term and vote survived.
func TestRaftRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fsm := &countFSM{}
	r, tr := startRaft(t, st, fsm, true)
	var want []string
	for i := range 100 {
		cmd := "set x=" + string(rune('a'+i%26))
		want = append(want, cmd)
		if err := r.Apply([]byte(cmd), time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	term, _ := st.GetUint64([]byte("CurrentTerm"))
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	tr.(*raft.InmemTransport).Close()
	st.Close()
	if term == 0 {
		t.Fatal("raft stored no CurrentTerm")
	}

	st, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fsm2 := &countFSM{}
	r, tr = startRaft(t, st, fsm2, false)
	defer tr.(*raft.InmemTransport).Close()
	defer r.Shutdown()
	// A barrier commits an entry of the new term, which commits (and so
	// applies) everything before it.
	if err := r.Barrier(time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	got := fsm2.applied()
	if len(got) != len(want) {
		t.Fatalf("after restart %d commands applied, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("command %d after restart %q, want %q", i, got[i], want[i])
		}
	}
	if t2, _ := st.GetUint64([]byte("CurrentTerm")); t2 <= term {
		t.Errorf("term after restart %d, want above %d", t2, term)
	}
}
