// Package msbench measures one microservice's handler on one core: the
// analogue of the paper's Table 1 for this implementation. It drives the
// service with its own deterministic generator and reports throughput per
// core, per-request latency and allocations per request, next to the
// paper's kernel-bypass host figure per core.
package msbench

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/service"
)

// Options control one run.
type Options struct {
	Size     int           // request size in bytes (512 in the paper)
	Duration time.Duration // measured time for the throughput pass
	Seed     int64         // generator seed
	// Requests is how many distinct requests are pre-generated and cycled
	// through, so that the generator's own cost is not measured.
	Requests int
}

func (o *Options) fill() error {
	if o.Size == 0 {
		o.Size = 512
	}
	if o.Duration == 0 {
		o.Duration = time.Second
	}
	if o.Requests == 0 {
		o.Requests = 4096
	}
	if o.Size < 0 || o.Size > 65535 {
		return fmt.Errorf("msbench: request size %d out of range 1..65535", o.Size)
	}
	if o.Duration < 0 {
		return fmt.Errorf("msbench: negative duration %v", o.Duration)
	}
	return nil
}

// Result is one service's figures.
type Result struct {
	Service      string  `json:"service"`
	Size         int     `json:"size"`
	Requests     int64   `json:"requests"`
	RPSPerCore   float64 `json:"rps_per_core"`
	AvgUs        float64 `json:"avg_us"`
	P99Us        float64 `json:"p99_us"`
	AllocsPerReq float64 `json:"allocs_per_req"`
	Errors       int64   `json:"errors"`
	// PaperRPSPerCore is Table 1's kernel-bypass host RPS divided by its
	// active cores: what one Xeon E5-2680 v3 core did in the paper,
	// network stack included (ours measures the handler alone).
	PaperRPSPerCore float64 `json:"paper_rps_per_core,omitempty"`
}

// ErrNotImplemented is returned for a descriptor without an implementation.
var ErrNotImplemented = errors.New("msbench: service has no implementation")

// Run benchmarks the service d.
func Run(d *service.Descriptor, o Options) (Result, error) {
	if err := o.fill(); err != nil {
		return Result{}, err
	}
	if d.New == nil || d.NewGenerator == nil {
		return Result{}, fmt.Errorf("%w: %s", ErrNotImplemented, d.Name)
	}
	h, err := d.New(service.Env{Instance: d.Name + "/bench", Store: collections.NewMemStore(), Seed: o.Seed})
	if err != nil {
		return Result{}, fmt.Errorf("msbench: %s: new: %w", d.Name, err)
	}
	if c, ok := h.(service.Closer); ok {
		defer c.Close()
	}
	gen := d.NewGenerator(o.Seed, o.Size)
	reqs := make([][]byte, o.Requests)
	keys := make([]uint64, o.Requests)
	for i := range reqs {
		reqs[i] = make([]byte, 0, o.Size)
	}
	// refill draws the next chunk of fresh requests. Requests are never
	// replayed: a stateful service (a recommender, say) does different work
	// for a rating it already holds, so replaying would measure the wrong
	// thing. Generation runs outside the timed sections.
	refill := func() {
		for i := range reqs {
			reqs[i], keys[i] = gen.Next(reqs[i][:0])
		}
	}
	ctx := &service.Context{Scratch: make([]byte, 0, 64<<10)}
	res := Result{Service: d.Name, Size: o.Size}
	if c, ok := hwmodel.Lookup(d.Name); ok {
		m := c.Stacks[hwmodel.HostBypass]
		res.PaperRPSPerCore = m.RPS / float64(m.Cores)
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var seq int64
	call := func(i int) {
		ctx.Reset(seq, keys[i], nil)
		seq++
		if err := h.Handle(ctx, reqs[i]); err != nil {
			res.Errors++
		}
	}
	// Warm up: caches, lazily built state, first inserts of stateful services.
	refill()
	for i := range reqs {
		call(i)
	}
	res.Errors = 0

	// Throughput pass: no per-request clock reads, one chunk at a time.
	var ms0, ms1 runtime.MemStats
	var busy time.Duration
	var n int64
	var allocs uint64
	for busy < o.Duration {
		refill()
		runtime.ReadMemStats(&ms0)
		t0 := time.Now()
		for i := range reqs {
			call(i)
		}
		busy += time.Since(t0)
		runtime.ReadMemStats(&ms1)
		allocs += ms1.Mallocs - ms0.Mallocs
		n += int64(len(reqs))
	}
	res.Requests = n
	res.RPSPerCore = float64(n) / busy.Seconds()
	res.AllocsPerReq = float64(allocs) / float64(n)

	// Latency pass: each request timed on its own, a quarter of the time.
	hist := hdrhistogram.New(1, int64(10*time.Second), 3)
	busy = 0
	for busy < o.Duration/4 {
		refill()
		for i := range reqs {
			t0 := time.Now()
			call(i)
			dt := time.Since(t0)
			busy += dt
			_ = hist.RecordValue(max(int64(dt), 1))
		}
	}
	res.AvgUs = hist.Mean() / 1e3
	res.P99Us = float64(hist.ValueAtQuantile(99)) / 1e3
	return res, nil
}
