package nids

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func TestGenerateRulesDeterministicAndDistinct(t *testing.T) {
	a := GenerateRules(DefaultRuleSeed, DefaultRuleCount)
	b := GenerateRules(DefaultRuleSeed, DefaultRuleCount)
	if len(a) != DefaultRuleCount {
		t.Fatalf("got %d rules, want %d", len(a), DefaultRuleCount)
	}
	seen := map[string]bool{}
	for i := range a {
		if a[i].SID != b[i].SID || !bytes.Equal(a[i].Content, b[i].Content) || a[i].NoCase != b[i].NoCase || a[i].DstPort != b[i].DstPort {
			t.Fatalf("rule %d differs between two runs with one seed", i)
		}
		if a[i].SID != uint32(firstSID+i) {
			t.Errorf("rule %d has sid %d, want %d", i, a[i].SID, firstSID+i)
		}
		if l := len(a[i].Content); l < 4 || l > 64 {
			t.Errorf("rule %d content is %d bytes, outside [4, 64]", i, l)
		}
		k := string(foldIf(a[i].Content, a[i].NoCase))
		if a[i].NoCase {
			k = "i" + k
		}
		if seen[k] {
			t.Errorf("rule %d repeats content %q", i, a[i].Content)
		}
		seen[k] = true
	}
	c := GenerateRules(DefaultRuleSeed+1, 50)
	if bytes.Equal(a[0].Content, c[0].Content) && bytes.Equal(a[1].Content, c[1].Content) {
		t.Error("another seed gave the same rules")
	}
}

func foldIf(b []byte, fold bool) []byte {
	if fold {
		return foldASCII(b)
	}
	return b
}

// TestRuleSetShape checks that the generated set has the documented shape
// and logs its statistics and the size of the compiled automaton.
func TestRuleSetShape(t *testing.T) {
	rules := GenerateRules(DefaultRuleSeed, DefaultRuleCount)
	var lens []int
	var sum, nocase, ported, binary int
	for _, r := range rules {
		lens = append(lens, len(r.Content))
		sum += len(r.Content)
		if r.NoCase {
			nocase++
		}
		if r.DstPort != 0 {
			ported++
		}
		for _, c := range r.Content {
			if c < 0x20 || c > 0x7e {
				binary++
				break
			}
		}
	}
	slices.Sort(lens)
	n := len(rules)
	mean := float64(sum) / float64(n)
	t.Logf("%d rules: length median %d, mean %.1f, p90 %d, p99 %d, max %d; nocase %.0f%%, port-bound %.0f%%, with non-printable bytes %.0f%%",
		n, lens[n/2], mean, lens[n*9/10], lens[n*99/100], lens[n-1],
		100*float64(nocase)/float64(n), 100*float64(ported)/float64(n), 100*float64(binary)/float64(n))
	if lens[n/2] < 8 || lens[n/2] > 14 || mean < 9 || mean > 16 {
		t.Errorf("length median %d, mean %.1f: outside the documented Snort-like range", lens[n/2], mean)
	}
	if f := float64(nocase) / float64(n); f < 0.4 || f > 0.65 {
		t.Errorf("nocase share %.2f outside [0.4, 0.65]", f)
	}
	if f := float64(binary) / float64(n); f < 0.15 || f > 0.35 {
		t.Errorf("share with binary bytes %.2f outside [0.15, 0.35]", f)
	}
	start := time.Now()
	m, err := Compile(Patterns(rules))
	if err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	t.Logf("DFA: %d states (%d accepting), %d byte classes, table %.1f MB, compiled in %v",
		st.States, st.Accepting, st.Classes, float64(st.TableBytes)/(1<<20), time.Since(start).Round(time.Millisecond))
}
