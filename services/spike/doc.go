// Package spike is the spike microservice of E3: z-score spike detection per stream.
package spike
