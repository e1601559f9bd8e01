package bm25

import (
	"testing"

	"github.com/e3-platform/e3/service"
	"github.com/e3-platform/e3/services/internal/servicetest"
)

// TestCorpusFingerprint pins the generated corpus: the SHA-256 of the index
// built from it (vocabulary in term-id order, IDFs, postings and their
// weights) for the default configuration and for one with other corpus
// parameters. The corpus code may be reorganised; these must not move
// unless a commit means to change the corpus and says so.
func TestCorpusFingerprint(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]string
		want string
	}{
		{nil, "7d6e296ff658800bd35892cdc60afed3601c7ad79c47d82c661b5984e752bd0a"},
		{map[string]string{"corpus_seed": "7", "docs": "2000", "vocab": "5000", "doc_len": "50", "zipf_s": "1.3"}, "c7455415375a9be0f23446247ea708742c1d26bc7c52fcd7b47049eb4d1a3a56"},
	} {
		h, err := New(service.Env{Config: tc.cfg})
		if err != nil {
			t.Fatal(err)
		}
		if got := indexFingerprint(h.(*Handler).Index()); got != tc.want {
			t.Errorf("config %v: corpus fingerprint %s, want %s", tc.cfg, got, tc.want)
		}
	}
}

func indexFingerprint(ix *Index) string {
	d := servicetest.NewDigest()
	d.Uint(uint64(ix.ndocs))
	d.Float(ix.avgdl)
	for _, w := range ix.words {
		d.Text(w)
	}
	for _, x := range ix.idf {
		d.Float(x)
	}
	for _, x := range ix.start {
		d.Uint(uint64(x))
	}
	for _, x := range ix.docs {
		d.Uint(uint64(x))
	}
	for _, x := range ix.weights {
		d.Float(x)
	}
	return d.Hex()
}
