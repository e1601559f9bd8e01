package bayes

import "github.com/e3-platform/e3/service"

// Descriptor describes the bayes microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "bayes",
	Summary:      "naive Bayes (MAP) token classifier",
	Family:       service.FamilyEvent,
	Stateful:     false,
	Migratable:   true,
	Accelerators: service.AccelFloat32,
	MemoryMB:     256,
	New:          New,
	NewGenerator: NewGenerator,
}
