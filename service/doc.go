// Package service is the microservice SDK of E3.
//
// A microservice is a [Handler] plus a [Descriptor] that tells the platform
// what it needs to know to place and move it: whether it keeps state, whether
// that state can migrate, which SmartNIC accelerators it would use, which
// message family it consumes and how much memory one instance takes.
//
// Handlers run to completion on the core that picked the message up. The same
// handler value may be called from several cores at once, so a handler keeps
// per-call scratch in the [Context] and guards its own mutable state. A
// handler answers the client with [Context.Respond] and passes work along the
// application DAG with [Context.Emit]; it reports a malformed request by
// returning an error, which the runtime turns into an error reply.
//
// Messages come in two families. Network-function services consume raw IPv4
// packets ([FamilyPacket]); analytics and IoT services consume the [Event]
// record defined here ([FamilyEvent]), so that any event service can follow
// any other in a DAG and each reads the fields it cares about.
//
// A [Registry] maps names to descriptors; package
// github.com/e3-platform/e3/services builds the registry of the 16
// microservices E3 ships.
package service
