package orchestrator

import (
	"fmt"

	"github.com/e3-platform/e3/topology"
)

// InstanceCounters are an agent's cumulative counters for one instance.
type InstanceCounters struct {
	Instance InstanceID
	// Messages is the requests the instance finished since it started
	// on this node; ExecNs their total execution time on a core.
	Messages, ExecNs uint64
}

// Reporter is the agent's side of the heartbeat: it turns the cumulative
// counters an agent keeps into the per-period figures a [Heartbeat]
// carries (bytes and requests during the period, their mean execution
// time) and numbers the heartbeats. The orchestrator does the smoothing
// (its moving average), so the agent reports plain period means.
type Reporter struct {
	node           topology.NodeID
	seq            uint16
	started        bool
	prevRx, prevTx uint64
	prev, cur      []InstanceCounters
	hb             Heartbeat
}

// NewReporter returns the reporter of node n.
func NewReporter(n topology.NodeID) *Reporter { return &Reporter{node: n} }

// Next returns the heartbeat for the period that ends now: queue is the
// traffic manager's mean queue over the period (0 on a host), rx and tx
// the cumulative bytes through the node's ports, and inst the cumulative
// counters of the instances on the node, in increasing Instance order.
// An instance new since the last call reports its counters as they are;
// a counter that went backwards (the instance restarted) reports from
// zero. The heartbeat is valid until the next call; it does not allocate
// once its slices have grown.
func (r *Reporter) Next(queue int, rx, tx uint64, inst []InstanceCounters) (*Heartbeat, error) {
	for k := 1; k < len(inst); k++ {
		if inst[k].Instance <= inst[k-1].Instance {
			return nil, fmt.Errorf("orchestrator: Reporter.Next: instance %d after %d, want increasing order", inst[k].Instance, inst[k-1].Instance)
		}
	}
	r.seq++
	delta := func(cur, prev uint64) uint64 {
		if cur < prev {
			return cur
		}
		return cur - prev
	}
	h := &r.hb
	h.Node, h.Seq = r.node, r.seq
	h.Queue = Saturate16(uint64(max(queue, 0)))
	if r.started {
		h.RxBytes, h.TxBytes = Saturate32(delta(rx, r.prevRx)), Saturate32(delta(tx, r.prevTx))
	} else {
		h.RxBytes, h.TxBytes = 0, 0 // no period to measure yet
	}
	r.started = true
	r.prevRx, r.prevTx = rx, tx
	h.Samples = h.Samples[:0]
	p := 0
	for _, c := range inst {
		for p < len(r.prev) && r.prev[p].Instance < c.Instance {
			p++
		}
		var before InstanceCounters
		if p < len(r.prev) && r.prev[p].Instance == c.Instance {
			before = r.prev[p]
		}
		msgs := delta(c.Messages, before.Messages)
		ns := delta(c.ExecNs, before.ExecNs)
		if c.Messages < before.Messages {
			ns = c.ExecNs
		}
		s := ExecSample{Instance: c.Instance, Count: Saturate32(msgs)}
		if msgs > 0 {
			s.MeanNs = Saturate32(ns / msgs)
		}
		h.Samples = append(h.Samples, s)
	}
	r.cur = append(r.cur[:0], inst...)
	r.prev, r.cur = r.cur, r.prev
	return h, nil
}
