// Package topk is the topk microservice of E3: top-K ranker over a window of scored items.
package topk
