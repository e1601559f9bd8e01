package bayes

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// classify runs text through h and decodes the reply.
func classify(t testing.TB, h service.Handler, text string) Result {
	t.Helper()
	req, err := service.AppendEvent(nil, &service.Event{Text: []byte(text)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c service.Context
	c.Reset(0, 1, nil)
	if err := h.Handle(&c, req); err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	if c.Emitted() != 1 {
		t.Errorf("%q: emitted %d messages, want 1", text, c.Emitted())
	}
	r, err := ParseReply(c.Response())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func trainStrings(t testing.TB, classes []string, msgs []string, labels []uint16, alpha float64) *Model {
	t.Helper()
	texts := make([][]byte, len(msgs))
	for i, s := range msgs {
		texts[i] = []byte(s)
	}
	m, err := trainTexts(classes, texts, labels, alpha)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Hand arithmetic for the training set below, alpha = 1.
//
//	ham  (3 messages): "meeting lunch", "lunch report meeting", "report"
//	spam (2 messages): "cheap pills", "cheap cheap offer"
//	vocabulary: meeting lunch report cheap pills offer, |V| = 6
//	P(ham) = 3/5, P(spam) = 2/5
//	ham counts:  meeting 2, lunch 2, report 2, total 6 -> P(w|ham)  = (n+1)/(6+6) = (n+1)/12
//	             meeting = lunch = report = 3/12, cheap = pills = offer = 1/12
//	spam counts: cheap 3, pills 1, offer 1, total 5    -> P(w|spam) = (n+1)/(5+6) = (n+1)/11
//	             cheap = 4/11, pills = offer = 2/11, meeting = lunch = report = 1/11
//
// "cheap meeting cheap":
//
//	ham:  3/5 * 1/12 * 3/12 * 1/12 = 9/8640 = 1/960
//	spam: 2/5 * 4/11 * 1/11 * 4/11 = 32/6655
//	spam wins; margin = ln((32/6655) / (1/960)) = ln(30720/6655) = 1.5295454564323965
//	P(spam|m) = 30720 / (30720 + 6655) = 30720/37375; ln = -0.19608812343137902
//
// "lunch offer report":
//
//	ham:  3/5 * 3/12 * 1/12 * 3/12 = 27/8640 = 1/320
//	spam: 2/5 * 1/11 * 2/11 * 1/11 = 4/6655
//	ham wins; margin = ln((1/320) / (4/6655)) = ln(6655/1280) = 1.648508373915549
//	P(ham|m) = 6655 / (6655 + 1280) = 6655/7935; ln = -0.17591490213129737
//
// No known word: the priors decide, ham, margin ln(3/2) = 0.4054651081081644,
// ln P(ham) = ln 0.6 = -0.5108256237659907.
func TestHandComputedPosteriors(t *testing.T) {
	m := trainStrings(t, []string{"ham", "spam"},
		[]string{"meeting lunch", "lunch report meeting", "report", "cheap pills", "cheap cheap offer"},
		[]uint16{0, 0, 0, 1, 1}, 1)
	fromFile, err := New(service.Env{Config: map[string]string{"training_file": "testdata/train.tsv"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fromFile.(*Handler).Model().Classes(); strings.Join(got, ",") != "ham,spam" {
		t.Fatalf("classes from file %v", got)
	}
	cases := []struct {
		text string
		want Result
	}{
		{"cheap meeting cheap", Result{1, 3, math.Log(30720.0 / 6655), math.Log(30720.0 / 37375)}},
		{"cheap meeting cheap", Result{1, 3, 1.5295454564323965, -0.19608812343137902}},
		{"Lunch, OFFER & report", Result{0, 3, 1.648508373915549, -0.17591490213129737}},
		{"lunch offer report zebra", Result{0, 3, 1.648508373915549, -0.17591490213129737}},
		{"zebra", Result{0, 0, 0.4054651081081644, -0.5108256237659907}},
		{"", Result{0, 0, math.Log(1.5), math.Log(0.6)}},
	}
	for _, h := range []service.Handler{NewHandler(m), fromFile} {
		for _, tc := range cases {
			got := classify(t, h, tc.text)
			if got.Class != tc.want.Class || got.Words != tc.want.Words ||
				math.Abs(got.Margin-tc.want.Margin) > 1e-9 || math.Abs(got.LogPosterior-tc.want.LogPosterior) > 1e-9 {
				t.Errorf("%q: got %+v, want %+v", tc.text, got, tc.want)
			}
		}
	}
}

// TestTie: equal evidence goes to the lower class id with a zero margin.
func TestTie(t *testing.T) {
	m := trainStrings(t, []string{"a", "b", "c"}, []string{"x", "y", "z"}, []uint16{0, 1, 2}, 1)
	for _, text := range []string{"", "w", "x y z"} {
		got := classify(t, NewHandler(m), text)
		if got.Class != 0 || got.Margin != 0 || math.Abs(got.LogPosterior-math.Log(1.0/3)) > 1e-12 {
			t.Errorf("%q: %+v, want class 0, margin 0, ln(1/3)", text, got)
		}
	}
	// "y y" tips it to b: each y multiplies b's odds by (1+1)/(1+3) over 1/4.
	if got := classify(t, NewHandler(m), "y y"); got.Class != 1 || math.Abs(got.Margin-2*math.Log(2)) > 1e-12 {
		t.Errorf(`"y y": %+v, want class 1 with margin 2 ln 2`, got)
	}
}

// naiveClassify computes the posterior from raw counts with no
// precomputation: the reference for the property test.
func naiveClassify(docs [][]string, labels []uint16, nc int, alpha float64, msg []string) Result {
	vocab := map[string]bool{}
	count := make([]map[string]float64, nc)
	total := make([]float64, nc)
	ndocs := make([]float64, nc)
	for c := range count {
		count[c] = map[string]float64{}
	}
	for d, words := range docs {
		c := labels[d]
		ndocs[c]++
		for _, w := range words {
			vocab[w] = true
			count[c][w]++
			total[c]++
		}
	}
	scores := make([]float64, nc)
	known := 0
	for _, w := range msg {
		if vocab[w] {
			known++
		}
	}
	for c := range nc {
		scores[c] = math.Log(ndocs[c] / float64(len(docs)))
		for _, w := range msg {
			if vocab[w] {
				scores[c] += math.Log((count[c][w] + alpha) / (total[c] + alpha*float64(len(vocab))))
			}
		}
	}
	best := 0
	for c := range nc {
		if scores[c] > scores[best] {
			best = c
		}
	}
	second := math.Inf(-1)
	var z float64
	for c, s := range scores {
		if c != best && s > second {
			second = s
		}
		z += math.Exp(s - scores[best])
	}
	return Result{Class: uint16(best), Words: uint16(known), Margin: scores[best] - second, LogPosterior: -math.Log(z)}
}

func TestAgainstNaiveClassifier(t *testing.T) {
	const seed = 11
	t.Logf("seed %d", seed)
	p := corpusParams{seed: seed, classes: 3, vocab: 300, docs: 60, docLen: 20, zipfS: 1.1}
	l := newLanguage(p)
	terms, docStart, labels := l.generateTraining(p)
	docs := make([][]string, p.docs)
	for d := range docs {
		for _, id := range terms[docStart[d]:docStart[d+1]] {
			docs[d] = append(docs[d], l.words[id])
		}
	}
	for _, alpha := range []float64{1, 0.1, 3} {
		m, err := train(l.words, classNames(3), terms, docStart, labels, alpha)
		if err != nil {
			t.Fatal(err)
		}
		h := NewHandler(m)
		rng := rand.New(rand.NewPCG(seed, 2))
		for range 200 {
			msg := make([]string, rng.IntN(30))
			for i := range msg {
				msg[i] = l.words[rng.IntN(len(l.words))]
				if rng.IntN(10) == 0 {
					msg[i] = "qq" // not a word of the language
				}
			}
			want := naiveClassify(docs, labels, 3, alpha, msg)
			got := classify(t, h, strings.Join(msg, " "))
			if got.Words != want.Words || got.Class != want.Class || math.Abs(got.Margin-want.Margin) > 1e-9 || math.Abs(got.LogPosterior-want.LogPosterior) > 1e-9 {
				t.Fatalf("alpha %v %q: got %+v, want %+v", alpha, msg, got, want)
			}
		}
	}
}

func TestGeneratedModelAccuracy(t *testing.T) {
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	m := h.(*Handler).Model()
	t.Logf("classes %v, %d words", m.Classes(), m.NumWords())
	for _, size := range []int{128, 512} {
		g := NewGenerator(1, size)
		right, n := 0, 2000
		var words int
		for range n {
			req, _ := g.Next(nil)
			var ev service.Event
			if err := service.DecodeEvent(req, &ev); err != nil {
				t.Fatal(err)
			}
			r := classify(t, h, string(ev.Text))
			words += int(r.Words)
			if uint64(r.Class) == ev.Item {
				right++
			}
			if r.Margin < 0 || r.LogPosterior > 0 || r.LogPosterior < -math.Log(2) {
				t.Fatalf("implausible result %+v", r)
			}
		}
		// The classes share nine tenths of their word distribution; a
		// 512-byte message (about 110 words) still decides almost always
		// (99.3% with seed 1), a 128-byte one (about 19) mostly (85%).
		acc := float64(right) / float64(n)
		t.Logf("size %d: accuracy %.3f, %.1f known words per message", size, acc, float64(words)/float64(n))
		if want := map[int]float64{128: 0.8, 512: 0.98}[size]; acc < want {
			t.Errorf("size %d: accuracy %.3f below %.2f", size, acc, want)
		}
	}
	h2, _ := New(service.Env{Config: map[string]string{}})
	if h2.(*Handler).Model() != m {
		t.Error("a second instance with the same config retrained instead of sharing the model")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []map[string]string{
		{"alpha": "0"}, {"alpha": "x"}, {"classes": "1"}, {"classes": "65"}, {"train_docs": "1"},
		{"vocab": "0"}, {"training_file": "testdata/missing.tsv"}, {"training_file": "testdata/bad.tsv"},
		{"training_file": "testdata/oneclass.tsv"},
	} {
		if _, err := New(service.Env{Config: cfg}); err == nil {
			t.Errorf("config %v accepted", cfg)
		} else {
			t.Logf("%v: %v", cfg, err)
		}
	}
	h, err := New(service.Env{Config: map[string]string{"classes": "5", "train_docs": "500"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.(*Handler).Model().Classes(); len(got) != 5 || got[4] != "c4" {
		t.Errorf("5 classes named %v", got)
	}
}

func TestMalformed(t *testing.T) {
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := NewGenerator(1, 0).Next(nil)
	servicetest.CheckMalformed(t, h, map[string][]byte{
		"empty":         nil,
		"short":         good[:47],
		"version":       append([]byte{0}, good[1:]...),
		"op":            append([]byte{1, 200}, good[2:]...),
		"text overruns": good[:100],
	})
}

func TestGenerator(t *testing.T) {
	servicetest.CheckGenerator(t, Descriptor, DefaultRequestSize)
	for _, size := range []int{0, 60, 512, 1500} {
		g := NewGenerator(42, size)
		want := size
		if size == 0 {
			want = DefaultRequestSize
		}
		for range 300 {
			a, _ := g.Next(nil)
			var ev service.Event
			if err := service.DecodeEvent(a, &ev); err != nil {
				t.Fatal(err)
			}
			oneWord := bytes.IndexByte(ev.Text, ' ') < 0
			if len(a) != want && !(oneWord && len(a) == ev.EncodedLen()) {
				t.Fatalf("size %d: request is %d bytes, text %q", size, len(a), ev.Text)
			}
			// The text fills the request: no further word would fit.
			if want-ev.EncodedLen() > 14 {
				t.Fatalf("size %d: text leaves %d bytes unused", size, want-ev.EncodedLen())
			}
			if ev.Item >= DefaultClasses {
				t.Fatalf("label %d", ev.Item)
			}
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
	h, err := New(service.Env{})
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := servicetest.Requests(NewGenerator(5, 0), 64)
	// Capitals force the case-folding path.
	reqs[0], _ = service.AppendEvent(nil, &service.Event{Text: []byte("CHEAP Pills, NOW")}, 512)
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
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, req []byte) {
		var c service.Context
		if _, ok := servicetest.Reply(t, h, &c, req); !ok {
			return
		}
		r, err := ParseReply(c.Response())
		if err != nil {
			t.Fatal(err)
		}
		if r.Class >= DefaultClasses || !(r.Margin >= 0) || !(r.LogPosterior <= 0) || r.LogPosterior < -math.Log(2)-1e-12 {
			t.Fatalf("implausible result %+v", r)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add(make([]byte, ReplyLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseReply(b); (err == nil) != (len(b) == ReplyLen) {
			t.Fatalf("%d bytes: err %v", len(b), err)
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
	for i := 0; b.Loop(); i++ {
		c.Reset(0, 0, nil)
		if err := h.Handle(&c, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrain measures New's cost for the default corpus without the
// per-process cache.
func BenchmarkTrain(b *testing.B) {
	p := defaultParams()
	b.ReportAllocs()
	for b.Loop() {
		l := newLanguage(p)
		terms, docStart, labels := l.generateTraining(p)
		if _, err := train(l.words, classNames(p.classes), terms, docStart, labels, DefaultAlpha); err != nil {
			b.Fatal(err)
		}
	}
}
