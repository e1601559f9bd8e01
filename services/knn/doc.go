// Package knn is the knn microservice of E3: k-nearest-neighbours classifier.
package knn
