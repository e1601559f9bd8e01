package bayes

import (
	"fmt"
	"math"

	"github.com/e3-platform/e3/services/internal/terms"
)

// Model is a trained multinomial naive Bayes classifier. Its log
// probabilities are computed once, at training, so classifying costs one
// map lookup and one add per class per word.
type Model struct {
	classes  []string          // class id -> name
	vocab    map[string]uint32 // word -> word id
	logPrior []float64         // per class: ln P(c)
	// logLik[w*C+c] = ln P(w|c) with Laplace smoothing; the classes of one
	// word are adjacent so a word costs one cache line.
	logLik []float64
	alpha  float64
}

// train builds a model from messages given as a flat stream of word ids
// (docStart delimiting messages), their class labels, the words the ids
// name and the class names, with additive (Laplace) smoothing alpha:
//
//	P(c)   = messages of class c / messages
//	P(w|c) = (count of w in class c + alpha) / (words in class c + alpha*|V|)
func train(words, classes []string, ids, docStart []uint32, labels []uint16, alpha float64) (*Model, error) {
	nc := len(classes)
	if nc < 2 {
		return nil, fmt.Errorf("bayes: %d classes, need at least 2", nc)
	}
	if len(labels) == 0 || len(labels) != len(docStart)-1 {
		return nil, fmt.Errorf("bayes: %d labels for %d training messages", len(labels), len(docStart)-1)
	}
	// The vocabulary is the words seen in training: a word no class ever
	// used would only add the same smoothed constant to every class.
	seen := make([]uint32, len(words)) // word id + 1 in the model, or 0
	nv := 0
	for d := range labels {
		for _, w := range ids[docStart[d]:docStart[d+1]] {
			if int(w) >= len(words) {
				return nil, fmt.Errorf("bayes: message %d has word id %d of %d", d, w, len(words))
			}
			if seen[w] == 0 {
				nv++
				seen[w] = uint32(nv)
			}
		}
	}
	m := &Model{
		classes:  classes,
		vocab:    make(map[string]uint32, nv),
		logPrior: make([]float64, nc),
		logLik:   make([]float64, nv*nc),
		alpha:    alpha,
	}
	for w, id := range seen {
		if id != 0 {
			m.vocab[words[w]] = id - 1
		}
	}
	docs := make([]float64, nc)
	total := make([]float64, nc)
	count := m.logLik // counts first, turned into log probabilities below
	for d, c := range labels {
		if int(c) >= nc {
			return nil, fmt.Errorf("bayes: message %d has class %d of %d", d, c, nc)
		}
		docs[c]++
		for _, w := range ids[docStart[d]:docStart[d+1]] {
			count[int(seen[w]-1)*nc+int(c)]++
			total[c]++
		}
	}
	for c := range nc {
		if docs[c] == 0 {
			return nil, fmt.Errorf("bayes: class %q has no training message", classes[c])
		}
		m.logPrior[c] = math.Log(docs[c] / float64(len(labels)))
		denom := math.Log(total[c] + alpha*float64(nv))
		for w := range nv {
			i := w*nc + c
			m.logLik[i] = math.Log(count[i]+alpha) - denom
		}
	}
	return m, nil
}

// trainTexts tokenises labelled messages with the classifier's tokeniser
// and trains on them. Class ids follow the order of classes.
func trainTexts(classes []string, texts [][]byte, labels []uint16, alpha float64) (*Model, error) {
	words, ids, docStart := terms.Tokenise(texts)
	if len(words) == 0 {
		return nil, fmt.Errorf("bayes: training messages hold no words")
	}
	return train(words, classes, ids, docStart, labels, alpha)
}

// Classes returns the class names in class-id order.
func (m *Model) Classes() []string { return m.classes }

// NumWords returns the size of the vocabulary.
func (m *Model) NumWords() int { return len(m.vocab) }

// Result is a classification.
type Result struct {
	Class uint16 // the maximum a posteriori class
	Words uint16 // words of the message found in the vocabulary (saturating)
	// Margin is ln P(best|m) - ln P(second|m): how much more likely the
	// chosen class is than the runner-up, in nats. Zero on a tie.
	Margin float64
	// LogPosterior is ln P(best|m), normalised over the classes.
	LogPosterior float64
}

// maxClasses bounds the number of classes so per-call scores fit on the
// stack.
const maxClasses = 64

// classify returns the maximum a posteriori class of text: the class c
// maximising ln P(c) + sum over words w of text of ln P(w|c). Words not in
// the vocabulary carry no evidence and are skipped. Ties go to the lower
// class id.
func (m *Model) classify(text []byte) Result {
	var scores [maxClasses]float64
	nc := len(m.classes)
	s := scores[:nc]
	copy(s, m.logPrior)
	var buf [terms.MaxLen]byte
	known := 0
	for i := 0; ; {
		term, next, ok := terms.Next(text, i, &buf)
		if !ok {
			break
		}
		i = next
		id, ok := m.vocab[string(term)]
		if !ok {
			continue
		}
		known++
		row := m.logLik[int(id)*nc : int(id)*nc+nc]
		for c, l := range row {
			s[c] += l
		}
	}
	best, second := 0, -1
	for c := 1; c < nc; c++ {
		if s[c] > s[best] {
			best, second = c, best
		} else if second < 0 || s[c] > s[second] {
			second = c
		}
	}
	// ln sum_c exp(s_c), shifted by the maximum so nothing overflows.
	var z float64
	for _, x := range s {
		z += math.Exp(x - s[best])
	}
	return Result{
		Class:        uint16(best),
		Words:        uint16(min(known, math.MaxUint16)),
		Margin:       s[best] - s[second],
		LogPosterior: -math.Log(z),
	}
}
