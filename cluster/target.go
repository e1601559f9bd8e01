package cluster

import (
	"container/heap"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/loadgen"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/transport"
)

// Target is a client of the emulated cluster that loadgen drives
// (loadgen.Target): requests enter at the ingress as UDP datagrams with
// the E3 header, over lossless channels, to the agent the software ToR
// picks; replies come back the same way.
//
// In emulation every reply carries the emulated time it reaches the
// client. Target hands it to loadgen only when the dilated clock (Clock)
// shows that time, so loadgen's latencies are emulated; it also records
// the exact emulated latency from the timestamps (ExactLatency), which
// the pacing of real time cannot blur.
type Target struct {
	c   *Cluster
	dep *Deployment
	cl  *runtime.Client

	mu      sync.Mutex
	next    uint64
	pending map[uint64]pendingReq
	exact   *loadgen.Latency
	from    int64 // record exact latencies of requests sent at or after this
	samples []Sample
	keep    bool // record samples

	rel     releaseHeap
	relWake chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup
}

type pendingReq struct {
	r    loadgen.Request
	sent int64 // emulated send time
}

// NewTarget returns a client for deployment dep.
func (c *Cluster) NewTarget(dep *Deployment) (*Target, error) {
	t := &Target{c: c, dep: dep, pending: map[uint64]pendingReq{}, exact: loadgen.NewLatency(),
		relWake: make(chan struct{}, 1), done: make(chan struct{})}
	conn, err := c.listen(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 250, byte(1 + c.nclient%250)}), 0))
	if err != nil {
		return nil, err
	}
	ccfg := runtime.ClientConfig{Topology: c.topo, Endpoint: c.cfg.Endpoint, OnReply: t.onReply}
	if c.emu != nil {
		ccfg.ClientLatency = c.emu.ClientLatency
		ccfg.Now = c.Now
	}
	t.cl, err = runtime.NewClient(conn, ccfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	t.cl.SetTable(c.ctrl.Table())
	c.addClient(t)
	t.wg.Add(1)
	go t.releaser()
	return t, nil
}

// Clock is the time base to drive the target with: the dilated clock of
// the cluster (emulated time), or the wall clock in real mode.
func (c *Cluster) Clock() loadgen.Clock { return clusterClock{c} }

type clusterClock struct{ c *Cluster }

func (k clusterClock) Now() int64 { return k.c.Now() }

func (k clusterClock) AfterFunc(d time.Duration, f func()) loadgen.Timer {
	if k.c.emu != nil {
		d = time.Duration(float64(d) * k.c.emu.Dilation)
	}
	return time.AfterFunc(d, f)
}

// Send implements loadgen.Target. The request enters at one shard of its
// source node, chosen by hashing its id as ECMP spreads client
// connections over a node's shards.
func (t *Target) Send(r loadgen.Request) error {
	srcs := t.dep.App.Sources()
	if r.Source < 0 || r.Source >= len(srcs) {
		return fmt.Errorf("cluster: request for source %d, %s has %d", r.Source, t.dep.App.Name, len(srcs))
	}
	if transport.HeaderSize+len(r.Payload) > 1400 {
		return fmt.Errorf("cluster: request of %d bytes does not fit a datagram", len(r.Payload))
	}
	nd := srcs[r.Source]
	t.mu.Lock()
	t.next++
	id := t.next
	now := t.c.Now()
	t.pending[id] = pendingReq{r: r, sent: now}
	t.mu.Unlock()
	shard := int(mix.Murmur3(id) % uint64(nd.Shards))
	inst := nd.Primary(shard)
	if err := t.cl.Send(t.dep.ID, uint32(inst.Index), r.Key, r.Payload, id); err != nil {
		t.mu.Lock()
		delete(t.pending, id)
		t.mu.Unlock()
		return err
	}
	return nil
}

// MeasureFrom starts a new exact-latency window: requests sent at or after
// emulated time from are recorded; what was recorded before is dropped.
func (t *Target) MeasureFrom(from int64) {
	t.mu.Lock()
	t.exact = loadgen.NewLatency()
	t.from = from
	t.mu.Unlock()
}

// Sample is one request's outcome: when it was sent and how long its
// reply took, in emulated ns (from the messages' timestamps).
type Sample struct {
	Sent, Latency int64
	Failed        bool
}

// RecordSamples starts (or stops) keeping a Sample of every reply, to see
// latency over time (a migration's spike).
func (t *Target) RecordSamples(on bool) {
	t.mu.Lock()
	t.keep = on
	t.mu.Unlock()
}

// Samples returns the samples kept so far, in reply order.
func (t *Target) Samples() []Sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Sample(nil), t.samples...)
}

// ExactLatency returns the latencies recorded since MeasureFrom, from the
// messages' emulated timestamps.
func (t *Target) ExactLatency() *loadgen.Latency {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.exact.Clone()
}

// onReply runs on the client's receiver goroutine; it must not call Done
// there (a closed-loop client sends from Done, and a send that waits for
// channel credit would stop the receiver that returns it).
func (t *Target) onReply(id uint64, payload []byte, err error, at int64) {
	t.mu.Lock()
	p, ok := t.pending[id]
	if !ok {
		t.mu.Unlock()
		return
	}
	delete(t.pending, id)
	if t.c.emu != nil && err == nil && p.sent >= t.from {
		t.exact.Record(at - p.sent)
	}
	if t.keep {
		s := Sample{Sent: p.sent, Failed: err != nil}
		if t.c.emu != nil {
			s.Latency = at - p.sent
		} else {
			s.Latency = t.c.Now() - p.sent
		}
		t.samples = append(t.samples, s)
	}
	rel := &release{r: p.r, err: err, at: at}
	if len(payload) > 0 {
		rel.resp = append([]byte(nil), payload...)
	}
	heap.Push(&t.rel, rel)
	t.mu.Unlock()
	select {
	case t.relWake <- struct{}{}:
	default:
	}
}

type release struct {
	r    loadgen.Request
	resp []byte
	err  error
	at   int64
}

// releaser calls Done for each reply once the clock shows its arrival
// time, in arrival order.
func (t *Target) releaser() {
	defer t.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		t.mu.Lock()
		var next *release
		if len(t.rel) > 0 {
			next = t.rel[0]
		}
		now := t.c.Now()
		if next != nil && (t.c.emu == nil || next.at <= now) {
			heap.Pop(&t.rel)
			t.mu.Unlock()
			next.r.Done(next.resp, next.err)
			continue
		}
		t.mu.Unlock()
		var wait time.Duration
		if next != nil {
			wait = time.Duration(float64(next.at-now) * t.c.emu.Dilation)
			if wait <= 0 {
				continue
			}
		} else {
			wait = time.Hour
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-t.relWake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-t.done:
			return
		}
	}
}

// Close stops the target; requests still pending get no reply (loadgen
// counts them as timed out).
func (t *Target) Close() error {
	select {
	case <-t.done:
		return nil
	default:
	}
	close(t.done)
	t.wg.Wait()
	t.c.removeClient(t)
	return t.cl.Close()
}

type releaseHeap []*release

func (h releaseHeap) Len() int           { return len(h) }
func (h releaseHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h releaseHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *releaseHeap) Push(x any)        { *h = append(*h, x.(*release)) }
func (h *releaseHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return r
}
