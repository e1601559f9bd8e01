package runtime

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/topology"
)

// Instance lifecycle states.
const (
	stateRunning int32 = iota
	// stateDraining: the instance takes no new client requests; messages
	// of requests already admitted are still processed.
	stateDraining
	stateStopped
)

// instance is one microservice instance on this node.
type instance struct {
	app    *appState
	inst   *app.Instance
	h      service.Handler
	demand int64 // emulated ns per message on this node's cores
	state  atomic.Int32
	// rr is the round-robin position per outgoing edge of the node.
	rr []atomic.Uint32

	// statistics
	msgs     atomic.Uint64
	realNs   atomic.Uint64 // real handler time, summed over the timed calls
	timed    atomic.Uint64 // calls timed
	execEMA  atomic.Uint64 // float64 bits: EMA of the execution time (emulated in emulation, real otherwise), ns
	sojEMA   atomic.Uint64 // float64 bits: EMA of arrival-to-finish (emulated), ns
	errs     atomic.Uint64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
}

// emaAlpha weighs a new sample in the execution-time averages: about the
// last 20 messages count, short enough to follow a load change within a
// heartbeat and long enough to smooth single outliers.
const emaAlpha = 0.05

func emaUpdate(v *atomic.Uint64, sample float64) {
	for {
		old := v.Load()
		f := math.Float64frombits(old)
		if old == 0 {
			f = sample
		} else {
			f += emaAlpha * (sample - f)
		}
		if v.CompareAndSwap(old, math.Float64bits(f)) {
			return
		}
	}
}

func (in *instance) stop() {
	if in.state.Swap(stateStopped) == stateStopped {
		return
	}
	if c, ok := in.h.(service.Closer); ok {
		c.Close()
	}
}

// appState is a deployed application as this node sees it.
type appState struct {
	route *AppRoute
	local []*instance // by instance index; nil if not on this node
}

func (as *appState) nodeOf(i uint32) topology.NodeID {
	if int(i) >= len(as.route.Nodes) {
		return -1
	}
	return as.route.Nodes[i]
}

// demandOf returns the emulated service time of svc on this node.
func (a *Agent) demandOf(svc string) int64 {
	if a.emu == nil {
		return 0
	}
	if a.emu.Demand != nil {
		return int64(a.emu.Demand(svc))
	}
	d, err := hwmodel.Demand(svc, a.cfg.CoreKind)
	if err != nil {
		return int64(DefaultDemand)
	}
	return int64(d * 1e9)
}

// Apply installs routing table t: it refuses a table whose epoch is not
// newer than the current one ([ErrStaleEpoch]); it creates the instances t
// puts on this node that are not running yet (service.Descriptor.New with a
// fresh in-memory store), and stops the ones t moved away or removed. The
// data path switches to t at once.
func (a *Agent) Apply(t *Table) error {
	a.lifeMu.Lock()
	defer a.lifeMu.Unlock()
	if a.closed.Load() {
		return fmt.Errorf("runtime: %s: apply table epoch %d: agent closed", a.Name(), t.Epoch)
	}
	old := a.state.Load()
	if old.table != nil && t.Epoch <= old.table.Epoch {
		return fmt.Errorf("%w: %s has epoch %d, got %d", ErrStaleEpoch, a.Name(), old.table.Epoch, t.Epoch)
	}
	if err := t.validate(a.topo); err != nil {
		return err
	}
	st := &agentState{table: t}
	var created []*instance
	for ri := range t.Apps {
		r := &t.Apps[ri]
		if r.ID >= 1<<16 {
			return fmt.Errorf("runtime: table epoch %d: app id %d, want below 65536", t.Epoch, r.ID)
		}
		for int(r.ID) >= len(st.apps) {
			st.apps = append(st.apps, nil)
		}
		as := &appState{route: r, local: make([]*instance, len(r.Nodes))}
		st.apps[r.ID] = as
		var prev *appState
		if int(r.ID) < len(old.apps) {
			prev = old.apps[r.ID]
		}
		for i, n := range r.Nodes {
			if n != a.self {
				continue
			}
			ai := r.App.Instances()[i]
			if !ai.IsPrimary() {
				// A backup takes no traffic, only its primary's state
				// updates; until the replicated store replicates, it needs
				// no running instance here (placement still reserves its
				// memory).
				continue
			}
			if prev != nil && prev.route.App == r.App && prev.local[i] != nil && prev.local[i].state.Load() != stateStopped {
				in := prev.local[i]
				as.local[i] = in
				continue
			}
			in, err := a.newInstance(as, ai, r.Seed)
			if err != nil {
				for _, c := range created {
					c.stop()
				}
				return fmt.Errorf("runtime: %s: app %s: %w", a.Name(), r.App.Name, err)
			}
			as.local[i] = in
			created = append(created, in)
		}
	}
	// Re-point kept instances at their new app state.
	for _, as := range st.apps {
		if as == nil {
			continue
		}
		for _, in := range as.local {
			if in != nil {
				in.app = as
			}
		}
	}
	a.state.Store(st)
	// Stop what is no longer here.
	for id, as := range old.apps {
		if as == nil {
			continue
		}
		for i, in := range as.local {
			if in == nil {
				continue
			}
			var now *appState
			if id < len(st.apps) {
				now = st.apps[id]
			}
			if now == nil || i >= len(now.local) || now.local[i] != in {
				in.stop()
			}
		}
	}
	return nil
}

func (a *Agent) newInstance(as *appState, ai *app.Instance, seed int64) (*instance, error) {
	d := ai.Node.Descriptor
	if d == nil || d.New == nil {
		return nil, fmt.Errorf("instance %s: service %q cannot be instantiated", ai.ID, ai.Node.Service)
	}
	h, err := d.New(service.Env{
		Instance: as.route.App.Name + "/" + ai.ID,
		Config:   ai.Node.Config,
		Store:    collections.NewMemStore(),
		Seed:     instanceSeed(as.route.App, ai, seed),
	})
	if err != nil {
		return nil, fmt.Errorf("instance %s (%s): %w", ai.ID, ai.Node.Service, err)
	}
	return &instance{
		app:    as,
		inst:   ai,
		h:      h,
		demand: a.demandOf(ai.Node.Service),
		rr:     make([]atomic.Uint32, len(ai.Node.Out)),
	}, nil
}

// instanceSeed derives an instance's Env.Seed from the application's. The
// instances of source node i get seed ^ SplitMix64(i+1), the seed
// loadgen.AppWorkload gives the request generator of that source, so that
// a service whose requests carry credentials derived from its seed (the
// API gateway's signed tokens) accepts the generated requests. Other
// instances get a seed of their own.
func instanceSeed(a *app.App, ai *app.Instance, seed int64) int64 {
	for i, src := range a.Sources() {
		if src == ai.Node {
			return seed ^ int64(mix64(uint64(i)+1))
		}
	}
	return seed ^ int64(mix64(1<<32+uint64(ai.Index)))
}

// Drain makes instance id of app stop taking new client requests; those
// admitted already run to completion.
func (a *Agent) Drain(appID uint32, id string) error {
	in, err := a.lookupInstance(appID, id)
	if err != nil {
		return err
	}
	in.state.CompareAndSwap(stateRunning, stateDraining)
	return nil
}

// StopInstance stops instance id of app and releases its resources; later
// messages for it fail their requests.
func (a *Agent) StopInstance(appID uint32, id string) error {
	in, err := a.lookupInstance(appID, id)
	if err != nil {
		return err
	}
	in.stop()
	return nil
}

func (a *Agent) lookupInstance(appID uint32, id string) (*instance, error) {
	st := a.state.Load()
	if int(appID) >= len(st.apps) || st.apps[appID] == nil {
		return nil, fmt.Errorf("runtime: %s: no app %d", a.Name(), appID)
	}
	as := st.apps[appID]
	ai, ok := as.route.App.Instance(id)
	if !ok || as.local[ai.Index] == nil {
		return nil, fmt.Errorf("runtime: %s: app %s has no instance %q here", a.Name(), as.route.App.Name, id)
	}
	return as.local[ai.Index], nil
}

// Instances lists the instance ids running here for app appID.
func (a *Agent) Instances(appID uint32) []string {
	st := a.state.Load()
	if int(appID) >= len(st.apps) || st.apps[appID] == nil {
		return nil
	}
	var out []string
	for _, in := range st.apps[appID].local {
		if in != nil && in.state.Load() != stateStopped {
			out = append(out, in.inst.ID)
		}
	}
	return out
}

// Epoch returns the epoch of the table in force (0 before the first).
func (a *Agent) Epoch() uint64 {
	if t := a.state.Load().table; t != nil {
		return t.Epoch
	}
	return 0
}

var _ = time.Second
