package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/e3-platform/e3/hwmodel"
)

// Dist names a service-time distribution.
type Dist uint8

// The service-time distributions. Each has the mean Table 1 gives (see
// [Params.Demand]); they differ in spread.
const (
	// Lognormal with coefficient of variation Params.ServiceCV: the
	// default. See [DefaultParams] for why.
	Lognormal Dist = iota
	// Exponential service (CV 1), the M/M/c textbook case.
	Exponential
	// Deterministic service (CV 0): every message costs exactly the mean.
	Deterministic
)

var distNames = [...]string{"lognormal", "exponential", "deterministic"}

// String returns "lognormal", "exponential" or "deterministic".
func (d Dist) String() string {
	if int(d) < len(distNames) {
		return distNames[d]
	}
	return fmt.Sprintf("Dist(%d)", uint8(d))
}

// DemandFunc returns the seconds one message of bytes bytes of service
// keeps one core of kind k busy. It is the hook for request-size scaling:
// Table 1 was measured with 512 B requests only, so the default ignores
// bytes; an experiment that sweeps sizes (X2) supplies its own model here.
type DemandFunc func(service string, k hwmodel.CoreKind, bytes int) (float64, error)

// Table1Demand is the default DemandFunc: hwmodel.Demand, the Table 1
// calibration at 512 B, whatever the size.
func Table1Demand(service string, k hwmodel.CoreKind, _ int) (float64, error) {
	return hwmodel.Demand(service, k)
}

// Params are the model's parameters that the paper does not give. Every
// default is stated with its source or reasoning on [DefaultParams]; the
// same list is in docs/MODEL.md. A Params value is used as given: start
// from DefaultParams and change what an experiment varies.
type Params struct {
	// QueueLatency is the one-way delay of a message between two instances
	// on one compute node (an in-memory queue between cores).
	QueueLatency time.Duration
	// PCIeLatency is the one-way delay of a message crossing the PCIe link
	// between a SmartNIC and its host, and of a packet between a plain NIC
	// and host memory.
	PCIeLatency time.Duration
	// PortLatency is the delay a NIC port adds to a frame (MAC, PHY,
	// cable), paid once at each end of a network path.
	PortLatency time.Duration
	// SwitchLatency is the forwarding delay of one switch (ToR,
	// aggregation or core), paid once per switch hop.
	SwitchLatency time.Duration
	// WireOverhead is the bytes a frame carries on the wire beyond the
	// message payload: E3's 56-byte header, UDP (8), IPv4 (20), Ethernet
	// header and FCS (18), preamble and inter-frame gap (20).
	WireOverhead int
	// ServiceDist and ServiceCV give the spread of service times around
	// the Table 1 mean. ServiceCV is used by Lognormal only.
	ServiceDist Dist
	ServiceCV   float64
	// Demand gives the mean service demand; nil means [Table1Demand].
	Demand DemandFunc
	// TMDemand is the core time of a SmartNIC core that the traffic
	// manager spends on one packet it forwards between the network and the
	// host, in either direction.
	TMDemand time.Duration
	// MigrationFixed is the fixed cost of a cold migration (pushing the
	// binary, starting the instance, switching routes), on top of
	// transferring the state at MigrationGbps.
	MigrationFixed time.Duration
	// MigrationGbps is the rate the state of a migrating instance moves
	// at; 0 means the slowest link of the path between the two nodes.
	MigrationGbps float64
	// HeartbeatPeriod is how often the orchestrator hears from the nodes
	// (§3.4: every 50 ms in the paper's X11 setup).
	HeartbeatPeriod time.Duration
}

// DefaultParams returns the parameters the simulator uses unless told
// otherwise. The paper gives none of them; each is chosen as follows.
//
// Latencies (one way). Figure 3 of the paper gives only relative round-trip
// times, which X3 reproduces, so the absolute values come from elsewhere
// and are not fitted to it:
//
//   - QueueLatency 0.2 µs: a message between cores of one node through a
//     shared-memory queue costs about two cache-line transfers (the slot
//     and the index), each of the order of 100 ns between cores of one
//     Xeon socket.
//   - PCIeLatency 1 µs: one message over PCIe is a descriptor DMA and a
//     data DMA, each about 0.5 µs on Xeon E5 systems as measured with
//     pcie-bench (Neugebauer et al., "Understanding PCIe performance for
//     end host networking", SIGCOMM 2018). A plain NIC pays it between the
//     wire and host memory too; only SmartNIC cores avoid it.
//   - PortLatency 0.25 µs per NIC port (MAC and PHY of a 10 GbE SFP+ port
//     and a rack-length cable); an estimate, of the order of the
//     sub-microsecond NIC pipeline latencies reported for kernel-bypass
//     stacks.
//   - SwitchLatency 0.8 µs per switch: the Arista 7050S, the ToR of the
//     paper's testbed, is specified at 0.8 to 1.35 µs port to port; the
//     low end because serialisation is modelled separately.
//
// Serialisation is modelled on every NIC port (each direction a FIFO at
// the port's rate) and on the PCIe link (its rate, 63 Gb/s by default from
// topology); WireOverhead adds 122 bytes of headers and framing to every
// message.
//
// Service times: lognormal with CV 0.5 around the Table 1 mean. Requests
// are fixed-size (512 B), so the work per request varies little for most
// services; what varies is cache and branch behaviour, and for SQL, BM25,
// KNN or Recommend the data a query touches. Measured service times of
// such services are right-skewed and narrower than exponential; a
// lognormal with CV 0.5 lies between the deterministic (CV 0) and
// exponential (CV 1) bounds, which an experiment can select instead.
//
// TMDemand 2.92 µs: half the core time of the cheapest request the
// SmartNIC serves. Table 1's SmartNIC column plateaus at about 2.05 M
// requests/s for the lightest services (NATv4, EMA, KVS, Flow monitor,
// Count) despite their different work, so the ~5.85 µs of a core per
// request there (12 cores / 2.053 M, NATv4's) is mostly the firmware's
// packet path:
// one receive and one transmit. A packet the traffic manager forwards to
// or from the host takes half of that path (receive and DMA, or DMA and
// transmit). The figure is computed from hwmodel's Table 1 at start-up.
//
// MigrationFixed 20 ms: a cold migration (§3.4) is a handful of
// control-plane round trips (push the binary, stop and drain the instance,
// confirm, switch routes) plus starting a process; tens of milliseconds,
// of the order of the 50 ms heartbeat that triggers it. State moves at the
// path's slowest link on top of that.
func DefaultParams() Params {
	return Params{
		QueueLatency:    200 * time.Nanosecond,
		PCIeLatency:     time.Microsecond,
		PortLatency:     250 * time.Nanosecond,
		SwitchLatency:   800 * time.Nanosecond,
		WireOverhead:    122,
		ServiceDist:     Lognormal,
		ServiceCV:       0.5,
		TMDemand:        defaultTMDemand(),
		MigrationFixed:  20 * time.Millisecond,
		HeartbeatPeriod: 50 * time.Millisecond,
	}
}

// defaultTMDemand is half of 12 cores over the highest SmartNIC throughput
// of Table 1; see DefaultParams.
func defaultTMDemand() time.Duration {
	best := 0.0
	for _, c := range hwmodel.Table1() {
		best = max(best, c.Stacks[hwmodel.SmartNIC].RPS)
	}
	return time.Duration(0.5 * hwmodel.NICCores / best * 1e9)
}

// validate checks p and reports the first field out of range.
func (p *Params) validate() error {
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"QueueLatency", p.QueueLatency}, {"PCIeLatency", p.PCIeLatency},
		{"PortLatency", p.PortLatency}, {"SwitchLatency", p.SwitchLatency},
		{"TMDemand", p.TMDemand}, {"MigrationFixed", p.MigrationFixed},
	} {
		if f.v < 0 {
			return fmt.Errorf("sim: Params.%s = %v, want >= 0", f.name, f.v)
		}
	}
	switch {
	case p.WireOverhead < 0 || p.WireOverhead > 1<<20:
		return fmt.Errorf("sim: Params.WireOverhead = %d, want 0..%d bytes", p.WireOverhead, 1<<20)
	case p.ServiceDist > Deterministic:
		return fmt.Errorf("sim: Params.ServiceDist = %d, want Lognormal, Exponential or Deterministic", p.ServiceDist)
	case p.ServiceDist == Lognormal && !(p.ServiceCV >= 0 && p.ServiceCV <= 10):
		return fmt.Errorf("sim: Params.ServiceCV = %v, want 0..10 for a lognormal", p.ServiceCV)
	case p.MigrationGbps < 0 || math.IsNaN(p.MigrationGbps) || math.IsInf(p.MigrationGbps, 0):
		return fmt.Errorf("sim: Params.MigrationGbps = %v, want >= 0 (0: the path's slowest link)", p.MigrationGbps)
	case p.HeartbeatPeriod < 0:
		return fmt.Errorf("sim: Params.HeartbeatPeriod = %v, want >= 0", p.HeartbeatPeriod)
	}
	return nil
}

// sampler draws service times around a mean.
type sampler struct {
	dist  Dist
	sigma float64 // lognormal: standard deviation of the log
	shift float64 // lognormal: -sigma²/2, so that the mean is kept
}

func newSampler(p *Params) sampler {
	s := sampler{dist: p.ServiceDist}
	if s.dist == Lognormal {
		if p.ServiceCV == 0 {
			s.dist = Deterministic
		} else {
			v := math.Log1p(p.ServiceCV * p.ServiceCV)
			s.sigma = math.Sqrt(v)
			s.shift = -v / 2
		}
	}
	return s
}

// draw returns a service time with mean meanNs, at least 1 ns.
func (s *sampler) draw(r *rngs, meanNs float64) int64 {
	var x float64
	switch s.dist {
	case Exponential:
		x = meanNs * r.service.ExpFloat64()
	case Lognormal:
		x = meanNs * math.Exp(s.shift+s.sigma*r.service.NormFloat64())
	default:
		x = meanNs
	}
	if x < 1 {
		return 1
	}
	return int64(x + 0.5)
}
