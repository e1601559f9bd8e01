package bm25

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/gen"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// query runs text through h and decodes the reply.
func query(t testing.TB, h service.Handler, text string) (uint32, []Hit) {
	t.Helper()
	req, err := service.AppendEvent(nil, &service.Event{Op: service.OpQuery, Text: []byte(text)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c service.Context
	c.Reset(0, 1, nil)
	if err := h.Handle(&c, req); err != nil {
		t.Fatalf("query %q: %v", text, err)
	}
	if c.Emitted() != 1 {
		t.Errorf("query %q emitted %d messages, want 1", text, c.Emitted())
	}
	matched, hits, err := ParseReply(c.Response(), nil)
	if err != nil {
		t.Fatalf("query %q: %v", text, err)
	}
	return matched, hits
}

// handCorpus is scored by hand below.
var handCorpus = []string{
	"apple banana apple",         // d0, 3 terms
	"banana cherry",              // d1, 2 terms
	"apple cherry cherry cherry", // d2, 4 terms
	"date",                       // d3, 1 term
}

// Hand arithmetic for handCorpus with k1 = 1.2, b = 0.75.
//
//	N = 4 documents, 10 terms, avgdl = 10/4 = 2.5
//	df: apple 2 (d0,d2), banana 2 (d0,d1), cherry 2 (d1,d2), date 1 (d3)
//	IDF(df=2) = ln(1 + (4-2+0.5)/(2+0.5)) = ln(1 + 1)      = ln 2    = 0.6931471805599453
//	IDF(df=1) = ln(1 + (4-1+0.5)/(1+0.5)) = ln(1 + 3.5/1.5) = ln 10/3 = 1.2039728043259361
//	norm(dl) = k1*(1 - b + b*dl/avgdl) = 1.2*(0.25 + 0.3*dl) = 0.3 + 0.36*dl
//	  norm(1) = 0.66, norm(2) = 1.02, norm(3) = 1.38, norm(4) = 1.74
//	term part w(tf, dl) = tf*(k1+1) / (tf + norm(dl)) = 2.2*tf / (tf + norm(dl))
//
// Query "apple cherry":
//
//	d2: apple tf 1, cherry tf 3, dl 4: ln2*(2.2/2.74 + 6.6/4.74)
//	    = 0.693147*(0.802920 + 1.392405) = 1.5216831756540978
//	d0: apple tf 2, dl 3: ln2 * 4.4/3.38 = 0.693147*1.301775 = 0.9023217735099881
//	d1: cherry tf 1, dl 2: ln2 * 2.2/2.02 = 0.693147*1.089109 = 0.7549127709068711
//	d3: no term; not a hit.
//
// Query "date banana":
//
//	d3: date tf 1, dl 1: ln(10/3) * 2.2/1.66 = 1.203973*1.325301 = 1.595626608142807
//	d1: banana tf 1, dl 2: as cherry in d1 above                 = 0.7549127709068711
//	d0: banana tf 1, dl 3: ln2 * 2.2/2.38 = 0.693147*0.924370    = 0.64072428455121
//
// With k1 = 2, b = 0 the length norm is k1 = 2 for every document and
// w(tf) = 3*tf/(tf+2). Query "apple cherry":
//
//	d2: ln2*(3/3 + 9/5) = ln2*2.8 = 1.9408121055678467
//	d0: ln2*(6/4)       = ln2*1.5 = 1.0397207708399179
//	d1: ln2*(3/3)       = ln2     = 0.6931471805599453
func TestHandScoredCorpus(t *testing.T) {
	texts := make([][]byte, len(handCorpus))
	for i, s := range handCorpus {
		texts[i] = []byte(s)
	}
	std, err := indexTexts(texts, 1.2, 0.75)
	if err != nil {
		t.Fatal(err)
	}
	flat, err := indexTexts(texts, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if std.AvgDocLen() != 2.5 || std.NumDocs() != 4 || std.NumTerms() != 4 || std.NumPostings() != 7 {
		t.Fatalf("index: avgdl %v docs %d terms %d postings %d; want 2.5, 4, 4, 7",
			std.AvgDocLen(), std.NumDocs(), std.NumTerms(), std.NumPostings())
	}
	ln2 := math.Ln2
	cases := []struct {
		name    string
		ix      *Index
		topK    int
		query   string
		matched uint32
		want    []Hit
	}{
		{"apple cherry", std, 10, "apple cherry", 3, []Hit{
			{2, ln2 * (2.2/2.74 + 6.6/4.74)}, {0, ln2 * 4.4 / 3.38}, {1, ln2 * 2.2 / 2.02}}},
		{"literal scores", std, 10, "apple cherry", 3, []Hit{
			{2, 1.5216831756540978}, {0, 0.9023217735099881}, {1, 0.7549127709068711}}},
		{"date banana", std, 10, "date banana", 3, []Hit{
			{3, 1.595626608142807}, {1, 0.7549127709068711}, {0, 0.64072428455121}}},
		{"case and punctuation fold", std, 10, "  DATE,\tBanana!! ", 3, []Hit{
			{3, 1.595626608142807}, {1, 0.7549127709068711}, {0, 0.64072428455121}}},
		{"top 2 of 3", std, 2, "apple cherry", 3, []Hit{
			{2, 1.5216831756540978}, {0, 0.9023217735099881}}},
		{"repeated term counts twice", std, 10, "date date", 1, []Hit{{3, 2 * 1.595626608142807}}},
		{"unknown terms ignored", std, 10, "zebra date quokka", 1, []Hit{{3, 1.595626608142807}}},
		{"no known term", std, 10, "zebra", 0, nil},
		{"empty query", std, 10, "", 0, nil},
		{"b=0 k1=2", flat, 10, "apple cherry", 3, []Hit{
			{2, 1.9408121055678467}, {0, 1.0397207708399179}, {1, 0.6931471805599453}}},
	}
	for _, tc := range cases {
		for _, mode := range accumulationModes {
			tc.ix.denseMin = mode.denseMin
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				matched, got := query(t, NewHandler(tc.ix, tc.topK, 64), tc.query)
				if matched != tc.matched {
					t.Errorf("matched %d documents, want %d", matched, tc.matched)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
				for i := range got {
					if got[i].Doc != tc.want[i].Doc || math.Abs(got[i].Score-tc.want[i].Score) > 1e-9 {
						t.Errorf("hit %d = %+v, want %+v", i, got[i], tc.want[i])
					}
				}
			})
		}
	}
}

// accumulationModes force each way of accumulating scores, and the choice
// by posting count the service makes.
var accumulationModes = []struct {
	name     string
	denseMin int
}{{"sparse", math.MaxInt}, {"dense", 0}, {"auto", 75}}

// TestCorpusFile loads the hand corpus (with capitals and punctuation) from
// a file through the corpus_file key and checks one hand-scored query.
func TestCorpusFile(t *testing.T) {
	h, err := New(service.Env{Config: map[string]string{"corpus_file": "testdata/corpus.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	_, got := query(t, h, "apple cherry")
	want := []Hit{{2, 1.5216831756540978}, {0, 0.9023217735099881}, {1, 0.7549127709068711}}
	if len(got) != 3 {
		t.Fatalf("got %v want %v", got, want)
	}
	for i := range want {
		if got[i].Doc != want[i].Doc || math.Abs(got[i].Score-want[i].Score) > 1e-9 {
			t.Errorf("hit %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := New(service.Env{Config: map[string]string{"corpus_file": "testdata/missing.txt"}}); err == nil {
		t.Error("missing corpus file accepted")
	}
}

// naiveScores scores every document of texts for query straight from the
// BM25 definition, with no index: the reference for the property test.
func naiveScores(texts [][]string, query []string, k1, b float64) []Hit {
	n := float64(len(texts))
	var total int
	for _, d := range texts {
		total += len(d)
	}
	avgdl := float64(total) / n
	df := map[string]int{}
	for _, d := range texts {
		seen := map[string]bool{}
		for _, w := range d {
			if !seen[w] {
				seen[w] = true
				df[w]++
			}
		}
	}
	var out []Hit
	for i, d := range texts {
		var s float64
		hit := false
		for _, q := range query {
			tf := 0
			for _, w := range d {
				if w == q {
					tf++
				}
			}
			if tf == 0 {
				continue
			}
			hit = true
			idf := math.Log(1 + (n-float64(df[q])+0.5)/(float64(df[q])+0.5))
			s += idf * float64(tf) * (k1 + 1) / (float64(tf) + k1*(1-b+b*float64(len(d))/avgdl))
		}
		if hit {
			out = append(out, Hit{uint64(i), s})
		}
	}
	sort.Slice(out, func(i, j int) bool { return worse(out[j], out[i]) })
	return out
}

func TestAgainstNaiveScoring(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	p := corpusParams{seed: seed, docs: 300, vocab: 500, docLen: 30, zipfS: 1.1}
	words := gen.Vocabulary(gen.NewRand(p.seed, 2), p.vocab)
	terms, docStart := generateCorpus(p)
	texts := make([][]string, p.docs)
	for d := range texts {
		for _, id := range terms[docStart[d]:docStart[d+1]] {
			texts[d] = append(texts[d], words[id])
		}
	}
	for _, kb := range [][2]float64{{1.2, 0.75}, {0.5, 1}, {3, 0.2}} {
		ix, err := buildIndex(words, append([]uint32(nil), terms...), docStart, kb[0], kb[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range accumulationModes {
			ix.denseMin = mode.denseMin
			h := NewHandler(ix, 15, 64)
			for range 50 {
				q := make([]string, 1+rng.IntN(4))
				for i := range q {
					q[i] = words[rng.IntN(len(words))]
					if rng.IntN(3) == 0 {
						q[i] = words[rng.IntN(10)] // a frequent word: long posting lists
					}
				}
				want := naiveScores(texts, q, kb[0], kb[1])
				naive := map[uint64]float64{}
				for _, w := range want {
					naive[w.Doc] = w.Score
				}
				matched, got := query(t, h, strings.Join(q, " "))
				if int(matched) != len(want) {
					t.Fatalf("k1=%v b=%v %q: matched %d, want %d", kb[0], kb[1], q, matched, len(want))
				}
				want = want[:min(15, len(want))]
				if len(got) != len(want) {
					t.Fatalf("k1=%v b=%v %q: %d hits, want %d", kb[0], kb[1], q, len(got), len(want))
				}
				// Scores that tie up to rounding may come out in either order,
				// so compare the score sequence and check each returned
				// document's own score against the reference.
				for i := range want {
					ref, ok := naive[got[i].Doc]
					if math.Abs(got[i].Score-want[i].Score) > 1e-9 || !ok || math.Abs(got[i].Score-ref) > 1e-9 {
						t.Fatalf("%s k1=%v b=%v %q: hit %d = %+v (reference score %v), want %+v", mode.name, kb[0], kb[1], q, i, got[i], ref, want[i])
					}
				}
			}
		}
	}
}

func TestGeneratedCorpus(t *testing.T) {
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ix := h.(*Handler).Index()
	// Log-normal lengths with median 120 and sigma 0.5 have mean
	// 120*exp(0.125) = 136.
	if ix.NumDocs() != DefaultDocs || ix.NumTerms() != DefaultVocab || math.Abs(ix.AvgDocLen()-136) > 3 {
		t.Fatalf("docs %d terms %d avgdl %.1f", ix.NumDocs(), ix.NumTerms(), ix.AvgDocLen())
	}
	df := func(t uint32) uint32 { return ix.start[t+1] - ix.start[t] }
	// Zipf: the top word is in nearly every document, rank 100 in a few
	// hundred, rank 10,000 in a handful.
	t.Logf("df by rank: 0:%d 100:%d 10000:%d; %d postings", df(0), df(100), df(10000), ix.NumPostings())
	if df(0) < 9900 || df(100) < 500 || df(100) > 3000 || df(10000) > 50 || df(10000) >= df(100) {
		t.Errorf("document frequencies do not look Zipfian: %d %d %d", df(0), df(100), df(10000))
	}
	h2, _ := New(service.Env{Config: map[string]string{}})
	if h2.(*Handler).Index() != ix {
		t.Error("a second instance with the same config rebuilt the index instead of sharing it")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []map[string]string{
		{"k1": "fast"}, {"b": "1.5"}, {"top_k": "0"}, {"top_k": "2.5"}, {"docs": "-1"},
		{"zipf_s": "0"}, {"corpus_seed": "x"}, {"docs": "2000000", "doc_len": "10000"},
	} {
		if _, err := New(service.Env{Config: cfg}); err == nil {
			t.Errorf("config %v accepted", cfg)
		} else {
			t.Logf("%v: %v", cfg, err)
		}
	}
}

func TestMalformed(t *testing.T) {
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := NewGenerator(1, 0).Next(nil)
	long, _ := service.AppendEvent(nil, &service.Event{Text: []byte(strings.Repeat("ba ", 65))}, 0)
	bad := map[string][]byte{
		"empty":         nil,
		"short":         good[:20],
		"version":       append([]byte{9}, good[1:]...),
		"text overruns": good[:service.EventHeaderLen+2],
		"65 terms":      long,
	}
	servicetest.CheckMalformed(t, h, bad)
	// The query after a rejected one is unaffected (scratch was reset).
	_, a := query(t, h, "ba")
	_, b := query(t, NewHandler(h.(*Handler).Index(), DefaultTopK, 64), "ba")
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("after a rejected query: %v, fresh handler: %v", a, b)
	}
}

func TestGenerator(t *testing.T) {
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.CheckGenerator(t, Descriptor, DefaultRequestSize)
	for _, size := range []int{0, 64, 100, 512, 1500} {
		g := NewGenerator(42, size)
		want := size
		if size == 0 {
			want = DefaultRequestSize
		}
		var found, terms int
		for range 500 {
			a, _ := g.Next(nil)
			var ev service.Event
			if err := service.DecodeEvent(a, &ev); err != nil {
				t.Fatal(err)
			}
			// Exactly the size asked for, unless a single term does not fit.
			oneTooLong := bytes.IndexByte(ev.Text, ' ') < 0 && ev.EncodedLen() > want
			if len(a) != want && !(oneTooLong && len(a) == ev.EncodedLen()) {
				t.Fatalf("size %d: request is %d bytes, text %q", size, len(a), ev.Text)
			}
			terms += len(strings.Fields(string(ev.Text)))
			matched, _ := query(t, h, string(ev.Text))
			if matched > 0 {
				found++
			}
		}
		t.Logf("size %d: %.2f terms per query, %d of 500 match", size, float64(terms)/500, found)
		if found < 400 {
			t.Errorf("size %d: only %d of 500 generated queries match a document", size, found)
		}
	}
}

func TestConcurrentHandle(t *testing.T) {
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := servicetest.Requests(NewGenerator(3, 0), 200)
	servicetest.CheckConcurrent(t, h, reqs)
}

func TestHandleNoAllocs(t *testing.T) {
	if servicetest.RaceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := servicetest.Requests(NewGenerator(5, 0), 64)
	if allocs := servicetest.HandleAllocs(t, h, &service.Context{}, 1000, reqs); allocs != 0 {
		t.Errorf("Handle allocates %v times per request", allocs)
	}
}

func FuzzHandle(f *testing.F) {
	h, err := New(service.Env{})
	if err != nil {
		f.Fatal(err)
	}
	g := NewGenerator(9, 128)
	for range 8 {
		req, _ := g.Next(nil)
		f.Add(req)
	}
	f.Add([]byte{1, 4, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		if _, ok := servicetest.Reply(t, h, &c, req); !ok {
			return
		}
		matched, hits, err := ParseReply(c.Response(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) > DefaultTopK || int(matched) < len(hits) {
			t.Fatalf("reply: %d matched, %d hits", matched, len(hits))
		}
		for i := 1; i < len(hits); i++ {
			if worse(hits[i-1], hits[i]) {
				t.Fatalf("hits out of order: %v", hits)
			}
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add(appendReply(nil, 3, []Hit{{1, 2}, {3, 4}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		matched, hits, err := ParseReply(b, nil)
		if err != nil {
			return
		}
		if got := appendReply(nil, int(matched), hits); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs: %x vs %x", got, b)
		}
	})
}

func BenchmarkHandle(b *testing.B) {
	h, err := New(service.Env{})
	if err != nil {
		b.Fatal(err)
	}
	g := NewGenerator(1, DefaultRequestSize)
	reqs, _ := servicetest.Requests(g, 4096)
	var c service.Context
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		c.Reset(0, 0, nil)
		if err := h.Handle(&c, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildIndex measures New's cost for the default corpus without
// the per-process cache.
func BenchmarkBuildIndex(b *testing.B) {
	p := corpusParams{seed: DefaultCorpusSeed, docs: DefaultDocs, vocab: DefaultVocab, docLen: DefaultDocLen, zipfS: DefaultZipfS}
	b.ReportAllocs()
	for b.Loop() {
		words := gen.Vocabulary(gen.NewRand(p.seed, 0x70cab), p.vocab)
		terms, docStart := generateCorpus(p)
		if _, err := buildIndex(words, terms, docStart, DefaultK1, DefaultB); err != nil {
			b.Fatal(err)
		}
	}
}
