package knn

import "github.com/e3-platform/e3/service"

// Descriptor describes the knn microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "knn",
	Summary:      "k-nearest-neighbours classifier",
	Family:       service.FamilyEvent,
	Stateful:     false,
	Migratable:   true,
	Accelerators: service.AccelFloat32,
	MemoryMB:     256,
	New:          New,
	NewGenerator: NewGenerator,
}
