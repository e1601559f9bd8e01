// Package services gathers the 16 microservices E3 ships (Table 2 of the
// paper), one package each under this directory, into a [service.Registry].
package services

import (
	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/apigw"
	"github.com/e3-platform/e3/services/bayes"
	"github.com/e3-platform/e3/services/bm25"
	"github.com/e3-platform/e3/services/count"
	"github.com/e3-platform/e3/services/ddos"
	"github.com/e3-platform/e3/services/ema"
	"github.com/e3-platform/e3/services/flowmon"
	"github.com/e3-platform/e3/services/ipsec"
	"github.com/e3-platform/e3/services/knn"
	"github.com/e3-platform/e3/services/kvs"
	"github.com/e3-platform/e3/services/natv4"
	"github.com/e3-platform/e3/services/nids"
	"github.com/e3-platform/e3/services/recommend"
	"github.com/e3-platform/e3/services/spike"
	"github.com/e3-platform/e3/services/sql"
	"github.com/e3-platform/e3/services/topk"
)

// Descriptors returns the descriptors of the 16 shipped microservices in the
// order of Table 2.
func Descriptors() []service.Descriptor {
	return []service.Descriptor{
		ipsec.Descriptor,
		bm25.Descriptor,
		natv4.Descriptor,
		nids.Descriptor,
		count.Descriptor,
		ema.Descriptor,
		kvs.Descriptor,
		flowmon.Descriptor,
		ddos.Descriptor,
		recommend.Descriptor,
		knn.Descriptor,
		spike.Descriptor,
		bayes.Descriptor,
		apigw.Descriptor,
		topk.Descriptor,
		sql.Descriptor,
	}
}

// Registry returns a registry of the 16 microservices plus the echo service
// used by tests.
func Registry() *service.Registry {
	r, err := service.NewRegistry(append(Descriptors(), service.Echo)...)
	if err != nil {
		panic(err) // the list above is fixed; a duplicate is a programming error
	}
	return r
}
