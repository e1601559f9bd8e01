package nids

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestParseRuleHandChecked(t *testing.T) {
	text := `
# comment
alert udp any any -> any 53 (msg:"odd \"one\"\; here"; content:"|00 01|AB\;C\"|ff|"; sid:77; rev:3; classtype:misc;)
drop ip any any -> any any (content:"x|3a|y"; nocase; sid:78;)
`
	rules, err := ParseRules(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{SID: 77, Proto: 17, DstPort: 53, Content: []byte{0, 1, 'A', 'B', ';', 'C', '"', 0xff}, Msg: `odd "one"; here`},
		{SID: 78, Proto: 0, Content: []byte("x:y"), NoCase: true},
	}
	if !rulesEqual(rules, want) {
		t.Errorf("got %+v\nwant %+v", rules, want)
	}
}

func rulesEqual(a, b []Rule) bool {
	return slices.EqualFunc(a, b, func(x, y Rule) bool {
		return x.SID == y.SID && x.Proto == y.Proto && x.DstPort == y.DstPort &&
			bytes.Equal(x.Content, y.Content) && x.NoCase == y.NoCase && x.Msg == y.Msg
	})
}

func TestRulesRoundTrip(t *testing.T) {
	rules := GenerateRules(DefaultRuleSeed, DefaultRuleCount)
	var buf bytes.Buffer
	if err := FormatRules(&buf, rules); err != nil {
		t.Fatal(err)
	}
	back, err := ParseRules(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !rulesEqual(rules, back) {
		t.Fatal("generated rules do not survive FormatRules and ParseRules")
	}
}

func TestParseRuleErrors(t *testing.T) {
	ok := `(content:"abc"; sid:1;)`
	tests := []struct{ line, want string }{
		{`alert tcp any any -> any 80 ` + ok, ""},
		{`block tcp any any -> any 80 ` + ok, `unknown action "block"`},
		{`alert sctp any any -> any 80 ` + ok, `unknown protocol "sctp"`},
		{`alert tcp 10.0.0.0/8 any -> any 80 ` + ok, `field 3 is "10.0.0.0/8"`},
		{`alert tcp any 1024 -> any 80 ` + ok, `field 4 is "1024"`},
		{`alert tcp any any <> any 80 ` + ok, `direction "<>"`},
		{`alert tcp any any -> any 0 ` + ok, `destination port "0"`},
		{`alert tcp any any -> any 70000 ` + ok, `destination port "70000"`},
		{`alert tcp any any -> any $HTTP_PORTS ` + ok, `destination port "$HTTP_PORTS"`},
		{`alert icmp any any -> any 7 ` + ok, `protocol icmp, which has no ports`},
		{`alert tcp any any -> any 80`, `want a header and options`},
		{`alert tcp any -> any 80 ` + ok, `want 7 fields`},
		{`alert tcp any any -> any 80 (content:"abc"; pcre:"/x/"; sid:1;)`, `unsupported option "pcre"`},
		{`alert tcp any any -> any 80 (content:"abc"; content:"def"; sid:1;)`, `more than one content`},
		{`alert tcp any any -> any 80 (content:!"abc"; sid:1;)`, `negated content`},
		{`alert tcp any any -> any 80 (sid:1;)`, `no content`},
		{`alert tcp any any -> any 80 (content:"abc";)`, `no sid`},
		{`alert tcp any any -> any 80 (content:"abc"; sid:0;)`, `sid "0"`},
		{`alert tcp any any -> any 80 (content:"abc; sid:1;)`, `unterminated quote`},
		{`alert tcp any any -> any 80 (content:"|0|"; sid:1;)`, `1 digits`},
		{`alert tcp any any -> any 80 (content:"|zz|"; sid:1;)`, `"zz" is not a hex byte`},
		{`alert tcp any any -> any 80 (content:"|00"; sid:1;)`, `not closed`},
		{`alert tcp any any -> any 80 (content:""; sid:1;)`, `empty content`},
		{`alert tcp any any -> any 80 (content:"a\b"; sid:1;)`, `bad escape`},
		{`alert tcp any any -> any 80 (content:"abc"; nocase:1; sid:1;)`, `nocase takes no value`},
		{`alert tcp any any -> any 80 (content:"abc"; sid:1)`, `not terminated by ';'`},
	}
	for _, tc := range tests {
		_, err := ParseRules(strings.NewReader("\n" + tc.line + "\n"))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.line, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "line 2")):
			t.Errorf("%s:\n err = %v\n want one naming line 2 and containing %q", tc.line, err, tc.want)
		}
	}
	_, err := ParseRules(strings.NewReader("alert tcp any any -> any 80 " + ok + "\n\nalert udp any any -> any any " + ok + "\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3: sid 1 already used on line 1") {
		t.Errorf("duplicate sid: err = %v", err)
	}
}
