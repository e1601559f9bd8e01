// Package transport moves E3 messages between DAG instances.
package transport
