package nids

import "github.com/e3-platform/e3/service"

// Descriptor describes the nids microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "nids",
	Summary:      "network intrusion detection: multi-pattern payload match",
	Family:       service.FamilyPacket,
	Stateful:     false,
	Migratable:   true,
	Accelerators: service.AccelPattern,
	MemoryMB:     256,
	New: func(env service.Env) (service.Handler, error) {
		cfg, err := ConfigFromEnv(env)
		if err != nil {
			return nil, err
		}
		return NewHandler(cfg)
	},
	NewGenerator: func(seed int64, size int) service.Generator {
		return NewGenerator(GenConfig{Seed: seed, Size: size})
	},
}
