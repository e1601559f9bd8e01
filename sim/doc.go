// Package sim is E3's discrete-event simulator (placeholder comment; the
// full description follows in this package's doc.go).
package sim
