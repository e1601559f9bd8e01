// Package ddos is the ddos microservice of E3: entropy-based DDoS detection over sliding windows.
package ddos
