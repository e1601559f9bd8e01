// Package bayes is the bayes microservice of E3: naive Bayes (MAP) token classifier.
package bayes
