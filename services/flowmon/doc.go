// Package flowmon is the flowmon microservice of E3: per-flow counting with a count-min sketch.
package flowmon
