package ipsec

import "github.com/e3-platform/e3/service"

// Descriptor describes the ipsec microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "ipsec",
	Summary:      "ESP tunnel mode: AES-128-CBC + HMAC-SHA1-96 after NAT",
	Family:       service.FamilyPacket,
	Stateful:     false,
	Migratable:   true,
	Accelerators: service.AccelCrypto,
	MemoryMB:     64,
}
