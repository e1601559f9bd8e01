package runtime

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/e3-platform/e3/topology"
)

// agentStats are the agent's counters; everything the heartbeat and the
// Prometheus registry report is read from here.
type agentStats struct {
	bytesIn, bytesOut          atomic.Uint64
	admitted, completed        atomic.Uint64
	failed, timeouts, rejected atomic.Uint64
	forwarded, badMessages     atomic.Uint64
	sendErrors                 atomic.Uint64
	paced, late                atomic.Uint64
	lateNs                     atomic.Int64
	busyNs, tmBusyNs, queueNs  atomic.Int64
	tmPackets                  atomic.Uint64
	tmDepth                    atomic.Int64
	tmWaitNs                   atomic.Int64
}

// Stats is a snapshot of an agent's counters. Times are emulated in
// emulation, real otherwise.
type Stats struct {
	Node topology.NodeID
	// BytesIn and BytesOut count message bytes received and sent on
	// channels and host links.
	BytesIn, BytesOut uint64
	// Admitted requests entered here; Completed, Failed and TimedOut
	// ended here, one of the three each. Rejected counts messages refused
	// (unknown or stopped instance).
	Admitted, Completed, Failed, TimedOut, Rejected uint64
	// Forwarded counts messages passed on (the traffic manager on a
	// SmartNIC); SendErrors messages that could not be sent.
	Forwarded, SendErrors uint64
	// BusyNs is the emulated core time spent, summed over cores (handler
	// service times and traffic-manager work); TMBusyNs the traffic
	// manager's part. QueueNs sums the time messages waited for a core.
	BusyNs, TMBusyNs, QueueNs int64
	// TMPackets counts traffic-manager forwardings; TMQueueDepth is how
	// many of them are waiting for a core now.
	TMPackets    uint64
	TMQueueDepth int
	// Paced counts messages the pacer released; Late those released more
	// than 5 µs (emulated) after their due time, LateNs their summed
	// lateness.
	Paced, Late uint64
	LateNs      int64
	// InFlight is the number of admitted requests not yet finished.
	InFlight int
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	s := &a.stats
	return Stats{
		Node: a.self, BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(),
		Admitted: s.admitted.Load(), Completed: s.completed.Load(), Failed: s.failed.Load(),
		TimedOut: s.timeouts.Load(), Rejected: s.rejected.Load(), Forwarded: s.forwarded.Load(),
		SendErrors: s.sendErrors.Load(), BusyNs: s.busyNs.Load(), TMBusyNs: s.tmBusyNs.Load(),
		QueueNs: s.queueNs.Load(), TMPackets: s.tmPackets.Load(), TMQueueDepth: int(s.tmDepth.Load()),
		Paced: s.paced.Load(), Late: s.late.Load(), LateNs: s.lateNs.Load(), InFlight: a.ing.pending(),
	}
}

// Heartbeat is the periodic report of an agent to the controller: the
// figures the data-plane orchestrator watches (§3.4 of the paper).
type Heartbeat struct {
	Node  topology.NodeID
	Epoch uint64
	// At is the time of the report (emulated ns in emulation, real ns
	// since the agent started otherwise).
	At int64
	// TMQueueDepth is the traffic manager's queue now (SmartNICs).
	TMQueueDepth int
	// TMWaitNs is the cumulative time traffic-manager forwardings waited
	// for a core. Over a period its growth divided by the period's length
	// is the queue's mean depth (Little's law): what the orchestrator's
	// host-starvation detector watches.
	TMWaitNs int64
	// BytesIn and BytesOut are cumulative message bytes.
	BytesIn, BytesOut uint64
	// BusyNs is the cumulative core time spent, summed over cores.
	BusyNs    int64
	Instances []InstanceStats
	// Migrations are the migrations the table in force lists that involve
	// this node (see Move), with their progress.
	Migrations []MigrationStatus
}

// InstanceStats returns the figures of every instance running here.
func (a *Agent) InstanceStats() []InstanceStats { return a.instanceStats(nil) }

// InstanceStats are one instance's figures in a heartbeat.
type InstanceStats struct {
	App      uint32
	Instance string
	Messages uint64
	// ExecEMA is the exponential moving average of the execution time per
	// message (the emulated service time in emulation, the measured
	// handler time in real mode); SojournEMA adds the wait for a core.
	ExecEMA, SojournEMA time.Duration
	// RealMean is the mean real handler time per message (sampled).
	RealMean          time.Duration
	BytesIn, BytesOut uint64
	Errors            uint64
	// Durable is set for an instance on a durable store; LSN is then the
	// last record it appended and Replicated whether a backup is attached.
	Durable    bool
	LSN        uint64
	Replicated bool
	// Held is the number of messages held now (a migration or a
	// compaction in progress).
	Held int
}

func (a *Agent) instanceStats(dst []InstanceStats) []InstanceStats {
	st := a.state.Load()
	for id, as := range st.apps {
		if as == nil {
			continue
		}
		for _, in := range as.local {
			if in == nil {
				continue
			}
			n := in.msgs.Load()
			s := InstanceStats{App: uint32(id), Instance: in.inst.ID, Messages: n,
				ExecEMA:    time.Duration(math.Float64frombits(in.execEMA.Load())),
				SojournEMA: time.Duration(math.Float64frombits(in.sojEMA.Load())),
				BytesIn:    in.bytesIn.Load(), BytesOut: in.bytesOut.Load(), Errors: in.errs.Load()}
			if k := in.timed.Load(); k > 0 {
				s.RealMean = time.Duration(in.realNs.Load() / k)
			}
			if in.store != nil {
				s.Durable, s.LSN, s.Replicated = true, in.store.LSN(), in.replicated.Load()
			}
			if in.holding.Load() {
				s.Held = in.heldCount()
			}
			dst = append(dst, s)
		}
	}
	return dst
}

// heartbeatLoop reports every Heartbeat interval, of emulated time in
// emulation (so the orchestrator sees the cadence the emulated hardware
// would have).
func (a *Agent) heartbeatLoop() {
	defer a.wg.Done()
	period := a.cfg.Heartbeat
	if a.emu != nil {
		period = time.Duration(float64(period) * a.emu.Dilation)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-a.ctx.Done():
			return
		case now := <-t.C:
			at := int64(now.Sub(start))
			if a.emu != nil {
				at = a.emuNow()
			}
			s := &a.stats
			hb := &Heartbeat{Node: a.self, Epoch: a.Epoch(), At: at, TMQueueDepth: int(s.tmDepth.Load()), TMWaitNs: s.tmWaitNs.Load(),
				BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(), BusyNs: s.busyNs.Load()}
			hb.Instances = a.instanceStats(nil)
			hb.Migrations = a.Migrations()
			a.cfg.Controller.Heartbeat(hb)
		}
	}
}

// init builds the agent's own Prometheus registry. Every metric reads the
// counters above when scraped, so the data path pays nothing for them.
func (s *agentStats) init(a *Agent) {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"node": a.topo.Name(a.self), "kind": a.node.Kind.String()}
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "e3", Subsystem: "agent", Name: name, Help: help, ConstLabels: labels}, f))
	}
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "e3", Subsystem: "agent", Name: name, Help: help, ConstLabels: labels}, f))
	}
	u := func(v *atomic.Uint64) func() float64 { return func() float64 { return float64(v.Load()) } }
	secs := func(v *atomic.Int64) func() float64 { return func() float64 { return float64(v.Load()) / 1e9 } }
	counter("bytes_in_total", "Message bytes received on channels and host links.", u(&s.bytesIn))
	counter("bytes_out_total", "Message bytes sent on channels and host links.", u(&s.bytesOut))
	counter("requests_admitted_total", "Client requests admitted at this ingress.", u(&s.admitted))
	counter("requests_completed_total", "Requests completed at this ingress (whole weight returned).", u(&s.completed))
	counter("requests_failed_total", "Requests that failed at this ingress.", u(&s.failed))
	counter("requests_timed_out_total", "Requests that timed out at this ingress.", u(&s.timeouts))
	counter("messages_rejected_total", "Messages refused: unknown or stopped instance.", u(&s.rejected))
	counter("messages_forwarded_total", "Messages forwarded (the SmartNIC traffic manager).", u(&s.forwarded))
	counter("send_errors_total", "Messages that could not be sent.", u(&s.sendErrors))
	counter("messages_late_total", "Messages the pacer released after their emulated due time.", u(&s.late))
	counter("busy_seconds_total", "Core time spent, summed over cores (emulated in emulation).", secs(&s.busyNs))
	counter("tm_busy_seconds_total", "SmartNIC core time spent by the traffic manager.", secs(&s.tmBusyNs))
	gauge("tm_queue_depth", "Traffic-manager forwardings waiting for a SmartNIC core.", func() float64 { return float64(s.tmDepth.Load()) })
	gauge("requests_in_flight", "Admitted requests not yet finished.", func() float64 { return float64(a.ing.pending()) })
	reg.MustRegister(instanceCollector{a})
	a.reg = reg
}

// instanceCollector exports per-instance figures with instance labels.
type instanceCollector struct{ a *Agent }

var (
	descInstMsgs = prometheus.NewDesc("e3_instance_messages_total", "Messages handled by the instance.", []string{"node", "app", "instance"}, nil)
	descInstExec = prometheus.NewDesc("e3_instance_exec_seconds_ema", "Moving average of the execution time per message.", []string{"node", "app", "instance"}, nil)
)

func (c instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descInstMsgs
	ch <- descInstExec
}

func (c instanceCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.state.Load()
	node := c.a.Name()
	for _, as := range st.apps {
		if as == nil {
			continue
		}
		for _, in := range as.local {
			if in == nil {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descInstMsgs, prometheus.CounterValue, float64(in.msgs.Load()), node, as.route.App.Name, in.inst.ID)
			ch <- prometheus.MustNewConstMetric(descInstExec, prometheus.GaugeValue, math.Float64frombits(in.execEMA.Load())/1e9, node, as.route.App.Name, in.inst.ID)
		}
	}
}
