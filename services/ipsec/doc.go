// Package ipsec is the ipsec microservice of E3: ESP tunnel mode: AES-128-CBC + HMAC-SHA1-96 after NAT.
package ipsec
