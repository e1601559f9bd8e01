package ddos

import "github.com/e3-platform/e3/service"

// Descriptor describes the ddos microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "ddos",
	Summary:      "entropy-based DDoS detection over sliding windows",
	Family:       service.FamilyPacket,
	Stateful:     true,
	Migratable:   true,
	Accelerators: 0,
	MemoryMB:     64,
}
