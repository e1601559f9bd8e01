package bayes

import (
	"slices"
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// TestCorpusFingerprint pins the generated training corpus: the SHA-256 of
// the model trained on it (class names, vocabulary with word ids, priors
// and likelihoods) for the default configuration and for one with other
// corpus parameters. The corpus code may be reorganised; these must not
// move unless a commit means to change the corpus and says so.
func TestCorpusFingerprint(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]string
		want string
	}{
		{nil, "a13e5fa7e6f22af0e128dabc047e660ee1240be1eaae9f4a179459e59712f16c"},
		{map[string]string{"corpus_seed": "7", "classes": "3", "vocab": "3000", "train_docs": "2000", "doc_len": "30", "zipf_s": "1.2"}, "ad4d070203603982ae697665bbd0e650a0065d110a9a6bbe8b99215823b52ce6"},
	} {
		h, err := New(service.Env{Config: tc.cfg})
		if err != nil {
			t.Fatal(err)
		}
		if got := modelFingerprint(h.(*Handler).Model()); got != tc.want {
			t.Errorf("config %v: corpus fingerprint %s, want %s", tc.cfg, got, tc.want)
		}
	}
}

func modelFingerprint(m *Model) string {
	d := servicetest.NewDigest()
	for _, c := range m.classes {
		d.Text(c)
	}
	words := make([]string, 0, len(m.vocab))
	for w := range m.vocab {
		words = append(words, w)
	}
	slices.Sort(words)
	for _, w := range words {
		d.Text(w)
		d.Uint(uint64(m.vocab[w]))
	}
	for _, x := range m.logPrior {
		d.Float(x)
	}
	for _, x := range m.logLik {
		d.Float(x)
	}
	return d.Hex()
}
