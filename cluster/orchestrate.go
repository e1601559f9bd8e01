package cluster

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/e3-platform/e3/orchestrator"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/runtime"
	"github.com/e3-platform/e3/topology"
)

// OrchestratorConfig configures the data-plane orchestrator that the
// emulated cluster's controller runs: package orchestrator, fed with the
// agents' heartbeats; the controller carries out its migrations with
// [Cluster.Migrate].
type OrchestratorConfig struct {
	// Config tunes the orchestrator (zero fields: its defaults). Load is
	// set by the cluster.
	Config orchestrator.Config
	// OnDecision, if set, hears every decision as it is made (and again
	// with its result, for a migration that ends).
	OnDecision func(Decision)
}

// Decision is one action of the orchestrator, as the controller saw it.
type Decision struct {
	// At is the emulated time of the decision.
	At   time.Duration
	Kind orchestrator.ActionKind
	// Text is the orchestrator's own description, with its reason.
	Text string
	// For a migration: what moves where, and why.
	App, Instance, Service string
	From, To               string
	Cause                  string
	// Result is the migration's outcome once it ended (nil before, and
	// for other kinds). Carried is false for actions the minimal
	// controller does not carry out (failover is the replicated
	// controller's).
	Result  *MigrationResult
	Carried bool
}

// orchLoop runs the orchestrator: heartbeats in (converted to the
// orchestrator's per-period wire record), Decide every heartbeat period
// of emulated time, migrations carried out on goroutines of their own.
// The orchestrator is not safe for concurrent use: mu guards it.
type orchLoop struct {
	c *Cluster

	mu       sync.Mutex
	o        *orchestrator.Orchestrator
	ids      map[uint32][]orchestrator.InstanceID // by app id, by instance index
	back     map[orchestrator.InstanceID]instRef
	prev     map[topology.NodeID]*runtime.Heartbeat
	seq      map[topology.NodeID]uint16
	msgs     map[topology.NodeID]map[uint64]uint64 // node -> app<<32|index -> messages
	buf      []byte
	hb       orchestrator.Heartbeat
	decs     []Decision
	observeE error
	onDec    func(Decision)

	stopCh chan struct{}
	wg     sync.WaitGroup
}

type instRef struct {
	dep   *Deployment
	index int
}

func (ct *Controller) startOrchestrator(cfg OrchestratorConfig) error {
	c := ct.c
	oc := cfg.Config
	oc.Load = placement.NewLoad(c.pc)
	o, err := orchestrator.New(oc, time.Duration(c.Now()))
	if err != nil {
		return fmt.Errorf("cluster: orchestrator: %w", err)
	}
	l := &orchLoop{c: c, o: o, ids: map[uint32][]orchestrator.InstanceID{}, back: map[orchestrator.InstanceID]instRef{},
		prev: map[topology.NodeID]*runtime.Heartbeat{}, seq: map[topology.NodeID]uint16{}, msgs: map[topology.NodeID]map[uint64]uint64{},
		onDec: cfg.OnDecision, stopCh: make(chan struct{})}
	ct.mu.Lock()
	ct.orch = l
	ct.mu.Unlock()
	l.wg.Add(1)
	go l.run(o.Config().HeartbeatPeriod)
	return nil
}

// Decisions returns the orchestrator's decisions so far (none without
// one).
func (c *Cluster) Decisions() []Decision {
	c.ctrl.mu.Lock()
	l := c.ctrl.orch
	c.ctrl.mu.Unlock()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.decs)
}

// deploy registers dep's instances, placed where they run, at the load
// the plan was made for (the orchestrator's CPU model).
func (l *orchLoop) deploy(dep *Deployment) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, err := placement.FromApp(dep.App, l.o.Load(), dep.Plan.PlanningRPS)
	if err != nil {
		return fmt.Errorf("cluster: orchestrator: %w", err)
	}
	ids, err := l.o.Deploy(p, &placement.Result{Assignment: placement.Assignment(slices.Clone(dep.Nodes))})
	if err != nil {
		return fmt.Errorf("cluster: orchestrator: %w", err)
	}
	l.ids[dep.ID] = ids
	for i, id := range ids {
		l.back[id] = instRef{dep, i}
	}
	return nil
}

// heartbeat turns an agent's report (cumulative counters) into the
// orchestrator's record of the period since the node's previous one and
// feeds it in, encoded, so the decoder runs as it would on the wire.
func (l *orchLoop) heartbeat(hb *runtime.Heartbeat) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.prev[hb.Node]
	l.prev[hb.Node] = hb
	if prev == nil || hb.At <= prev.At {
		return
	}
	dt := float64(hb.At - prev.At)
	l.seq[hb.Node]++
	h := &l.hb
	*h = orchestrator.Heartbeat{Node: hb.Node, Seq: l.seq[hb.Node],
		Queue:   orchestrator.Saturate16(uint64(math.Round(float64(hb.TMWaitNs-prev.TMWaitNs) / dt))),
		RxBytes: orchestrator.Saturate32(hb.BytesIn - min(prev.BytesIn, hb.BytesIn)),
		TxBytes: orchestrator.Saturate32(hb.BytesOut - min(prev.BytesOut, hb.BytesOut)),
		Samples: h.Samples[:0]}
	counts := l.msgs[hb.Node]
	if counts == nil {
		counts = map[uint64]uint64{}
		l.msgs[hb.Node] = counts
	}
	for _, is := range hb.Instances {
		ids := l.ids[is.App]
		ref, ok := l.instance(is.App, is.Instance)
		if !ok {
			continue
		}
		k := uint64(is.App)<<32 | uint64(ref)
		n := is.Messages - min(counts[k], is.Messages)
		counts[k] = is.Messages
		if n == 0 {
			continue
		}
		h.Samples = append(h.Samples, orchestrator.ExecSample{Instance: ids[ref], Count: orchestrator.Saturate32(n),
			MeanNs: orchestrator.Saturate32(uint64(max(is.ExecEMA, 0)))})
	}
	slices.SortFunc(h.Samples, func(a, b orchestrator.ExecSample) int { return int(a.Instance - b.Instance) })
	var err error
	l.buf, err = h.Append(l.buf[:0])
	if err == nil {
		err = l.o.ObservePayload(time.Duration(hb.At), l.buf)
	}
	if err != nil && l.observeE == nil {
		l.observeE = err
		l.c.cfg.Logger.Warn("orchestrator refused a heartbeat", "node", l.c.topo.Name(hb.Node), "err", err)
	}
}

// instance finds the index of instance id of app appID.
func (l *orchLoop) instance(appID uint32, id string) (int, bool) {
	ids := l.ids[appID]
	if len(ids) == 0 {
		return 0, false
	}
	ref := l.back[ids[0]]
	ai, ok := ref.dep.App.Instance(id)
	if !ok {
		return 0, false
	}
	return ai.Index, true
}

func (l *orchLoop) run(period time.Duration) {
	defer l.wg.Done()
	c := l.c
	real := period
	if c.emu != nil {
		real = time.Duration(float64(period) * c.emu.Dilation)
	}
	t := time.NewTicker(real)
	defer t.Stop()
	for {
		select {
		case <-l.stopCh:
			return
		case <-t.C:
		}
		now := time.Duration(c.Now())
		l.mu.Lock()
		acts := slices.Clone(l.o.Decide(now))
		var todo []Decision
		var migs []orchestrator.Action
		for _, a := range acts {
			if a.Kind == orchestrator.PublishRoutes {
				continue // the migration's own tables carry the routes
			}
			d := Decision{At: now, Kind: a.Kind, Text: l.o.Describe(a), Cause: a.Reason.Cause.String()}
			if a.Kind == orchestrator.Migrate {
				if info, ok := l.o.Instance(a.Instance); ok {
					d.App, d.Instance, d.Service = info.App, info.Name, info.Service
				}
				d.From, d.To, d.Carried = c.topo.Name(a.From), c.topo.Name(a.To), true
				migs = append(migs, a)
			}
			l.decs = append(l.decs, d)
			todo = append(todo, d)
		}
		l.mu.Unlock()
		for _, d := range todo {
			if l.onDec != nil {
				l.onDec(d)
			}
		}
		for _, a := range migs {
			l.wg.Add(1)
			go l.carry(a)
		}
	}
}

// carry carries out a Migrate action and reports its outcome.
func (l *orchLoop) carry(a orchestrator.Action) {
	defer l.wg.Done()
	l.mu.Lock()
	ref, ok := l.back[a.Instance]
	l.mu.Unlock()
	var res *MigrationResult
	var err error
	if !ok {
		err = fmt.Errorf("unknown instance %d", a.Instance)
	} else {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-l.stopCh:
				cancel()
			case <-ctx.Done():
			}
		}()
		res, err = l.c.Migrate(ctx, ref.dep, ref.dep.App.Instances()[ref.index].ID, a.To)
		cancel()
	}
	now := time.Duration(l.c.Now())
	l.mu.Lock()
	switch {
	case err != nil:
		l.o.MigrationFailed(now, a.Migration, err.Error())
	case res.Committed:
		l.o.MigrationDone(now, a.Migration)
	default:
		l.o.MigrationFailed(now, a.Migration, res.Reason)
	}
	var done Decision
	for i := len(l.decs) - 1; i >= 0; i-- {
		d := &l.decs[i]
		if d.Kind == orchestrator.Migrate && d.Result == nil && ok && d.Instance == ref.dep.App.Instances()[ref.index].ID && d.To == l.c.topo.Name(a.To) {
			d.Result = res
			done = *d
			break
		}
	}
	l.mu.Unlock()
	if l.onDec != nil && done.Result != nil {
		l.onDec(done)
	}
}

func (l *orchLoop) stop() {
	select {
	case <-l.stopCh:
	default:
		close(l.stopCh)
	}
	l.wg.Wait()
}
