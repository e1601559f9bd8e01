package app

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed builtin/*.yaml
var builtinFS embed.FS

// builtinNames lists the applications of the paper's Table 3 in its order.
var builtinNames = []string{"NFV-FIN", "NFV-DIN", "NFV-IFID", "RTA-PTC", "RTA-SF", "RTA-SHM", "IOT-DH", "IOT-TS"}

// BuiltinNames returns the names of the built-in applications in the order of
// the paper's Table 3.
func BuiltinNames() []string { return append([]string(nil), builtinNames...) }

// canonical returns the Table 3 spelling of name, matched case-insensitively.
func canonical(name string) (string, bool) {
	for _, n := range builtinNames {
		if strings.EqualFold(n, name) {
			return n, true
		}
	}
	return "", false
}

// IsBuiltin reports whether name (in any case) names a built-in application.
func IsBuiltin(name string) bool {
	_, ok := canonical(name)
	return ok
}

// BuiltinSpec returns the YAML text of a built-in application, for users who
// want a starting point for their own spec, and the file name it is loaded
// under ("builtin/iot-ts.yaml").
func BuiltinSpec(name string) (file string, data []byte, err error) {
	c, ok := canonical(name)
	if !ok {
		return "", nil, fmt.Errorf("app: no built-in application %q (built-ins: %s)", name, strings.Join(builtinNames, ", "))
	}
	file = "builtin/" + strings.ToLower(c) + ".yaml"
	data, err = builtinFS.ReadFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("app: built-in %s: %w", c, err) // the embed pattern guarantees the file
	}
	return file, data, nil
}

// Builtin loads the built-in application called name, matched
// case-insensitively ("iot-ts" and "IOT-TS" are the same).
func Builtin(name string, cat Catalog) (*App, error) {
	file, data, err := BuiltinSpec(name)
	if err != nil {
		return nil, err
	}
	return Load(file, data, cat)
}

// Builtins loads every built-in application in Table 3 order.
func Builtins(cat Catalog) ([]*App, error) {
	out := make([]*App, 0, len(builtinNames))
	for _, n := range builtinNames {
		a, err := Builtin(n, cat)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
