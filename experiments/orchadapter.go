package experiments

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/orchestrator"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/sim"
	"github.com/e3-platform/e3/topology"
)

// orchAdapter seats package orchestrator, the controller's data-plane
// orchestrator, in the simulator (sim.Orchestrator). Every heartbeat
// period it turns the simulator's observations into one heartbeat per
// node in the wire format agents send, feeds the encoded bytes to
// ObservePayload (so the decoder runs too), tells the orchestrator which
// migrations the simulator finished, asks Decide, and hands the
// simulator the Migrate actions.
//
// The samples carry each instance's mean execution time on a core over
// the period (sim's MeanExec), as an agent reports it. The simulator
// models no co-execution interference, so that time does not change with
// load and the orchestrator's overload detector, which compares it with
// its moving average, cannot fire in simulation; the host-starvation
// detector, fed by the traffic manager's queue and the ports' bytes, can
// (docs/MODEL.md, "Experiments").
type orchAdapter struct {
	o    *orchestrator.Orchestrator
	ids  [][]orchestrator.InstanceID // per application, per instance index
	seq  []uint16
	buf  []byte
	hb   orchestrator.Heartbeat
	byNd [][]orchestrator.ExecSample
	// inflight are the migrations ordered and not yet reported done.
	inflight []inflightMig
	// Decisions logs every migration ordered, with the orchestrator's
	// reason, for the report.
	Decisions []orchDecision
	err       error
}

type inflightMig struct {
	id       orchestrator.MigrationID
	app, idx int
	to       topology.NodeID
}

// orchDecision is one migration the orchestrator ordered.
type orchDecision struct {
	At       time.Duration
	App      int
	Instance string
	Service  string
	From, To string
	Why      string
}

// newOrchAdapter deploys every application of cfg, with its assignment,
// into a fresh orchestrator on the simulator's topology, each at rps
// requests a second (the orchestrator's CPU model), with default
// orchestrator settings.
func newOrchAdapter(topo *topology.Topology, apps []*app.App, assign []placement.Assignment, rps []float64) (*orchAdapter, error) {
	cl, err := placement.NewCluster(topo)
	if err != nil {
		return nil, err
	}
	o, err := orchestrator.New(orchestrator.Config{Load: placement.NewLoad(cl)}, 0)
	if err != nil {
		return nil, err
	}
	ad := &orchAdapter{o: o, seq: make([]uint16, topo.NumNodes()), byNd: make([][]orchestrator.ExecSample, topo.NumNodes())}
	for k, a := range apps {
		p, err := placement.FromApp(a, o.Load(), rps[k])
		if err != nil {
			return nil, err
		}
		ids, err := o.Deploy(p, &placement.Result{Assignment: assign[k]})
		if err != nil {
			return nil, err
		}
		ad.ids = append(ad.ids, ids)
	}
	return ad, nil
}

func sat16(x float64) uint16 {
	if !(x > 0) {
		return 0
	}
	return uint16(min(math.Round(x), math.MaxUint16))
}

// Decide implements sim.Orchestrator.
func (ad *orchAdapter) Decide(now time.Duration, obs *sim.Observations) []sim.Action {
	if ad.err != nil {
		return nil
	}
	// Migrations the simulator finished: the instance runs on its
	// destination and is no longer migrating.
	var gi []int // global index of each application's first instance
	base := 0
	for _, ids := range ad.ids {
		gi = append(gi, base)
		base += len(ids)
	}
	keep := ad.inflight[:0]
	for _, m := range ad.inflight {
		io := &obs.Instances[gi[m.app]+m.idx]
		if io.Node == m.to && !io.Migrating {
			if _, err := ad.o.MigrationDone(now, m.id); err != nil {
				ad.err = err
				return nil
			}
			continue
		}
		keep = append(keep, m)
	}
	ad.inflight = keep

	for n := range ad.byNd {
		ad.byNd[n] = ad.byNd[n][:0]
	}
	for _, io := range obs.Instances {
		if io.Node < 0 || io.Processed == 0 {
			continue
		}
		ad.byNd[io.Node] = append(ad.byNd[io.Node], orchestrator.ExecSample{
			Instance: ad.ids[io.App][io.Instance],
			Count:    orchestrator.Saturate32(uint64(io.Processed)),
			MeanNs:   orchestrator.Saturate32(uint64(io.MeanExec)),
		})
	}
	for n := range obs.Nodes {
		no := &obs.Nodes[n]
		s := ad.byNd[n]
		slices.SortFunc(s, func(a, b orchestrator.ExecSample) int { return int(a.Instance - b.Instance) })
		ad.seq[n]++
		ad.hb = orchestrator.Heartbeat{
			Node: topology.NodeID(n), Seq: ad.seq[n], Queue: sat16(no.TMQueueMean),
			RxBytes: orchestrator.Saturate32(uint64(no.RxBytes)), TxBytes: orchestrator.Saturate32(uint64(no.TxBytes)),
			Samples: s,
		}
		var err error
		ad.buf, err = ad.hb.Append(ad.buf[:0])
		if err == nil {
			err = ad.o.ObservePayload(now, ad.buf)
		}
		if err != nil {
			ad.err = fmt.Errorf("heartbeat of node %d: %w", n, err)
			return nil
		}
	}
	var out []sim.Action
	for _, a := range ad.o.Decide(now) {
		if a.Kind != orchestrator.Migrate {
			continue
		}
		app, idx, ok := ad.locate(a.Instance)
		if !ok {
			ad.err = fmt.Errorf("orchestrator migrates unknown instance %d", a.Instance)
			return nil
		}
		info, _ := ad.o.Instance(a.Instance)
		ad.Decisions = append(ad.Decisions, orchDecision{At: now, App: app, Instance: info.Name, Service: info.Service,
			From: obs.Topology.Name(a.From), To: obs.Topology.Name(a.To), Why: a.Reason.Cause.String()})
		ad.inflight = append(ad.inflight, inflightMig{id: a.Migration, app: app, idx: idx, to: a.To})
		out = append(out, sim.Action{Kind: sim.Migrate, App: app, Instance: idx, To: a.To})
	}
	return out
}

// locate maps an orchestrator InstanceID back to (application, index).
func (ad *orchAdapter) locate(id orchestrator.InstanceID) (int, int, bool) {
	for k, ids := range ad.ids {
		if len(ids) > 0 && id >= ids[0] && id <= ids[len(ids)-1] {
			return k, int(id - ids[0]), true
		}
	}
	return 0, 0, false
}
