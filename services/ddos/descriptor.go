package ddos

import (
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// Descriptor describes the ddos microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "ddos",
	Summary:      "entropy-based DDoS detection over sliding windows",
	Family:       service.FamilyPacket,
	Stateful:     true,
	Migratable:   true,
	Accelerators: 0,
	MemoryMB:     64,
	New: func(env service.Env) (service.Handler, error) {
		cfg, err := ParseConfig(env.Config)
		if err != nil {
			return nil, err
		}
		return New(cfg, env.Store)
	},
	// Normal traffic: 1024 flows, uniformly popular, each from its own
	// source address.
	NewGenerator: func(seed int64, size int) service.Generator {
		return packet.NewGenerator(packet.GenConfig{Seed: seed, Size: size})
	},
}
