package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// CommandVersion is the version of the command encoding. A replica refuses
// a command of a newer version (it cannot know what it means) instead of
// guessing; upgrade followers before leaders.
const CommandVersion = 1

// MaxCommandSize bounds an encoded command. Specs of the built-in
// applications are a few kilobytes; a megabyte leaves room for large ones
// and keeps every raft entry small enough to replicate promptly.
const MaxCommandSize = 1 << 20

// The commands' operations.
const (
	OpInit         = "init"
	OpRegister     = "register"
	OpDeploy       = "deploy"
	OpUndeploy     = "undeploy"
	OpFailover     = "failover"
	OpMigrationEnd = "migration-end"
	OpReplica      = "replica"
)

// Command is one entry of the replicated log: an operation and its body,
// stamped with the proposing leader's clock (At, Unix ns) so that every
// replica records the same times. Commands carry decisions already taken
// (where placement put each instance, what failover chose), never inputs
// that a replica would have to decide on again: followers do not rerun
// placement.
type Command struct {
	V  int    `json:"v"`
	Op string `json:"op"`
	At int64  `json:"at"`

	Init         *InitCmd         `json:"init,omitempty"`
	Register     *RegisterCmd     `json:"register,omitempty"`
	Deploy       *DeployCmd       `json:"deploy,omitempty"`
	Undeploy     *UndeployCmd     `json:"undeploy,omitempty"`
	Failover     *FailoverCmd     `json:"failover,omitempty"`
	MigrationEnd *MigrationEndCmd `json:"migration_end,omitempty"`
	Replica      *ReplicaCmd      `json:"replica,omitempty"`
}

// InitCmd fixes the cluster the controller manages.
type InitCmd struct {
	Cluster string `json:"cluster"`
}

// RegisterCmd registers (or re-registers) a node's agent.
type RegisterCmd struct {
	// Node is the topology name ("r0/s1/nic0"); Role and Server must
	// agree with it.
	Node   string `json:"node"`
	Role   string `json:"role"`
	Server string `json:"server,omitempty"`
	// Addr is the agent's data endpoint, host:port.
	Addr  string `json:"addr"`
	Cores int    `json:"cores,omitempty"`
}

// DeployCmd deploys an application with the placement the leader decided.
type DeployCmd struct {
	File string  `json:"file"`
	Spec string  `json:"spec"`
	RPS  float64 `json:"rps"`
	Seed uint64  `json:"seed"`
	Algo string  `json:"algo"`
	// Instances are the decided placements, in the application's
	// instance order.
	Instances []Placement `json:"instances"`
}

// Placement is one instance's decided node, with the placer's
// explanation.
type Placement struct {
	Instance    string `json:"instance"`
	Node        string `json:"node"`
	Level       string `json:"level,omitempty"`
	Explanation string `json:"explanation,omitempty"`
}

// UndeployCmd removes an application.
type UndeployCmd struct {
	Name string `json:"name"`
}

// The kinds of an [InstanceChange].
const (
	ChangePromote      = "promote"
	ChangeReplace      = "replace"
	ChangeCreateBackup = "create-backup"
	ChangePlace        = "place"
	ChangeUnplaced     = "unplaced"
)

// FailoverCmd records what the leader's orchestrator decided in one round:
// servers declared failed, nodes back, instances moved, migrations started
// and aborted, and whether routes are republished at a new epoch.
type FailoverCmd struct {
	Failed     []string          `json:"failed,omitempty"`
	Rejoined   []string          `json:"rejoined,omitempty"`
	Changes    []InstanceChange  `json:"changes,omitempty"`
	Migrations []MigrationRecord `json:"migrations,omitempty"`
	Aborted    []uint64          `json:"aborted,omitempty"`
	Publish    bool              `json:"publish,omitempty"`
	Events     []Event           `json:"events,omitempty"`
}

// InstanceChange moves one instance slot to Node ("" for none).
type InstanceChange struct {
	App          string `json:"app"`
	Instance     string `json:"instance"`
	Kind         string `json:"kind"`
	Node         string `json:"node"`
	PromotedFrom string `json:"promoted_from,omitempty"`
	Reason       string `json:"reason,omitempty"`
}

// MigrationEndCmd ends a migration: done (the instance now runs on the
// destination) or failed (it stays where it was).
type MigrationEndCmd struct {
	ID  uint64 `json:"id"`
	OK  bool   `json:"ok"`
	Why string `json:"why,omitempty"`
}

// ReplicaCmd records or removes a controller replica's addresses.
type ReplicaCmd struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr,omitempty"`
	APIAddr  string `json:"api_addr,omitempty"`
	Remove   bool   `json:"remove,omitempty"`
}

// EncodeCommand encodes c at the current version.
func EncodeCommand(c *Command) ([]byte, error) {
	c.V = CommandVersion
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("controller: encode %s command: %w", c.Op, err)
	}
	if len(b) > MaxCommandSize {
		return nil, fmt.Errorf("%w: %s command of %d bytes, the limit is %d", ErrInvalid, c.Op, len(b), MaxCommandSize)
	}
	return b, nil
}

// DecodeCommand decodes a log entry. It checks the envelope: the version,
// a known operation, and that exactly the body of that operation is
// present. The bodies' contents are for [State.Apply] to judge.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) > MaxCommandSize {
		return nil, fmt.Errorf("%w: command of %d bytes, the limit is %d", ErrInvalid, len(b), MaxCommandSize)
	}
	var c Command
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: command: %s", ErrInvalid, jsonErr(err, b))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: command: data after the JSON value at offset %d", ErrInvalid, dec.InputOffset())
	}
	if c.V != CommandVersion {
		return nil, fmt.Errorf("%w: command version %d, this replica understands %d", ErrInvalid, c.V, CommandVersion)
	}
	bodies := map[string]bool{
		OpInit: c.Init != nil, OpRegister: c.Register != nil, OpDeploy: c.Deploy != nil,
		OpUndeploy: c.Undeploy != nil, OpFailover: c.Failover != nil,
		OpMigrationEnd: c.MigrationEnd != nil, OpReplica: c.Replica != nil,
	}
	has, known := bodies[c.Op]
	if !known {
		return nil, fmt.Errorf("%w: command op %q, want one of init, register, deploy, undeploy, failover, migration-end, replica", ErrInvalid, c.Op)
	}
	if !has {
		return nil, fmt.Errorf("%w: %s command without its %q body", ErrInvalid, c.Op, c.Op)
	}
	for op, present := range bodies {
		if present && op != c.Op {
			return nil, fmt.Errorf("%w: %s command also carries a %q body", ErrInvalid, c.Op, op)
		}
	}
	return &c, nil
}

// jsonErr renders a JSON decoding error with the offset where it happened.
func jsonErr(err error, b []byte) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("malformed JSON at offset %d: %v", e.Offset, e)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q at offset %d: %s is not a %s", e.Field, e.Offset, e.Value, e.Type)
	}
	if len(b) == 0 || errors.Is(err, io.EOF) {
		return "empty body"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("truncated JSON at offset %d", len(b))
	}
	return err.Error()
}

// checkAddr accepts host:port with a literal IP address and a port > 0.
// Agents register the address of their data endpoint; a hostname there
// would make every peer resolve it on the data path.
func checkAddr(s string) error {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return fmt.Errorf("%q is not IP:port: %w", s, err)
	}
	if ap.Port() == 0 || ap.Addr().IsUnspecified() {
		return fmt.Errorf("%q: want a reachable IP and a port > 0", s)
	}
	return nil
}
