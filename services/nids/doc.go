// Package nids is the nids microservice of E3: network intrusion detection: multi-pattern payload match.
package nids
