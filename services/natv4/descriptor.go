package natv4

import (
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// Descriptor describes the natv4 microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "natv4",
	Summary:      "IPv4 NAT with DIR-24-8-BASIC longest-prefix match",
	Family:       service.FamilyPacket,
	Stateful:     false,
	Migratable:   true,
	Accelerators: 0,
	MemoryMB:     160,
	New: func(env service.Env) (service.Handler, error) {
		cfg, err := ParseConfig(env.Config)
		if err != nil {
			return nil, err
		}
		return New(cfg)
	},
	NewGenerator: func(seed int64, size int) service.Generator {
		return packet.NewGenerator(packet.GenConfig{Seed: seed, Size: size})
	},
}
