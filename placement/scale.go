package placement

import (
	"fmt"
	"math/rand/v2"

	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/topology"
)

// ScaleService is one microservice of the scale experiment's mix.
type ScaleService struct {
	Name          string
	MemoryMB      float64
	NonMigratable bool
}

// ScaleOptions shape the scale experiment (X10, the paper's Table 6).
type ScaleOptions struct {
	// Servers is the number of Type2-SmartNIC servers (required).
	Servers int
	// ServersPerRack defaults to 40, the paper's rack.
	ServersPerRack int
	// Services is the mix microservices are drawn from, uniformly
	// (required; the CLI passes the 16 services of Table 2).
	Services []ScaleService
	// Seed makes the sequence of microservices reproducible.
	Seed uint64
	// MinCores and MaxCores bound the host cores (of the Type2's Xeon
	// E5-2620) one microservice keeps busy, drawn uniformly; its message
	// rate follows from its service's demand. Defaults 0.01 and 0.1.
	MinCores, MaxCores float64
	// UpstreamShare is the probability that a microservice receives its
	// messages from an earlier one rather than from clients. Default 0.75.
	UpstreamShare float64
	// MaxFanOut bounds the microservices one microservice feeds; default
	// 12, the largest fan-out of the paper's applications. Without a
	// bound the first microservices would feed hundreds and saturate
	// their ports.
	MaxFanOut int
	// Bytes is the message size; default 512, the paper's.
	Bytes float64
}

// Scale runs the scale experiment: microservices deployed one at a time
// into a growing fat tree of Type2-SmartNIC servers. Each is its own
// problem: one new instance, plus, when it is fed by an earlier
// microservice, that microservice as a deployed instance and an edge from
// it, so HCM places it near its upstream (MS_PLACE); a microservice fed by
// clients is a source placed by find_first_fit. The caller times
// Place for each problem; Scale keeps the Load.
//
//	sc, _ := placement.NewScale(opts)
//	for range n {
//		p := sc.Next()
//		res, _ := placer.Place(p, rng) // the caller times this call
//		sc.Commit(p, res)
//	}
//
// It keeps about 20 bytes per microservice, so memory is linear in servers
// plus microservices.
type Scale struct {
	o       ScaleOptions
	cluster *Cluster
	load    *Load
	rng     *rand.Rand
	demand  []CoreDemand
	benefit []float64
	ms      []scaleMS
	placed  int
	// feeders holds indexes into ms of the placed microservices that may
	// feed one more.
	feeders []int32
	pending scaleMS
}

type scaleMS struct {
	svc    uint16
	fanOut uint16
	node   topology.NodeID
	rps    float64
	// outLeft is the part of rps not yet sent on to a microservice it
	// feeds: one message out per message in, split over its consumers.
	outLeft float64
}

// NewScale builds the cluster and an empty load.
func NewScale(o ScaleOptions) (*Scale, error) {
	if o.Servers <= 0 {
		return nil, fmt.Errorf("placement: ScaleOptions.Servers = %d, want > 0", o.Servers)
	}
	if len(o.Services) == 0 || len(o.Services) > 1<<16 {
		return nil, fmt.Errorf("placement: ScaleOptions.Services has %d services, want 1..65536", len(o.Services))
	}
	if o.MinCores == 0 && o.MaxCores == 0 {
		o.MinCores, o.MaxCores = 0.01, 0.1
	}
	if !(o.MinCores > 0 && o.MaxCores >= o.MinCores) {
		return nil, fmt.Errorf("placement: ScaleOptions cores %v..%v, want 0 < MinCores <= MaxCores", o.MinCores, o.MaxCores)
	}
	if o.UpstreamShare == 0 {
		o.UpstreamShare = 0.75
	}
	if !(o.UpstreamShare >= 0 && o.UpstreamShare <= 1) {
		return nil, fmt.Errorf("placement: ScaleOptions.UpstreamShare = %v, want 0..1", o.UpstreamShare)
	}
	if o.Bytes == 0 {
		o.Bytes = 512
	}
	if o.MaxFanOut == 0 {
		o.MaxFanOut = 12
	}
	if o.MaxFanOut < 0 || o.MaxFanOut > 1<<16 {
		return nil, fmt.Errorf("placement: ScaleOptions.MaxFanOut = %d, want 1..65536 (0 means 12)", o.MaxFanOut)
	}
	t, err := topology.FatTree(topology.FatTreeOptions{
		Servers:        o.Servers,
		ServersPerRack: o.ServersPerRack,
		Server:         hwmodel.ServerSpec(hwmodel.Type2SmartNIC),
	})
	if err != nil {
		return nil, err
	}
	c, err := NewCluster(t)
	if err != nil {
		return nil, err
	}
	s := &Scale{o: o, cluster: c, load: NewLoad(c), rng: rand.New(rand.NewPCG(o.Seed, 0x5ca1e))}
	for _, svc := range o.Services {
		d, err := DemandOf(svc.Name)
		if err != nil {
			return nil, fmt.Errorf("placement: scale mix: %w", err)
		}
		s.demand = append(s.demand, d)
		s.benefit = append(s.benefit, nicBenefit(svc.Name))
	}
	return s, nil
}

// Cluster returns the experiment's cluster.
func (s *Scale) Cluster() *Cluster { return s.cluster }

// Load returns the experiment's load: every microservice committed so far.
func (s *Scale) Load() *Load { return s.load }

// Deployed returns the number of microservices committed, placed or not,
// and how many of them were placed.
func (s *Scale) Deployed() (committed, placed int) { return len(s.ms), s.placed }

func (s *Scale) instance(m scaleMS, name string) Instance {
	svc := &s.o.Services[m.svc]
	return Instance{
		Name:          name,
		App:           "scale",
		Service:       svc.Name,
		NonMigratable: svc.NonMigratable,
		RPS:           m.rps,
		Bytes:         s.o.Bytes,
		MemoryMB:      svc.MemoryMB,
		Demand:        s.demand[m.svc],
		NICBenefit:    s.benefit[m.svc],
	}
}

// Next draws the next microservice and returns its problem. Call Commit
// with the problem and its result before the next Next.
func (s *Scale) Next() *Problem {
	k := len(s.ms)
	m := scaleMS{svc: uint16(s.rng.IntN(len(s.o.Services))), node: Unassigned}
	cores := s.o.MinCores + s.rng.Float64()*(s.o.MaxCores-s.o.MinCores)
	m.rps = cores / s.demand[m.svc][hwmodel.Type2SmartNIC.HostCore]
	up := -1
	if s.rng.Float64() < s.o.UpstreamShare && len(s.feeders) > 0 {
		f := s.rng.IntN(len(s.feeders))
		up = int(s.feeders[f])
		u := &s.ms[up]
		// The consumer processes what its feeder sends it, and a
		// feeder sends on no more than it processes.
		m.rps = min(m.rps, u.outLeft)
		u.outLeft -= m.rps
		if u.fanOut++; int(u.fanOut) >= s.o.MaxFanOut || u.outLeft < u.rps*1e-3 {
			s.feeders[f] = s.feeders[len(s.feeders)-1]
			s.feeders = s.feeders[:len(s.feeders)-1]
		}
	}
	m.outLeft = m.rps
	p := NewProblem(s.load)
	in := s.instance(m, fmt.Sprintf("ms%d", k))
	if up < 0 {
		in.IngressRPS = in.RPS
		p.AddInstance(in)
	} else {
		u := p.AddInstance(s.instance(s.ms[up], fmt.Sprintf("ms%d", up)))
		p.Deploy(u, s.ms[up].node)
		v := p.AddInstance(in)
		p.AddEdge(u, v, m.rps, s.o.Bytes)
	}
	s.pending = m
	return p
}

// Commit applies r, the result of placing the problem Next returned, to
// the load and records where the microservice went.
func (s *Scale) Commit(p *Problem, r *Result) error {
	if err := s.load.Apply(p, r); err != nil {
		return err
	}
	m := s.pending
	m.node = r.Assignment[len(r.Assignment)-1]
	if m.node >= 0 {
		s.placed++
		s.feeders = append(s.feeders, int32(len(s.ms)))
	}
	s.ms = append(s.ms, m)
	return nil
}
