package sim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// Config describes one simulation run.
type Config struct {
	// Topology is the cluster. Each server's Model must name a machine of
	// Machines (Table 4's by default), which gives its core kinds and
	// power.
	Topology *topology.Topology
	// Machines resolves server models to machine profiles; nil means
	// hwmodel.MachineByName.
	Machines func(model string) (hwmodel.Machine, bool)
	// Apps are the applications that run, each with its clients.
	Apps []AppLoad
	// Placer places applications that come without an Assignment; nil
	// means HCM (placement/hcm), the paper's Algorithm 1.
	Placer placement.Placer
	// Seed seeds every random choice of the run. The same Config and Seed
	// give the same Result, bit for bit.
	Seed uint64
	// Warmup is the virtual time simulated before measuring; Duration the
	// virtual time measured after it. Duration must be > 0.
	Warmup, Duration time.Duration
	// Params are the model's parameters; nil means DefaultParams().
	Params *Params
	// Orchestrator, if set, is consulted every Params.HeartbeatPeriod of
	// virtual time and may migrate instances.
	Orchestrator Orchestrator
}

// AppLoad is one application with its placement and its clients.
type AppLoad struct {
	// App is the application, loaded and validated by package app.
	App *app.App
	// Assignment maps every instance of App (by app.Instance.Index) to a
	// compute node. Nil means: place App with the Config's Placer at
	// PlanRPS, after the applications before it. Every primary must be
	// assigned; backups may be Unassigned (they take no traffic).
	Assignment placement.Assignment
	// PlanRPS is the offered load placement provisions for when the
	// simulator places App itself. Zero means the open-loop rate of
	// Clients if it has one, else the largest load at which the placer
	// finds a node for every instance ([PlaceableRPS]).
	PlanRPS float64
	// Clients is the load offered to App.
	Clients Clients
}

// Clients describes the clients of one application. Requests go to the
// application's sources by its workload mix; within a source node the
// ToR's ECMP hash of the request's flow picks the shard (each request is
// its own flow: a datagram from a fresh source port).
//
// Closed loop (Outstanding > 0): that many clients, each sending its next
// request when the reply to its previous one arrives, after an
// exponentially distributed think time of mean Think. A client-side rate
// limiter caps their combined sending rate at Rate requests a second if
// Rate > 0 (a token bucket of Burst tokens, as a generic cell-rate
// algorithm; clients that find no token wait for one in arrival order).
//
// Open loop (Outstanding == 0): requests arrive as a Poisson process of
// Rate a second, whatever the replies. MaxInFlight bounds the requests
// outstanding (arrivals beyond it are rejected and counted), so that an
// overloaded run cannot exhaust memory; 0 means 1,000,000.
type Clients struct {
	// Outstanding is the number of closed-loop clients; 0 for open loop.
	Outstanding int
	// Think is a closed-loop client's mean think time.
	Think time.Duration
	// Rate is the open loop's arrival rate, or the closed loop's rate
	// limit (0: none), in requests a second.
	Rate float64
	// Burst is the rate limiter's extra tokens: 0 spaces sends evenly.
	Burst int
	// MaxInFlight caps the open loop's outstanding requests.
	MaxInFlight int
	// Keys is how request keys are drawn from the workload's key space.
	Keys Keys
}

// Closed returns closed-loop clients: n outstanding requests, no think
// time, no rate limit, uniform keys.
func Closed(n int) Clients { return Clients{Outstanding: n} }

// Open returns open-loop Poisson clients at rate requests a second with
// uniform keys.
func Open(rate float64) Clients { return Clients{Rate: rate} }

// Keys describes the key popularity. Keys are drawn by rank from the
// application's key space (Workload.KeySpace) and hashed, so that hot
// keys land on unrelated shards.
type Keys struct {
	// Zipf is the skew exponent s of a Zipf distribution over the ranks:
	// rank r (from 1) is drawn with probability proportional to 1/r^s.
	// 0 means uniform keys; YCSB's default skew is 0.99.
	Zipf float64
}

const defaultMaxInFlight = 1_000_000

func (c *Clients) validate() error {
	switch {
	case c.Outstanding < 0 || c.Outstanding > 10_000_000:
		return fmt.Errorf("Clients.Outstanding = %d, want 0 (open loop) to 10000000", c.Outstanding)
	case c.Think < 0:
		return fmt.Errorf("Clients.Think = %v, want >= 0", c.Think)
	case !(c.Rate >= 0) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("Clients.Rate = %v, want a finite rate >= 0", c.Rate)
	case c.Outstanding == 0 && c.Rate == 0:
		return errors.New("Clients: open loop (Outstanding 0) needs Rate > 0")
	case c.Burst < 0:
		return fmt.Errorf("Clients.Burst = %d, want >= 0", c.Burst)
	case c.MaxInFlight < 0:
		return fmt.Errorf("Clients.MaxInFlight = %d, want >= 0 (0 means %d)", c.MaxInFlight, defaultMaxInFlight)
	case !(c.Keys.Zipf >= 0) || math.IsInf(c.Keys.Zipf, 0):
		return fmt.Errorf("Clients.Keys.Zipf = %v, want 0 (uniform) or a finite s > 0", c.Keys.Zipf)
	}
	return nil
}

// validate checks the config, naming the field and value at fault.
func (c *Config) validate() error {
	switch {
	case c.Topology == nil:
		return errors.New("sim: Config.Topology is nil")
	case len(c.Apps) == 0:
		return errors.New("sim: Config.Apps is empty; give at least one application")
	case c.Duration <= 0:
		return fmt.Errorf("sim: Config.Duration = %v, want > 0", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("sim: Config.Warmup = %v, want >= 0", c.Warmup)
	case int64(c.Warmup) > maxVirtual || int64(c.Duration) > maxVirtual || int64(c.Warmup+c.Duration) > maxVirtual:
		return fmt.Errorf("sim: Config.Warmup + Duration = %v, want at most %v of virtual time", c.Warmup+c.Duration, time.Duration(maxVirtual))
	}
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.App == nil {
			return fmt.Errorf("sim: Config.Apps[%d].App is nil", i)
		}
		if err := a.Clients.validate(); err != nil {
			return fmt.Errorf("sim: Config.Apps[%d] (%s): %w", i, a.App.Name, err)
		}
		if !(a.PlanRPS >= 0) || math.IsInf(a.PlanRPS, 0) {
			return fmt.Errorf("sim: Config.Apps[%d] (%s): PlanRPS = %v, want a finite rate >= 0", i, a.App.Name, a.PlanRPS)
		}
		if a.Assignment != nil && len(a.Assignment) != len(a.App.Instances()) {
			return fmt.Errorf("sim: Config.Apps[%d] (%s): Assignment has %d entries, the application %d instances", i, a.App.Name, len(a.Assignment), len(a.App.Instances()))
		}
		if a.App.Workload.RequestSize <= 0 || a.App.Workload.KeySpace <= 0 {
			return fmt.Errorf("sim: Config.Apps[%d] (%s): workload request_size %d, key_space %d, want both > 0", i, a.App.Name, a.App.Workload.RequestSize, a.App.Workload.KeySpace)
		}
	}
	if c.Params != nil {
		if err := c.Params.validate(); err != nil {
			return err
		}
	}
	return nil
}

// maxVirtual bounds a run's virtual time (about 106 days), far beyond any
// experiment, so that time arithmetic in nanoseconds cannot overflow.
const maxVirtual = int64(1) << 53
