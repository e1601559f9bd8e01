package experiments

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"

	"github.com/e3-platform/e3/placement"
	"github.com/e3-platform/e3/placement/annealing"
	"github.com/e3-platform/e3/placement/hcm"
	"github.com/e3-platform/e3/placement/ilp"
	"github.com/e3-platform/e3/services"
)

var _ = register(&Experiment{
	ID:       "X10",
	Title:    "Placement time at datacenter scale",
	Paper:    "Table 6",
	Workload: "a simulated fat tree of 100 to 1,000 Type2-SmartNIC servers, 40 per rack, into which 10,000 microservices are deployed one at a time",
	Measure:  "per-microservice deployment time of HCM, simulated annealing and the ILP",
	Measured: true,
	Derivation: "The workload is placement.Scale, the code behind `e3 place scale`: each microservice is one of Table 2's sixteen, drawn " +
		"uniformly, keeping 0.01 to 0.1 Xeon cores busy; three in four are fed by an earlier microservice (at most 12 each) and are placed near " +
		"it, the rest take client traffic. Deployment is incremental: each microservice is its own placement problem on the cluster as the ones " +
		"before it left it. HCM places all 10,000 and its placements are committed, so every algorithm sees the same sequence of cluster states; " +
		"the annealing is also timed on every 200th microservice and the ILP (cbc, one run per microservice) on every 500th, on the same " +
		"problem, without committing their answers: the baselines take milliseconds to seconds per microservice, and timing every one would take " +
		"hours. The time is the wall time of the Place call alone on the machine that ran the experiment (see the top of this file), so it " +
		"varies from run to run; the placements themselves follow from the seed.",
	Run: runX10,
})

// x10Sizes are Table 6's cluster sizes.
var x10Sizes = []int{100, 200, 400, 600, 800, 1000}

const (
	x10Microservices = 10000
	x10EveryAnneal   = 200
	x10EveryILP      = 500
)

type x10Timing struct {
	Samples int
	Placed  int // microservices placed (HCM: committed)
	Mean    time.Duration
	P50     time.Duration
	P99     time.Duration
	Max     time.Duration
	Err     string
}

type x10Result struct {
	sizes   []int
	n       int
	algos   []string
	timings [][]x10Timing // per algorithm, per size
}

func summarise(ts []time.Duration, placed int) x10Timing {
	if len(ts) == 0 {
		return x10Timing{}
	}
	slices.Sort(ts)
	var sum time.Duration
	for _, t := range ts {
		sum += t
	}
	return x10Timing{Samples: len(ts), Placed: placed, Mean: sum / time.Duration(len(ts)),
		P50: ts[len(ts)/2], P99: ts[len(ts)*99/100], Max: ts[len(ts)-1]}
}

func runX10(o Options) (Result, error) {
	sizes, n, everyA, everyI := x10Sizes, x10Microservices, x10EveryAnneal, x10EveryILP
	algos := []string{"hcm", "annealing", "ilp"}
	if o.Quick {
		sizes, n, everyA = []int{100, 200}, 400, 100
		algos = algos[:2]
	}
	res := &x10Result{sizes: sizes, n: n, algos: algos, timings: make([][]x10Timing, len(algos))}
	for k := range algos {
		res.timings[k] = make([]x10Timing, len(sizes))
	}
	// Timed runs go one at a time: concurrent work would be in the times.
	for s, size := range sizes {
		o.step("X10 %d servers", size)
		ts, err := x10Size(o.Seed, size, n, everyA, everyI, algos)
		if err != nil {
			return nil, err
		}
		for k := range algos {
			res.timings[k][s] = ts[k]
		}
	}
	return res, nil
}

// x10Size deploys n microservices into a fat tree of size servers and
// times each algorithm of algos (a prefix of hcm, annealing, ilp): HCM on
// every microservice, the annealing on every everyA-th and the ILP on
// every everyI-th.
func x10Size(seed uint64, size, n, everyA, everyI int, algos []string) ([]x10Timing, error) {
	var mix []placement.ScaleService
	for _, d := range services.Descriptors() {
		mix = append(mix, placement.ScaleService{Name: d.Name, MemoryMB: float64(d.MemoryMB), NonMigratable: !d.Migratable})
	}
	h := hcm.New(hcm.Options{})
	an := annealing.New(annealing.Options{})
	lp := ilp.New(ilp.Options{})
	runtime.GC()
	sc, err := placement.NewScale(placement.ScaleOptions{Servers: size, Services: mix, Seed: seed})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0xe3))
	var th, ta, ti []time.Duration
	var placedA, placedI int
	ilpErr := ""
	for m := range n {
		p := sc.Next()
		if len(algos) > 1 && m%everyA == everyA/2 {
			t0 := time.Now()
			r, err := an.Place(p, rand.New(rand.NewPCG(seed, uint64(m))))
			ta = append(ta, time.Since(t0))
			if err != nil {
				return nil, fmt.Errorf("X10 annealing, %d servers: %w", size, err)
			}
			if len(r.Unplaced) == 0 {
				placedA++
			}
		}
		if len(algos) > 2 && ilpErr == "" && m%everyI == everyI/2 {
			t0 := time.Now()
			r, err := lp.Place(p, nil)
			d := time.Since(t0)
			switch {
			case errors.Is(err, ilp.ErrNoSolver):
				ilpErr = "cbc not installed (apt-get install coinor-cbc)"
			case err != nil:
				return nil, fmt.Errorf("X10 ilp, %d servers: %w", size, err)
			default:
				ti = append(ti, d)
				if len(r.Unplaced) == 0 {
					placedI++
				}
			}
		}
		t0 := time.Now()
		r, err := h.Place(p, rng)
		th = append(th, time.Since(t0))
		if err != nil {
			return nil, fmt.Errorf("X10 hcm, %d servers: %w", size, err)
		}
		if err := sc.Commit(p, r); err != nil {
			return nil, err
		}
	}
	_, placed := sc.Deployed()
	out := []x10Timing{summarise(th, placed)}
	if len(algos) > 1 {
		out = append(out, summarise(ta, placedA))
	}
	if len(algos) > 2 {
		t := summarise(ti, placedI)
		t.Err = ilpErr
		out = append(out, t)
	}
	return out, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func (r *x10Result) Tables() []Table {
	t := Table{Title: fmt.Sprintf("Per-microservice placement time, %d microservices deployed one at a time (measured wall time)", r.n),
		Columns: []string{"algorithm", "servers", "timed", "placed of timed", "mean ms", "p50 ms", "p99 ms", "max ms", "note"}}
	for k, a := range r.algos {
		for s, size := range r.sizes {
			x := r.timings[k][s]
			if x.Err != "" {
				t.add(a, size, 0, 0, nil, nil, nil, nil, x.Err)
				continue
			}
			t.add(a, size, x.Samples, x.Placed, ms(x.Mean), ms(x.P50), ms(x.P99), ms(x.Max), "")
		}
	}
	return []Table{t}
}

func (r *x10Result) JSON() any {
	out := newObj()
	for k, a := range r.algos {
		s := newObj()
		for i, size := range r.sizes {
			x := r.timings[k][i]
			v := newObj().set("timed", x.Samples).set("placed", x.Placed)
			if x.Err != "" {
				v.set("error", x.Err)
			} else {
				v.set("per_microservice_ms", jnum(ms(x.Mean))).set("p50_ms", jnum(ms(x.P50))).set("p99_ms", jnum(ms(x.P99))).set("max_ms", jnum(ms(x.Max)))
			}
			s.set(strconv.Itoa(size), v)
		}
		out.set(a, s)
	}
	return newObj().set("microservices", r.n).set("algorithms", out)
}

func (r *x10Result) Figures() ([]Figure, error) {
	var ss []series
	for k, a := range r.algos {
		s := series{Name: a}
		for i, size := range r.sizes {
			x := r.timings[k][i]
			s.X = append(s.X, float64(size))
			s.Y = append(s.Y, orNaN(ms(x.Mean), x.Err != "" || x.Samples == 0))
		}
		ss = append(ss, s)
	}
	p, err := lines("Placement time per microservice (measured)", "servers", "mean ms per microservice (log)", ss, false, true)
	if err != nil {
		return nil, err
	}
	return []Figure{{Caption: "Mean wall time to place one microservice against cluster size, HCM (all 10,000) and the baselines (sampled), measured on the machine named at the top.", Panels: []*plot.Plot{p}}}, nil
}

func (r *x10Result) Notes() []string {
	last := len(r.sizes) - 1
	h := r.timings[0][last]
	s := fmt.Sprintf("At %d servers HCM places a microservice in %.3f ms on average (p99 %.3f ms) and placed %d of %d.",
		r.sizes[last], ms(h.Mean), ms(h.P99), h.Placed, r.n)
	for k := 1; k < len(r.algos); k++ {
		x := r.timings[k][last]
		if x.Err != "" || x.Samples == 0 {
			continue
		}
		s += fmt.Sprintf(" The %s takes %.1f ms (%.0fx HCM's mean).", placerName(r.algos[k]), ms(x.Mean), ratio(float64(x.Mean), float64(h.Mean)))
	}
	return []string{s}
}
