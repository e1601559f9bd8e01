package topology

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// DefaultHostLinkGbps is the PCIe bandwidth between a SmartNIC and its host
// when a [SmartNICSpec] leaves HostLinkGbps zero. The paper gives none; the
// LiquidIO II sits in a PCIe 3.0 x8 slot, whose usable rate is
// 8 GT/s x 8 lanes x 128/130 encoding = 63 Gb/s in each direction.
const DefaultHostLinkGbps = 63.0

// MaxSmartNICs bounds the SmartNICs of one server. Real servers carry a
// handful (the paper's Type2 has 4); the bound keeps node names short and
// catches a spec that was built from garbage.
const MaxSmartNICs = 64

// ServerSpec describes one machine model: its host processor, the plain NIC
// ports of the host, and its SmartNICs. The topology stores each distinct
// spec once, however many servers use it, so a spec may be as rich as the
// caller likes. Machine catalogues (Table 4 of the paper) live in hwmodel,
// which hands ServerSpec values to the builders here.
type ServerSpec struct {
	// Model names the machine model, e.g. "Type2-SmartNIC". It is carried
	// through so that power and cost models can find their profile.
	Model string
	// Cores and MemoryMB describe the host processor. Both must be > 0.
	Cores    int
	MemoryMB int
	// NICPorts is the number of plain (not smart) NIC ports wired to the
	// ToR, and NICGbps the rate of each. A server with plain ports is
	// reached at its host through them only; a server without them is
	// reached at its host through its SmartNICs' ports (see
	// [Topology.HostPorts]).
	NICPorts int
	NICGbps  float64
	// SmartNICs lists the SmartNICs plugged into the server, in slot order.
	SmartNICs []SmartNICSpec
}

// SmartNICSpec describes one SmartNIC: an independent compute node with its
// own cores, memory and network ports, joined to its host by a PCIe link.
type SmartNICSpec struct {
	// Cores and MemoryMB must be > 0.
	Cores    int
	MemoryMB int
	// Ports (>= 1) network ports of PortGbps (> 0) each, all wired to the
	// rack's ToR switch.
	Ports    int
	PortGbps float64
	// HostLinkGbps is the PCIe bandwidth to the host; 0 means
	// [DefaultHostLinkGbps].
	HostLinkGbps float64
}

// validate checks a spec without copying it; a valid spec is stored with
// [ServerSpec.filled].
func (s *ServerSpec) validate() error {
	if s.Cores <= 0 || s.Cores > math.MaxInt32 {
		return fmt.Errorf("host Cores = %d, want 1..%d", s.Cores, math.MaxInt32)
	}
	if s.MemoryMB <= 0 || s.MemoryMB > math.MaxInt32 {
		return fmt.Errorf("host MemoryMB = %d, want 1..%d", s.MemoryMB, math.MaxInt32)
	}
	if s.NICPorts < 0 || s.NICPorts > math.MaxInt16 {
		return fmt.Errorf("NICPorts = %d, want 0..%d", s.NICPorts, math.MaxInt16)
	}
	if s.NICPorts > 0 && !positive(s.NICGbps) {
		return fmt.Errorf("NICGbps = %v, want > 0 when NICPorts = %d", s.NICGbps, s.NICPorts)
	}
	if s.NICPorts == 0 && (s.NICGbps < 0 || math.IsNaN(s.NICGbps)) {
		return fmt.Errorf("NICGbps = %v, want >= 0", s.NICGbps)
	}
	if len(s.SmartNICs) > MaxSmartNICs {
		return fmt.Errorf("%d SmartNICs, want at most %d", len(s.SmartNICs), MaxSmartNICs)
	}
	if s.NICPorts == 0 && len(s.SmartNICs) == 0 {
		return fmt.Errorf("no network port: want NICPorts > 0 or at least one SmartNIC")
	}
	for i := range s.SmartNICs {
		n := &s.SmartNICs[i]
		switch {
		case n.Cores <= 0 || n.Cores > math.MaxInt32:
			return fmt.Errorf("SmartNICs[%d].Cores = %d, want 1..%d", i, n.Cores, math.MaxInt32)
		case n.MemoryMB <= 0 || n.MemoryMB > math.MaxInt32:
			return fmt.Errorf("SmartNICs[%d].MemoryMB = %d, want 1..%d", i, n.MemoryMB, math.MaxInt32)
		case n.Ports <= 0 || n.Ports > math.MaxInt16:
			return fmt.Errorf("SmartNICs[%d].Ports = %d, want 1..%d", i, n.Ports, math.MaxInt16)
		case !positive(n.PortGbps):
			return fmt.Errorf("SmartNICs[%d].PortGbps = %v, want > 0", i, n.PortGbps)
		case n.HostLinkGbps < 0 || math.IsNaN(n.HostLinkGbps) || math.IsInf(n.HostLinkGbps, 0):
			return fmt.Errorf("SmartNICs[%d].HostLinkGbps = %v, want >= 0 (0 means %v)", i, n.HostLinkGbps, DefaultHostLinkGbps)
		}
	}
	return nil
}

// filled returns a copy of a valid spec with defaults filled in that
// shares nothing with s, so later edits by the caller do not reach into a
// built topology.
func (s *ServerSpec) filled() ServerSpec {
	out := *s
	out.SmartNICs = slices.Clone(s.SmartNICs)
	for i := range out.SmartNICs {
		out.SmartNICs[i].HostLinkGbps = out.SmartNICs[i].hostLinkGbps()
	}
	return out
}

// hostLinkGbps is HostLinkGbps with its default applied.
func (n *SmartNICSpec) hostLinkGbps() float64 {
	if n.HostLinkGbps == 0 {
		return DefaultHostLinkGbps
	}
	return n.HostLinkGbps
}

// positive reports whether x is a finite number above zero.
func positive(x float64) bool { return x > 0 && !math.IsInf(x, 0) }

// equal reports whether the stored spec s and a valid spec o, whose
// defaults may not be filled in yet, describe the same machine.
func (s *ServerSpec) equal(o *ServerSpec) bool {
	if s.Model != o.Model || s.Cores != o.Cores || s.MemoryMB != o.MemoryMB ||
		s.NICPorts != o.NICPorts || s.NICGbps != o.NICGbps || len(s.SmartNICs) != len(o.SmartNICs) {
		return false
	}
	for i := range s.SmartNICs {
		a, b := &s.SmartNICs[i], &o.SmartNICs[i]
		if a.Cores != b.Cores || a.MemoryMB != b.MemoryMB || a.Ports != b.Ports ||
			a.PortGbps != b.PortGbps || a.hostLinkGbps() != b.hostLinkGbps() {
			return false
		}
	}
	return true
}

// key encodes a valid spec, defaults applied, as a map key for
// de-duplication.
func (s *ServerSpec) key() string {
	b := make([]byte, 0, 64+32*len(s.SmartNICs))
	b = strconv.AppendQuote(b, s.Model)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(s.Cores), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(s.MemoryMB), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(s.NICPorts), 10)
	b = append(b, ',')
	b = strconv.AppendFloat(b, s.NICGbps, 'g', -1, 64)
	for i := range s.SmartNICs {
		n := &s.SmartNICs[i]
		b = append(b, '|')
		b = strconv.AppendInt(b, int64(n.Cores), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(n.MemoryMB), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(n.Ports), 10)
		b = append(b, ',')
		b = strconv.AppendFloat(b, n.PortGbps, 'g', -1, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, n.hostLinkGbps(), 'g', -1, 64)
	}
	return string(b)
}
