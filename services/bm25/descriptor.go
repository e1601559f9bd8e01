package bm25

import "github.com/e3-platform/e3/service"

// Descriptor describes the bm25 microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "bm25",
	Summary:      "Okapi BM25 search ranking over an inverted index",
	Family:       service.FamilyEvent,
	Stateful:     false,
	Migratable:   true,
	Accelerators: service.AccelFloat32,
	MemoryMB:     512,
	New:          New,
	NewGenerator: NewGenerator,
}
