package app_test

import (
	"fmt"

	"github.com/e3-platform/e3/app"
)

func ExampleLoad() {
	spec := []byte(`name: shop
class: IOT
nodes:
  gw:    {service: apigw, shards: 2}
  carts: {service: kvs, shards: 4, backups: 1}
edges:
  - {from: gw, to: carts, policy: key_hash}
`)
	// Real callers pass services.Registry().
	a, err := app.Load("shop.yaml", spec, testCatalog())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, i := range a.Instances() {
		fmt.Printf("%-10s rate %.3f fan-out %d\n", i.ID, i.Rate, i.FanOut())
	}
	// Output:
	// gw.0       rate 0.500 fan-out 4
	// gw.1       rate 0.500 fan-out 4
	// carts.0    rate 0.250 fan-out 0
	// carts.0.b1 rate 0.000 fan-out 0
	// carts.1    rate 0.250 fan-out 0
	// carts.1.b1 rate 0.000 fan-out 0
	// carts.2    rate 0.250 fan-out 0
	// carts.2.b1 rate 0.000 fan-out 0
	// carts.3    rate 0.250 fan-out 0
	// carts.3.b1 rate 0.000 fan-out 0
}

func ExampleLoad_errors() {
	spec := []byte(`name: shop
class: IOT
nodes:
  gw:    {service: apigw, shards: 0}
  carts: {service: kvz}
edges:
  - {from: gw, to: cart}
`)
	_, err := app.Load("shop.yaml", spec, testCatalog())
	fmt.Println(err)
	// Output:
	// shop.yaml:4: nodes.gw.shards: 0 is out of range; a node has 1 to 4096 shards
	// shop.yaml:5: nodes.carts.service: unknown microservice "kvz"; did you mean "kvs"?
	// shop.yaml:7: edges[0].to: unknown node "cart"; did you mean "carts"?
}
