package recommend

import "github.com/e3-platform/e3/service"

// Descriptor describes the recommend microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "recommend",
	Summary:      "collaborative-filtering recommendations",
	Family:       service.FamilyEvent,
	Stateful:     true,
	Migratable:   true,
	Accelerators: service.AccelPattern | service.AccelFloat32,
	MemoryMB:     512,
	New:          New,
	NewGenerator: NewGenerator,
}
