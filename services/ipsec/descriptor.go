package ipsec

import (
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/packet"
)

// Descriptor describes the ipsec microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "ipsec",
	Summary:      "ESP tunnel mode: AES-128-CBC + HMAC-SHA1-96 after NAT",
	Family:       service.FamilyPacket,
	Stateful:     false,
	Migratable:   true,
	Accelerators: service.AccelCrypto,
	MemoryMB:     64,
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
