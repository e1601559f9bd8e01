package placement

import (
	"math"
	"testing"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/services"
)

// TestFromApp builds the problem of every built-in application and checks
// it against the application: instance for instance, link for link, all
// the offered requests entering at the sources, pins and backups kept.
func TestFromApp(t *testing.T) {
	c := clusterOf(t, "3xType1-SmartNIC")
	apps, err := app.Builtins(services.Registry())
	if err != nil {
		t.Fatal(err)
	}
	const offered = 2e5
	for _, a := range apps {
		p, err := FromApp(a, NewLoad(c), offered)
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		if p.NumInstances() != len(a.Instances()) || p.NumEdges() != len(a.Links()) {
			t.Errorf("%s: %d instances and %d edges, app has %d and %d", a.Name, p.NumInstances(), p.NumEdges(), len(a.Instances()), len(a.Links()))
		}
		var ingress float64
		for _, inst := range a.Instances() {
			in := p.Instance(InstanceID(inst.Index))
			ingress += in.IngressRPS
			if in.Name != inst.ID || in.IsBackup() == inst.IsPrimary() {
				t.Errorf("%s: instance %d is %q (backup %v), app has %q", a.Name, inst.Index, in.Name, in.IsBackup(), inst.ID)
			}
			if in.NonMigratable != !inst.Node.Descriptor.Migratable || in.MemoryMB != float64(inst.Node.Descriptor.MemoryMB) {
				t.Errorf("%s: %s: migratable/memory not carried over", a.Name, in.Name)
			}
			if !inst.IsPrimary() && (in.Primary != InstanceID(inst.Primary.Index) || in.RPS != 0) {
				t.Errorf("%s: backup %s: primary %d rps %v", a.Name, in.Name, in.Primary, in.RPS)
			}
			if math.Abs(in.RPS-offered*inst.Rate) > 1e-6 {
				t.Errorf("%s: %s: RPS %v, want %v", a.Name, in.Name, in.RPS, offered*inst.Rate)
			}
		}
		if math.Abs(ingress-offered) > 1e-6*offered {
			t.Errorf("%s: %v requests/s enter at the sources, want %v", a.Name, ingress, offered)
		}
		if len(p.Sources()) == 0 {
			t.Errorf("%s: no sources", a.Name)
		}
	}
	if _, err := FromApp(apps[0], NewLoad(c), math.NaN()); err == nil {
		t.Error("NaN load accepted")
	}
}
