package app

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a spec. It prints as FILE:LINE: field:
// message so editors and CI logs can jump to it.
type Error struct {
	File  string // the name the spec was loaded under
	Line  int    // 1-based; 0 when the YAML parser gave no position
	Field string // path of the offending field, e.g. nodes.sql.shards; may be empty
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one spec, in line order. Load returns
// all of them at once so that one edit-validate round fixes a whole file.
type ErrorList []*Error

// Error joins the errors one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// sort orders the list by line, keeping the discovery order of errors on the
// same line.
func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Line < l[j].Line })
}
