package sql

import "github.com/e3-platform/e3/service"

// Descriptor describes the sql microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "sql",
	Summary:      "in-memory SQL database of sensor readings",
	Family:       service.FamilyEvent,
	Stateful:     true,
	Migratable:   false,
	Accelerators: 0,
	MemoryMB:     1024,
	New:          New,
	NewGenerator: NewGenerator,
}
