package ilp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrNoSolver is wrapped by the error Place returns when the cbc program
// cannot be found.
var ErrNoSolver = errors.New("ilp: the CBC solver is not installed (Debian/Ubuntu: apt-get install coinor-cbc)")

// DefaultSolver is the program run: COIN-OR's cbc, found on PATH.
const DefaultSolver = "cbc"

// Run is what one cbc run reported besides the solution.
type Run struct {
	// Command is the command line.
	Command []string
	// Wall is the time the program ran.
	Wall time.Duration
	// Bound is the best lower bound on the objective cbc proved ("Lower
	// bound:" in its log), and Gap its relative gap ("Gap:"); NaN when the
	// log does not say (a proven optimum prints neither).
	Bound, Gap float64
	// Nodes is the branch-and-bound nodes enumerated, -1 if not logged.
	Nodes int
	// Log is the tail of cbc's output.
	Log string
}

// solve writes m to dir, runs cbc on it with a limit of timeLimit
// seconds of wall time and, if nodeLimit > 0, of nodeLimit
// branch-and-bound nodes, starting from start if it is not nil, and reads
// back its solution.
func solve(ctx context.Context, solver string, m *Model, start map[string]float64, dir string, timeLimit float64, nodeLimit int) (*Solution, *Run, error) {
	path, err := exec.LookPath(solver)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoSolver, err)
	}
	lp := filepath.Join(dir, "model.lp")
	solFile := filepath.Join(dir, "model.sol")
	f, err := os.Create(lp)
	if err != nil {
		return nil, nil, fmt.Errorf("ilp: %w", err)
	}
	if err := m.WriteLP(f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("ilp: writing %s: %w", lp, err)
	}
	if err := f.Close(); err != nil {
		return nil, nil, fmt.Errorf("ilp: writing %s: %w", lp, err)
	}
	// timeMode elapsed: the limit is wall time (cbc counts CPU time by
	// default). ratio 0: stop only at a proven optimum. One thread.
	args := []string{lp}
	if start != nil {
		// A known feasible point: cbc then always has an answer to give
		// at its time limit (its mipStart file has the solution file's
		// format).
		sp := filepath.Join(dir, "start.sol")
		st := &Solution{Header: "Stopped on time - objective value 0", Values: start}
		var buf bytes.Buffer
		if err := st.Format(&buf); err != nil {
			return nil, nil, fmt.Errorf("ilp: %w", err)
		}
		if err := os.WriteFile(sp, buf.Bytes(), 0o644); err != nil {
			return nil, nil, fmt.Errorf("ilp: %w", err)
		}
		args = append(args, "mips", sp)
	}
	args = append(args, "timeMode", "elapsed", "sec", strconv.FormatFloat(timeLimit, 'g', -1, 64), "ratio", "0")
	if nodeLimit > 0 {
		args = append(args, "maxNodes", strconv.Itoa(nodeLimit))
	}
	args = append(args, "solve", "solu", solFile)
	run := &Run{Command: append([]string{path}, args...), Bound: math.NaN(), Gap: math.NaN(), Nodes: -1}
	// cbc honours its limit between nodes; a hard stop well after it
	// guards against a run that does not return.
	hard := time.Duration((1.5*timeLimit + 30) * float64(time.Second))
	cctx, cancel := context.WithTimeout(ctx, hard)
	defer cancel()
	cmd := exec.CommandContext(cctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	runErr := cmd.Run()
	run.Wall = time.Since(began)
	run.Log = tail(out.String(), 2000)
	parseLog(out.String(), run)
	if cctx.Err() != nil {
		return nil, run, fmt.Errorf("ilp: %s did not finish within %v (limit %gs): %w", solver, hard, timeLimit, cctx.Err())
	}
	sf, err := os.Open(solFile)
	if err != nil {
		// cbc exits 0 even when it refuses the model; the missing
		// solution file is the sign. Its log says why.
		return nil, run, fmt.Errorf("ilp: %s wrote no solution (%v; exit: %v); its output ends:\n%s", solver, err, runErr, run.Log)
	}
	defer sf.Close()
	sol, err := ParseSolution(sf, solFile)
	if err != nil {
		return nil, run, err
	}
	return sol, run, nil
}

var (
	logBound = regexp.MustCompile(`(?m)^Lower bound:\s+(\S+)`)
	logGap   = regexp.MustCompile(`(?m)^Gap:\s+(\S+)`)
	logNodes = regexp.MustCompile(`(?m)^Enumerated nodes:\s+(\d+)`)
)

// parseLog picks the bound, gap and node count out of cbc's summary, when
// it prints them; the log is informative only, so what it lacks is left
// unset rather than an error.
func parseLog(s string, r *Run) {
	if m := logBound.FindStringSubmatch(s); m != nil {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			r.Bound = v
		}
	}
	if m := logGap.FindStringSubmatch(s); m != nil {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			r.Gap = v
		}
	}
	if m := logNodes.FindStringSubmatch(s); m != nil {
		if v, err := strconv.Atoi(m[1]); err == nil {
			r.Nodes = v
		}
	}
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
