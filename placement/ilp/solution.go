package ilp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Status is how cbc's search ended, from the first line of its solution
// file.
type Status uint8

// The statuses.
const (
	// StatusUnknown is the zero Status; ParseSolution never returns it.
	StatusUnknown Status = iota
	// StatusOptimal: "Optimal - objective value X", optimality proven.
	StatusOptimal
	// StatusOptimalWithinGap: "Optimal (within gap tolerance) - ...", the
	// search stopped at the allowed gap.
	StatusOptimalWithinGap
	// StatusStopped: "Stopped on time - objective value X" (or on
	// iterations, nodes, solutions, difficulties, ctrl-c): a limit ended
	// the search, and the values are the best integer solution found.
	StatusStopped
	// StatusStoppedNoSolution: "Stopped on ... (no integer solution -
	// continuous used)": a limit ended the search before any integer
	// solution; the values are a relaxation and must not be used.
	StatusStoppedNoSolution
	// StatusInfeasible: "Infeasible" or "Integer infeasible": no solution
	// exists.
	StatusInfeasible
	// StatusUnbounded: "Unbounded".
	StatusUnbounded
)

var statusNames = [...]string{"unknown", "optimal", "optimal-within-gap", "stopped", "stopped-no-solution", "infeasible", "unbounded"}

// String returns a short name such as "optimal".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// MarshalText writes the short name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// HasSolution reports whether the values are an integer solution.
func (s Status) HasSolution() bool {
	return s == StatusOptimal || s == StatusOptimalWithinGap || s == StatusStopped
}

// Solution is a parsed cbc solution file.
type Solution struct {
	Status Status
	// Header is the first line as cbc wrote it.
	Header string
	// StoppedOn is what ended a stopped search: "time", "iterations", ...
	StoppedOn string
	// Objective is the objective value the header reports (for a
	// no-solution stop, that of the relaxation).
	Objective float64
	// Values holds every variable the file lists. cbc lists each column
	// once; a missing one is 0.
	Values map[string]float64
	// Infeasible names the rows or columns cbc marked with "**" (values
	// outside their bounds in an infeasible answer), in file order.
	Infeasible []string
}

// ErrSolution is wrapped by every error about a malformed solution file.
var ErrSolution = errors.New("ilp: malformed cbc solution")

// ParseSolution reads a cbc solution file (the one `cbc ... solve solu
// FILE` writes). file names it in errors, which say file:line and what is
// wrong.
//
// The format: a header line, "<status> - objective value <number>", then
// one line per column (and, with printingOptions rows, per row first):
// an index, a name, a value and a reduced cost or dual, optionally
// preceded by "**" when the value violates its bounds.
func ParseSolution(r io.Reader, file string) (*Solution, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	bad := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: %s:%d: %s", ErrSolution, file, line, fmt.Sprintf(format, args...))
	}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%w: %s:1: %w", ErrSolution, file, err)
		}
		return nil, fmt.Errorf("%w: %s: empty file, expected a status line such as \"Optimal - objective value 1.5\"", ErrSolution, file)
	}
	sol := &Solution{Header: strings.TrimSpace(sc.Text()), Values: map[string]float64{}}
	if err := sol.parseHeader(); err != nil {
		return nil, bad(1, "%v", err)
	}
	line := 1
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		marked := false
		if f[0] == "**" {
			marked = true
			f = f[1:]
		} else if strings.HasPrefix(f[0], "**") {
			marked = true
			f[0] = strings.TrimPrefix(f[0], "**")
		}
		if len(f) < 3 || len(f) > 4 {
			return nil, bad(line, "want \"index name value [reduced-cost]\", got %d fields", len(f))
		}
		if _, err := strconv.ParseUint(f[0], 10, 31); err != nil {
			return nil, bad(line, "index %q is not a non-negative integer", f[0])
		}
		name := f[1]
		v, err := strconv.ParseFloat(f[2], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, bad(line, "value %q of %s is not a finite number", f[2], name)
		}
		if len(f) == 4 {
			if _, err := strconv.ParseFloat(f[3], 64); err != nil {
				return nil, bad(line, "reduced cost %q of %s is not a number", f[3], name)
			}
		}
		if _, dup := sol.Values[name]; dup {
			return nil, bad(line, "%s listed twice", name)
		}
		sol.Values[name] = v
		if marked {
			sol.Infeasible = append(sol.Infeasible, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s:%d: %w", ErrSolution, file, line+1, err)
	}
	return sol, nil
}

func (sol *Solution) parseHeader() error {
	h := sol.Header
	status, rest, found := strings.Cut(h, " - objective value ")
	if found {
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil || math.IsNaN(v) {
			return fmt.Errorf("objective %q in status line %q is not a number", strings.TrimSpace(rest), h)
		}
		sol.Objective = v
	}
	noInt := strings.Contains(status, "(no integer solution")
	switch {
	case status == "Optimal":
		sol.Status = StatusOptimal
	case strings.HasPrefix(status, "Optimal (within gap tolerance)"):
		sol.Status = StatusOptimalWithinGap
	case strings.HasPrefix(status, "Stopped on "):
		sol.StoppedOn, _, _ = strings.Cut(strings.TrimPrefix(status, "Stopped on "), " ")
		sol.Status = StatusStopped
		if noInt {
			sol.Status = StatusStoppedNoSolution
		}
	case strings.HasPrefix(status, "Infeasible"), strings.HasPrefix(status, "Integer infeasible"),
		strings.HasPrefix(status, "PrimalInfeasible"):
		sol.Status = StatusInfeasible
	case strings.HasPrefix(status, "Unbounded"), strings.HasPrefix(status, "DualInfeasible"):
		sol.Status = StatusUnbounded
	default:
		return fmt.Errorf("unknown status line %q (want Optimal, Stopped on ..., Infeasible, Unbounded)", h)
	}
	if sol.Status.HasSolution() && !found {
		return fmt.Errorf("status line %q has no objective value", h)
	}
	return nil
}

// Format writes the solution in cbc's format, names sorted; ParseSolution
// reads it back to an equal Solution.
func (sol *Solution) Format(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString(sol.Header + "\n")
	names := make([]string, 0, len(sol.Values))
	for n := range sol.Values {
		names = append(names, n)
	}
	sort.Strings(names)
	marked := map[string]bool{}
	for _, n := range sol.Infeasible {
		marked[n] = true
	}
	for k, n := range names {
		if marked[n] {
			bw.WriteString("**")
		}
		fmt.Fprintf(bw, "%7d %-22s %15s %23s\n", k, n, strconv.FormatFloat(sol.Values[n], 'g', -1, 64), "0")
	}
	return bw.Flush()
}
