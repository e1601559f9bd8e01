package hwmodel

import (
	"fmt"
	"math"
)

// nicCoreWeight is the active power of one busy SmartNIC core relative to
// one busy Xeon core, derived from Table 1: the mean SmartNIC active power
// spread over its 12 always-on cores, against the mean host active power
// per active core over the rows where the host used all 12 cores (rows with
// fewer cores also carry the uncore's share and would overstate a core).
var nicCoreWeight = func() float64 {
	var nicW, hostPerCore float64
	var nHost int
	for _, c := range table1 {
		nicW += c.Stacks[SmartNIC].ActiveW
		if m := c.Stacks[HostBypass]; m.Cores == 12 {
			hostPerCore += m.ActiveW / float64(m.Cores)
			nHost++
		}
	}
	nicW /= float64(len(table1))
	hostPerCore /= float64(nHost)
	return (nicW / NICCores) / hostPerCore
}()

// NICCoreWeight returns the active power of a busy SmartNIC core relative
// to a busy host core, as derived from Table 1.
func NICCoreWeight() float64 { return nicCoreWeight }

// coreUnits is the machine's dynamic power range in host-core units.
func (m Machine) coreUnits() float64 {
	return float64(m.HostCores) + nicCoreWeight*float64(m.NICCoreTotal())
}

// HostCoreW is the wall power one fully busy host core adds above idle.
//
// The model keeps Table 4's measured envelope: idle power with nothing busy,
// peak power with every core busy, and in between linear in busy cores
// (host cores sleep when idle, so an idle core adds nothing). The dynamic
// range PeakW-IdleW is shared between host and SmartNIC cores in the ratio
// [NICCoreWeight].
func (m Machine) HostCoreW() float64 { return (m.PeakW - m.IdleW) / m.coreUnits() }

// NICCoreW is the wall power one fully busy SmartNIC core adds above idle.
func (m Machine) NICCoreW() float64 { return m.HostCoreW() * nicCoreWeight }

// NICW is the wall power one fully busy SmartNIC adds above idle.
func (m Machine) NICW() float64 { return m.NICCoreW() * float64(m.NIC.Cores) }

// Power returns the modelled wall power of the server given the busy host
// cores (0..HostCores, fractional) and the busy cores of each SmartNIC
// (0..NIC.Cores each). Busy counts outside their range are an error.
func (m Machine) Power(hostBusy float64, nicBusy []float64) (float64, error) {
	if hostBusy < 0 || hostBusy > float64(m.HostCores)+1e-9 || math.IsNaN(hostBusy) {
		return 0, fmt.Errorf("hwmodel: %s: %v busy host cores out of range 0..%d", m.Name, hostBusy, m.HostCores)
	}
	if len(nicBusy) > m.NICs {
		return 0, fmt.Errorf("hwmodel: %s: busy cores for %d SmartNICs, it has %d", m.Name, len(nicBusy), m.NICs)
	}
	p := m.IdleW + hostBusy*m.HostCoreW()
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
