// Package bm25 is the bm25 microservice of E3: Okapi BM25 search ranking over an inverted index.
package bm25
