package msbench

import (
	"errors"
	"testing"
	"time"

	"github.com/e3-platform/e3/service"
)

func TestRunEcho(t *testing.T) {
	r, err := Run(&service.Echo, Options{Size: 128, Duration: 20 * time.Millisecond, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 1000 || r.RPSPerCore <= 0 || r.AvgUs <= 0 || r.P99Us < r.AvgUs/10 {
		t.Fatalf("implausible result %+v", r)
	}
	if r.Errors != 0 {
		t.Fatalf("%d errors from echo", r.Errors)
	}
	if r.PaperRPSPerCore != 0 {
		t.Fatalf("echo has no Table 1 row but got paper figure %v", r.PaperRPSPerCore)
	}
}

func TestRunRejects(t *testing.T) {
	if _, err := Run(&service.Descriptor{Name: "x", Family: service.FamilyEvent}, Options{}); !errors.Is(err, ErrNotImplemented) {
		t.Fatalf("err %v, want ErrNotImplemented", err)
	}
	if _, err := Run(&service.Echo, Options{Size: -1}); err == nil {
		t.Fatal("negative size accepted")
	}
}
