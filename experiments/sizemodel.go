package experiments

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"sync"

	"github.com/e3-platform/e3/hwmodel"
)

// sizeScalingJSON is the handler CPU time per request of our own
// microservices at each request size, measured once by
// experiments/internal/sizebench (the command is in the file).
//
//go:embed data/size_scaling.json
var sizeScalingJSON []byte

type sizeScaling struct {
	Command      string               `json:"command"`
	Method       string               `json:"method"`
	Machine      string               `json:"machine"`
	Go           string               `json:"go"`
	Sizes        []int                `json:"sizes"`
	NsPerRequest map[string][]float64 `json:"ns_per_request"`
}

// handlerLine is a least-squares line through one service's measured
// handler time per request against size: ns = A + B x bytes.
type handlerLine struct{ A, B float64 }

func (l handlerLine) at(bytes int) float64 { return l.A + l.B*float64(bytes) }

var sizeModelOnce = sync.OnceValues(func() (*sizeScaling, error) {
	var s sizeScaling
	if err := json.Unmarshal(sizeScalingJSON, &s); err != nil {
		return nil, fmt.Errorf("experiments: data/size_scaling.json: %w", err)
	}
	for svc, v := range s.NsPerRequest {
		if len(v) != len(s.Sizes) {
			return nil, fmt.Errorf("experiments: data/size_scaling.json: %s has %d figures for %d sizes", svc, len(v), len(s.Sizes))
		}
	}
	return &s, nil
})

// fitLine fits ns = A + B x size by least squares over the measured
// sizes. B is kept >= 0: a handler does not get cheaper with more bytes,
// and a negative slope could only be measurement noise.
func fitLine(sizes []int, ns []float64) handlerLine {
	var sx, sy, sxx, sxy float64
	n := float64(len(sizes))
	for i, s := range sizes {
		x := float64(s)
		sx += x
		sy += ns[i]
		sxx += x * x
		sxy += x * ns[i]
	}
	b := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	if !(b > 0) {
		return handlerLine{A: sy / n}
	}
	return handlerLine{A: (sy - b*sx) / n, B: b}
}

// packetPath returns the per-request core time of a request's packet path
// (receive, transmit, dispatch) on core kind k, which the size model
// keeps independent of the request size: the cheapest request Table 1
// shows on that kind of core. On the SmartNIC that is 12 cores over the
// highest SmartNIC throughput (the simulator reads the same figure as the
// firmware's packet path, sim.DefaultParams' TMDemand being half of it);
// on a host it is the lowest kernel-bypass cores/RPS (KVS's), scaled by
// clock like hwmodel.Demand.
func packetPath(k hwmodel.CoreKind) float64 {
	best := math.Inf(1)
	for _, c := range hwmodel.Table1() {
		d, err := hwmodel.Demand(c.Service, k)
		if err == nil {
			best = min(best, d)
		}
	}
	return best
}

// sizeDemand is X2's request-size model: the demand of Table 1 at 512 B,
// split into a size-independent packet path ([packetPath]) and the rest,
// the handler's work, which scales with the request size as our own
// implementation's measured handler time does (a least-squares line
// through data/size_scaling.json). Services not measured keep Table 1's
// demand at every size.
func sizeDemand(service string, k hwmodel.CoreKind, bytes int) (float64, error) {
	d, err := hwmodel.Demand(service, k)
	if err != nil {
		return 0, err
	}
	s, err := sizeModelOnce()
	if err != nil {
		return 0, err
	}
	ns, ok := s.NsPerRequest[service]
	if !ok || bytes == 512 {
		return d, nil
	}
	line := fitLine(s.Sizes, ns)
	p := packetPath(k)
	work := max(d-p, 0)
	return p + work*line.at(bytes)/line.at(512), nil
}
