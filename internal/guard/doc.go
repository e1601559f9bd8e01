// Package guard holds tests that keep the code base honest about its own
// rules: every package documents itself, and the pure packages (those that
// decide: placement, orchestration, applications, topology, hardware model)
// import no I/O, so that the controller, the simulator and the tests can run
// the very same code with injected time and randomness.
package guard
