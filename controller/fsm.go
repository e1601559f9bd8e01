package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// SnapshotVersion is the version of the snapshot encoding.
const SnapshotVersion = 1

// MaxSnapshotSize bounds a snapshot a replica accepts (from its disk or
// from the leader): 256 MB, far above any real state (a thousand
// applications with their specs and placements are a few tens of MB).
const MaxSnapshotSize = 256 << 20

// FSM is the controller's raft.FSM: [State] behind a lock, with snapshots
// as versioned JSON. Readers take the state with [FSM.Read].
type FSM struct {
	mu sync.RWMutex
	st *State
	// onApply, if set, is called after every command, outside the lock,
	// with the command and its result (for metrics and notifications);
	// onRestore after a snapshot replaced the state.
	onApply   func(*Command, ApplyResult)
	onRestore func()
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns an FSM holding an empty state.
func NewFSM() *FSM { return &FSM{st: NewState()} }

// Apply applies a log entry. Entries that do not decode are refused like
// any bad command: every replica refuses them alike.
func (f *FSM) Apply(l *raft.Log) any {
	c, err := DecodeCommand(l.Data)
	if err != nil {
		return ApplyResult{Err: err}
	}
	f.mu.Lock()
	res := f.st.Apply(l.Index, c)
	f.mu.Unlock()
	if f.onApply != nil {
		f.onApply(c, res)
	}
	return res
}

// Read calls fn with the state under a read lock; fn must not keep
// references into it after it returns.
func (f *FSM) Read(fn func(*State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
}

type snapshotFile struct {
	V     int    `json:"v"`
	State *State `json:"state"`
}

// Snapshot encodes the state now; raft persists it on another goroutine.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	b, err := json.Marshal(snapshotFile{V: SnapshotVersion, State: f.st})
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("controller: snapshot: %w", err)
	}
	return jsonSnapshot(b), nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxSnapshotSize+1))
	if err != nil {
		return fmt.Errorf("controller: restore: %w", err)
	}
	st, err := DecodeSnapshot(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
	if f.onRestore != nil {
		f.onRestore()
	}
	return nil
}

// DecodeSnapshot decodes a snapshot written by [FSM.Snapshot] and
// rebuilds the derived state (topology, parsed applications).
func DecodeSnapshot(b []byte) (*State, error) {
	if len(b) > MaxSnapshotSize {
		return nil, fmt.Errorf("%w: snapshot larger than %d bytes", ErrInvalid, MaxSnapshotSize)
	}
	var sf snapshotFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %s", ErrInvalid, jsonErr(err, b))
	}
	if sf.V != SnapshotVersion {
		return nil, fmt.Errorf("%w: snapshot version %d, this replica understands %d", ErrInvalid, sf.V, SnapshotVersion)
	}
	if sf.State == nil {
		return nil, fmt.Errorf("%w: snapshot without a state", ErrInvalid)
	}
	st := sf.State
	if st.NextAppID == 0 || st.NextMigration == 0 {
		return nil, fmt.Errorf("%w: snapshot: next_app_id %d and next_migration %d, want >= 1", ErrInvalid, st.NextAppID, st.NextMigration)
	}
	if len(st.Events) > MaxEvents {
		return nil, fmt.Errorf("%w: snapshot holds %d events, the ring holds %d", ErrInvalid, len(st.Events), MaxEvents)
	}
	if err := st.rebuild(); err != nil {
		return nil, err
	}
	return st, nil
}

type jsonSnapshot []byte

func (s jsonSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("controller: write snapshot: %w", err)
	}
	return sink.Close()
}

func (s jsonSnapshot) Release() {}
