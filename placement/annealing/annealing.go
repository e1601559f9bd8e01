package annealing

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// Name is the algorithm's registry name.
const Name = "annealing"

func init() {
	placement.Register(Name, func() placement.Placer { return New(Options{}) })
}

// Service Fabric's annealing constants, as its Cluster Resource Manager
// sets them for placing new replicas (repository microsoft/service-fabric,
// src/prod/src/Reliability/LoadBalancing):
//
//   - SimulatedAnnealingIterationsPerRound = 1000 (PLBConfig.h): transitions
//     per round; the temperature changes between rounds.
//   - The temperature decay ratio for placement is 0.8, a literal in
//     Searcher::SearchForSolution (the same value as
//     FastBalancingTemperatureDecayRate in PLBConfig.h; slow balancing uses
//     0.98). The temperature decays only after a round that found no new
//     best solution (Searcher::SimulatedAnnealing).
//   - The initial temperature is 50 times the largest energy change of
//     InitialTemperatureProbeCount = 50 random moves (PLBConfig.h;
//     Searcher::GetInitialTemperature, "a 98% initial acceptance
//     probability"), or the energy itself when no probe moved anything.
//   - A run stops when for noChangeRoundToExit = 10 rounds in a row the
//     energy changed by less than diffEachRound = 0.001 of itself and no new
//     best was found (defaults in Searcher.h); after 10 rounds of little
//     change that still found a best, the temperature drops to 0 (greedy).
//   - A random move is a swap with probability SwapPrimaryProbability = 0.3
//     (PLBConfig.h), otherwise one replica moved to a random feasible node
//     (Checker::InnerMoveSolutionRandomly).
//   - MaxSimulatedAnnealingIterations = -1 (PLBConfig.h): no cap on rounds;
//     the search is bounded by PlacementSearchTimeout = 0.5 s of wall time
//     and the exit rule above.
const (
	DefaultTransitionsPerRound = 1000
	DefaultTemperatureDecay    = 0.8
	DefaultTemperatureProbes   = 50
	DefaultTemperatureFactor   = 50
	DefaultExitRounds          = 10
	DefaultExitChange          = 0.001
	DefaultSwapProbability     = 0.3
	// DefaultMaxRounds stands in for Service Fabric's 0.5 s search timeout,
	// since placement reads no clock: 500 rounds of 1000 transitions. Runs
	// on the paper's applications end by the exit rule well before it (see
	// docs/placement-baselines.md), so it bounds only pathological cases.
	DefaultMaxRounds = 500
	// DefaultTargetTries bounds the random nodes drawn for a move when the
	// cluster has more than DefaultEnumerateNodes nodes; below that the
	// feasible targets are enumerated, as Service Fabric's
	// candidateNodes.SelectRandom draws from the feasible set.
	DefaultTargetTries    = 64
	DefaultEnumerateNodes = 64
)

// Options tune the annealing. Zero fields take the defaults above, which
// are Service Fabric's.
type Options struct {
	TransitionsPerRound int
	MaxRounds           int
	TemperatureDecay    float64
	TemperatureProbes   int
	TemperatureFactor   float64
	ExitRounds          int
	ExitChange          float64
	SwapProbability     float64
	TargetTries         int
	EnumerateNodes      int
	// Weights of the energy; a zero value means DefaultWeights.
	Weights Weights
}

func (o Options) filled() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	deff := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.TransitionsPerRound, DefaultTransitionsPerRound)
	def(&o.MaxRounds, DefaultMaxRounds)
	deff(&o.TemperatureDecay, DefaultTemperatureDecay)
	def(&o.TemperatureProbes, DefaultTemperatureProbes)
	deff(&o.TemperatureFactor, DefaultTemperatureFactor)
	def(&o.ExitRounds, DefaultExitRounds)
	deff(&o.ExitChange, DefaultExitChange)
	deff(&o.SwapProbability, DefaultSwapProbability)
	def(&o.TargetTries, DefaultTargetTries)
	def(&o.EnumerateNodes, DefaultEnumerateNodes)
	o.Weights = o.Weights.orDefault()
	return o
}

// Placer is the simulated-annealing baseline. Its zero value is not ready:
// use [New].
type Placer struct {
	opts Options
}

// New returns an annealing placer with o's settings (zero fields take
// Service Fabric's).
func New(o Options) *Placer { return &Placer{opts: o.filled()} }

// Name returns "annealing".
func (*Placer) Name() string { return Name }

var _ placement.Placer = (*Placer)(nil)

// ErrNoRand is returned by Place when it is given no random source.
var ErrNoRand = errors.New("annealing: nil *rand.Rand (the search is randomised; pass a seeded source)")

// Stats describe one run.
type Stats struct {
	// Rounds run, transitions tried, moves that found a feasible target
	// (Valid), moves accepted, and new best solutions found.
	Rounds, Transitions, Valid, Accepted, Improved int
	// Converged is set when Service Fabric's exit rule ended the run, and
	// not MaxRounds.
	Converged bool
	// InitialTemperature is the temperature of the first round.
	InitialTemperature float64
	// Initial is the energy of the first-fit start, Best that of the
	// solution returned (before unplaced instances are retried).
	Initial, Best Energy
}

// Place implements placement.Placer.
func (a *Placer) Place(p *placement.Problem, rng *rand.Rand) (*placement.Result, error) {
	r, _, err := a.PlaceStats(p, rng)
	return r, err
}

func errShape(p *placement.Problem, a placement.Assignment) error {
	return fmt.Errorf("annealing: assignment of %d instances for a problem of %d", len(a), p.NumInstances())
}

// PlaceStats is Place that also reports how the search went.
//
// It starts from a feasible first fit (find_first_fit in instance order,
// the core's scan order), then anneals: each transition proposes a random
// move (one instance to a random feasible node, or a swap of two
// instances' nodes), only ever a move every checker accepts, and takes it
// by the Metropolis rule: always if it lowers the energy, otherwise with
// probability exp(-ΔE/T). It returns the best solution seen, then gives
// instances the first fit could not place one more chance.
func (a *Placer) PlaceStats(p *placement.Problem, rng *rand.Rand) (*placement.Result, Stats, error) {
	var st Stats
	if err := p.Err(); err != nil {
		return nil, st, err
	}
	if rng == nil {
		return nil, st, ErrNoRand
	}
	s := placement.NewState(p)
	for i := range p.NumInstances() {
		firstFit(s, placement.InstanceID(i))
	}
	r := &run{o: a.opts, p: p, s: s, rng: rng, t: p.Topology()}
	for i := range p.NumInstances() {
		id := placement.InstanceID(i)
		if p.Instance(id).Deployed < 0 && s.Node(id) >= 0 {
			r.movable = append(r.movable, id)
		}
	}
	r.sc = newScorer(s, a.opts.Weights)
	st.Initial = r.sc.energy()
	best := r.anneal(&st)
	st.Best = best.e

	// Rebuild the best assignment in a fresh state, checking each
	// instance again: every prefix of a feasible assignment is feasible,
	// so this never fails unless something is badly wrong.
	fin := placement.NewState(p)
	for i, n := range best.a {
		id := placement.InstanceID(i)
		if n < 0 || p.Instance(id).Deployed >= 0 {
			continue
		}
		if rej := fin.Check(id, n); !rej.OK() {
			return nil, st, fmt.Errorf("annealing: internal error: %s on %s: %s", p.Instance(id).Name, p.Topology().Name(n), rej.Describe(p))
		}
		fin.Assign(id, n)
	}
	for i := range p.NumInstances() {
		firstFit(fin, placement.InstanceID(i))
	}
	res := placement.NewResult(Name, fin)
	if p.Explain {
		res.Explanations = explain(fin)
	}
	return res, st, nil
}

// firstFit is find_first_fit: the first node of the core's scan order
// that passes every checker, for an instance neither deployed nor placed.
func firstFit(s *placement.State, i placement.InstanceID) {
	if s.Node(i) >= 0 || s.Problem().Instance(i).Deployed >= 0 {
		return
	}
	for n := range s.ScanCandidates(i) {
		if s.Check(i, n).OK() {
			s.Assign(i, n)
			return
		}
	}
}

// run is one annealing.
type run struct {
	o       Options
	p       *placement.Problem
	s       *placement.State
	t       *topology.Topology
	sc      *scorer
	rng     *rand.Rand
	movable []placement.InstanceID
	targets []topology.NodeID
	// undo holds the moves of the last transition, to revert it.
	undo []step
}

type step struct {
	i        placement.InstanceID
	from, to topology.NodeID
}

type solution struct {
	a placement.Assignment
	e Energy
}

// anneal runs Searcher::SimulatedAnnealing's loop and returns the best
// solution seen.
func (r *run) anneal(st *Stats) solution {
	cur := r.sc.total()
	best := solution{a: r.s.Assignment(), e: r.sc.energy()}
	if len(r.movable) == 0 {
		return best
	}
	temp := r.initialTemperature(cur)
	st.InitialTemperature = temp
	noChange, noBest := 0, 0
	for round := 0; round < r.o.MaxRounds; round++ {
		st.Rounds++
		start := cur
		found := false
		for range r.o.TransitionsPerRound {
			st.Transitions++
			if !r.propose() {
				continue
			}
			st.Valid++
			next := r.sc.total()
			d := next - cur
			switch {
			case d < 0:
				// Better than the current solution: take it.
			case temp > 0 && -d/temp > math.Log(r.rng.Float64()):
				// Worse (or equal): the Metropolis rule. Service Fabric
				// compares -ΔE/T with the log of a uniform draw.
			default:
				r.revert()
				continue
			}
			st.Accepted++
			cur = next
			if cur < best.e.Total {
				best.e = r.sc.energy()
				for k := range best.a {
					best.a[k] = r.s.Node(placement.InstanceID(k))
				}
				st.Improved++
				found = true
			}
		}
		// Clear the drift of incremental sums once a round.
		r.sc.recompute()
		cur = r.sc.total()
		diff := start
		if cur != 0 {
			diff = math.Abs(cur-start) / cur
		}
		if diff < r.o.ExitChange {
			noChange++
		} else {
			noChange = 0
		}
		if found {
			noBest = 0
		} else {
			noBest++
		}
		switch {
		case noChange >= r.o.ExitRounds && noBest >= r.o.ExitRounds:
			st.Converged = true
			return best
		case noChange >= r.o.ExitRounds:
			temp = 0
		case !found:
			temp *= r.o.TemperatureDecay
		}
	}
	return best
}

// initialTemperature probes random moves, undoing each, and returns
// TemperatureFactor times the largest energy change, or the energy itself
// (1 if it is 0) when no probe changed anything.
func (r *run) initialTemperature(cur float64) float64 {
	maxChange := 0.0
	for range r.o.TemperatureProbes {
		if !r.propose() {
			continue
		}
		maxChange = max(maxChange, math.Abs(r.sc.total()-cur))
		r.revert()
	}
	if maxChange == 0 {
		if cur == 0 {
			return 1
		}
		return cur
	}
	return maxChange * r.o.TemperatureFactor
}

// propose makes one random feasible move, recording how to undo it, and
// reports whether it found one.
func (r *run) propose() bool {
	r.undo = r.undo[:0]
	i := r.movable[r.rng.IntN(len(r.movable))]
	if r.rng.Float64() < r.o.SwapProbability {
		return r.swap(i)
	}
	from := r.s.Node(i)
	to := r.target(i, from)
	if to < 0 {
		return false
	}
	r.apply(i, from, to)
	return true
}

func (r *run) apply(i placement.InstanceID, from, to topology.NodeID) {
	r.sc.move(i, from, to)
	r.undo = append(r.undo, step{i, from, to})
}

// revert undoes the last transition's moves, last first.
func (r *run) revert() {
	for k := len(r.undo) - 1; k >= 0; k-- {
		u := r.undo[k]
		r.sc.move(u.i, u.to, u.from)
	}
	r.undo = r.undo[:0]
}

// target draws a node other than from, uniformly among those that pass
// every checker for i, or returns Unassigned if it finds none. On small
// clusters it enumerates the feasible nodes; on large ones it draws up to
// TargetTries nodes and takes the first feasible one, which is uniform
// over the feasible nodes as well.
func (r *run) target(i placement.InstanceID, from topology.NodeID) topology.NodeID {
	nn := r.t.NumNodes()
	if nn <= 1 {
		return placement.Unassigned
	}
	if nn <= r.o.EnumerateNodes {
		r.targets = r.targets[:0]
		for n := range topology.NodeID(nn) {
			if n != from && r.s.Check(i, n).OK() {
				r.targets = append(r.targets, n)
			}
		}
		if len(r.targets) == 0 {
			return placement.Unassigned
		}
		return r.targets[r.rng.IntN(len(r.targets))]
	}
	for range r.o.TargetTries {
		n := topology.NodeID(r.rng.IntN(nn - 1))
		if n >= from {
			n++ // uniform over the nodes other than from
		}
		if r.s.Check(i, n).OK() {
			return n
		}
	}
	return placement.Unassigned
}

// swap exchanges the nodes of i and a partner: half the time, when i has
// replicas, one of them (Service Fabric's swap of a primary with a
// secondary), otherwise any other movable instance. Both must pass every
// checker on their new nodes.
func (r *run) swap(i placement.InstanceID) bool {
	var j placement.InstanceID = placement.None
	if group := r.p.Replicas(i); len(group) > 1 && r.rng.IntN(2) == 0 {
		j = group[r.rng.IntN(len(group))]
		if j == i || r.p.Instance(j).Deployed >= 0 || r.s.Node(j) < 0 {
			return false
		}
	} else {
		j = r.movable[r.rng.IntN(len(r.movable))]
	}
	ni, nj := r.s.Node(i), r.s.Node(j)
	if i == j || ni == nj {
		return false
	}
	// Take j off its node so that i is judged on nj without it.
	r.apply(j, nj, placement.Unassigned)
	if !r.s.Check(i, nj).OK() {
		r.revert()
		return false
	}
	r.apply(i, ni, nj)
	if !r.s.Check(j, ni).OK() {
		r.revert()
		return false
	}
	r.apply(j, placement.Unassigned, ni)
	return true
}
