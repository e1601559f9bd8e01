// Package kvs is the kvs microservice of E3: hash-table key-value store (GET, SET, DELETE).
package kvs
