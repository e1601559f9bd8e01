package ilp

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/topology"
)

// Name is the algorithm's registry name.
const Name = "ilp"

func init() {
	placement.Register(Name, func() placement.Placer { return New(Options{}) })
}

// DefaultTimeLimit is the wall time, in seconds, one cbc run may take
// before it stops with its best solution so far, unless Options or the
// environment variable TimeLimitEnv say otherwise.
const DefaultTimeLimit = 10

// TimeLimitEnv names the environment variable that sets the time limit of
// a placer whose Options leave it zero: the way to give `e3 place --algo
// ilp` and `e3 place compare`, which build their placers from the
// registry, more (or less) time.
const TimeLimitEnv = "E3_ILP_TIME_LIMIT"

// Options configure the ILP placer. Zero fields take the defaults.
type Options struct {
	// Solver is the cbc program, a name looked up on PATH or a path;
	// default "cbc".
	Solver string
	// TimeLimit is cbc's time limit in seconds of wall time (its "sec"
	// option with timeMode elapsed); if zero, $E3_ILP_TIME_LIMIT, else
	// DefaultTimeLimit. A run that hits it returns the best solution
	// found, reported as StatusStopped.
	TimeLimit float64
	// NodeLimit, if positive, stops cbc after that many branch-and-bound
	// nodes (its "maxNodes" option) with its best solution, reported as
	// StatusStopped. cbc on one thread is deterministic, so a node limit
	// gives the same answer on every machine and in every run, where a
	// time limit gives whatever the machine reached: set it where results
	// must be reproducible (the experiments), and keep TimeLimit as a
	// safety net well above the time the nodes take.
	NodeLimit int
	// Weights of the objective; a zero value means DefaultWeights.
	Weights Weights
	// WorkDir is where the model and solution files go, in a fresh
	// subdirectory; default os.TempDir().
	WorkDir string
	// KeepFiles keeps that subdirectory (Report.Dir names it).
	KeepFiles bool
}

// Placer solves placement as an integer program with cbc. Unlike the other
// placers it runs a program and writes files: it is not pure, by design.
type Placer struct {
	opts Options
	err  error // a bad $E3_ILP_TIME_LIMIT, reported by Solve
}

// New returns an ILP placer.
func New(o Options) *Placer {
	if o.Solver == "" {
		o.Solver = DefaultSolver
	}
	var err error
	if o.NodeLimit < 0 {
		err = fmt.Errorf("ilp: Options.NodeLimit = %d, want 0 (no limit) or a node count > 0", o.NodeLimit)
	}
	if o.TimeLimit <= 0 {
		o.TimeLimit = DefaultTimeLimit
		if v, ok := os.LookupEnv(TimeLimitEnv); ok {
			sec, perr := strconv.ParseFloat(v, 64)
			if perr != nil || !(sec > 0) || math.IsInf(sec, 0) {
				err = fmt.Errorf("ilp: %s=%q: want a time limit in seconds > 0", TimeLimitEnv, v)
			} else {
				o.TimeLimit = sec
			}
		}
	}
	o.Weights = o.Weights.orDefault()
	return &Placer{opts: o, err: err}
}

// Name returns "ilp".
func (*Placer) Name() string { return Name }

var _ placement.Placer = (*Placer)(nil)

// Report says how a solve went.
type Report struct {
	// Status is cbc's verdict on the model whose solution was used.
	Status Status
	// Elastic is set when the model that insists on placing every
	// instance was infeasible and the elastic one (which may leave
	// instances out, at a penalty) was solved instead.
	Elastic bool
	// Objective is the objective value cbc reported, plus the constant
	// the LP leaves out (traffic and pairs among deployed instances), so
	// that it equals [Objective] of the result (with, in the elastic
	// model, the penalties of instances left out).
	Objective float64
	// Binaries, Continuous and Rows are the model's size.
	Binaries, Continuous, Rows int
	// Run is the last cbc run.
	Run *Run
	// Dropped lists instances the solution put on a node the checkers
	// reject (a numerical tolerance of the solver); they are left
	// unplaced. Expected empty.
	Dropped []placement.InstanceID
	// Dir is the directory of the model files when Options.KeepFiles is
	// set.
	Dir string
}

// Place implements placement.Placer. The ILP is deterministic: rng is not
// used.
func (pl *Placer) Place(p *placement.Problem, _ *rand.Rand) (*placement.Result, error) {
	r, _, err := pl.Solve(p)
	return r, err
}

// Solve places p and reports how cbc did.
func (pl *Placer) Solve(p *placement.Problem) (*placement.Result, *Report, error) {
	if err := p.Err(); err != nil {
		return nil, nil, err
	}
	if pl.err != nil {
		return nil, nil, pl.err
	}
	rep := &Report{}
	m, err := Build(p, pl.opts.Weights, false)
	if err != nil {
		return nil, nil, err
	}
	rep.Binaries, rep.Continuous, rep.Rows = m.Size()
	if rep.Binaries == 0 {
		// Nothing to decide: every instance is deployed or fits nowhere.
		rep.Status = StatusOptimal
		return pl.result(p, m, nil, rep)
	}
	dir, err := os.MkdirTemp(pl.opts.WorkDir, "e3-ilp-")
	if err != nil {
		return nil, nil, fmt.Errorf("ilp: %w", err)
	}
	if pl.opts.KeepFiles {
		rep.Dir = dir
	} else {
		defer os.RemoveAll(dir)
	}
	ctx := context.Background()
	start := m.FirstFit()
	sol, run, err := solve(ctx, pl.opts.Solver, m, start, dir, pl.opts.TimeLimit, pl.opts.NodeLimit)
	rep.Run = run
	if err != nil {
		return nil, rep, err
	}
	if sol.Status == StatusInfeasible && start != nil {
		// First fit placed everything, so the model is feasible.
		return nil, rep, fmt.Errorf("ilp: cbc says %q, but first fit places every instance; its output ends:\n%s", sol.Header, run.Log)
	}
	if sol.Status == StatusInfeasible {
		// Not every instance fits: find the most that do.
		if m, err = Build(p, pl.opts.Weights, true); err != nil {
			return nil, rep, err
		}
		rep.Elastic = true
		rep.Binaries, rep.Continuous, rep.Rows = m.Size()
		sol, run, err = solve(ctx, pl.opts.Solver, m, m.FirstFit(), dir, pl.opts.TimeLimit, pl.opts.NodeLimit)
		rep.Run = run
		if err != nil {
			return nil, rep, err
		}
	}
	rep.Status, rep.Objective = sol.Status, sol.Objective+m.constant
	if !sol.Status.HasSolution() {
		hint := ""
		if sol.Status == StatusStoppedNoSolution {
			hint = fmt.Sprintf("; no integer solution within %gs (raise ilp.Options.TimeLimit)", pl.opts.TimeLimit)
			if pl.opts.NodeLimit > 0 {
				hint = fmt.Sprintf("; no integer solution within %gs and %d nodes (raise ilp.Options.TimeLimit or NodeLimit)", pl.opts.TimeLimit, pl.opts.NodeLimit)
			}
		}
		return nil, rep, fmt.Errorf("ilp: cbc: %q%s", sol.Header, hint)
	}
	return pl.result(p, m, sol, rep)
}

// result turns a solution into a Result, re-checking every instance with
// the shared checkers.
func (pl *Placer) result(p *placement.Problem, m *Model, sol *Solution, rep *Report) (*placement.Result, *Report, error) {
	want := make(placement.Assignment, p.NumInstances())
	for i := range want {
		want[i] = placement.Unassigned
		if !m.free[i] || sol == nil {
			continue
		}
		id := placement.InstanceID(i)
		for _, n := range m.cand[i] {
			v := sol.Values[xName(id, n)]
			if v > 0.5 {
				if want[i] >= 0 {
					return nil, rep, fmt.Errorf("ilp: the solution puts %s on both %s and %s", p.Instance(id).Name,
						p.Topology().Name(want[i]), p.Topology().Name(n))
				}
				want[i] = n
			}
		}
		if want[i] < 0 && !m.elastic {
			return nil, rep, fmt.Errorf("ilp: the solution (%s) puts %s nowhere", sol.Status, p.Instance(id).Name)
		}
	}
	s := placement.NewState(p)
	for i, n := range want {
		id := placement.InstanceID(i)
		if n < 0 {
			continue
		}
		if !s.Check(id, n).OK() {
			rep.Dropped = append(rep.Dropped, id)
			continue
		}
		s.Assign(id, n)
	}
	res := placement.NewResult(Name, s)
	if p.Explain {
		res.Explanations = explain(s)
	}
	return res, rep, nil
}

// explain describes the solution instance by instance: an integer program
// decides everything at once, so each explanation is the constraint
// elimination over the whole cluster as the solution stands.
func explain(s *placement.State) []placement.Explanation {
	p := s.Problem()
	t := p.Topology()
	levels := placement.Levels(p, s.Assignment())
	out := make([]placement.Explanation, p.NumInstances())
	for i := range out {
		id := placement.InstanceID(i)
		e := &out[i]
		*e = placement.Explanation{Instance: id, Node: s.Node(id), How: placement.HowSearch, Ancestor: placement.None}
		switch {
		case p.Instance(id).Deployed >= 0:
			e.How = placement.HowDeployed
			continue
		case e.Node < 0:
			e.How = placement.HowUnplaced
		}
		if l := levels[i]; l != placement.NoLevel {
			e.Level = l
			e.Ancestor = upstream(s, id, l)
		}
		for n := range t.Nodes() {
			if rej := s.Check(id, n); rej.OK() {
				e.Accept()
			} else {
				e.Reject(n, rej)
			}
		}
	}
	return out
}

func upstream(s *placement.State, i placement.InstanceID, l topology.Level) placement.InstanceID {
	p := s.Problem()
	if pr := p.Instance(i).Primary; pr != placement.None {
		return pr
	}
	for _, e := range p.In(i) {
		from := p.Edge(e).From
		if m := s.Node(from); m >= 0 && p.Topology().Distance(m, s.Node(i)) == l {
			return from
		}
	}
	return placement.None
}
