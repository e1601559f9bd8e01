package experiments

import (
	"fmt"

	"gonum.org/v1/plot"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/hwmodel"
	"github.com/e3-platform/e3/sim"
	"github.com/e3-platform/e3/topology"
)

var _ = register(&Experiment{
	ID:       "X7",
	Title:    "Reaching the host: ECMP over the SmartNICs' ports against a NIC dedicated to host traffic",
	Paper:    "Figure 9",
	Workload: "each of the 8 applications on one Type2-SmartNIC server with its client-facing (source) microservices pinned to the host: host traffic spread over all 4 SmartNIC ports by ECMP, against 3 SmartNICs plus a plain 10 GbE NIC that carries the host's traffic",
	Measure:  "application throughput at the knee and the server's energy efficiency",
	Derivation: "Both servers are Type2-SmartNIC (Table 4: two 8-core E5-2620, one 10 GbE port cabled per SmartNIC, 40 Gb/s in all). In the " +
		"ECMP design the host has no port of its own: the ToR spreads its flows over the four SmartNIC ports, and each SmartNIC's traffic manager " +
		"forwards them over PCIe (2.92 µs of a cnMIPS core per packet, queued with that SmartNIC's microservices). In the other design one " +
		"LiquidIO II is replaced by a plain 10 GbE NIC for the host, so host traffic costs no SmartNIC core but the host has one port and the " +
		"server three SmartNICs. That server's power envelope is Type2's less the difference Table 4 shows between Type1-SmartNIC and Beefy, " +
		"which differ exactly by a LiquidIO II in place of a plain NIC: 15 W idle and 21 W peak (docs/MODEL.md, \"Experiments\"). Source nodes " +
		"are pinned to the host in the application's spec; HCM places the rest; the knee and RPJ (whole-server wall power) are found as in X4. " +
		"Backups have no second server to go to and stay unplaced (they take no traffic).",
	Run: runX7,
})

// type2Dedicated is X7's alternative server: a Type2-SmartNIC with one
// LiquidIO II replaced by a plain 10 GbE NIC for the host's traffic.
// Table 4's Type1-SmartNIC is Beefy with its plain NIC replaced by a
// LiquidIO II and draws 15 W more idle and 21 W more at peak; the same
// difference is taken off Type2's envelope.
var type2Dedicated = func() hwmodel.Machine {
	m := hwmodel.Type2SmartNIC
	m.Name = "Type2-3xSmartNIC+NIC"
	m.NICs = 3
	m.PlainPorts, m.PlainPortGbps = 1, 10
	m.IdleW -= hwmodel.Type1SmartNIC.IdleW - hwmodel.Beefy.IdleW
	m.PeakW -= hwmodel.Type1SmartNIC.PeakW - hwmodel.Beefy.PeakW
	m.CostUSD = 0 // not used
	return m
}()

func x7Machines(name string) (hwmodel.Machine, bool) {
	if name == type2Dedicated.Name {
		return type2Dedicated, true
	}
	return hwmodel.MachineByName(name)
}

var x7Designs = [2]string{"ECMP over 4 SmartNIC ports", "3 SmartNICs + host NIC"}

type x7Result struct {
	apps []string
	pts  [][2]point
}

// sourcesOnHost loads a built-in application with its source nodes
// pinned to hosts.
func sourcesOnHost(name string) (*app.App, error) {
	a, err := builtin(name)
	if err != nil {
		return nil, err
	}
	src := map[string]bool{}
	for _, n := range a.Sources() {
		src[n.Name] = true
	}
	return pinned(name, func(node, _ string) string {
		if src[node] {
			return "host"
		}
		return ""
	})
}

func runX7(o Options) (Result, error) {
	names := o.appNames("NFV-FIN", "IOT-TS")
	var topos [2]*topology.Topology
	for d, m := range []hwmodel.Machine{hwmodel.Type2SmartNIC, type2Dedicated} {
		t, err := topology.New(hwmodel.ServerSpec(m))
		if err != nil {
			return nil, err
		}
		topos[d] = t
	}
	res := &x7Result{apps: names, pts: make([][2]point, len(names))}
	err := o.parallel(len(names)*2, func(j int) error {
		i, d := j/2, j%2
		o.step("X7 %s, %s", names[i], x7Designs[d])
		a, err := sourcesOnHost(names[i])
		if err != nil {
			return err
		}
		k, err := sim.Knee(sim.Config{Topology: topos[d], Machines: x7Machines, Apps: []sim.AppLoad{{App: a}}, Seed: o.Seed}, o.kneeOptions())
		if err != nil {
			return fmt.Errorf("X7 %s, %s: %w", names[i], x7Designs[d], err)
		}
		res.pts[i][d] = pointOf(k.Offered, k.Knee)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *x7Result) Tables() []Table {
	t := Table{Title: "One Type2-SmartNIC server, sources pinned to the host: knee throughput and RPJ (model)",
		Columns: []string{"app", "ECMP K RPS", "ECMP W", "ECMP RPJ", "ECMP p99 µs", "host NIC K RPS", "host NIC W", "host NIC RPJ", "host NIC p99 µs", "throughput x (ECMP / host NIC)", "RPJ x"}}
	for i, name := range r.apps {
		e, h := r.pts[i][0], r.pts[i][1]
		t.add(name, e.Throughput/1e3, e.PowerW, e.RPJ, us(e.P99), h.Throughput/1e3, h.PowerW, h.RPJ, us(h.P99),
			ratio(e.Throughput, h.Throughput), ratio(e.RPJ, h.RPJ))
	}
	return []Table{t}
}

func (r *x7Result) JSON() any {
	out := newObj()
	for i, name := range r.apps {
		e, h := r.pts[i][0], r.pts[i][1]
		out.set(name, newObj().
			set("throughput_ratio", jnum(ratio(e.Throughput, h.Throughput))).
			set("rpj_ratio", jnum(ratio(e.RPJ, h.RPJ))).
			set("ecmp", pointJSON(e)).
			set("dedicated_host_nic", pointJSON(h)))
	}
	return out
}

func (r *x7Result) Figures() ([]Figure, error) {
	var tp, rpj [2]series
	for d := range 2 {
		tp[d].Name, rpj[d].Name = x7Designs[d], x7Designs[d]
		for i := range r.apps {
			tp[d].Y = append(tp[d].Y, r.pts[i][d].Throughput)
			rpj[d].Y = append(rpj[d].Y, r.pts[i][d].RPJ)
		}
	}
	p1, err := bars("Application throughput at the knee (model)", "requests/s (log)", r.apps, tp[:], true, false)
	if err != nil {
		return nil, err
	}
	p2, err := bars("Energy efficiency", "requests per joule (log)", r.apps, rpj[:], true, false)
	if err != nil {
		return nil, err
	}
	return []Figure{{Caption: "One Type2-SmartNIC server with client-facing microservices on the host: ECMP over all SmartNIC ports against a plain NIC dedicated to host traffic (log scales).",
		Panels: []*plot.Plot{p1, p2}, Cols: 1}}, nil
}

func (r *x7Result) Notes() []string {
	var tp, rpj []float64
	var better, worse []string
	for i, name := range r.apps {
		e, h := r.pts[i][0], r.pts[i][1]
		x := ratio(e.Throughput, h.Throughput)
		tp, rpj = append(tp, x), append(rpj, ratio(e.RPJ, h.RPJ))
		switch {
		case x > 1.02:
			better = append(better, fmt.Sprintf("%s %.2fx", name, x))
		case x < 0.98:
			worse = append(worse, fmt.Sprintf("%s %.2fx", name, x))
		}
	}
	notes := []string{fmt.Sprintf("ECMP over the SmartNICs' ports against a dedicated host NIC: %.2fx the throughput and %.2fx the RPJ (geometric means over the applications).", geomean(tp), geomean(rpj))}
	if len(better) > 0 {
		notes = append(notes, "ECMP serves more for "+joinList(better)+": the host's traffic is no longer confined to one 10 GbE port, and all four SmartNICs run microservices.")
	}
	if len(worse) > 0 {
		notes = append(notes, "ECMP serves less for "+joinList(worse)+": every host packet costs a SmartNIC core in the traffic manager, competing with the SmartNIC's own microservices.")
	}
	return notes
}
