package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runSim(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(append([]string{"sim"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestSimList(t *testing.T) {
	out, errs, code := runSim(t, "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, id := range []string{"X1 ", "X4 ", "X9 ", "X12 "} {
		if !strings.Contains(out, id) {
			t.Errorf("list lacks %q:\n%s", id, out)
		}
	}
	if !strings.Contains(out, "Figure 5") || !strings.Contains(out, "Table 6") {
		t.Errorf("list names no paper figure or table:\n%s", out)
	}
}

func TestSimOneWithFiles(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := runSim(t, "X3", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "| mechanism |") || !strings.Contains(out, "SmartNIC-host via PCIe") {
		t.Errorf("no markdown table on stdout:\n%s", out)
	}
	for _, f := range []string{"X3.csv", "X3.json", "X3.png", "X3.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestSimJSON(t *testing.T) {
	out, errs, code := runSim(t, "X9", "--json", "--quick", "--seed", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var v map[string]map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if k, ok := v["NFV-FIN"]["2xType2-SmartNIC"]["krpj"].(float64); !ok || !(k > 0) {
		t.Errorf("X9 JSON NFV-FIN/2xType2-SmartNIC krpj = %v", v["NFV-FIN"]["2xType2-SmartNIC"]["krpj"])
	}
}

func TestSimBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"X13"}, "known: X1, X2"},
		{[]string{"all", "--json"}, "--json applies to one experiment"},
		{[]string{"X3", "--report", "r.md"}, "--report applies"},
		{[]string{}, "accepts 1 arg"},
	} {
		_, errs, code := runSim(t, c.args...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("e3 sim %v: exit %d, stderr %q; want an error containing %q", c.args, code, errs, c.want)
		}
	}
}

// TestSimAll runs every experiment at the quick scale and checks that the
// report is written next to the files and links to them.
func TestSimAll(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every experiment (quick scale); skipped with -short")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "results")
	_, errs, code := runSim(t, "all", "--quick", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(filepath.Join(dir, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	rep := string(b)
	for _, s := range []string{"e3 sim all --out " + out + " --quick", "## X1:", "## X12:", "](results/X4.png)", "[X9-cost.csv](results/X9-cost.csv)"} {
		if !strings.Contains(rep, s) {
			t.Errorf("RESULTS.md lacks %q", s)
		}
	}
	for _, f := range []string{"X1.csv", "X4.json", "X9-cost.svg", "X10.png", "X12.csv"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
