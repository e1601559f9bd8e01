package apigw

import "github.com/e3-platform/e3/service"

// Descriptor describes the apigw microservice to the platform.
var Descriptor = service.Descriptor{
	Name:         "apigw",
	Summary:      "API gateway: token-bucket rate limiter and HMAC token authentication",
	Family:       service.FamilyEvent,
	Stateful:     true,
	Migratable:   true,
	Accelerators: service.AccelCrypto | service.AccelFloat64,
	MemoryMB:     64,
	New:          New,
	NewGenerator: NewGenerator,
}
