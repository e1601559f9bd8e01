package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/hcm"
)

// Random streams of a run. Each purpose draws from its own PCG stream of
// the run's seed, so that, for example, adding a client does not change
// the service times other messages draw.
const (
	streamArrivals uint64 = iota + 1
	streamKeys
	streamService
	streamRouting
	streamPlacement
)

// PlaceApps returns the assignment of every application of cfg: the one
// it came with, or one computed by cfg.Placer (HCM by default) at the
// application's PlanRPS, placing the applications in order on one shared
// cluster load (each sees the resources the ones before it took). It is
// what Run does before simulating, exposed so that experiments can inspect
// or reuse a placement.
func PlaceApps(cfg *Config) ([]placement.Assignment, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cl, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}
	return placeApps(cfg, cl)
}

func newCluster(cfg *Config) (*placement.Cluster, error) {
	if cfg.Machines != nil {
		return placement.NewClusterWith(cfg.Topology, cfg.Machines)
	}
	return placement.NewCluster(cfg.Topology)
}

func placerOf(cfg *Config) placement.Placer {
	if cfg.Placer != nil {
		return cfg.Placer
	}
	return hcm.New(hcm.Options{})
}

func placeApps(cfg *Config, cl *placement.Cluster) ([]placement.Assignment, error) {
	load := placement.NewLoad(cl)
	placer := placerOf(cfg)
	out := make([]placement.Assignment, len(cfg.Apps))
	for i := range cfg.Apps {
		al := &cfg.Apps[i]
		if al.Assignment != nil {
			out[i] = al.Assignment
			// Account for its resources so that later applications see
			// them used. A hand-made assignment may overcommit; the
			// simulator runs it anyway, so only a malformed one fails.
			p, err := problemFor(al.App, load, planRate(al), demandOf(cfg))
			if err != nil {
				return nil, fmt.Errorf("sim: Apps[%d] (%s): %w", i, al.App.Name, err)
			}
			if err := load.Apply(p, &placement.Result{Assignment: al.Assignment}); err != nil {
				return nil, fmt.Errorf("sim: Apps[%d] (%s): assignment: %w", i, al.App.Name, err)
			}
			continue
		}
		rps := planRate(al)
		var a placement.Assignment
		if rps == 0 {
			var err error
			rps, a, err = placeableRPS(al.App, load, placer, demandOf(cfg), cfg.Seed)
			if err != nil {
				return nil, fmt.Errorf("sim: Apps[%d] (%s): %w", i, al.App.Name, err)
			}
		} else {
			res, p, err := placeAt(al.App, load, placer, demandOf(cfg), rps, cfg.Seed)
			if err != nil {
				return nil, fmt.Errorf("sim: Apps[%d] (%s): %w", i, al.App.Name, err)
			}
			if msg := unplacedPrimaries(p, res); msg != "" {
				return nil, fmt.Errorf("sim: Apps[%d] (%s): placement at %.0f requests/s leaves primaries without a node: %s", i, al.App.Name, rps, msg)
			}
			a = res.Assignment
		}
		p, err := problemFor(al.App, load, rps, demandOf(cfg))
		if err != nil {
			return nil, fmt.Errorf("sim: Apps[%d] (%s): %w", i, al.App.Name, err)
		}
		if err := load.Apply(p, &placement.Result{Assignment: a}); err != nil {
			return nil, fmt.Errorf("sim: Apps[%d] (%s): %w", i, al.App.Name, err)
		}
		out[i] = a
	}
	return out, nil
}

// planRate is the load an application is placed for: PlanRPS, else the
// open-loop rate, else 0 (search for the largest placeable load).
func planRate(al *AppLoad) float64 {
	switch {
	case al.PlanRPS > 0:
		return al.PlanRPS
	case al.Clients.Outstanding == 0:
		return al.Clients.Rate
	}
	return 0
}

func placeAt(a *app.App, load *placement.Load, placer placement.Placer, demand DemandFunc, rps float64, seed uint64) (*placement.Result, *placement.Problem, error) {
	p, err := problemFor(a, load, rps, demand)
	if err != nil {
		return nil, nil, err
	}
	res, err := placer.Place(p, rand.New(rand.NewPCG(seed, streamPlacement)))
	if err != nil {
		return nil, nil, err
	}
	return res, p, nil
}

// unplacedPrimaries describes the primaries res left without a node, or
// returns "" if there are none. Unplaced backups are allowed: a backup
// takes no traffic, and a one-server cluster has nowhere to put one
// outside its primary's fault domain.
func unplacedPrimaries(p *placement.Problem, res *placement.Result) string {
	var parts []string
	for _, u := range res.Unplaced {
		if !p.Instance(u.Instance).IsBackup() {
			if len(parts) == 3 {
				parts = append(parts, "...")
				break
			}
			parts = append(parts, u.Describe(p))
		}
	}
	return strings.Join(parts, "; ")
}

// PlaceableRPS returns the largest offered load, in requests a second, at
// which placer finds a node for every primary of a on load, to within
// 0.5 %, with the assignment at that load. It is the load the cluster can
// be provisioned for: placement's CPU constraint caps each node's busy
// cores at its cores (times placement.Limits), so this is the capacity
// the placement algorithm sees, before queueing. A greedy placer is not
// guaranteed to be monotone in the load; the search returns a load it
// placed, bracketed by one it could not.
func PlaceableRPS(a *app.App, load *placement.Load, placer placement.Placer, demand DemandFunc, seed uint64) (float64, placement.Assignment, error) {
	if placer == nil {
		placer = hcm.New(hcm.Options{})
	}
	if demand == nil {
		demand = Table1Demand
	}
	return placeableRPS(a, load, placer, demand, seed)
}

func placeableRPS(a *app.App, load *placement.Load, placer placement.Placer, demand DemandFunc, seed uint64) (float64, placement.Assignment, error) {
	try := func(rps float64) (placement.Assignment, string, error) {
		res, p, err := placeAt(a, load, placer, demand, rps, seed)
		if err != nil {
			return nil, "", err
		}
		return res.Assignment, unplacedPrimaries(p, res), nil
	}
	// Memory and pinning alone must fit: at a vanishing load.
	const tiny = 1e-3
	best, msg, err := try(tiny)
	if err != nil {
		return 0, nil, err
	}
	if msg != "" {
		return 0, nil, fmt.Errorf("no placement even at no load: %s", msg)
	}
	lo, hi := tiny, 1024.0
	for {
		a2, msg, err := try(hi)
		if err != nil {
			return 0, nil, err
		}
		if msg != "" {
			break
		}
		lo, best = hi, a2
		if hi *= 2; hi > 1e13 {
			return 0, nil, fmt.Errorf("placement still fits at %.3g requests/s; the application demands no CPU", lo)
		}
	}
	for hi-lo > 0.005*lo {
		mid := (lo + hi) / 2
		a2, msg, err := try(mid)
		if err != nil {
			return 0, nil, err
		}
		if msg == "" {
			lo, best = mid, a2
		} else {
			hi = mid
		}
	}
	return lo, best, nil
}

// demandOf is the run's demand model.
func demandOf(cfg *Config) DemandFunc {
	if cfg.Params != nil && cfg.Params.Demand != nil {
		return cfg.Params.Demand
	}
	return Table1Demand
}

// problemFor is placement.FromApp with the simulator's demand model, so
// that placement provisions for the service times the run will draw (the
// same Table 1 figures by default; a size-aware model when an experiment
// supplies one). Instance i of the problem is a's instance i, and the
// rest follows FromApp: rates from the application's traffic model times
// rps, memory and migratability from the descriptors, pins from the spec.
func problemFor(a *app.App, load *placement.Load, rps float64, demand DemandFunc) (*placement.Problem, error) {
	p := placement.NewProblem(load)
	bytes := float64(a.Workload.RequestSize)
	for _, inst := range a.Instances() {
		nd := inst.Node
		if nd.Descriptor == nil {
			return nil, fmt.Errorf("node %s has no service descriptor", nd.Name)
		}
		in := placement.Instance{
			Name: inst.ID, App: a.Name, Service: nd.Service,
			NonMigratable: !nd.Descriptor.Migratable,
			MemoryMB:      float64(nd.Descriptor.MemoryMB),
			Bytes:         bytes,
		}
		switch nd.Pin {
		case app.PinHost:
			in.Pin = placement.PinHost
		case app.PinSmartNIC:
			in.Pin = placement.PinSmartNIC
		}
		if !inst.IsPrimary() {
			p.AddBackup(placement.InstanceID(inst.Primary.Index), in)
			continue
		}
		in.RPS = rps * inst.Rate
		in.IngressRPS = min(rps*nd.Ingress/float64(nd.Shards), in.RPS)
		in.Source = nd.IsSource()
		for k := range in.Demand {
			d, err := demand(nd.Service, hwmodel.CoreKind(k), a.Workload.RequestSize)
			if err != nil {
				return nil, fmt.Errorf("instance %s: %w", inst.ID, err)
			}
			in.Demand[k] = d
		}
		p.AddInstance(in)
	}
	for _, l := range a.Links() {
		p.AddEdge(placement.InstanceID(l.From.Index), placement.InstanceID(l.To.Index), rps*l.Rate, bytes)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return p, nil
}
