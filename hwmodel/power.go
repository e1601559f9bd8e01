package hwmodel

import (
	"fmt"
	"math"
)

// hostPowerFit is the host's active power in Table 1 as a function of
// active cores, W = uncore + perCore x cores, fitted by least squares over
// the kernel-bypass rows (cores 2, 4 and 12). The intercept is the share of
// the package (uncore, memory controller, fabric) that wakes as soon as any
// core works; without it the rows with 2 and 4 cores cannot be explained:
// KVS drew 33.6 W on 2 cores, 16.8 W a core, against 9.2 W a core on 12.
var hostUncore, hostPerCore = func() (a, b float64) {
	var n, sx, sy, sxx, sxy float64
	for _, c := range table1 {
		m := c.Stacks[HostBypass]
		x, y := float64(m.Cores), m.ActiveW
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	b = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	return (sy - b*sx) / n, b
}()

// nicPerCore is the SmartNIC's active power per core from Table 1: the mean
// over the 16 microservices spread over its 12 always-on cores.
var nicPerCore = func() float64 {
	var w float64
	for _, c := range table1 {
		w += c.Stacks[SmartNIC].ActiveW
	}
	return w / float64(len(table1)) / NICCores
}()

// nicCoreWeight is the active power of one busy SmartNIC core relative to
// the marginal power of one busy host core.
var nicCoreWeight = nicPerCore / hostPerCore

// NICCoreWeight returns the active power of a busy SmartNIC core relative
// to the marginal power of a busy host core, as derived from Table 1.
func NICCoreWeight() float64 { return nicCoreWeight }

// HostUncoreShare returns the uncore's active power relative to the
// marginal power of one host core, as derived from Table 1.
func HostUncoreShare() float64 { return hostUncore / hostPerCore }

// scale converts Table 1's relative figures into this machine's watts:
// the machine's dynamic range PeakW-IdleW, measured in Table 4, is shared
// between its uncore, host cores and SmartNIC cores in the proportions
// Table 1 gives.
func (m Machine) scale() float64 {
	units := float64(m.HostCores) + nicCoreWeight*float64(m.NICCoreTotal())
	if !m.HostCore.Wimpy() {
		units += HostUncoreShare()
	}
	return (m.PeakW - m.IdleW) / units
}

// HostCoreW is the wall power one more busy host core adds.
//
// The model keeps Table 4's measured envelope: idle power with nothing busy,
// peak power with every core busy. In between, power is the uncore's share
// (on a Xeon; it wakes with the first busy core) plus a share per busy core
// (host cores sleep when idle); SmartNIC cores add theirs. The shares are in
// the proportions Table 1 measured (see [HostUncoreShare] and
// [NICCoreWeight]). A Wimpy host is modelled without an uncore share: its
// dynamic range is small and Table 1 says nothing about it.
func (m Machine) HostCoreW() float64 { return m.scale() }

// HostUncoreW is the wall power a Xeon host's uncore adds once at least one
// core is busy; zero for a Wimpy host.
func (m Machine) HostUncoreW() float64 {
	if m.HostCore.Wimpy() {
		return 0
	}
	return m.scale() * HostUncoreShare()
}

// NICCoreW is the wall power one fully busy SmartNIC core adds above idle.
func (m Machine) NICCoreW() float64 { return m.scale() * nicCoreWeight }

// NICW is the wall power one fully busy SmartNIC adds above idle.
func (m Machine) NICW() float64 { return m.NICCoreW() * float64(m.NIC.Cores) }

// Power returns the modelled wall power of the server given the busy host
// cores (0..HostCores, fractional) and the busy cores of each SmartNIC
// (0..NIC.Cores each). Busy counts outside their range are an error. The
// uncore ramps in over the first busy core, so power is continuous in load.
func (m Machine) Power(hostBusy float64, nicBusy []float64) (float64, error) {
	if hostBusy < 0 || hostBusy > float64(m.HostCores)+1e-9 || math.IsNaN(hostBusy) {
		return 0, fmt.Errorf("hwmodel: %s: %v busy host cores out of range 0..%d", m.Name, hostBusy, m.HostCores)
	}
	if len(nicBusy) > m.NICs {
		return 0, fmt.Errorf("hwmodel: %s: busy cores for %d SmartNICs, it has %d", m.Name, len(nicBusy), m.NICs)
	}
	p := m.IdleW + hostBusy*m.HostCoreW() + min(hostBusy, 1)*m.HostUncoreW()
	for i, b := range nicBusy {
		if b < 0 || b > float64(m.NIC.Cores)+1e-9 || math.IsNaN(b) {
			return 0, fmt.Errorf("hwmodel: %s: SmartNIC %d: %v busy cores out of range 0..%d", m.Name, i, b, m.NIC.Cores)
		}
		p += b * m.NICCoreW()
	}
	return p, nil
}

// ElectricityUSDPerKWh is the electricity price of the cost-efficiency
// formula.
const ElectricityUSDPerKWh = 0.0733

// HoursPerYear is used to turn years of ownership into hours (365 days).
const HoursPerYear = 365 * 24

// CostEfficiency returns requests per dollar over years of ownership:
// throughput x T / (CAPEX + power x T x electricity price), with T in
// seconds for the requests and in hours for the energy bill.
func CostEfficiency(throughputRPS, powerW, capexUSD, years float64) float64 {
	hours := years * HoursPerYear
	cost := capexUSD + powerW/1000*hours*ElectricityUSDPerKWh
	if cost <= 0 {
		return 0
	}
	return throughputRPS * hours * 3600 / cost
}
