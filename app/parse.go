package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// Limits on what a spec may ask for. They keep Load's time and memory
// bounded on any input (a spec is outside input) while leaving room far
// beyond the paper's applications, whose largest node has 24 shards.
const (
	MaxSpecBytes = 1 << 20 // size of the YAML text
	MaxShards    = 4096    // shards of one node
	MaxBackups   = 8       // backups per shard
	MaxInstances = 1 << 18 // instances of the whole application, backups included
	MaxLinks     = 1 << 21 // instance-level links of the whole application
)

// Defaults applied to fields a spec leaves out.
const (
	DefaultRequestSize = 512 // bytes; the request size of the paper's Table 1 runs
	DefaultKeySpace    = 1_000_000
	maxRequestSize     = 65507 // largest UDP payload: a request travels in one datagram
	maxNameLen         = 64
)

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// rawSpec is a spec as decoded, with the line of every field so that the
// semantic checks can point at it.
type rawSpec struct {
	name, class, description string
	nameLine, classLine      int
	nodes                    []*rawNode
	nodesLine                int
	edges                    []*rawEdge
	sources                  []rawRef
	sourcesSet               bool
	sourcesLine              int
	workload                 Workload
	workloadLine             int
	keySpaceLine             int
	mixLine                  int
	mixLines                 map[string]int
	mixOrder                 []string
}

type rawNode struct {
	name      string
	line      int
	field     string // "nodes.<name>"
	service   string
	pin       Pin
	pinSet    bool
	shards    int
	backups   int
	config    map[string]string
	lines     map[string]int // field name -> line of its value
	serviceOK bool           // service decoded; only then is it resolved
}

type rawEdge struct {
	field      string // "edges[i]"
	line       int
	from, to   string
	policy     Policy
	share      float64
	sameKey    bool
	lines      map[string]int
	endpointOK bool // from and to decoded
}

type rawRef struct {
	name string
	line int
}

type decoder struct {
	file        string
	errs        ErrorList
	nodeNames   []string // sorted, filled on first use by suggest
	suggestions int      // hints computed so far
}

func (d *decoder) add(line int, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// decode turns YAML text into a rawSpec, collecting every structural error.
// It returns nil when the text is not YAML at all.
func (d *decoder) decode(data []byte) *rawSpec {
	if len(data) > MaxSpecBytes {
		d.add(1, "", "spec is %d bytes; the limit is %d", len(data), MaxSpecBytes)
		return nil
	}
	if line, msg, bad := scanText(data); bad {
		d.add(line, "", "%s", msg)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.add(1, "", "spec is empty")
		} else {
			d.yamlError(err, data)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		line := extra.Line
		if len(extra.Content) > 0 {
			line = extra.Content[0].Line
		}
		d.add(line, "", "a spec is one YAML document; found a second one")
	} else if !errors.Is(err, io.EOF) {
		d.yamlError(err, data)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.add(1, "", "spec is empty")
			return nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		d.add(root.Line, "", "spec is empty")
		return nil
	}
	s := &rawSpec{workload: Workload{RequestSize: DefaultRequestSize, KeySpace: DefaultKeySpace}}
	fields, ok := d.mapping(root, "", "the spec")
	if !ok {
		return nil
	}
	seen := map[string]bool{}
	for _, f := range fields {
		seen[f.key] = true
		switch f.key {
		case "name":
			if v, ok := d.str(f.val, "name"); ok {
				s.name, s.nameLine = v, f.val.Line
				if !validName(v) {
					d.add(f.val.Line, "name", "%q is not a valid name: use letters, digits, '-' and '_', starting with a letter, at most %d characters", v, maxNameLen)
				}
			}
		case "class":
			if v, ok := d.str(f.val, "class"); ok {
				s.class, s.classLine = v, f.val.Line
				switch Class(v) {
				case ClassNFV, ClassRTA, ClassIOT:
				default:
					d.add(f.val.Line, "class", "%q is not a class; use NFV, RTA or IOT", v)
				}
			}
		case "description":
			if v, ok := d.str(f.val, "description"); ok {
				s.description = v
			}
		case "nodes":
			s.nodesLine = f.val.Line
			d.nodes(f.val, s)
		case "edges":
			d.edges(f.val, s)
		case "sources":
			s.sourcesSet, s.sourcesLine = true, f.val.Line
			items, ok := d.seq(f.val, "sources")
			if !ok {
				break
			}
			if len(items) == 0 {
				d.add(f.val.Line, "sources", "is empty; list at least one node, or leave sources out to use the nodes without incoming edges")
			}
			for i, it := range items {
				if v, ok := d.str(it, fmt.Sprintf("sources[%d]", i)); ok {
					s.sources = append(s.sources, rawRef{v, it.Line})
				}
			}
		case "workload":
			s.workloadLine = f.val.Line
			d.workload(f.val, s)
		default:
			d.unknown(f, "", []string{"name", "class", "description", "nodes", "edges", "sources", "workload"})
		}
	}
	line := root.Line
	if !seen["name"] {
		d.add(line, "name", "missing; every application needs a name")
	}
	if !seen["class"] {
		d.add(line, "class", "missing; use NFV, RTA or IOT")
	}
	if !seen["nodes"] {
		d.add(line, "nodes", "missing; an application needs at least one node")
	}
	return s
}

func (d *decoder) nodes(n *yaml.Node, s *rawSpec) {
	fields, ok := d.mapping(n, "nodes", "nodes (name: {service: ..., shards: ...})")
	if !ok {
		return
	}
	if len(fields) == 0 {
		d.add(n.Line, "nodes", "is empty; an application needs at least one node")
	}
	first := map[string]int{}
	for _, f := range fields {
		path := "nodes." + f.key
		if l, dup := first[f.key]; dup {
			d.add(f.keyLine, path, "duplicate node (first defined on line %d)", l)
			continue
		}
		first[f.key] = f.keyLine
		if !validName(f.key) {
			d.add(f.keyLine, path, "%q is not a valid node name: use letters, digits, '-' and '_', starting with a letter, at most %d characters (instance IDs append .shard)", f.key, maxNameLen)
		}
		rn := &rawNode{name: f.key, line: f.keyLine, field: path, shards: 1, lines: map[string]int{}}
		s.nodes = append(s.nodes, rn)
		body, ok := d.mapping(f.val, path, "a node (service: ..., shards: ...)")
		if !ok {
			continue
		}
		hasService := false
		for _, b := range body {
			fp := path + "." + b.key
			rn.lines[b.key] = b.val.Line
			switch b.key {
			case "service":
				if v, ok := d.str(b.val, fp); ok {
					rn.service, hasService = v, true
				}
			case "shards":
				if v, ok := d.int(b.val, fp); ok {
					rn.shards = v
					if v < 1 || v > MaxShards {
						d.add(b.val.Line, fp, "%d is out of range; a node has 1 to %d shards", v, MaxShards)
					}
				}
			case "backups":
				if v, ok := d.int(b.val, fp); ok {
					rn.backups = v
					if v < 0 || v > MaxBackups {
						d.add(b.val.Line, fp, "%d is out of range; a shard has 0 to %d backups", v, MaxBackups)
					}
				}
			case "pin":
				if v, ok := d.str(b.val, fp); ok {
					if p, ok := ParsePin(v); ok {
						rn.pin = p
					} else {
						d.add(b.val.Line, fp, "%q is not a pin; use host, smartnic or any", v)
					}
					rn.pinSet = true
				}
			case "config":
				rn.config = d.config(b.val, fp)
			default:
				d.unknown(b, path, []string{"service", "shards", "backups", "pin", "config"})
			}
		}
		if !hasService {
			if _, present := rn.lines["service"]; !present {
				d.add(rn.line, path+".service", "missing; name the microservice this node runs")
			}
		}
		rn.serviceOK = hasService
	}
}

func (d *decoder) config(n *yaml.Node, path string) map[string]string {
	fields, ok := d.mapping(n, path, "a map of strings")
	if !ok {
		return nil
	}
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		fp := path + "." + f.key
		if _, dup := m[f.key]; dup {
			d.add(f.keyLine, fp, "duplicate key")
			continue
		}
		if f.val.Kind != yaml.ScalarNode || f.val.ShortTag() == "!!null" {
			d.add(f.val.Line, fp, "want a scalar value (quote it to pass text), got %s", kindName(f.val))
			continue
		}
		m[f.key] = f.val.Value
	}
	return m
}

func (d *decoder) edges(n *yaml.Node, s *rawSpec) {
	items, ok := d.seq(n, "edges")
	if !ok {
		return
	}
	for i, it := range items {
		path := fmt.Sprintf("edges[%d]", i)
		re := &rawEdge{field: path, line: it.Line, policy: KeyHash, share: 1, lines: map[string]int{}}
		s.edges = append(s.edges, re)
		body, ok := d.mapping(it, path, "an edge (from: ..., to: ...)")
		if !ok {
			continue
		}
		var hasFrom, hasTo bool
		for _, b := range body {
			fp := path + "." + b.key
			re.lines[b.key] = b.val.Line
			switch b.key {
			case "from":
				re.from, hasFrom = d.str(b.val, fp)
			case "to":
				re.to, hasTo = d.str(b.val, fp)
			case "policy":
				if v, ok := d.str(b.val, fp); ok {
					if p, ok := ParsePolicy(v); ok {
						re.policy = p
					} else {
						d.add(b.val.Line, fp, "%q is not a policy; use key_hash, round_robin or broadcast", v)
					}
				}
			case "share":
				if v, ok := d.float(b.val, fp); ok {
					re.share = v
					if !(v > 0 && v <= 1) {
						d.add(b.val.Line, fp, "%s is out of range; a share is a fraction with 0 < share <= 1", b.val.Value)
					}
				}
			case "key":
				if v, ok := d.str(b.val, fp); ok {
					switch v {
					case "same":
						re.sameKey = true
					case "new":
					default:
						d.add(b.val.Line, fp, "%q is not a key mode; use same or new", v)
					}
				}
			default:
				d.unknown(b, path, []string{"from", "to", "policy", "share", "key"})
			}
		}
		if !hasFrom {
			if _, present := re.lines["from"]; !present {
				d.add(re.line, path+".from", "missing; name the node the edge leaves")
			}
		}
		if !hasTo {
			if _, present := re.lines["to"]; !present {
				d.add(re.line, path+".to", "missing; name the node the edge enters")
			}
		}
		re.endpointOK = hasFrom && hasTo
	}
}

func (d *decoder) workload(n *yaml.Node, s *rawSpec) {
	fields, ok := d.mapping(n, "workload", "the workload (request_size, key_space, mix)")
	if !ok {
		return
	}
	for _, f := range fields {
		fp := "workload." + f.key
		switch f.key {
		case "request_size":
			if v, ok := d.int(f.val, fp); ok {
				s.workload.RequestSize = v
				if v < 1 || v > maxRequestSize {
					d.add(f.val.Line, fp, "%d bytes is out of range; a request is 1 to %d bytes (one UDP datagram)", v, maxRequestSize)
				}
			}
		case "key_space":
			if v, ok := d.int(f.val, fp); ok {
				s.workload.KeySpace, s.keySpaceLine = v, f.val.Line
				if v < 1 {
					d.add(f.val.Line, fp, "%d is out of range; requests need at least one key", v)
				}
			}
		case "mix":
			s.mixLine = f.val.Line
			body, ok := d.mapping(f.val, fp, "a map from source node to weight")
			if !ok {
				break
			}
			s.workload.Mix = map[string]float64{}
			s.mixLines = map[string]int{}
			for _, b := range body {
				bp := fp + "." + b.key
				if _, dup := s.mixLines[b.key]; dup {
					d.add(b.keyLine, bp, "duplicate source in mix")
					continue
				}
				s.mixLines[b.key] = b.keyLine
				s.mixOrder = append(s.mixOrder, b.key)
				if v, ok := d.float(b.val, bp); ok {
					s.workload.Mix[b.key] = v
					if !(v > 0) || math.IsInf(v, 0) {
						d.add(b.val.Line, bp, "weight %s must be a positive number", b.val.Value)
					}
				}
			}
		default:
			d.unknown(f, "workload", []string{"request_size", "key_space", "mix"})
		}
	}
}

// pair is one key and value of a YAML mapping.
type pair struct {
	key     string
	keyLine int
	val     *yaml.Node
}

// mapping returns the key/value pairs of n, which must be a mapping with
// string keys. Duplicate keys are left to the caller where they mean
// something (duplicate node); elsewhere they are reported here.
func (d *decoder) mapping(n *yaml.Node, path, what string) ([]pair, bool) {
	if !d.notAlias(n, path) {
		return nil, false
	}
	if n.Kind != yaml.MappingNode {
		d.add(n.Line, path, "want %s, got %s", what, kindName(n))
		return nil, false
	}
	out := make([]pair, 0, len(n.Content)/2)
	seen := map[string]int{}
	dupOK := path == "nodes" || strings.HasSuffix(path, ".config") || strings.HasSuffix(path, ".mix")
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.notAlias(k, path) {
			continue // values are checked, with their own path, by whoever reads them
		}
		if k.Kind != yaml.ScalarNode {
			d.add(k.Line, path, "want a name as key, got %s", kindName(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			d.add(k.Line, path, "merge keys (<<) are not supported; write the fields out")
			continue
		}
		if l, dup := seen[k.Value]; dup && !dupOK {
			d.add(k.Line, join(path, k.Value), "duplicate field (first on line %d)", l)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{key: k.Value, keyLine: k.Line, val: v})
	}
	return out, true
}

func (d *decoder) seq(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	if !d.notAlias(n, path) {
		return nil, false
	}
	if n.Kind != yaml.SequenceNode {
		d.add(n.Line, path, "want a list, got %s", kindName(n))
		return nil, false
	}
	return n.Content, true
}

func (d *decoder) notAlias(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		d.add(n.Line, path, "aliases (*%s) are not supported; write the value out", n.Value)
		return false
	}
	return true
}

func (d *decoder) scalar(n *yaml.Node, path, want string) bool {
	if !d.notAlias(n, path) {
		return false
	}
	if n.Kind != yaml.ScalarNode {
		d.add(n.Line, path, "want %s, got %s", want, kindName(n))
		return false
	}
	if n.ShortTag() == "!!null" {
		d.add(n.Line, path, "missing value; want %s", want)
		return false
	}
	return true
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if !d.scalar(n, path, "a string") {
		return "", false
	}
	if t := n.ShortTag(); t != "!!str" {
		d.add(n.Line, path, "want a string, got %s %s (quote it if it is meant as text)", tagName(t), n.Value)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) int(n *yaml.Node, path string) (int, bool) {
	if !d.scalar(n, path, "an integer") {
		return 0, false
	}
	var v int64
	if n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		d.add(n.Line, path, "want an integer, got %q", n.Value)
		return 0, false
	}
	if v > math.MaxInt32 || v < math.MinInt32 {
		d.add(n.Line, path, "%s is out of range", n.Value)
		return 0, false
	}
	return int(v), true
}

func (d *decoder) float(n *yaml.Node, path string) (float64, bool) {
	if !d.scalar(n, path, "a number") {
		return 0, false
	}
	var v float64
	if t := n.ShortTag(); (t != "!!int" && t != "!!float") || n.Decode(&v) != nil {
		d.add(n.Line, path, "want a number, got %q", n.Value)
		return 0, false
	}
	return v, true
}

// unknown reports a field the schema does not have, suggesting the nearest
// known one.
func (d *decoder) unknown(f pair, path string, known []string) {
	msg := fmt.Sprintf("unknown field %q", f.key)
	if !d.spendSuggestion() {
		msg += fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
	} else if s := nearest(f.key, known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else {
		msg += fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
	}
	d.add(f.keyLine, join(path, f.key), "%s", msg)
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// yamlParserProblems are the messages of the YAML library's parser (as
// opposed to its scanner). The library prints the parser's 0-based line
// numbers as they are, and the scanner's plus one, so parser errors need one
// added; an error on the first line has no number at all.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlError converts a YAML syntax error into an Error with its 1-based line.
func (d *decoder) yamlError(err error, data []byte) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if yamlParserProblems[m[2]] {
			line++
		}
		d.add(line, "", "YAML: %s", m[2])
		return
	}
	line := 1
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line += bytes.Count(data[:i], []byte("\n"))
		}
	}
	d.add(line, "", "YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// scanText finds bytes YAML does not accept (invalid UTF-8, control
// characters) and reports their line, which the YAML parser does not.
func scanText(data []byte) (line int, msg string, bad bool) {
	line = 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return line, fmt.Sprintf("invalid UTF-8 byte 0x%02x", data[i]), true
		case r == '\n':
			line++
		case r == '\t' || r == '\r':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0 && r != 0x85) || (r >= 0xd800 && r <= 0xdfff) || r == 0xfffe || r == 0xffff:
			return line, fmt.Sprintf("character %U is not allowed in YAML", r), true
		case r == 0xfeff && i != 0:
			return line, "byte order mark in the middle of the text", true
		}
		i += size
	}
	return 0, "", false
}

func validName(s string) bool { return len(s) <= maxNameLen && nameRE.MatchString(s) }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		return tagName(n.ShortTag()) + " " + strconv.Quote(n.Value)
	}
	return "nothing"
}

func tagName(t string) string {
	switch t {
	case "!!int":
		return "integer"
	case "!!float":
		return "number"
	case "!!bool":
		return "boolean"
	case "!!null":
		return "null"
	case "!!str":
		return "string"
	case "!!timestamp":
		return "timestamp"
	}
	return "value tagged " + t
}

// nearest returns the candidate within edit distance 2 of s or, failing
// that, one that s starts with or that starts with s ("sqlite" -> "sql").
func nearest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" || len(s) < 2 {
		return best
	}
	for _, c := range candidates {
		if len(c) >= 2 && (strings.HasPrefix(s, c) || strings.HasPrefix(c, s)) {
			return c
		}
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // names that long are not typos of short ones
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
