package agentd

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/e3-platform/e3/hwmodel"
)

// powerModel turns the runtime's cumulative busy core time into modelled
// watts with the Table 4 power model (hwmodel.Machine.Power). A host
// reports its server's wall power with its SmartNICs idle (the idle
// power is the host's: it carries the power supply); a SmartNIC reports
// what its busy cores add. The server's modelled wall power is the sum of
// its agents' figures.
type powerModel struct {
	m      hwmodel.Machine
	host   bool
	cores  int // the agent's workers: busy cores cannot exceed them
	window time.Duration

	mu       sync.Mutex
	lastAt   time.Time
	lastBusy int64
	busy     float64 // busy cores over the last window
	watts    float64
}

func newPowerModel(m hwmodel.Machine, host bool, cores int) *powerModel {
	p := &powerModel{m: m, host: host, cores: cores, window: time.Second}
	p.watts = p.model(0)
	return p
}

// observe takes a heartbeat's cumulative busy time; the figures move once
// a window (1 s: twenty heartbeats) has passed, so that they do not jump
// with every 50 ms period.
func (p *powerModel) observe(now time.Time, busyNs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastAt.IsZero() {
		p.lastAt, p.lastBusy = now, busyNs
		return
	}
	dt := now.Sub(p.lastAt)
	if dt < p.window {
		return
	}
	b := float64(busyNs-p.lastBusy) / float64(dt)
	p.lastAt, p.lastBusy = now, busyNs
	p.busy = math.Max(0, math.Min(b, float64(p.cores)))
	p.watts = p.model(p.busy)
}

func (p *powerModel) model(busy float64) float64 {
	if p.host {
		w, err := p.m.Power(math.Min(busy, float64(p.m.HostCores)), nil)
		if err != nil {
			return math.NaN()
		}
		return w
	}
	return math.Min(busy, float64(p.m.NIC.Cores)) * p.m.NICCoreW()
}

func (p *powerModel) read() (busy, watts float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy, p.watts
}

// raplReader reads the package energy counters Linux exposes for Intel
// and AMD processors under /sys/class/powercap (intel-rapl:N/energy_uj,
// microjoules, wrapping at max_energy_range_uj): a measured figure next
// to the modelled one. It keeps a running total across wraps.
type raplReader struct {
	mu      sync.Mutex
	domains []*raplDomain
}

type raplDomain struct {
	name  string // e.g. package-0
	path  string // the energy_uj file
	max   uint64 // wrap range in µJ (0: unknown)
	last  uint64
	total float64 // joules since the agent started
}

// newRAPL finds the top-level RAPL domains under root (default
// /sys/class/powercap); nil if there are none readable.
func newRAPL(root string) *raplReader {
	if root == "" {
		root = "/sys/class/powercap"
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	r := &raplReader{}
	for _, e := range ents {
		n := e.Name()
		// Top-level domains only (intel-rapl:0); sub-domains
		// (intel-rapl:0:0, the cores) are counted in their package.
		if !strings.HasPrefix(n, "intel-rapl:") || strings.Count(n, ":") != 1 {
			continue
		}
		dir := filepath.Join(root, n)
		v, err := readUint(filepath.Join(dir, "energy_uj"))
		if err != nil {
			continue
		}
		name := n
		if b, err := os.ReadFile(filepath.Join(dir, "name")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			name = strings.TrimSpace(string(b))
		}
		mx, _ := readUint(filepath.Join(dir, "max_energy_range_uj"))
		r.domains = append(r.domains, &raplDomain{name: name, path: filepath.Join(dir, "energy_uj"), max: mx, last: v})
	}
	if len(r.domains) == 0 {
		return nil
	}
	sort.Slice(r.domains, func(i, j int) bool { return r.domains[i].name < r.domains[j].name })
	return r
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// read updates and returns each domain's joules since the agent started.
func (r *raplReader) read() map[string]float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]float64{}
	for _, d := range r.domains {
		v, err := readUint(d.path)
		if err == nil {
			delta := v - d.last
			if v < d.last {
				if d.max == 0 {
					delta = 0 // wrapped with an unknown range: skip the period
				} else {
					delta = d.max - d.last + v
				}
			}
			d.total += float64(delta) / 1e6
			d.last = v
		}
		out[d.name] = d.total
	}
	return out
}

// registry is the agent process's own metrics, next to the runtime's.
func (a *Agent) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"node": a.Node(), "kind": a.cfg.Role}
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "e3", Subsystem: "agent", Name: name, Help: help, ConstLabels: labels}, f))
	}
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "e3", Subsystem: "agent", Name: name, Help: help, ConstLabels: labels}, f))
	}
	counter("heartbeats_sent_total", "Heartbeats the controller accepted.", func() float64 { return float64(a.link.Sent()) })
	counter("heartbeat_failures_total", "Heartbeats the controller did not accept (no leader, unreachable).", func() float64 { return float64(a.link.SendFailures()) })
	gauge("routing_epoch", "Epoch of the routing table in force.", func() float64 { return float64(a.rt.Epoch()) })
	counter("tables_applied_total", "Routing tables applied.", func() float64 { return float64(a.applied.Load()) })
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "e3", Subsystem: "agent", Name: "tables_refused_total",
		Help: "Routing tables refused.", ConstLabels: prometheus.Labels{"node": a.Node(), "kind": a.cfg.Role, "reason": "stale_epoch"}},
		func() float64 { return float64(a.refusedOld.Load()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "e3", Subsystem: "agent", Name: "tables_refused_total",
		Help: "Routing tables refused.", ConstLabels: prometheus.Labels{"node": a.Node(), "kind": a.cfg.Role, "reason": "invalid"}},
		func() float64 { return float64(a.refusedBad.Load()) }))
	gauge("busy_cores", "Busy cores over the last second (core time per second).", func() float64 { b, _ := a.power.read(); return b })
	gauge("power_modelled_watts", "Modelled wall power (Table 4 model of --model): a host gives its server with idle SmartNICs, a SmartNIC what its busy cores add.",
		func() float64 { _, w := a.power.read(); return w })
	reg.MustRegister(agentCollector{a})
	return reg
}

// agentCollector exports host links, RAPL energy and durable instances.
type agentCollector struct{ a *Agent }

var (
	descLinkUp    = prometheus.NewDesc("e3_agent_host_link_up", "1 while the host link to peer is up.", []string{"node", "peer"}, nil)
	descLinkConns = prometheus.NewDesc("e3_agent_host_link_connects_total", "Host link connections made.", []string{"node", "peer"}, nil)
	descRAPL      = prometheus.NewDesc("e3_agent_rapl_energy_joules_total", "Measured energy of a RAPL domain since the agent started.", []string{"node", "domain"}, nil)
	descLSN       = prometheus.NewDesc("e3_instance_durable_lsn", "Last record a durable instance appended.", []string{"node", "app", "instance"}, nil)
	descRepl      = prometheus.NewDesc("e3_instance_replicated", "1 while a durable instance has a backup attached.", []string{"node", "app", "instance"}, nil)
)

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLinkUp, descLinkConns, descRAPL, descLSN, descRepl} {
		ch <- d
	}
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	node := a.Node()
	for _, ls := range a.links() {
		up := 0.0
		if ls.up() {
			up = 1
		}
		peer := a.topo.Name(ls.peer)
		ch <- prometheus.MustNewConstMetric(descLinkUp, prometheus.GaugeValue, up, node, peer)
		ch <- prometheus.MustNewConstMetric(descLinkConns, prometheus.CounterValue, float64(ls.connects.Load()), node, peer)
	}
	if a.rapl != nil {
		for dom, j := range a.rapl.read() {
			ch <- prometheus.MustNewConstMetric(descRAPL, prometheus.CounterValue, j, node, dom)
		}
	}
	for _, in := range a.Instances() {
		if !in.Durable {
			continue
		}
		r := 0.0
		if in.Replicated {
			r = 1
		}
		ch <- prometheus.MustNewConstMetric(descLSN, prometheus.GaugeValue, float64(in.LSN), node, in.App, in.Instance)
		ch <- prometheus.MustNewConstMetric(descRepl, prometheus.GaugeValue, r, node, in.App, in.Instance)
	}
}

// links returns the agent's host links.
func (a *Agent) links() []*linkState {
	if a.nic != nil {
		return []*linkState{a.nic.link}
	}
	var out []*linkState
	if a.host != nil {
		for _, ls := range a.host.links {
			out = append(out, ls)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].peer < out[j].peer })
	}
	return out
}

// InstanceStatus is one instance running on the agent.
type InstanceStatus struct {
	App        string `json:"app"`
	Instance   string `json:"instance"`
	Messages   uint64 `json:"messages"`
	Errors     uint64 `json:"errors"`
	Durable    bool   `json:"durable"`
	LSN        uint64 `json:"lsn,omitempty"`
	Replicated bool   `json:"replicated"`
}

// Instances lists the instances running here, with application names
// from the routing table in force.
func (a *Agent) Instances() []InstanceStatus {
	names := map[uint32]string{}
	if t := a.table.Load(); t != nil {
		for _, r := range t.Apps {
			names[r.ID] = r.App.Name
		}
	}
	var out []InstanceStatus
	for _, s := range a.rt.InstanceStats() {
		name := names[s.App]
		if name == "" {
			name = strconv.Itoa(int(s.App))
		}
		out = append(out, InstanceStatus{App: name, Instance: s.Instance, Messages: s.Messages, Errors: s.Errors,
			Durable: s.Durable, LSN: s.LSN, Replicated: s.Replicated})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Instance < out[j].Instance
	})
	return out
}

// Status is what GET /v1/status answers.
type Status struct {
	Node           string             `json:"node"`
	Role           string             `json:"role"`
	Cluster        string             `json:"cluster"`
	Addr           string             `json:"addr"`
	Epoch          uint64             `json:"epoch"`
	UptimeMs       int64              `json:"uptime_ms"`
	HeartbeatsSent uint64             `json:"heartbeats_sent"`
	HeartbeatFails uint64             `json:"heartbeat_failures"`
	TablesApplied  uint64             `json:"tables_applied"`
	TablesStale    uint64             `json:"tables_refused_stale"`
	TablesInvalid  uint64             `json:"tables_refused_invalid"`
	LastRefusal    string             `json:"last_refusal,omitempty"`
	BusyCores      float64            `json:"busy_cores"`
	ModelledWatts  float64            `json:"power_modelled_w"`
	Admitted       uint64             `json:"requests_admitted"`
	Completed      uint64             `json:"requests_completed"`
	Failed         uint64             `json:"requests_failed"`
	HostLinks      []LinkStatus       `json:"host_links"`
	Instances      []InstanceStatus   `json:"instances"`
	RAPLJoules     map[string]float64 `json:"rapl_joules,omitempty"`
}

// Status reports the agent's state.
func (a *Agent) Status() Status {
	st := a.rt.Stats()
	busy, w := a.power.read()
	s := Status{Node: a.Node(), Role: a.cfg.Role, Cluster: a.cluster, Addr: a.Addr().String(), Epoch: a.rt.Epoch(),
		UptimeMs: time.Since(a.started).Milliseconds(), HeartbeatsSent: a.link.Sent(), HeartbeatFails: a.link.SendFailures(),
		TablesApplied: a.applied.Load(), TablesStale: a.refusedOld.Load(), TablesInvalid: a.refusedBad.Load(),
		LastRefusal: a.lastRefusal.Load().(string), BusyCores: busy, ModelledWatts: w,
		Admitted: st.Admitted, Completed: st.Completed, Failed: st.Failed, Instances: a.Instances(), HostLinks: []LinkStatus{}}
	for _, ls := range a.links() {
		s.HostLinks = append(s.HostLinks, ls.status(a.topo))
	}
	if a.rapl != nil {
		s.RAPLJoules = a.rapl.read()
	}
	return s
}

// serveHTTP serves /metrics, /healthz and /v1/status on addr.
func (a *Agent) serveHTTP(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("agentd: metrics endpoint (--metrics %s): %w", addr, err)
	}
	a.httpLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{a.rt.Metrics(), a.reg}, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(a.Status())
	})
	a.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go a.httpSrv.Serve(ln)
	return nil
}
