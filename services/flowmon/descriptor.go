package flowmon

import "github.com/e3-platform/e3/service"

// Descriptor describes the flowmon microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "flowmon",
	Summary:      "per-flow counting with a count-min sketch",
	Family:       service.FamilyPacket,
	Stateful:     true,
	Migratable:   true,
	Accelerators: service.AccelAtomics,
	MemoryMB:     128,
}
