package orchestrator

import (
	"fmt"
	"strings"
	"time"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// ActionKind says what an [Action] asks the controller (or the simulator)
// to do.
type ActionKind uint8

// The actions. Within one Decide, failures and their consequences come
// first (including migrations that relieve a node a promotion overloaded),
// then returning nodes and what waited for them, the detectors'
// migrations, and last the routes.
const (
	// ServerFailed: Node's server (the host and its SmartNICs, one fault
	// domain) is declared failed. Its instances are gone; the actions
	// that follow in the same Decide replace them.
	ServerFailed ActionKind = iota + 1
	// AbortMigration: migration Migration of Instance from From to To
	// stops because one end failed. The instance stays on From unless
	// From failed, in which case failover deals with it.
	AbortMigration
	// Promote: Instance, a backup on To, becomes the primary of its shard,
	// whose primary was on From.
	Promote
	// Replace: Instance, a primary whose every replica was lost, starts
	// afresh on To. Its reliable collections are lost unless persisted
	// outside the failed server; a stateless service loses nothing.
	Replace
	// CreateBackup: Instance becomes a backup on To, its state copied from
	// its shard's primary on From.
	CreateBackup
	// Unplaced: no node can take Instance now (Reason.Rejection says why
	// for the closest one). It waits and is tried again when capacity
	// frees: a node rejoins, a migration ends, an application leaves.
	Unplaced
	// Place: Instance, which waited unplaced (or, for a backup, whose
	// primary waited), starts on To; From is the primary's node for a
	// backup.
	Place
	// NodeRejoined: Node reports again after its server was declared
	// failed. The orchestrator counts it empty: whatever its agent still
	// runs is stale and must be discarded.
	NodeRejoined
	// Migrate: move Instance from From to To by cold migration, named
	// Migration. The controller reports the outcome with
	// [Orchestrator.MigrationDone] or [Orchestrator.MigrationFailed].
	Migrate
	// Alert: a detector fired but nothing could be done (no movable
	// instance, no destination); for the operator and the event log.
	Alert
	// PublishRoutes: instances changed places; publish the routing tables
	// at Epoch.
	PublishRoutes
)

var actionNames = [...]string{"", "server-failed", "abort-migration", "promote", "replace", "create-backup", "unplaced", "place", "node-rejoined", "migrate", "alert", "publish-routes"}

// String returns the kind's name, e.g. "migrate".
func (k ActionKind) String() string {
	if k > 0 && int(k) < len(actionNames) {
		return actionNames[k]
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// MigrationID names a migration the orchestrator ordered; IDs count from 1.
type MigrationID uint32

// Action is one decision. Fields that do not apply to its Kind hold
// NoInstance, placement.Unassigned or zero.
type Action struct {
	Kind      ActionKind
	Instance  InstanceID
	Node      topology.NodeID
	From, To  topology.NodeID
	Migration MigrationID
	Epoch     uint64
	Reason    Reason
}

// Cause says what led to an action.
type Cause uint8

// The causes.
const (
	// CauseStarvation: a SmartNIC's traffic manager held a standing queue
	// while its ports were under-used (host starvation).
	CauseStarvation Cause = iota + 1
	// CauseOverload: an instance's execution time rose above its moving
	// average by more than the threshold (microservice overload).
	CauseOverload
	// CauseSilence: a node missed its heartbeats for longer than the
	// failure timeout.
	CauseSilence
	// CauseServerFailed: a consequence of a server failure.
	CauseServerFailed
	// CauseRetry: a migration the controller reported failed is tried
	// again elsewhere; Origin is the detector that asked for it.
	CauseRetry
	// CauseRedo: a migration whose destination failed is redone
	// elsewhere; Origin is the detector that asked for it.
	CauseRedo
	// CausePending: an instance left unplaced earlier is placed now.
	CausePending
	// CauseRejoin: a node reports again.
	CauseRejoin
	// CauseChanged: instances changed nodes (for PublishRoutes).
	CauseChanged
	// CauseOvercommit: a promotion left a node with more busy cores than
	// its limit.
	CauseOvercommit
	// CauseFaultDomain: a backup shares its primary's server (its
	// primary's migration ended where it started) and moves.
	CauseFaultDomain
)

var causeNames = [...]string{"", "starvation", "overload", "silence", "server-failed", "retry", "redo", "pending", "rejoin", "changed", "overcommit", "fault-domain"}

// String returns the cause's name, e.g. "starvation".
func (c Cause) String() string {
	if c > 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return fmt.Sprintf("Cause(%d)", uint8(c))
}

// Skip says why an instance that used more CPU than the one chosen could
// not be moved.
type Skip uint8

// The reasons to skip an instance.
const (
	// SkipNone: nothing was passed over.
	SkipNone Skip = iota
	// SkipNotMigratable: its service cannot migrate (SQL).
	SkipNotMigratable
	// SkipCoolingDown: it moved less than InstanceCoolDown ago.
	SkipCoolingDown
	// SkipNoDestination: no host can take it.
	SkipNoDestination
)

var skipNames = [...]string{"", "not migratable", "cooling down", "no destination"}

// String returns the reason in words, e.g. "not migratable".
func (s Skip) String() string {
	if int(s) < len(skipNames) {
		return skipNames[s]
	}
	return fmt.Sprintf("Skip(%d)", uint8(s))
}

// Reason is why an action was taken, with the numbers that decided it.
// Fields that do not apply to its Cause are zero. [Orchestrator.Describe]
// renders it.
type Reason struct {
	Cause Cause
	// Origin is the detector behind a retry or redo (CauseStarvation or
	// CauseOverload); zero otherwise.
	Origin Cause
	// Node is where the condition was seen: the SmartNIC, the silent node.
	Node topology.NodeID

	// Starvation: the mean queue of the last heartbeat and the threshold
	// it exceeded, for how many consecutive heartbeats, and the busier
	// direction's share of the port rate against the limit.
	Queue, QueueThreshold int
	Heartbeats            int
	PortShare, PortLimit  float64
	PortGbps              float64

	// Overload: the instance whose execution time rose, its last mean and
	// its moving average, in nanoseconds, and the threshold.
	Overloaded InstanceID
	ExecNs     float64
	EMANs      float64
	Threshold  float64

	// Choice of the instance to move: the cores it used (from its last
	// sample, or modelled from its rate if none), the number of movable
	// instances on the node, and the busiest instance passed over.
	CPU        float64
	Movable    int
	Skipped    InstanceID
	SkippedWhy Skip
	// OwnHost is why the server's own host was not the destination; zero
	// when it was, or when it was not considered.
	OwnHost placement.Rejection

	// Overcommit: the node's busy cores and the cores it may use.
	Used, Capacity float64

	// Silence: when the node was last heard and the timeout.
	LastHeard, Timeout time.Duration

	// Prior is the migration a retry, redo or abort refers to, and
	// PriorWhy what the controller said of its failure.
	Prior    MigrationID
	PriorWhy string

	// Rejection is why the closest node refused an unplaced instance, and
	// Closest that node (placement.Unassigned if every node is excluded).
	Rejection placement.Rejection
	Closest   topology.NodeID
}

// Describe renders an action and its reason with node and instance names,
// for logs, the event stream and scenario tests.
func (o *Orchestrator) Describe(a Action) string {
	var b strings.Builder
	node := func(n topology.NodeID) string {
		if n < 0 || int(n) >= o.topo.NumNodes() {
			return "nowhere"
		}
		return o.topo.Name(n)
	}
	b.WriteString(a.Kind.String())
	switch a.Kind {
	case ServerFailed:
		fmt.Fprintf(&b, " %s", o.topo.ServerName(o.topo.ServerOf(a.Node)))
	case AbortMigration, Migrate:
		fmt.Fprintf(&b, " m%d %s %s -> %s", a.Migration, o.InstanceName(a.Instance), node(a.From), node(a.To))
	case Promote, Replace, CreateBackup, Place:
		fmt.Fprintf(&b, " %s", o.InstanceName(a.Instance))
		switch a.Kind {
		case Promote:
			fmt.Fprintf(&b, " on %s (primary was on %s)", node(a.To), node(a.From))
		case Replace:
			fmt.Fprintf(&b, " on %s (was on %s)", node(a.To), node(a.From))
		case Place:
			fmt.Fprintf(&b, " on %s", node(a.To))
		default:
			fmt.Fprintf(&b, " on %s from %s", node(a.To), node(a.From))
		}
	case Unplaced:
		fmt.Fprintf(&b, " %s", o.InstanceName(a.Instance))
	case NodeRejoined:
		fmt.Fprintf(&b, " %s", node(a.Node))
	case Alert:
		fmt.Fprintf(&b, " %s", node(a.Node))
	case PublishRoutes:
		fmt.Fprintf(&b, " epoch %d", a.Epoch)
		return b.String()
	}
	b.WriteString(": ")
	o.describeReason(&b, a, a.Reason)
	return b.String()
}

func (o *Orchestrator) describeReason(b *strings.Builder, a Action, r Reason) {
	node := func(n topology.NodeID) string {
		if n < 0 || int(n) >= o.topo.NumNodes() {
			return "nowhere"
		}
		return o.topo.Name(n)
	}
	detector := func(c Cause) {
		switch c {
		case CauseStarvation:
			fmt.Fprintf(b, "starvation on %s (queue %d > %d for %d heartbeats, port %.1f%% of %g Gb/s < %.0f%%)",
				node(r.Node), r.Queue, r.QueueThreshold, r.Heartbeats, 100*r.PortShare, r.PortGbps, 100*r.PortLimit)
		case CauseOverload:
			fmt.Fprintf(b, "overload on %s (%s %s > average %s + %.0f%% for %d heartbeats)",
				node(r.Node), o.InstanceName(r.Overloaded), fmtNs(r.ExecNs), fmtNs(r.EMANs), 100*r.Threshold, r.Heartbeats)
		}
	}
	switch r.Cause {
	case CauseStarvation, CauseOverload:
		detector(r.Cause)
	case CauseRetry:
		fmt.Fprintf(b, "retry after m%d failed (%s); ", r.Prior, r.PriorWhy)
		detector(r.Origin)
	case CauseRedo:
		fmt.Fprintf(b, "redo of m%d, whose destination failed; ", r.Prior)
		if r.Origin == CauseOvercommit {
			fmt.Fprintf(b, "%s overcommitted after a promotion (%.2f busy cores, limit %.2f)", node(r.Node), r.Used, r.Capacity)
		}
		detector(r.Origin)
	case CauseSilence:
		fmt.Fprintf(b, "%s silent since %s, longer than %s", node(r.Node), fmtDur(r.LastHeard), fmtDur(r.Timeout))
	case CauseServerFailed:
		fmt.Fprintf(b, "server %s failed", o.topo.ServerName(o.topo.ServerOf(r.Node)))
		if r.Prior != 0 && a.Kind == AbortMigration {
			if o.topo.ServerOf(a.To) == o.topo.ServerOf(r.Node) {
				b.WriteString(" (destination)")
			} else {
				b.WriteString(" (source)")
			}
		}
	case CauseOvercommit:
		fmt.Fprintf(b, "%s overcommitted after a promotion (%.2f busy cores, limit %.2f)", node(r.Node), r.Used, r.Capacity)
	case CauseFaultDomain:
		fmt.Fprintf(b, "shared server %s with its primary, whose migration ended there", o.topo.ServerName(o.topo.ServerOf(r.Node)))
	case CausePending:
		b.WriteString("placed after waiting for capacity")
	case CauseRejoin:
		fmt.Fprintf(b, "heard again; holds nothing")
	default:
		b.WriteString(r.Cause.String())
	}
	switch a.Kind {
	case Migrate:
		if r.Cause == CauseOvercommit || r.Origin == CauseOvercommit {
			fmt.Fprintf(b, "; %s needs %.2f cores", o.InstanceName(a.Instance), r.CPU)
			break
		}
		fmt.Fprintf(b, "; %s uses %.2f cores, the most of %d movable", o.InstanceName(a.Instance), r.CPU, r.Movable)
		if r.SkippedWhy != SkipNone {
			fmt.Fprintf(b, " (passed over %s: %s)", o.InstanceName(r.Skipped), r.SkippedWhy)
		}
		if r.OwnHost.OK() {
			if o.topo.ServerOf(a.To) == o.topo.ServerOf(a.From) {
				b.WriteString("; own host")
			} else {
				fmt.Fprintf(b, "; own host avoided after a failed migration to it, placer chose %s", node(a.To))
			}
		} else {
			fmt.Fprintf(b, "; own host refused (%s), placer chose %s", o.describeRejection(r.OwnHost), node(a.To))
		}
	case Alert:
		switch {
		case r.Movable == 0 && r.SkippedWhy != SkipNone:
			fmt.Fprintf(b, "; nothing to move (busiest %s: %s)", o.InstanceName(r.Skipped), r.SkippedWhy)
		case r.Movable == 0:
			b.WriteString("; nothing to move")
		default:
			fmt.Fprintf(b, "; no destination for %d movable instances", r.Movable)
			if r.Skipped >= 0 && !r.Rejection.OK() {
				fmt.Fprintf(b, " (%s: closest %s: %s)", o.InstanceName(r.Skipped), node(r.Closest), o.describeRejection(r.Rejection))
			}
		}
	case Replace:
		b.WriteString("; no replica survived, its state starts empty")
	case Unplaced:
		if r.Closest < 0 && r.Rejection.OK() {
			b.WriteString("; waits for its primary to be placed")
		} else if r.Closest >= 0 {
			fmt.Fprintf(b, "; no node fits, closest %s: %s", node(r.Closest), o.describeRejection(r.Rejection))
		} else {
			fmt.Fprintf(b, "; no node passes pinning and fault domains (%s)", o.describeRejection(r.Rejection))
		}
	}
}

// describeRejection is placement's Rejection.Describe with the
// orchestrator's names: the rejection's Other and At refer to the global
// instance and node (the orchestrator translates them when it records it).
func (o *Orchestrator) describeRejection(r placement.Rejection) string {
	if r.Constraint == placement.ConstraintFaultDomain {
		return fmt.Sprintf("fault-domain: replica %s is on %s, the same server", o.InstanceName(InstanceID(r.Other)), o.topo.Name(r.At))
	}
	if r.Constraint == placement.ConstraintBandwidth && r.At >= 0 {
		r2 := r
		r2.At = placement.Unassigned
		return strings.Replace(r2.String(), "Gb/s free", "Gb/s free on "+o.topo.Name(r.At)+"'s ports", 1)
	}
	return r.String()
}

func fmtNs(ns float64) string { return time.Duration(ns + 0.5).String() }

func fmtDur(d time.Duration) string {
	if d%time.Millisecond == 0 {
		return fmt.Sprintf("%.3fs", d.Seconds())
	}
	return d.String()
}
