package app_test

import (
	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/service"
)

// testCatalog mirrors the metadata of services.Registry() (names, message
// families, migratability) without importing the implementations, so the
// app tests do not depend on every service building. The CLI tests load the
// built-ins against the real registry.
func testCatalog() *service.Registry {
	type d struct {
		name       string
		fam        service.Family
		migratable bool
	}
	P, E := service.FamilyPacket, service.FamilyEvent
	ds := []d{
		{"ipsec", P, true}, {"bm25", E, true}, {"natv4", P, true}, {"nids", P, true},
		{"count", E, true}, {"ema", E, true}, {"kvs", E, true}, {"flowmon", P, true},
		{"ddos", P, true}, {"recommend", E, true}, {"knn", E, true}, {"spike", E, true},
		{"bayes", E, true}, {"apigw", E, true}, {"topk", E, true}, {"sql", E, false},
		{"echo", E, true},
	}
	var out []service.Descriptor
	for _, x := range ds {
		out = append(out, service.Descriptor{Name: x.name, Family: x.fam, Migratable: x.migratable})
	}
	r, err := service.NewRegistry(out...)
	if err != nil {
		panic(err)
	}
	return r
}

var _ app.Catalog = testCatalog()
