// Command e3 is the E3 microservice platform: the emulated cluster (e3 run),
// the simulator (e3 sim), the placement tools (e3 place) and, deployed, the
// controller and node agents.
package main

import (
	"os"

	"github.com/e3-platform/e3/internal/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr)) }
