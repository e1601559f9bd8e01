// Package apigw is the apigw microservice of E3: API gateway: token-bucket rate limiter and HMAC token authentication.
package apigw
