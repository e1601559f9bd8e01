// Package recommend is the recommend microservice of E3: collaborative-filtering recommendations.
package recommend
