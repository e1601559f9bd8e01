package ema

import "github.com/e3-platform/e3/service"

// Descriptor describes the ema microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "ema",
	Summary:      "exponential moving average per stream",
	Family:       service.FamilyEvent,
	Stateful:     true,
	Migratable:   true,
	Accelerators: service.AccelAtomics | service.AccelFloat32,
	MemoryMB:     64,
	New:          New,
	NewGenerator: NewGenerator,
}
