package kvs

import "github.com/e3-platform/e3/service"

// Descriptor describes the kvs microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "kvs",
	Summary:      "hash-table key-value store (GET, SET, DELETE)",
	Family:       service.FamilyEvent,
	Stateful:     true,
	Migratable:   true,
	Accelerators: service.AccelAtomics,
	MemoryMB:     1024,
	New:          New,
	NewGenerator: NewGenerator,
}
