package experiments

import (
	"fmt"
	"slices"
	"strings"
)

// Experiment is one experiment of the paper's evaluation, defined once:
// what it runs, what it measures, how its numbers are derived, and the
// function that runs it.
type Experiment struct {
	// ID is "X1" to "X12", as in docs/experiments.md, or "V1" for a
	// validation of one engine against another.
	ID string
	// Title names the experiment; Paper the figure or table of the paper
	// it corresponds to.
	Title string
	Paper string
	// Workload and Measure restate the experiment (EXPERIMENTS.md).
	Workload string
	Measure  string
	// Derivation says, in one paragraph, how the numbers are obtained:
	// inputs, model, method. RESULTS.md prints it beside the results.
	Derivation string
	// Measured is true when the experiment reports wall time measured on
	// the machine that runs it (X10, X11): those figures differ between
	// runs and machines; everything else is a pure function of the seed.
	Measured bool
	// Run runs the experiment.
	Run func(Options) (Result, error)
}

// Options control a run.
type Options struct {
	// Seed seeds every random choice; the same seed gives the same
	// output, byte for byte, for every experiment that is not Measured.
	Seed uint64
	// Quick runs a reduced version (fewer applications, services, sizes
	// and requests) for tests: same code, smaller inputs.
	Quick bool
	// Progress, if set, hears what the experiment is doing now.
	Progress func(step string)
	// Workers bounds the simulations run at once; 0 means GOMAXPROCS.
	// Results do not depend on it.
	Workers int
}

func (o *Options) step(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

// Result is what an experiment produced. Every renderer is a pure
// function of the result.
type Result interface {
	// Tables are the experiment's tables; the first is its main table.
	// Each becomes a CSV file and a markdown table.
	Tables() []Table
	// JSON is the value `e3 sim ID --json` prints (docs/experiments.md
	// documents each shape).
	JSON() any
	// Figures are the experiment's figures in the paper's form.
	Figures() ([]Figure, error)
	// Notes are observations computed from the numbers: the headline,
	// and what differs from what the paper's text says, where it says
	// anything. RESULTS.md lists them under the experiment.
	Notes() []string
}

var registry []*Experiment

func register(e *Experiment) *Experiment {
	registry = append(registry, e)
	return e
}

// All returns every experiment in order X1..X12.
func All() []*Experiment {
	out := slices.Clone(registry)
	slices.SortFunc(out, func(a, b *Experiment) int { return idNum(a.ID) - idNum(b.ID) })
	return out
}

func idNum(id string) int {
	var n int
	fmt.Sscanf(strings.TrimPrefix(strings.ToUpper(id), "X"), "%d", &n)
	return n
}

// ByID finds an experiment or a validation by its ID, ignoring case ("x4"
// is X4).
func ByID(id string) (*Experiment, error) {
	for _, e := range Reported() {
		if strings.EqualFold(e.ID, id) {
			return e, nil
		}
	}
	var ids []string
	for _, e := range Reported() {
		ids = append(ids, e.ID)
	}
	return nil, fmt.Errorf("experiments: no experiment %q (known: %s)", id, strings.Join(ids, ", "))
}
