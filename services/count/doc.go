// Package count is the count microservice of E3: item frequency counting with a bitmap.
package count
