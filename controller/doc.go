// Package controller is E3's replicated resource controller.
package controller
