package topk

import "github.com/e3-platform/e3/service"

// Descriptor describes the topk microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "topk",
	Summary:      "top-K ranker over a window of scored items",
	Family:       service.FamilyEvent,
	Stateful:     true,
	Migratable:   true,
	Accelerators: 0,
	MemoryMB:     128,
	New:          New,
	NewGenerator: NewGenerator,
}
