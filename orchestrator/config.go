package orchestrator

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/hcm"
)

// The defaults of [Config]. docs/orchestrator.md gives the reasoning for
// each; only the overload threshold comes from the paper.
const (
	// DefaultHeartbeatPeriod is the agents' reporting period: one heartbeat
	// every 50 ms, as in the paper's scale experiment (X11).
	DefaultHeartbeatPeriod = 50 * time.Millisecond
	// DefaultFailureTimeout is the silence after which a node's server is
	// declared failed: ten heartbeat periods.
	DefaultFailureTimeout = 500 * time.Millisecond
	// DefaultQueueThreshold is the mean traffic-manager queue, in
	// packets, above which a SmartNIC's queue counts as standing.
	DefaultQueueThreshold = 32
	// DefaultQueueHeartbeats is how many consecutive heartbeats must show
	// the starvation condition before it is acted on.
	DefaultQueueHeartbeats = 3
	// DefaultPortFraction is the share of a port's rate below which its
	// bandwidth counts as under-used.
	DefaultPortFraction = 0.5
	// DefaultOverloadThreshold is the paper's 20 %: an execution time this
	// much above its moving average is an overload (§3.4).
	DefaultOverloadThreshold = 0.2
	// DefaultEMAAlpha is the weight of a new sample in the execution-time
	// moving average; its half-life is about 14 periods (0.7 s).
	DefaultEMAAlpha = 0.05
	// DefaultWarmUp is how many samples build an instance's average before
	// the overload detector judges it: one time constant, 1/alpha.
	DefaultWarmUp = 20
	// DefaultOverloadHeartbeats is how many consecutive heartbeats must
	// show an instance overloaded.
	DefaultOverloadHeartbeats = 3
	// DefaultMinExecCount is the fewest requests a sample must cover to be
	// used: means of a handful of requests are noise (1,280 requests a
	// second at the default period).
	DefaultMinExecCount = 64
	// DefaultNodeCoolDown is how long after a migration off a node
	// completes (or after an alert about it) the node is left alone, so
	// the effect of the last move shows before the next.
	DefaultNodeCoolDown = time.Second
	// DefaultInstanceCoolDown is how long an instance that moved (by
	// migration or failover) stays where it is.
	DefaultInstanceCoolDown = 10 * time.Second
	// DefaultReorderWindow is how far behind the last sequence number a
	// heartbeat may be and still count as late rather than as the first of
	// a restarted agent.
	DefaultReorderWindow = 64
)

// Config configures an [Orchestrator]. Zero fields take the defaults
// above; [New] validates the whole config in one place and fills them in.
type Config struct {
	// Load is the committed use of the cluster, which the orchestrator
	// owns from now on: it applies every deployment, migration and
	// failover to it, and the control plane builds its placement
	// problems on it (see [Orchestrator.Deploy]). Required.
	Load *placement.Load
	// Placer chooses destinations when a server's own host cannot take an
	// instance, and places what failover must re-place. Default: HCM.
	Placer placement.Placer
	// Rand is handed to the placer (HCM does not use it). Default: a PCG
	// seeded with 1, 2.
	Rand *rand.Rand
	// Limits cap utilisation in the placement problems the orchestrator
	// builds, as in [placement.Problem].Limits.
	Limits placement.Limits

	// HeartbeatPeriod is the agents' period; byte counts are rates over
	// it. Default 50 ms.
	HeartbeatPeriod time.Duration
	// FailureTimeout: a node not heard for longer is failed, and with it
	// its whole server. Default 500 ms.
	FailureTimeout time.Duration
	// ReorderWindow: a heartbeat at most this many sequence numbers
	// behind the last one is late or duplicate and dropped; further
	// behind, it starts a restarted agent's new sequence. Default 64.
	ReorderWindow int

	// QueueThreshold: a SmartNIC's mean traffic-manager queue above it,
	// in packets, is a standing queue. Default 32.
	QueueThreshold int
	// QueueHeartbeats is the consecutive heartbeats the starvation
	// condition must hold. Default 3.
	QueueHeartbeats int
	// PortFraction: a port carrying less than this share of its rate in
	// its busier direction is under-used. Default 0.5.
	PortFraction float64

	// OverloadThreshold: a sample worse than the instance's average by
	// more than this fraction is an overload. Default 0.2 (the paper's).
	OverloadThreshold float64
	// EMAAlpha is the weight of each new sample in the average, in
	// (0, 1]. Default 0.05.
	EMAAlpha float64
	// WarmUp is the samples the average needs before it is trusted.
	// Default 20.
	WarmUp int
	// OverloadHeartbeats is the consecutive heartbeats an overload must
	// hold. Default 3.
	OverloadHeartbeats int
	// MinExecCount: samples of fewer requests are ignored. Default 64.
	MinExecCount int

	// NodeCoolDown and InstanceCoolDown: see the defaults.
	NodeCoolDown     time.Duration
	InstanceCoolDown time.Duration

	// InitialEpoch is the routing-table epoch in force; the first epoch
	// the orchestrator hands out is one above it. A controller that
	// restarts passes the last epoch it published.
	InitialEpoch uint64
}

// ErrBadConfig is wrapped by every error [New] returns for a bad Config.
var ErrBadConfig = errors.New("orchestrator: bad config")

// validate checks c and fills in its defaults. It is the only place that
// knows the defaults.
func (c *Config) validate() error {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s = %v, want %s", ErrBadConfig, field, v, want)
	}
	if c.Load == nil {
		return fmt.Errorf("%w: Load is nil, want the cluster's placement.Load", ErrBadConfig)
	}
	if c.Placer == nil {
		c.Placer = hcm.New(hcm.Options{})
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(1, 2))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"Limits.CPU", c.Limits.CPU}, {"Limits.Memory", c.Limits.Memory}, {"Limits.Network", c.Limits.Network}} {
		if f.v != 0 && !(f.v > 0 && f.v <= 1) {
			return bad(f.name, f.v, "a fraction in (0, 1] (0 means 1)")
		}
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"HeartbeatPeriod", &c.HeartbeatPeriod, DefaultHeartbeatPeriod},
		{"FailureTimeout", &c.FailureTimeout, DefaultFailureTimeout},
		{"NodeCoolDown", &c.NodeCoolDown, DefaultNodeCoolDown},
		{"InstanceCoolDown", &c.InstanceCoolDown, DefaultInstanceCoolDown},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return bad(d.name, *d.v, "a duration >= 0 (0 means "+d.def.String()+")")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.FailureTimeout < c.HeartbeatPeriod {
		return bad("FailureTimeout", c.FailureTimeout, "at least HeartbeatPeriod ("+c.HeartbeatPeriod.String()+"): a node cannot be expected to report more often")
	}
	ints := []struct {
		name     string
		v        *int
		def, max int
	}{
		{"ReorderWindow", &c.ReorderWindow, DefaultReorderWindow, 1 << 14},
		{"QueueThreshold", &c.QueueThreshold, DefaultQueueThreshold, 1<<16 - 2},
		{"QueueHeartbeats", &c.QueueHeartbeats, DefaultQueueHeartbeats, 255},
		{"WarmUp", &c.WarmUp, DefaultWarmUp, 1<<16 - 1},
		{"OverloadHeartbeats", &c.OverloadHeartbeats, DefaultOverloadHeartbeats, 255},
		{"MinExecCount", &c.MinExecCount, DefaultMinExecCount, 1<<31 - 1},
	}
	for _, f := range ints {
		if *f.v < 0 || *f.v > f.max {
			return bad(f.name, *f.v, fmt.Sprintf("0..%d (0 means %d)", f.max, f.def))
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	fracs := []struct {
		name   string
		v      *float64
		def    float64
		maxIn  float64
		detail string
	}{
		{"PortFraction", &c.PortFraction, DefaultPortFraction, 1, "a fraction in (0, 1]"},
		{"OverloadThreshold", &c.OverloadThreshold, DefaultOverloadThreshold, 100, "a fraction > 0 (0.2 is 20 %)"},
		{"EMAAlpha", &c.EMAAlpha, DefaultEMAAlpha, 1, "a weight in (0, 1]"},
	}
	for _, f := range fracs {
		if *f.v == 0 {
			*f.v = f.def
		}
		if !(*f.v > 0 && *f.v <= f.maxIn) || math.IsInf(*f.v, 0) {
			return bad(f.name, *f.v, f.detail+fmt.Sprintf(" (0 means %v)", f.def))
		}
	}
	return nil
}
