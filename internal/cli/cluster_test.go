package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runClusterCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestClusterShow2xType2(t *testing.T) {
	out, errs, code := runClusterCmd(t, "cluster", "show", "2xType2-SmartNIC", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var c clusterJSON
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Servers) != 2 || c.CostUSD != 13500 || c.IdleW != 290 || c.PeakW != 504 || c.BandwidthGbps != 80 {
		t.Fatalf("2xType2-SmartNIC: %d servers, $%v, idle %v, peak %v, %v Gb/s", len(c.Servers), c.CostUSD, c.IdleW, c.PeakW, c.BandwidthGbps)
	}
	for _, s := range c.Servers {
		if s.Host.Cores != 16 || len(s.SmartNICs) != 4 {
			t.Fatalf("server %s: host %d cores, %d SmartNICs", s.Name, s.Host.Cores, len(s.SmartNICs))
		}
		for _, n := range s.SmartNICs {
			if n.Cores != 12 || n.MemoryGB != 4 {
				t.Fatalf("SmartNIC %+v", n)
			}
		}
	}
}

func TestClusterListAndErrors(t *testing.T) {
	out, _, code := runClusterCmd(t, "cluster", "list")
	if code != 0 || !strings.Contains(out, "3xType1-SmartNIC") || !strings.Contains(out, "1xSuperBeefy") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	_, errs, code := runClusterCmd(t, "cluster", "show", "3xToaster")
	if code == 0 || !strings.Contains(errs, "3xToaster") {
		t.Fatalf("unknown cluster: exit %d, stderr %q", code, errs)
	}
}
