package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/e3-platform/e3/topology"
)

// Assignment maps every instance of a Problem (by InstanceID) to its node,
// or to Unassigned.
type Assignment []topology.NodeID

// Result is what a Placer decided. It is a value: nothing has happened to
// the cluster until the caller commits it ([Load.Apply]); not committing
// it is a dry run.
type Result struct {
	// Algorithm is the name of the placer that produced the result.
	Algorithm string
	// Assignment holds every instance's node, deployed ones included, and
	// Unassigned for those that could not be placed.
	Assignment Assignment
	// Unplaced lists the instances that could not be placed, in ID order.
	Unplaced []Unplaced
	// Explanations holds one entry per instance, in ID order, when the
	// Problem asked for them (Problem.Explain); nil otherwise.
	Explanations []Explanation
}

// Unplaced is an instance no node could take.
type Unplaced struct {
	Instance InstanceID
	// Closest is the node nearest to fitting: the one whose largest
	// missing capacity fraction is smallest among those no hard constraint
	// rejects; Unassigned when every node is excluded by pinning or fault
	// domains. The instance is not put there: placement never overcommits.
	Closest topology.NodeID
	// Reason is why Closest (or, with no Closest, the first node) rejects
	// the instance.
	Reason Rejection
}

// Describe says why an instance is unplaced, with names.
func (u Unplaced) Describe(p *Problem) string {
	in := p.Instance(u.Instance)
	if u.Closest < 0 {
		return fmt.Sprintf("%s: no node passes pinning and fault domains (%s)", in.Name, u.Reason.Describe(p))
	}
	return fmt.Sprintf("%s: no node fits; closest %s: %s", in.Name, p.Topology().Name(u.Closest), u.Reason.Describe(p))
}

// How says how a placer arrived at an instance's node.
type How uint8

// The ways.
const (
	// HowUnplaced: no node fits.
	HowUnplaced How = iota
	// HowDeployed: the instance was already running there.
	HowDeployed
	// HowFirstFit: find_first_fit, for an instance with no placed
	// ancestor.
	HowFirstFit
	// HowBestFit: find_best_fit within a level of the ancestor's
	// hierarchical topology.
	HowBestFit
	// HowSearch: chosen by a global search (annealing, ILP).
	HowSearch
)

var howNames = [...]string{"unplaced", "deployed", "first-fit", "best-fit", "search"}

// String returns a short name such as "best-fit".
func (h How) String() string {
	if int(h) < len(howNames) {
		return howNames[h]
	}
	return fmt.Sprintf("How(%d)", uint8(h))
}

// MarshalText writes the short name.
func (h How) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// MaxExamples bounds the example rejections an Explanation keeps per
// constraint; the counts are complete.
const MaxExamples = 3

// Explanation tells why an instance went where it did, in the manner of
// Service Fabric's constraint elimination sequence and Nomad's
// `alloc status -verbose`: the candidates examined, how many each
// constraint eliminated with the first few of them, and the winner. Its
// size is bounded whatever the cluster's.
type Explanation struct {
	Instance InstanceID
	Node     topology.NodeID
	How      How
	// Ancestor is the placed instance whose node the search started from,
	// None for a first fit.
	Ancestor InstanceID
	// Level is Node's level as seen from the ancestor's node; meaningful
	// when Ancestor is not None and Node is assigned.
	Level topology.Level
	// Examined counts the candidates checked; Feasible those that fit.
	Examined, Feasible int
	// Rejected counts, per constraint, the candidates it eliminated
	// (the first failing constraint of each).
	Rejected [NumConstraints]int
	// Examples holds up to MaxExamples rejected candidates per constraint,
	// in the order they were examined.
	Examples []Example
	// Levels summarises the search level by level.
	Levels []LevelTrace
	// Score is the best-fit score of the chosen node (lower is better);
	// see the placer's documentation.
	Score float64
}

// Example is one rejected candidate.
type Example struct {
	Node   topology.NodeID
	Reason Rejection
}

// LevelTrace is one level of a hierarchical search.
type LevelTrace struct {
	Level              topology.Level
	Examined, Feasible int
}

// Reject records a rejected candidate in the explanation.
func (e *Explanation) Reject(n topology.NodeID, r Rejection) {
	e.Examined++
	e.Rejected[r.Constraint]++
	if e.Rejected[r.Constraint] <= MaxExamples {
		e.Examples = append(e.Examples, Example{n, r})
	}
}

// Accept records a feasible candidate.
func (e *Explanation) Accept() {
	e.Examined++
	e.Feasible++
}

// Format writes the explanation as indented text, like
// `e3 place --explain` prints it.
func (e *Explanation) Format(p *Problem) string {
	var b strings.Builder
	t := p.Topology()
	in := p.Instance(e.Instance)
	fmt.Fprintf(&b, "%s (%s) -> %s by %s", in.Name, in.Service, nodeName(t, e.Node), e.How)
	if e.Ancestor != None && e.Node >= 0 {
		fmt.Fprintf(&b, " at level %s from %s", e.Level, p.Instance(e.Ancestor).Name)
	}
	fmt.Fprintf(&b, "; %d candidates examined, %d feasible\n", e.Examined, e.Feasible)
	for _, lt := range e.Levels {
		fmt.Fprintf(&b, "    level %-16s examined %d, feasible %d\n", lt.Level, lt.Examined, lt.Feasible)
	}
	for c := Constraint(1); c < NumConstraints; c++ {
		if e.Rejected[c] == 0 {
			continue
		}
		fmt.Fprintf(&b, "    %-12s eliminated %d", c, e.Rejected[c])
		sep := ": "
		for _, ex := range e.Examples {
			if ex.Reason.Constraint == c {
				fmt.Fprintf(&b, "%s%s (%s)", sep, t.Name(ex.Node), ex.Reason.Describe(p))
				sep = "; "
			}
		}
		if e.Rejected[c] > MaxExamples {
			b.WriteString("; ...")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Placer is a placement algorithm. Place decides where the instances of p
// go, reading p and its Load and changing neither. It returns an error
// only for input it cannot work with; an instance it cannot place is
// reported in the Result. Randomness, if the algorithm uses any, comes
// from rng only, so the same seed gives the same result. Time is not an
// input: budgets are counted in steps and a caller that wants the elapsed
// time measures it around the call.
type Placer interface {
	// Name is the algorithm's registry name, e.g. "hcm".
	Name() string
	Place(p *Problem, rng *rand.Rand) (*Result, error)
}

var registry = struct {
	sync.Mutex
	m map[string]func() Placer
}{m: map[string]func() Placer{}}

// Register makes an algorithm available by name. Algorithm packages call
// it from an init function, so that importing the package (for its side
// effect, `import _ ".../placement/annealing"`) plugs it into every tool
// that lists the registry. Registering a name twice panics: two packages
// claiming one name is a programming error.
func Register(name string, factory func() Placer) {
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[name]; dup {
		panic("placement: algorithm " + name + " registered twice")
	}
	registry.m[name] = factory
}

// New returns a new placer of the named algorithm.
func New(name string) (Placer, error) {
	registry.Lock()
	f, ok := registry.m[name]
	registry.Unlock()
	if !ok {
		return nil, fmt.Errorf("placement: unknown algorithm %q (registered: %s)", name, strings.Join(Algorithms(), ", "))
	}
	return f(), nil
}

// Algorithms returns the registered algorithm names in a fixed order:
// hcm, annealing, ilp first (the paper's order), then any others sorted.
func Algorithms() []string {
	registry.Lock()
	defer registry.Unlock()
	order := []string{"hcm", "annealing", "ilp"}
	var out, rest []string
	for _, n := range order {
		if _, ok := registry.m[n]; ok {
			out = append(out, n)
		}
	}
	for n := range registry.m {
		if !slices.Contains(order, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// NewResult returns a Result for p with the state's assignment, and the
// Unplaced entry of every instance left unassigned, each with the node
// closest to fitting it (found by a scan of the whole cluster, so a placer
// pays for it only on failure). Placers other than HCM can finish with it.
func NewResult(algorithm string, s *State) *Result {
	r := &Result{Algorithm: algorithm, Assignment: s.Assignment()}
	for i, n := range r.Assignment {
		if n < 0 {
			r.Unplaced = append(r.Unplaced, s.Closest(InstanceID(i)))
		}
	}
	return r
}

// Closest finds, for an instance no node fits, the node closest to
// fitting it (see [Unplaced]). It visits every node.
func (s *State) Closest(i InstanceID) Unplaced {
	u := Unplaced{Instance: i, Closest: Unassigned}
	best := 0.0
	for n := range s.c.topo.Nodes() {
		f, r := s.Shortfall(i, n)
		if r.OK() {
			// It fits after all: report it as closest with nothing wrong.
			return Unplaced{Instance: i, Closest: n}
		}
		if math.IsInf(f, 1) {
			if u.Closest < 0 && u.Reason.OK() {
				u.Reason = r
			}
			continue
		}
		if u.Closest < 0 || f < best {
			best, u.Closest, u.Reason = f, n, r
		}
	}
	return u
}
