package natv4

import "github.com/e3-platform/e3/service"

// Descriptor describes the natv4 microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "natv4",
	Summary:      "IPv4 NAT with DIR-24-8-BASIC longest-prefix match",
	Family:       service.FamilyPacket,
	Stateful:     false,
	Migratable:   true,
	Accelerators: 0,
	MemoryMB:     160,
}
