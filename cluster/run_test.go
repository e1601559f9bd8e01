package cluster

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/services"
)

func TestRunScratch(t *testing.T) {
	if os.Getenv("E3_SCRATCH") == "" {
		t.Skip()
	}
	a, err := app.Builtin(os.Getenv("E3_APP"), services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), RunConfig{App: a, Cluster: os.Getenv("E3_CLUSTER"), Seed: 1,
		Progress: func(w string, s, n int) { t.Logf("%d/%d %s", s, n, w) }})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("%s", b)
}
