package guard

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/e3-platform/e3"

type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Deps       []string
	GoFiles    []string
}

// list runs `go list -json` over the module. The go command is always
// present where tests run, so this needs nothing installed.
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var ps []pkg
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// TestPackageComments fails when a package of ours has no package comment.
func TestPackageComments(t *testing.T) {
	for _, p := range list(t, "./...") {
		if len(p.GoFiles) == 0 {
			continue
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package comment (add a doc.go)", p.ImportPath)
		}
	}
}

// pure lists the packages that must decide without doing I/O.
var pure = []string{"app", "topology", "hwmodel", "placement", "placement/hcm", "placement/annealing", "orchestrator"}

// forbidden are the imports a pure package may not depend on, directly or
// not. placement/ilp is not in the list: it runs cbc as a program by design.
var forbidden = []string{"net", "net/http", "os/exec",
	module + "/transport", module + "/runtime", module + "/controller", module + "/cluster", module + "/sim"}

func TestPurePackagesDoNoIO(t *testing.T) {
	have := map[string]pkg{}
	for _, p := range list(t, "-deps=false", "./...") {
		have[p.ImportPath] = p
	}
	checked := 0
	for _, rel := range pure {
		path := module + "/" + rel
		if _, ok := have[path]; !ok {
			continue // not written yet
		}
		checked++
		ps := list(t, "-deps", path)
		deps := map[string]bool{}
		for _, d := range ps {
			deps[d.ImportPath] = true
		}
		for _, f := range forbidden {
			if deps[f] {
				t.Errorf("%s depends on %s; pure packages take time, randomness and state as parameters", path, f)
			}
		}
	}
	if checked == 0 {
		t.Fatal("none of the pure packages exists; the guard checks nothing")
	}
}

// TestPurePackagesReadNoClock looks for wall-clock reads in the pure
// packages' own sources.
func TestPurePackagesReadNoClock(t *testing.T) {
	for _, rel := range pure {
		if _, err := os.Stat("../../" + rel); err != nil {
			continue // not written yet
		}
		ps := list(t, "./"+rel)
		for _, p := range ps {
			for _, f := range p.GoFiles {
				src, err := readFile("../../" + rel + "/" + f)
				if err != nil {
					t.Fatal(err)
				}
				for _, bad := range []string{"time.Now(", "time.Since(", "time.Sleep(", "rand.Seed(", "math/rand\"\n"} {
					if strings.Contains(src, bad) {
						t.Errorf("%s/%s uses %s; take now and a seeded *rand.Rand as parameters", rel, f, strings.TrimSpace(bad))
					}
				}
			}
		}
	}
}
