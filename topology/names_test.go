package topology

import (
	"errors"
	"testing"
)

func TestNames(t *testing.T) {
	topo := mixed(t)
	for n := range topo.Nodes() {
		name := topo.Name(n)
		got, err := topo.Lookup(name)
		if err != nil || got != n {
			t.Errorf("Lookup(Name(%d) = %q) = %d, %v", n, name, got, err)
		}
	}
	if got := topo.Name(lookup(t, topo, "r2/s1/host")); got != "r2/s1/host" {
		t.Errorf("round trip r2/s1/host = %q", got)
	}
	if got := topo.ServerName(4); got != "r1/s1" {
		t.Errorf("ServerName(4) = %q, want r1/s1", got)
	}
}

func TestLookupErrors(t *testing.T) {
	topo := mixed(t) // racks r0 (3 servers), r1 (2), r2 (2)
	tests := []struct {
		name, part, reason string
	}{
		{"", "", "want three parts r<rack>/s<server>/host or r<rack>/s<server>/nic<slot>"},
		{"r0/s0", "", "want three parts r<rack>/s<server>/host or r<rack>/s<server>/nic<slot>"},
		{"r0/s0/host/x", "", "want three parts r<rack>/s<server>/host or r<rack>/s<server>/nic<slot>"},
		{"x0/s0/host", "x0", "want r<number>"},
		{"r/s0/host", "r", "want r<number>, the number is missing"},
		{"r01/s0/host", "r01", `number "01" has a leading zero`},
		{"r-1/s0/host", "r-1", `want r<number>, "-1" is not a decimal number`},
		{"r3/s0/host", "r3", "no such rack: the racks are r0..r2"},
		{"r99999999999/s0/host", "r99999999999", "number 99999999999 is too large"},
		{"r0/x/host", "x", "want s<number>"},
		{"r1/s2/host", "s2", "no such server: rack r1 holds s0..s1"},
		{"r0/s0/hosts", "hosts", "want host or nic<slot>: want nic<number>"},
		{"r0/s0/nic", "nic", "want host or nic<slot>: want nic<number>, the number is missing"},
		{"r0/s0/nic4", "nic4", "no such SmartNIC: server r0/s0 holds nic0..nic3"},
		{"r0/s1/nic0", "nic0", "no such SmartNIC: server r0/s1 has none"},
		{"r0/s0/nic1x", "nic1x", `want host or nic<slot>: want nic<number>, "1x" is not a decimal number`},
	}
	for _, tt := range tests {
		n, err := topo.Lookup(tt.name)
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("Lookup(%q) = %d, %v; want a *NameError", tt.name, n, err)
			continue
		}
		if n != -1 || ne.Name != tt.name || ne.Part != tt.part || ne.Reason != tt.reason {
			t.Errorf("Lookup(%q) = %d, %+v; want -1, part %q, reason %q", tt.name, n, *ne, tt.part, tt.reason)
		}
	}
	_, err := topo.Lookup("r0/s9/host")
	if want := `topology: node name "r0/s9/host": part "s9": no such server: rack r0 holds s0..s2`; err.Error() != want {
		t.Errorf("error text = %q, want %q", err, want)
	}
}

// FuzzLookup checks that no name makes Lookup panic and that every name it
// accepts is the canonical name of the node it returns.
func FuzzLookup(f *testing.F) {
	topo := mixed(f)
	for _, s := range []string{"r0/s0/host", "r2/s1/host", "r1/s1/nic2", "r0/s0/nic3", "r0//host", "///", "r0/s0/nic", "r4294967296/s0/host", "r+1/s0/host"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, err := topo.Lookup(name)
		if err != nil {
			var ne *NameError
			if !errors.As(err, &ne) || n != -1 {
				t.Fatalf("Lookup(%q) = %d, %v; want -1 and a *NameError", name, n, err)
			}
			return
		}
		if got := topo.Name(n); got != name {
			t.Fatalf("Lookup(%q) = %d whose name is %q", name, n, got)
		}
	})
}
