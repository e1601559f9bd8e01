package count

import "github.com/e3-platform/e3/service"

// Descriptor describes the count microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "count",
	Summary:      "item frequency counting with a bitmap",
	Family:       service.FamilyEvent,
	Stateful:     true,
	Migratable:   true,
	Accelerators: service.AccelAtomics,
	MemoryMB:     128,
	New:          New,
	NewGenerator: NewGenerator,
}
