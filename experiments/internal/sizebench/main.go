// Command sizebench measures how the per-request CPU time of E3's own
// microservice handlers grows with the request size, for experiment X2's
// request-size model (docs/MODEL.md, "Experiments"). It writes JSON to
// stdout; the committed copy is experiments/data/size_scaling.json:
//
//	go run ./experiments/internal/sizebench > experiments/data/size_scaling.json
//
// Each service runs on one locked OS thread with its own deterministic
// request generator at each size. The figure is thread CPU time per
// request (CLOCK_THREAD_CPUTIME_ID), which other processes on a shared
// machine do not inflate, over chunks of 4,096 freshly generated requests
// (generation is outside the timed part); the median of Reps repetitions
// is kept. Only the ratios between sizes are used by the model.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services"
)

// Services and Sizes are X2's: IPsec, NIDS and DDoS, which the paper
// names, and two more packet services.
var (
	Services = []string{"ipsec", "nids", "ddos", "natv4", "flowmon"}
	Sizes    = []int{64, 128, 256, 512, 1024, 1500}
)

const (
	pool    = 4096
	perRep  = 100 * time.Millisecond // of thread CPU time per repetition
	reps    = 7
	genSeed = 1
)

type output struct {
	Command      string               `json:"command"`
	Method       string               `json:"method"`
	Machine      string               `json:"machine"`
	Go           string               `json:"go"`
	Sizes        []int                `json:"sizes"`
	NsPerRequest map[string][]float64 `json:"ns_per_request"`
}

func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func measure(d *service.Descriptor, size int) (float64, error) {
	h, err := d.New(service.Env{Instance: d.Name + "/sizebench", Store: collections.NewMemStore(), Seed: genSeed})
	if err != nil {
		return 0, err
	}
	if c, ok := h.(service.Closer); ok {
		defer c.Close()
	}
	gen := d.NewGenerator(genSeed, size)
	reqs := make([][]byte, pool)
	keys := make([]uint64, pool)
	refill := func() {
		for i := range reqs {
			reqs[i], keys[i] = gen.Next(reqs[i][:0])
		}
	}
	ctx := &service.Context{Scratch: make([]byte, 0, 64<<10)}
	var seq int64
	run := func() (int64, error) {
		t0 := threadCPU()
		for i := range reqs {
			ctx.Reset(seq, keys[i], nil)
			seq++
			if err := h.Handle(ctx, reqs[i]); err != nil {
				return 0, fmt.Errorf("%s at %d B: %w", d.Name, size, err)
			}
		}
		return threadCPU() - t0, nil
	}
	refill()
	if _, err := run(); err != nil { // warm up
		return 0, err
	}
	var per []float64
	for range reps {
		var cpu, n int64
		for cpu < int64(perRep) {
			refill()
			c, err := run()
			if err != nil {
				return 0, err
			}
			cpu += c
			n += pool
		}
		per = append(per, float64(cpu)/float64(n))
	}
	slices.Sort(per)
	return per[len(per)/2], nil
}

func main() {
	runtime.LockOSThread()
	reg := services.Registry()
	out := output{
		Command: "go run ./experiments/internal/sizebench > experiments/data/size_scaling.json",
		Method: fmt.Sprintf("thread CPU time per request of the handler alone, one locked OS thread, chunks of %d fresh requests from the service's generator (seed %d), median of %d repetitions of %v each",
			pool, genSeed, reps, perRep),
		Machine:      machine(),
		Go:           runtime.Version(),
		Sizes:        Sizes,
		NsPerRequest: map[string][]float64{},
	}
	for _, name := range Services {
		d, ok := reg.Lookup(name)
		if !ok {
			fmt.Fprintf(os.Stderr, "sizebench: no service %q\n", name)
			os.Exit(1)
		}
		for _, size := range Sizes {
			ns, err := measure(d, size)
			if err != nil {
				fmt.Fprintln(os.Stderr, "sizebench:", err)
				os.Exit(1)
			}
			out.NsPerRequest[name] = append(out.NsPerRequest[name], float64(int64(ns*10+0.5))/10)
			fmt.Fprintf(os.Stderr, "%s %d B: %.1f ns\n", name, size, ns)
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "sizebench:", err)
		os.Exit(1)
	}
}

func machine() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return fmt.Sprintf("%s, %s", strings.TrimSpace(v), runtime.GOARCH)
		}
	}
	return runtime.GOARCH
}
