// Package experiments defines the experiments of the E3 paper's evaluation
// (X1 to X12 of docs/experiments.md) once each, with their parameters, and
// runs them on the simulator (package sim) with the placement and
// orchestrator code the controller runs.
package experiments
