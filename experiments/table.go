package experiments

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Table is a table of an experiment's results, already formatted: the
// CSV file and the markdown table show the same cells.
type Table struct {
	// Name is "" for an experiment's main table (file X4.csv) and a short
	// suffix for the others (X4-classes.csv).
	Name string
	// Title is the caption.
	Title   string
	Columns []string
	Rows    [][]string
}

// add appends a row; cells are formatted with [cell].
func (t *Table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = cell(c)
	}
	t.Rows = append(t.Rows, row)
}

// cell formats a value for a table: floats to four significant digits
// (plain notation up to a billion), NaN as "n/a".
func cell(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return num(x, 4)
	case nil:
		return "n/a"
	}
	return fmt.Sprint(v)
}

// num formats x to digits significant digits without an exponent for
// magnitudes from 1e-4 to 1e9.
func num(x float64, digits int) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "n/a"
	case x == 0:
		return "0"
	}
	a := math.Abs(x)
	if a < 1e-4 || a >= 1e9 {
		return strconv.FormatFloat(x, 'g', digits, 64)
	}
	mag := int(math.Floor(math.Log10(a)))
	dec := max(digits-1-mag, 0)
	return strconv.FormatFloat(x, 'f', dec, 64)
}

// WriteCSV writes the table as CSV with a header row.
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(t.Columns); err != nil {
		return err
	}
	if err := cw.WriteAll(t.Rows); err != nil {
		return err
	}
	return cw.Error()
}

// WriteMarkdown writes the table as a GitHub-flavoured markdown table,
// numbers aligned right.
func (t *Table) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	b.WriteString("|")
	for _, c := range t.Columns {
		b.WriteString(" " + esc(c) + " |")
	}
	b.WriteString("\n|")
	for i := range t.Columns {
		if t.numeric(i) {
			b.WriteString(" ---: |")
		} else {
			b.WriteString(" --- |")
		}
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		b.WriteString("|")
		for _, c := range r {
			b.WriteString(" " + esc(c) + " |")
		}
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// numeric reports whether every cell of column i is a number or n/a.
func (t *Table) numeric(i int) bool {
	seen := false
	for _, r := range t.Rows {
		if i >= len(r) || r[i] == "n/a" || r[i] == "" {
			continue
		}
		if _, err := strconv.ParseFloat(r[i], 64); err != nil {
			return false
		}
		seen = true
	}
	return seen
}

// obj is a JSON object that keeps its keys in insertion order, so that
// the JSON of a result reads in the order of the experiment (applications
// in Table 3's order, sizes ascending) and is the same bytes every time.
type obj struct {
	keys []string
	vals []any
}

func newObj() *obj { return &obj{} }

// set appends key with value v (keys are not checked for duplicates; the
// callers build each object once).
func (o *obj) set(key string, v any) *obj {
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
	return o
}

// MarshalJSON writes the object with its keys in order.
func (o *obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(o.vals[i])
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// jnum rounds x to six significant digits for JSON, and turns NaN and
// infinities, which JSON cannot carry, into null.
func jnum(x float64) any {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	if x == 0 {
		return 0.0
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 6, 64), 64)
	return v
}

// MarshalIndent renders a result's JSON value as `e3 sim --json` prints
// it: two-space indentation and a final newline.
func MarshalIndent(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
