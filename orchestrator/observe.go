package orchestrator

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrUnknownNode is wrapped by the error Observe returns for a heartbeat
// from a node the cluster does not have.
var ErrUnknownNode = errors.New("orchestrator: heartbeat from an unknown node")

// ObservePayload decodes a heartbeat payload (the bytes after the
// transport header of a KindHeartbeat message) and observes it, without
// allocating. A malformed payload is reported with the decoder's
// *HeartbeatError and changes nothing.
func (o *Orchestrator) ObservePayload(now time.Duration, b []byte) error {
	if err := o.hb.Decode(b); err != nil {
		return err
	}
	return o.Observe(now, &o.hb)
}

// touchBatch is how many heartbeats ObserveBatch looks ahead at. Their
// node and first instance states are loaded in a first pass of independent
// loads, which the processor overlaps, so that the second pass finds them
// in cache instead of waiting for memory one heartbeat at a time.
const touchBatch = 64

// ObserveBatch observes a batch of heartbeat payloads received at now, as
// a receiver gets them from one recvmmsg call. It is ObservePayload for
// each, faster on a large cluster: heartbeats arrive in no useful order,
// so each one's state is a cache miss, and the batch lets the misses
// overlap. A bad payload does not stop the batch; the first error is
// returned.
func (o *Orchestrator) ObserveBatch(now time.Duration, payloads [][]byte) error {
	var first error
	for lo := 0; lo < len(payloads); lo += touchBatch {
		batch := payloads[lo:min(lo+touchBatch, len(payloads))]
		o.touch(batch)
		for _, b := range batch {
			if err := o.ObservePayload(now, b); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// touch loads the state the heartbeats of batch will need.
func (o *Orchestrator) touch(batch [][]byte) {
	var acc uint16
	nn, ni := uint32(len(o.nodes)), uint32(len(o.inst))
	for _, b := range batch {
		if len(b) < HeartbeatCoreSize+ExecSampleSize {
			if len(b) >= 4 {
				if n := binary.LittleEndian.Uint32(b); n < nn {
					acc += o.nodes[n].seq
				}
			}
			continue
		}
		if n := binary.LittleEndian.Uint32(b); n < nn {
			acc += o.nodes[n].seq
		}
		// An agent's instances were mostly deployed together, so their
		// states are near one another: the first and the last sample's
		// cover the few cache lines between.
		if i := binary.LittleEndian.Uint32(b[HeartbeatCoreSize:]); i < ni {
			acc += o.inst[i].samples
		}
		if i := binary.LittleEndian.Uint32(b[len(b)-ExecSampleSize:]); i < ni {
			acc += o.inst[i].samples
		}
	}
	o.sink += acc
}

// Observe ingests one heartbeat received at now. It costs O(1) plus O(1)
// per sample, allocates nothing, and only marks what the next Decide must
// look at. Times that run backwards are taken as the latest time seen.
//
// A duplicate or late heartbeat (its sequence number at most ReorderWindow
// behind the last) is dropped. The first heartbeat of a node whose server
// was declared failed brings the node back, empty. Samples for instances
// the orchestrator does not place on the reporting node are ignored and
// counted in [Stats]. The only error is for a node outside the cluster.
func (o *Orchestrator) Observe(now time.Duration, hb *Heartbeat) error {
	n := hb.Node
	if n < 0 || int(n) >= len(o.nodes) {
		return fmt.Errorf("%w: node %d, the cluster has 0..%d", ErrUnknownNode, n, len(o.nodes)-1)
	}
	t := int64(now)
	if t < o.now {
		t = o.now
	}
	o.now = t
	ns := &o.nodes[n]
	prevSeq := ns.seq
	consecutive := false
	switch {
	case ns.status == statusFailed:
		// The first word from a node whose server was failed: it is back,
		// empty, and its sequence starts afresh.
		ns.status = statusAlive
		ns.queueRun = 0
		o.lruPush(int32(n), t)
		o.rejoined = append(o.rejoined, n)
	case ns.flags&flagHeard == 0:
		// A node's first heartbeat may carry any sequence number.
		o.lruTouch(int32(n), t)
	default:
		d := int16(hb.Seq - ns.seq)
		switch {
		case d <= 0 && int(-d) <= o.cfg.ReorderWindow:
			o.stats.Stale++
			return nil
		case d == 1:
			consecutive = true
		case d > 1:
			o.stats.Gaps++
		default:
			o.stats.Restarts++
		}
		if t-ns.linked >= o.relink {
			o.lruTouch(int32(n), t)
		}
	}
	o.stats.Heartbeats++
	ns.flags |= flagHeard
	ns.seq = hb.Seq
	ns.lastHeard = t
	if ns.flags&flagNIC == 0 {
		// Hosts have no traffic manager, and the detectors move work
		// from SmartNICs to hosts, never the other way.
		return nil
	}

	// Host starvation: a standing queue while the port is under-used.
	busier := max(hb.RxBytes, hb.TxBytes)
	if int(hb.Queue) > o.cfg.QueueThreshold && busier < ns.portLimit {
		if !consecutive {
			ns.queueRun = 0
		}
		if ns.queueRun < 255 {
			ns.queueRun++
		}
	} else {
		ns.queueRun = 0
	}
	ns.queue = hb.Queue
	ns.busier = busier
	starved := int(ns.queueRun) >= o.cfg.QueueHeartbeats

	// Microservice overload: a sample worse than the instance's moving
	// average by more than the threshold, in consecutive heartbeats.
	overloaded := false
	ns.overRun = 0
	worst := float32(0)
	thr := float32(1 + o.cfg.OverloadThreshold)
	alpha := float32(o.cfg.EMAAlpha)
	perCore := 1 / float32(o.period)
	for k := range hb.Samples {
		s := &hb.Samples[k]
		i := s.Instance
		if int(i) >= len(o.inst) {
			o.stats.UnknownSamples++
			continue
		}
		is := &o.inst[i]
		if is.node != n {
			o.stats.MisplacedSamples++
			continue
		}
		o.stats.Samples++
		is.cpu = float32(s.Count) * float32(s.MeanNs) * perCore
		lastSeq := is.sampleSeq
		is.sampleSeq = hb.Seq
		if s.Count < uint32(o.cfg.MinExecCount) || is.flags&instMigrating != 0 {
			is.overRun = 0
			continue
		}
		x := float32(s.MeanNs)
		if is.samples == 0 {
			is.ema, is.samples = x, 1
			is.overRun = 0
			continue
		}
		if !consecutive || lastSeq != prevSeq {
			is.overRun = 0
		}
		if int(is.samples) >= o.cfg.WarmUp && x > is.ema*thr {
			if is.overRun < 255 {
				is.overRun++
			}
			if int(is.overRun) >= o.cfg.OverloadHeartbeats {
				overloaded = true
				if r := x / is.ema; r > worst {
					worst = r
					c := &o.cold[n]
					c.overInst, c.overExec, c.overEMA, ns.overRun = i, x, is.ema, is.overRun
				}
			}
		} else {
			is.overRun = 0
		}
		is.ema += alpha * (x - is.ema)
		if is.samples < 1<<16-1 {
			is.samples++
		}
	}

	ns.flags &^= flagStarved | flagOverloaded
	if starved {
		ns.flags |= flagStarved
	}
	if overloaded {
		ns.flags |= flagOverloaded
	}
	if (starved || overloaded) && ns.flags&flagListed == 0 {
		ns.flags |= flagListed
		o.flagged = append(o.flagged, n)
	}
	return nil
}
