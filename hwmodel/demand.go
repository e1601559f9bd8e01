package hwmodel

import "fmt"

// Demand returns the seconds of one core of kind k that one 512 B request
// of service keeps busy.
//
// Table 1 gives throughput at peak and the cores used. On the host the
// demand is active cores / RPS with the kernel-bypass stack (E3's host data
// path); on the SmartNIC all 12 cores are active, so it is 12 / RPS. Other
// Xeon cores scale by clock frequency from the E5-2680 v3 Table 1 was
// measured on (equal work per cycle is assumed); a Wimpy CN6880 core is
// the same cnMIPS64 core at the same clock as the SmartNIC's and gets the
// SmartNIC figure. docs/MODEL.md discusses both assumptions.
func Demand(service string, k CoreKind) (float64, error) {
	c, ok := Lookup(service)
	if !ok {
		return 0, fmt.Errorf("hwmodel: no calibration for microservice %q", service)
	}
	if k == CnMIPS64 {
		m := c.Stacks[SmartNIC]
		return float64(m.Cores) / m.RPS, nil
	}
	m := c.Stacks[HostBypass]
	base := float64(m.Cores) / m.RPS
	return base * XeonE5v3.ClockGHz() / k.ClockGHz(), nil
}
