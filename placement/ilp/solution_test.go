package ilp_test

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/e3-platform/e3/placement/ilp"
)

// The headers and line shapes below are what cbc 2.10 writes (checked
// against real runs: see TestSolveStatuses for the live ones).
func TestParseSolution(t *testing.T) {
	for _, tc := range []struct {
		name, in  string
		status    ilp.Status
		stopped   string
		obj       float64
		values    map[string]float64
		marked    []string
		has       bool
		wantError string
	}{
		{name: "optimal", in: "Optimal - objective value 2.00000000\n      0 x_0_1                  0                       3\n      1 x_0_2                  1                       2\n      2 U                    0.5                       0\n",
			status: ilp.StatusOptimal, obj: 2, values: map[string]float64{"x_0_1": 0, "x_0_2": 1, "U": 0.5}, has: true},
		{name: "within gap", in: "Optimal (within gap tolerance) - objective value 306679.0\n0 a 1 0\n",
			status: ilp.StatusOptimalWithinGap, obj: 306679, values: map[string]float64{"a": 1}, has: true},
		{name: "stopped on time", in: "Stopped on time - objective value 0.91001317\n      0 x_1_2 1 0\n",
			status: ilp.StatusStopped, stopped: "time", obj: 0.91001317, values: map[string]float64{"x_1_2": 1}, has: true},
		{name: "stopped on iterations", in: "Stopped on iterations - objective value 4\n",
			status: ilp.StatusStopped, stopped: "iterations", obj: 4, values: map[string]float64{}, has: true},
		{name: "no integer solution", in: "Stopped on time (no integer solution - continuous used) - objective value 12.00000000\n      0 x0 0.5 0.224\n",
			status: ilp.StatusStoppedNoSolution, stopped: "time", obj: 12, values: map[string]float64{"x0": 0.5}},
		{name: "infeasible", in: "Infeasible - objective value 3.00000000\n      0 x                      1                  -1e-18\n**       1 y                      2                       0\n",
			status: ilp.StatusInfeasible, obj: 3, values: map[string]float64{"x": 1, "y": 2}, marked: []string{"y"}},
		{name: "integer infeasible", in: "Integer infeasible - objective value 1.50000000\n      0 x 1.5 0\n",
			status: ilp.StatusInfeasible, obj: 1.5, values: map[string]float64{"x": 1.5}},
		{name: "unbounded", in: "Unbounded - objective value 0\n", status: ilp.StatusUnbounded, values: map[string]float64{}},
		{name: "marker glued", in: "Infeasible - objective value 1\n**1 y 2 0\n", status: ilp.StatusInfeasible, obj: 1,
			values: map[string]float64{"y": 2}, marked: []string{"y"}},
		{name: "blank lines and no reduced cost", in: "Optimal - objective value -1e-3\n\n 0 a 1\n\n", status: ilp.StatusOptimal, obj: -1e-3,
			values: map[string]float64{"a": 1}, has: true},

		{name: "empty", in: "", wantError: "model.sol: empty file"},
		{name: "unknown status", in: "Splendid - objective value 1\n", wantError: `model.sol:1: unknown status line "Splendid - objective value 1"`},
		{name: "no objective", in: "Optimal\n0 a 1 0\n", wantError: `model.sol:1: status line "Optimal" has no objective value`},
		{name: "bad objective", in: "Optimal - objective value lots\n", wantError: `model.sol:1: objective "lots"`},
		{name: "bad index", in: "Optimal - objective value 1\n0 a 1 0\nx b 1 0\n", wantError: `model.sol:3: index "x" is not a non-negative integer`},
		{name: "negative index", in: "Optimal - objective value 1\n-1 b 1 0\n", wantError: `model.sol:2: index "-1"`},
		{name: "bad value", in: "Optimal - objective value 1\n0 a one 0\n", wantError: `model.sol:2: value "one" of a is not a finite number`},
		{name: "nan value", in: "Optimal - objective value 1\n0 a NaN 0\n", wantError: `model.sol:2: value "NaN" of a`},
		{name: "infinite value", in: "Optimal - objective value 1\n0 a -Inf 0\n", wantError: `model.sol:2: value "-Inf" of a`},
		{name: "bad reduced cost", in: "Optimal - objective value 1\n0 a 1 zero\n", wantError: `model.sol:2: reduced cost "zero" of a`},
		{name: "too few fields", in: "Optimal - objective value 1\n0 a\n", wantError: "model.sol:2: want \"index name value [reduced-cost]\", got 2 fields"},
		{name: "too many fields", in: "Optimal - objective value 1\n0 a 1 0 9\n", wantError: "model.sol:2: want"},
		{name: "duplicate", in: "Optimal - objective value 1\n0 a 1 0\n1 a 0 0\n", wantError: "model.sol:3: a listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sol, err := ilp.ParseSolution(strings.NewReader(tc.in), "model.sol")
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) || !errors.Is(err, ilp.ErrSolution) {
					t.Fatalf("error %v, want one containing %q and wrapping ErrSolution", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sol.Status != tc.status || sol.StoppedOn != tc.stopped || sol.Objective != tc.obj || sol.Status.HasSolution() != tc.has {
				t.Errorf("status %v stopped %q objective %v has %v", sol.Status, sol.StoppedOn, sol.Objective, sol.Status.HasSolution())
			}
			if !maps.Equal(sol.Values, tc.values) || !slices.Equal(sol.Infeasible, tc.marked) {
				t.Errorf("values %v marked %v, want %v %v", sol.Values, sol.Infeasible, tc.values, tc.marked)
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	for s, want := range map[ilp.Status]string{ilp.StatusOptimal: "optimal", ilp.StatusStopped: "stopped",
		ilp.StatusStoppedNoSolution: "stopped-no-solution", ilp.StatusInfeasible: "infeasible", ilp.Status(99): "Status(99)"} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", s, got, want)
		}
	}
}

// FuzzParseSolution: the parser never panics, and whatever it accepts it
// reads back the same after Format.
func FuzzParseSolution(f *testing.F) {
	for _, s := range []string{
		"Optimal - objective value 2.00000000\n      0 x_0_1                  0                       3\n      1 x_0_2                  1                       2\n",
		"Stopped on time - objective value 0.91\n 0 a 1 0\n",
		"Stopped on time (no integer solution - continuous used) - objective value 12\n 0 a 0.5 0\n",
		"Infeasible - objective value 3\n 0 x 1 0\n**       1 y 2 0\n",
		"Optimal (within gap tolerance) - objective value 1e3\n",
		"Unbounded - objective value 0\n",
		"",
		"Optimal - objective value 1\n0 a 1 0 0\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sol, err := ilp.ParseSolution(bytes.NewReader(in), "fuzz.sol")
		if err != nil {
			if !errors.Is(err, ilp.ErrSolution) {
				t.Fatalf("error %v does not wrap ErrSolution", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := sol.Format(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := ilp.ParseSolution(&buf, "again.sol")
		if err != nil {
			t.Fatalf("reading back %q: %v", buf.String(), err)
		}
		marked := slices.Sorted(slices.Values(sol.Infeasible))
		if again.Status != sol.Status || again.StoppedOn != sol.StoppedOn || !sameFloat(again.Objective, sol.Objective) ||
			!maps.Equal(again.Values, sol.Values) || !slices.Equal(again.Infeasible, marked) {
			t.Fatalf("round trip changed %+v into %+v", sol, again)
		}
	})
}

func sameFloat(a, b float64) bool { return a == b || (a != a && b != b) }
