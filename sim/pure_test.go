package sim

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestNoWallClock fails if the simulator's code reads the wall clock,
// sleeps or uses timers, or draws randomness other than from the run's
// seeded generators: virtual time and the seed must be all a run depends
// on. Test files are exempt (benchmarks read CPU time).
func TestNoWallClock(t *testing.T) {
	banned := map[string]bool{
		"time.Now": true, "time.Since": true, "time.Until": true, "time.Sleep": true,
		"time.After": true, "time.AfterFunc": true, "time.Tick": true, "time.NewTimer": true,
		"time.NewTicker": true,
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			switch p := strings.Trim(imp.Path.Value, `"`); p {
			case "math/rand", "crypto/rand", "os", "syscall":
				t.Errorf("%s imports %s", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && banned[x.Name+"."+sel.Sel.Name] {
				t.Errorf("%s: %s", fset.Position(sel.Pos()), x.Name+"."+sel.Sel.Name)
			}
			// math/rand/v2's top-level functions draw from a global,
			// randomly seeded source.
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "rand" && sel.Sel.Name != "Rand" &&
				sel.Sel.Name != "New" && sel.Sel.Name != "NewPCG" {
				t.Errorf("%s: rand.%s (use the run's seeded streams)", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked only %d files", checked)
	}
}
