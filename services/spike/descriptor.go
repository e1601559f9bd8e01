package spike

import "github.com/e3-platform/e3/service"

// Descriptor describes the spike microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "spike",
	Summary:      "z-score spike detection per stream",
	Family:       service.FamilyEvent,
	Stateful:     true,
	Migratable:   true,
	Accelerators: service.AccelFloat32,
	MemoryMB:     64,
	New:          New,
	NewGenerator: NewGenerator,
}
