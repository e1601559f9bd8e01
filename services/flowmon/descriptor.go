package flowmon

import (
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// Descriptor describes the flowmon microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "flowmon",
	Summary:      "per-flow counting with a count-min sketch",
	Family:       service.FamilyPacket,
	Stateful:     true,
	Migratable:   true,
	Accelerators: service.AccelAtomics,
	MemoryMB:     128,
	New: func(env service.Env) (service.Handler, error) {
		cfg, err := ParseConfig(env.Config)
		if err != nil {
			return nil, err
		}
		return New(cfg, env.Store)
	},
	NewGenerator: NewGenerator,
}

// GenFlows and GenZipf shape the generator's traffic: flow sizes on the
// Internet are heavy-tailed, and a Zipf exponent near 1 over a few
// thousand flows gives the handful of heavy hitters a monitor exists to
// find (the top flow carries about 11% of the packets).
const (
	GenFlows = 4096
	GenZipf  = 1.0
)

// NewGenerator returns the flowmon request generator: packets of size
// bytes from GenFlows flows with Zipf(GenZipf) popularity.
func NewGenerator(seed int64, size int) service.Generator {
	return packet.NewGenerator(packet.GenConfig{Seed: seed, Size: size, Flows: GenFlows, Zipf: GenZipf})
}
