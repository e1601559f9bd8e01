package cli

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		flag, listen, want string
		err                bool
	}{
		{"", "10.0.1.11:7000", "10.0.1.11:7100", false},
		{"", "127.0.0.2:0", "127.0.0.2:0", false},
		{"none", "127.0.0.2:7000", "", false},
		{"0.0.0.0:9100", "127.0.0.2:7000", "0.0.0.0:9100", false},
		{"", "127.0.0.2:65500", "", true},
		{"localhost", "127.0.0.2:7000", "", true},
	} {
		got, err := metricsAddr(tc.flag, netip.MustParseAddrPort(tc.listen))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("metricsAddr(%q, %s) = %q, %v; want %q (error %v)", tc.flag, tc.listen, got, err, tc.want, tc.err)
		}
	}
}

// TestAgentCommandErrors: bad flags are refused before anything starts,
// naming the flag.
func TestAgentCommandErrors(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "join.token")
	if err := os.WriteFile(tok, []byte("join-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E3_JOIN_TOKEN", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "nic", "--server", "r0/s0", "--join-token-file", tok, "--state", "memory"}, "--role"},
		{[]string{"--role", "host", "--join-token-file", tok, "--state", "memory"}, "--server"},
		{[]string{"--role", "host", "--server", "r0/s0", "--state", "memory"}, "no join token"},
		{[]string{"--role", "host", "--server", "r0/s0", "--join-token-file", filepath.Join(dir, "none")}, "--join-token-file"},
		{[]string{"--role", "host", "--server", "r0/s0", "--join-token-file", tok, "--listen", "7000"}, "--listen"},
		{[]string{"--role", "host", "--server", "r0/s0", "--join-token-file", tok, "--listen", "0.0.0.0:7000", "--state", "memory"}, "--listen"},
		{[]string{"--role", "host", "--server", "r0/s0", "--join-token-file", tok, "--state", "tape", "--data", dir}, "--state"},
		{[]string{"--role", "host", "--server", "r0/s0", "--join-token-file", tok, "--state", "memory", "--model", "Nope"}, "--model"},
		{[]string{"--role", "host", "--server", "r0/s0", "--join-token-file", tok, "--state", "memory", "--log-level", "loud"}, "--log-level"},
	} {
		code, _, errOut := runCLI(t, append([]string{"agent"}, tc.args...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("e3 agent %s: exit %d, %q; want a failure naming %s", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}

func TestDefaultAgentDir(t *testing.T) {
	if got := defaultAgentDir("r0/s1", "smartnic", 2); got != "e3-agent-r0-s1-smartnic2" {
		t.Errorf("got %q", got)
	}
	if got := defaultAgentDir("r0/s1", "host", 0); got != "e3-agent-r0-s1-host" {
		t.Errorf("got %q", got)
	}
}

func TestUpCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--controllers", "9"}, "controllers"},
		{[]string{"--cluster", "3xNope"}, "unknown cluster"},
		{[]string{"--netns-subnet", "10.1.0.0"}, "--netns-subnet"},
		{[]string{"--log-level", "loud"}, "--log-level"},
	} {
		code, _, errOut := runCLI(t, append([]string{"up"}, tc.args...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("e3 up %s: exit %d, %q; want a failure naming %s", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}
