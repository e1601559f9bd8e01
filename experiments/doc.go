// Package experiments defines the experiments of the E3 paper's evaluation,
// X1 to X12, once each with its parameters, and runs them on the
// simulator (package sim) with the placement (placement/hcm,
// placement/annealing, placement/ilp) and orchestrator (package
// orchestrator) code the controller runs. `e3 sim` is its command line;
// docs/experiments.md describes every experiment and its JSON, and
// docs/MODEL.md ("Experiments") every parameter the experiments add, with
// its source.
//
// # Use
//
//	e, _ := experiments.ByID("X4")
//	res, err := e.Run(experiments.Options{Seed: 1})
//	files, err := experiments.Files(e, res)   // X4.csv, X4-classes.csv, X4.json, X4.png, X4.svg
//	experiments.WriteMarkdown(os.Stdout, e, res)
//
// Each experiment's result renders its tables (CSV and markdown), its
// JSON and its figures (gonum/plot, PNG and SVG) as pure functions of the
// result, and computes notes from its numbers: the headline, and where the
// model disagrees with what the paper's text says. [WriteReport] puts every
// experiment's derivation, figures, tables and notes into RESULTS.md.
//
// # Inputs and honesty
//
// Inputs are Table 1 and Table 4 (package hwmodel), the topology and the
// algorithms. Nothing is fitted to a published result. Where the model
// needs something the paper does not give (a request-size model for X2,
// a kernel stack's latency for X3, a power budget for X12), the parameter
// is derived from those inputs or from our own measurements and written
// down in docs/MODEL.md.
//
// # Determinism and speed
//
// The same [Options].Seed gives the same files, byte for byte, except for
// the experiments marked Measured: X10 and X11 time code on the machine,
// and V1 runs the emulated cluster in real time. X8's ILP stops cbc by a
// node limit, not a time limit, so that its answer does not depend on the
// machine either.
//
// # Validation
//
// V1 ([Validations], run by `e3 sim all` after X1..X12) compares the
// simulator with the emulated cluster of `e3 run` (package cluster) on the
// same placement, knee rule and power model, and
// TestValidationAgreesWithSimulator checks that they agree within
// [V1Tolerance]. The simulations of one experiment run in parallel, one per core
// ([Options].Workers); each writes its own slot of the result, so the
// schedule does not change the output. [Options].Quick runs a reduced
// version of every experiment for tests.
package experiments
