// Package ema is the ema microservice of E3: exponential moving average per stream.
package ema
