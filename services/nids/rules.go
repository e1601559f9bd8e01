package nids

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Rule is one detection rule: a single content string with Snort's header
// constraints. Snort rules may carry several contents and non-literal
// options; the multi-pattern stage of Snort searches only one content per
// rule (its fast pattern), and that stage is what this service runs.
type Rule struct {
	SID     uint32 // Snort signature id, unique within a rule set
	Proto   uint8  // 0 any ("ip"), 6 tcp, 17 udp
	DstPort uint16 // 0 any
	Content []byte // the literal searched for; never empty
	NoCase  bool   // ASCII letters match either case
	Msg     string // human-readable description
}

// Default rule set parameters: the service and its request generator use
// the same set unless the configuration supplies another.
const (
	DefaultRuleCount = 2000
	DefaultRuleSeed  = 1
	firstSID         = 1000001 // Snort reserves sids below 1,000,000 for its own rules
)

// Patterns returns the matcher patterns of rules, index for index.
func Patterns(rules []Rule) []Pattern {
	ps := make([]Pattern, len(rules))
	for i, r := range rules {
		ps[i] = Pattern{Bytes: r.Content, NoCase: r.NoCase}
	}
	return ps
}

// Rule families and their shares of a generated set. Public rule sets
// (Snort community, Emerging Threats) are dominated by web-application
// rules, then rules keyed on protocol commands and text, then binary
// exploit and malware signatures.
const (
	shareWeb    = 0.45
	shareText   = 0.30
	shareBinary = 0.25
)

// Case-insensitive shares per family: web URI contents are nearly always
// matched nocase (servers treat paths and hex escapes case-insensitively),
// protocol keywords often, binary strings never.
const (
	nocaseWeb  = 0.80
	nocaseText = 0.50
)

// contentLen draws a content length: log-normal with median 11 bytes
// (sigma 0.5), clamped to [4, 64]. Snort's literals are mostly 4 to 30
// bytes with a mean in the low teens and a thin tail of long strings;
// contents under 4 bytes exist in Snort but are never chosen as the fast
// pattern, so they never reach the multi-pattern stage.
func contentLen(rng *rand.Rand) int {
	l := math.Exp(math.Log(11) + 0.5*rng.NormFloat64())
	return min(max(int(math.Round(l)), 4), 64)
}

// GenerateRules returns n rules with distinct contents, deterministically
// from seed, and sids counting up from 1000001. See the package
// documentation for the distribution.
func GenerateRules(seed int64, n int) []Rule {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed_1d5))
	rules := make([]Rule, 0, n)
	seen := map[string]bool{}
	for len(rules) < n {
		var r Rule
		u := rng.Float64()
		switch {
		case u < shareWeb:
			r = webRule(rng)
		case u < shareWeb+shareText:
			r = textRule(rng)
		default:
			r = binaryRule(rng)
		}
		k := string(r.Content)
		if r.NoCase {
			k = "i:" + strings.ToLower(k)
		} else {
			k = "s:" + k
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		r.SID = uint32(firstSID + len(rules))
		rules = append(rules, r)
	}
	return rules
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// fill builds a string of n bytes from first and pieces drawn by next,
// cutting the last piece. Cut fragments are realistic: Snort contents are
// often a distinctive part of a path or command, not a whole token. The
// string always extends at least 3 bytes past first: a bare command,
// directory or parameter name ("USER ", "/admin/", "?page=") is in most
// benign traffic, and no rule writer would make it a fast pattern.
func fill(rng *rand.Rand, n int, first string, next func() string) []byte {
	if first != "" {
		n = max(n, len(first)+3)
	}
	b := []byte(first)
	for len(b) < n {
		b = append(b, next()...)
	}
	return b[:n]
}

var (
	webDirs = []string{"/cgi-bin/", "/scripts/", "/admin/", "/_vti_bin/", "/wp-content/plugins/",
		"/wp-admin/", "/phpmyadmin/", "/include/", "/includes/", "/modules/", "/servlet/", "/iisadmin/",
		"/msadc/", "/webdav/", "/cgi/", "/manager/html/", "/jmx-console/", "/portal/", "/bin/", "/api/",
		"/components/", "/templates/", "/setup/", "/install/", "/backup/", "/console/", "/solr/", "/struts/"}
	webFiles = []string{"phf", "test-cgi", "formmail.pl", "shtml.exe", "cmd.exe", "root.exe", "setup.php",
		"config.inc.php", "index.jsp", "upload.php", "admin.asp", "login.cgi", "search.pl", "view.php",
		"download.asp", "printenv", "nph-test-cgi", "awstats.pl", "htsearch", "count.cgi", "guestbook.pl",
		"xmlrpc.php", "shell.php", "c99.php", "r57.php", "eval-stdin.php", "invoker.jsp", "web.config"}
	webExts   = []string{".php", ".asp", ".aspx", ".jsp", ".cgi", ".pl", ".exe", ".dll", ".ida", ".idq", ".htr", ".shtml"}
	webParams = []string{"?id=", "?page=", "?file=", "?cmd=", "&cmd=", "?path=", "?url=", "?q=", "&action=",
		"?include=", "?dir=", "?template=", "&user=", "?debug=", "?redirect="}
	webAttacks = []string{"../", "..%2f", "%2e%2e%2f", "..%c0%af", "..%255c", "%00", "/etc/passwd", "/bin/sh",
		"' or 1=1", "union select", "union all select", "<script>", "javascript:", "document.cookie",
		"onerror=", "alert(", "eval(", "base64_decode(", "system(", "exec(", "passthru(", "cmd.exe?/c+",
		"xp_cmdshell", "concat(", "sleep(", "benchmark(", "information_schema", "php://input",
		"data:text/html", "file:///", "${jndi:", "%{(#", "wget%20", "curl%20"}
	syllables = []string{"ad", "min", "up", "load", "con", "fig", "ser", "vlet", "port", "al", "web", "mail",
		"user", "pass", "log", "in", "out", "data", "base", "file", "man", "ager", "shop", "cart", "news",
		"view", "edit", "del", "show", "list", "get", "set", "dump", "sys", "info", "test", "dev", "tmp"}
)

// word is a made-up identifier from syllables, so a few thousand rules
// stay distinct without an endless vocabulary.
func word(rng *rand.Rand) string {
	n := 1 + rng.IntN(3)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(pick(rng, syllables))
	}
	return b.String()
}

func webRule(rng *rand.Rand) Rule {
	n := contentLen(rng)
	var c []byte
	switch rng.IntN(4) {
	case 0: // a script or directory that should not be requested
		c = fill(rng, n, pick(rng, webDirs), func() string {
			if rng.IntN(2) == 0 {
				return pick(rng, webFiles)
			}
			return word(rng) + pick(rng, webExts)
		})
	case 1: // a vulnerable script with its parameter
		c = fill(rng, n, word(rng)+pick(rng, webExts), func() string { return pick(rng, webParams) + word(rng) })
	case 2: // parameter plus attack string (injection, traversal, XSS)
		c = fill(rng, n, pick(rng, webParams), func() string { return pick(rng, webAttacks) })
	default: // attack string alone, possibly chained
		c = fill(rng, n, pick(rng, webAttacks), func() string { return pick(rng, webAttacks) })
	}
	port := uint16(80)
	switch u := rng.Float64(); {
	case u < 0.10:
		port = 8080
	case u < 0.35:
		port = 0 // $HTTP_PORTS in Snort is several ports; "any" here
	}
	return Rule{Proto: 6, DstPort: port, Content: c, NoCase: rng.Float64() < nocaseWeb,
		Msg: "WEB-ATTACK " + strings.TrimSpace(string(c[:min(len(c), 24)]))}
}

// textProtos are the text protocols keyword rules watch, with commands and
// the suspicious arguments their rules look for.
var textProtos = []struct {
	name  string
	proto uint8
	port  uint16
	cmds  []string
	args  []string
}{
	{"FTP", 6, 21, []string{"SITE EXEC ", "SITE CHMOD ", "USER ", "PASS ", "CWD ", "RETR ", "STOR ", "MKD ", "RNFR ", "LIST ", "NLST ", "PORT "},
		[]string{"~root", "root", "%x%x%x%x", "%n%n", "../../", "/etc/shadow", "AAAAAAAAAAAA", "|sh", "*/*/*/*", "ddd@", "anonymous@"}},
	{"SMTP", 6, 25, []string{"EXPN ", "VRFY ", "RCPT TO:", "MAIL FROM:", "HELO ", "EHLO ", "DEBUG", "WIZ", "TURN"},
		[]string{"decode", "root", "|/bin/sh", "<@", "`", "%s%s%s", "\"|", "uudecode", "AAAAAAAAAAAA"}},
	{"POP3", 6, 110, []string{"USER ", "PASS ", "APOP ", "LIST ", "RETR ", "DELE ", "TOP "},
		[]string{"%n%n", "-1", "AAAAAAAAAAAA", "%x%x", "99999999"}},
	{"IMAP", 6, 143, []string{"LOGIN ", "AUTHENTICATE ", "SELECT ", "FETCH ", "LSUB ", "RENAME "},
		[]string{"{", "\"%s%s\"", "AAAAAAAAAAAA", "../", "* (BODY["}},
	{"SIP", 17, 5060, []string{"INVITE sip:", "REGISTER sip:", "OPTIONS sip:", "Via: SIP/2.0/UDP ", "Contact: <sip:"},
		[]string{"%s%s", "AAAAAAAAAAAA", ";branch=%", "@localhost", "<>"}},
	{"SHELL", 0, 0, []string{"/bin/sh", "/bin/bash -i", "uname -a", "id;", "wget http", "curl -o ", "chmod 777 ", "rm -rf ", "nc -e ", "echo ", "cat /etc/"},
		[]string{"/tmp/", ";", "|", "passwd", "shadow", ">/dev/null", "&&", " -O- "}},
	{"SQL", 6, 3306, []string{"xp_cmdshell", "EXEC master..", "sp_oacreate", "select load_file(", "into outfile ", "drop table ", "' OR '1'='1"},
		[]string{"'", "--", "/*", "0x", ";"}},
	{"MALWARE", 6, 0, []string{"User-Agent: ", "X-Bot-ID: ", "Cookie: ", "POST /gate.php", "GET /cmd.", "BOT-ID:", "PRIVMSG #", "JOIN #", "NICK "},
		[]string{"Mozilla/4.0 (compatible; MSIE 6.0;", "wget", "python-requests", "zmeu", "masscan", "sqlmap", "Nikto", "botnet", "[x]", "ddos"}},
}

func textRule(rng *rand.Rand) Rule {
	p := pick(rng, textProtos)
	n := contentLen(rng)
	c := fill(rng, n, pick(rng, p.cmds), func() string {
		if rng.IntN(3) == 0 {
			return word(rng)
		}
		return pick(rng, p.args)
	})
	r := Rule{Proto: p.proto, Content: c, NoCase: rng.Float64() < nocaseText,
		Msg: p.name + " suspicious " + strings.TrimSpace(string(c[:min(len(c), 24)]))}
	if p.port != 0 && rng.Float64() < 0.75 {
		r.DstPort = p.port
	}
	return r
}

// Binary building blocks: the opcodes and headers binary signatures are
// made of. The x86 sequences are the well-known idioms of 1990s-2000s
// shellcode (xor eax,eax; push "//sh"; int 0x80; jmp esp; call-pop), the
// others protocol headers that exploits have to carry (SMB, DCE/RPC bind,
// MS-SQL resolution, DNS).
var binaryChunks = [][]byte{
	{0x31, 0xc0}, {0x31, 0xdb}, {0x31, 0xc9}, {0x31, 0xd2}, {0x50}, {0x68, '/', '/', 's', 'h'},
	{0x68, '/', 'b', 'i', 'n'}, {0x89, 0xe3}, {0x89, 0xe1}, {0xb0, 0x0b}, {0xcd, 0x80}, {0xff, 0xe4},
	{0xeb, 0x1f}, {0xeb, 0xfe}, {0x5e}, {0xe8, 0xff, 0xff, 0xff, 0xff}, {0x6a, 0x0b}, {0x58}, {0x99},
	{0x8b, 0x45}, {0x64, 0xa1, 0x30, 0x00, 0x00, 0x00}, {0xfc, 0xe8}, {0x60, 0x89, 0xe5},
	{0xff, 'S', 'M', 'B'}, {0xfe, 'S', 'M', 'B'}, {0x05, 0x00, 0x0b, 0x03, 0x10, 0x00, 0x00, 0x00},
	{0x04, 0x01, 0x00}, {0x00, 0x00, 0x01, 0x00, 0x00, 0x01}, {0x00, 0x01, 0x00, 0x00},
	{0x4d, 0x5a, 0x90, 0x00}, {0x7f, 'E', 'L', 'F'},
}

var binaryPorts = []struct {
	proto uint8
	port  uint16
}{{6, 135}, {6, 139}, {6, 445}, {17, 1434}, {17, 53}, {17, 161}, {6, 3389}, {6, 1433}}

// binaryByte draws a filler byte: NULs and 0xff are over-represented as in
// real binary protocol fields and exploit padding; the rest is mixed
// printable and uniform.
func binaryByte(rng *rand.Rand) byte {
	switch u := rng.Float64(); {
	case u < 0.20:
		return 0x00
	case u < 0.28:
		return 0xff
	case u < 0.43:
		return byte(0x20 + rng.IntN(0x5f))
	default:
		return byte(rng.IntN(256))
	}
}

// distinctBytes counts the different byte values in b.
func distinctBytes(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}

// binaryRule draws a binary signature with at least 3 distinct byte
// values: strings like 00 01 00 00 occur in every DNS or SMB header and
// would flag benign traffic, so no rule writer uses them alone.
func binaryRule(rng *rand.Rand) Rule {
	for {
		if r := binaryRule1(rng); distinctBytes(r.Content) >= 3 {
			return r
		}
	}
}

func binaryRule1(rng *rand.Rand) Rule {
	n := contentLen(rng)
	var first string
	if rng.IntN(5) == 0 {
		// A NOP sled or 'A' padding in front of the payload.
		first = strings.Repeat(string([]byte{pick(rng, []byte{0x90, 0x41, 0x0c})}), 4+rng.IntN(8))
	}
	c := fill(rng, n, first, func() string {
		if rng.IntN(2) == 0 {
			return string(pick(rng, binaryChunks))
		}
		k := 1 + rng.IntN(4)
		b := make([]byte, k)
		for i := range b {
			b[i] = binaryByte(rng)
		}
		return string(b)
	})
	r := Rule{Proto: 0, Content: c, Msg: fmt.Sprintf("EXPLOIT binary signature %x", c[:min(len(c), 6)])}
	if rng.Float64() < 0.6 {
		bp := pick(rng, binaryPorts)
		r.Proto, r.DstPort = bp.proto, bp.port
	}
	return r
}
