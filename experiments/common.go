package experiments

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/services"
	"github.com/e3-platform/e3/sim"
	"github.com/e3-platform/e3/topology"
)

// clusterTopology builds the single-rack topology of a cluster of Table 4
// (or NxMACHINE).
func clusterTopology(name string) (hwmodel.Cluster, *topology.Topology, error) {
	c, err := hwmodel.ClusterByName(name)
	if err != nil {
		return hwmodel.Cluster{}, nil, err
	}
	t, err := hwmodel.Topology(c)
	if err != nil {
		return hwmodel.Cluster{}, nil, err
	}
	return c, t, nil
}

// builtin loads a built-in application.
func builtin(name string) (*app.App, error) { return app.Builtin(name, services.Registry()) }

// pinned loads a built-in application with the pin of some of its nodes
// changed: pin(node, service) returns the pin to write ("host",
// "smartnic") or "" to leave the node as it is. The spec is edited as YAML
// and loaded again, so the application is validated like any other.
func pinned(name string, pin func(node, service string) string) (*app.App, error) {
	file, data, err := app.BuiltinSpec(name)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("experiments: %s: %w", file, err)
	}
	root := doc.Content[0]
	nodes := mapValue(root, "nodes")
	if nodes == nil {
		return nil, fmt.Errorf("experiments: %s has no nodes", file)
	}
	for i := 0; i+1 < len(nodes.Content); i += 2 {
		body := nodes.Content[i+1]
		svc := mapValue(body, "service")
		if svc == nil {
			continue
		}
		p := pin(nodes.Content[i].Value, svc.Value)
		if p == "" {
			continue
		}
		if v := mapValue(body, "pin"); v != nil {
			v.Value = p
			continue
		}
		body.Content = append(body.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "pin"},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p})
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, err
	}
	return app.Load(file, out, services.Registry())
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// singleService builds an application of one microservice with one
// shard, requests of size bytes over a key space of 65,536 (E3's NFV
// applications' flow count; the key space does not change a lone
// service's cost in the model). The simulator serves a node's queue with
// all its cores whatever the instances on it, so one instance stands for
// "as many instances as needed" (§2.3).
func singleService(service string, size int) (*app.App, error) {
	spec := fmt.Sprintf("name: %s-alone\nclass: %s\nnodes:\n  svc: {service: %s}\nworkload:\n  request_size: %d\n  key_space: 65536\n",
		service, classOf(service), service, size)
	return app.Load(service+"-alone.yaml", []byte(spec), services.Registry())
}

// classOf gives a lone service an application class its message family
// allows (packet services are NFV).
func classOf(service string) string {
	switch service {
	case "ipsec", "natv4", "nids", "flowmon", "ddos":
		return "NFV"
	}
	return "RTA"
}

// kneeOptions are the knee search's options: the simulator's defaults,
// fewer requests per probe in a quick run.
func (o *Options) kneeOptions() sim.KneeOptions {
	if o.Quick {
		return sim.KneeOptions{Requests: 3000}
	}
	return sim.KneeOptions{}
}

// requests is how many requests a fixed-load run aims to measure.
func (o *Options) requests() int {
	if o.Quick {
		return 3000
	}
	return 20000
}

// window returns the warm-up and measured window of a fixed-load run at
// rate requests a second: long enough for o.requests() requests, at least
// 2 ms, warm-up a quarter of it (as the knee search's probes).
func (o *Options) window(rate float64) (warm, dur time.Duration) {
	dur = max(time.Duration(float64(o.requests())/rate*1e9), 2*time.Millisecond)
	return dur / 4, dur
}

// parallel runs f(0..n-1) on up to o.Workers goroutines and returns the
// error of the lowest index that failed. Each f writes only its own
// slot of the caller's results, so the outcome does not depend on the
// schedule.
func (o *Options) parallel(n int, f func(i int) error) error {
	w := o.Workers
	if w <= 0 {
		w = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, n)
	sem := make(chan struct{}, w)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(slices.DeleteFunc(errs, func(e error) bool { return e == nil })...)
}

// point is one measured operating point of a cluster.
type point struct {
	// Offered is the load offered (open loop), Throughput what completed,
	// both in requests a second.
	Offered, Throughput float64
	// PowerW is the whole cluster's modelled wall power, IdleW its idle
	// part; RPJ = Throughput / PowerW.
	PowerW, IdleW, RPJ float64
	// Mean and P99 are client-observed latency.
	Mean, P99 time.Duration
}

func pointOf(offered float64, r *sim.Result) point {
	p := point{Offered: offered, Throughput: r.Throughput, PowerW: r.PowerW, IdleW: r.IdleW, RPJ: r.RequestsPerJoule}
	var lat float64
	for _, a := range r.Apps {
		lat += float64(a.Mean) * float64(a.Completed)
		p.P99 = max(p.P99, a.P99)
	}
	if r.Completed > 0 {
		p.Mean = time.Duration(lat / float64(r.Completed))
	}
	return p
}

// us is a duration in microseconds.
func us(d time.Duration) float64 { return float64(d) / 1e3 }

// geomean is the geometric mean of the positive values of xs (NaN if
// there are none).
func geomean(xs []float64) float64 {
	s, n := 0.0, 0
	for _, x := range xs {
		if x > 0 && !math.IsInf(x, 0) {
			s += math.Log(x)
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return math.Exp(s / float64(n))
}

// mean is the arithmetic mean of xs, NaN if empty.
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// ratio is a/b, NaN when either is missing or b is 0.
func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// pct formats a fraction as a signed percentage, "+12%".
func pct(f float64) string {
	if math.IsNaN(f) {
		return "n/a"
	}
	return fmt.Sprintf("%+.0f%%", f*100)
}

// nanF is NaN, for missing values in figures.
var nanF = math.NaN()

// lat formats a latency for prose: µs below 10 ms, ms below 10 s, else s.
func lat(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.0f µs", us(d))
	case d < 10*time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
