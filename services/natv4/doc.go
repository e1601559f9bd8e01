// Package natv4 is the natv4 microservice of E3: IPv4 NAT with DIR-24-8-BASIC longest-prefix match.
package natv4
