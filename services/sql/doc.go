// Package sql is the sql microservice of E3: in-memory SQL database of sensor readings.
package sql
