package kvs

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/e3-platform/e3/collections"
	"github.com/e3-platform/e3/service"
)

// serveTCP serves the memcached protocol for h on a loopback port until
// the test ends: the smallest ingress, for driving the store with real
// memcached clients.
func serveTCP(t *testing.T, h service.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				sess := NewSession(h, DefaultMaxValue)
				buf := make([]byte, 0, 64<<10)
				var out []byte
				for {
					if len(buf) == cap(buf) {
						buf = append(buf, 0)[:len(buf)]
					}
					n, err := c.Read(buf[len(buf):cap(buf)])
					buf = buf[:len(buf)+n]
					var used int
					var closeConn bool
					out, used, closeConn = sess.Serve(out[:0], buf, time.Now().UnixNano())
					buf = append(buf[:0], buf[used:]...)
					if len(out) > 0 {
						if _, werr := c.Write(out); werr != nil {
							return
						}
					}
					if closeConn || err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func needTool(t *testing.T, name string) string {
	return needToolPkg(t, name, "libmemcached-tools")
}

// needToolPkg finds a program from a Debian package, skipping the test
// when it is missing, except under CI=true where it must be installed.
func needToolPkg(t *testing.T, name, pkg string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: CI must install Debian's %s", name, pkg)
		}
		t.Skipf("%s not found: install Debian's %s to run this test", name, pkg)
	}
	return p
}

// TestMemaslap drives the store with memaslap (Debian ships it as
// memcaslap), libmemcached's load generator, over TCP: 9:1 get:set with
// 512-byte values, multi-gets of 4 keys, and data verification of 10 %
// of the gets. It must finish with no verification failure.
func TestMemaslap(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a real client for a few seconds")
	}
	bin := needTool(t, "memcaslap")
	h, err := New(service.Env{Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTCP(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-s", addr, "-T", "1", "-c", "8", "-x", "40000",
		"-X", "512", "-v", "0.1", "-d", "4", "-w", "2k").CombinedOutput()
	t.Logf("memcaslap:\n%s", out)
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		t.Fatalf("memcaslap failed: %v", err)
	}
	// Its summary counts operations and verification failures.
	m := regexp.MustCompile(`(?m)^\s*verify_failed:\s*(\d+)`).FindSubmatch(out)
	if m != nil {
		if n, _ := strconv.Atoi(string(m[1])); n != 0 {
			t.Errorf("%d verification failures", n)
		}
	}
	if !regexp.MustCompile(`(?m)^Run time: `).Match(out) {
		t.Errorf("no summary from memcaslap")
	}
	if s := h.(*Store); s.Len() == 0 {
		t.Error("memcaslap stored nothing")
	}
}

// TestMemcachedTools stores, reads and deletes a file with libmemcached's
// command-line client.
func TestMemcachedTools(t *testing.T) {
	cp, cat, rm := needTool(t, "memccp"), needTool(t, "memccat"), needTool(t, "memcrm")
	h, err := New(service.Env{Store: collections.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTCP(t, h)
	dir := t.TempDir()
	content := "line one\r\nline two\x00 binary\n"
	if err := os.WriteFile(dir+"/greeting", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(bin string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--servers=" + addr}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
		}
		return string(out)
	}
	run(cp, "greeting")
	// memccat prints the value and then a newline of its own.
	if got := run(cat, "greeting"); got != content+"\n" {
		t.Errorf("memccat: %q, want %q", got, content+"\n")
	}
	run(rm, "greeting")
	if s := h.(*Store); s.Len() != 0 {
		t.Errorf("%d items after memcrm", s.Len())
	}
}

// TestTranscriptsMatchMemcached plays the protocol transcripts against a
// real memcached (Debian's memcached package), the reference for every
// reply line, error and framing rule our decoder copies. Blocks marked
// e3-only (commands memcached has and we refuse) and transcripts that
// set the clock are left out.
func TestTranscriptsMatchMemcached(t *testing.T) {
	if testing.Short() {
		t.Skip("starts memcached")
	}
	bin := needToolPkg(t, "memcached", "memcached")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "16", "-t", "1", "-u", "root",
		// Items of at most 1 KB, so that the transcripts' too-large set is
		// too large for memcached as well (its limit counts the item header
		// and key, ours only the value).
		"-I", "1024", "-o", "slab_chunk_max=512")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dial := func() net.Conn {
		for i := 0; i < 100; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				return c
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("memcached did not listen on %s: %s", addr, stderr.String())
		return nil
	}
	files, _ := filepath.Glob("testdata/memcache/*.txt")
	for _, f := range files {
		blocks := readTranscript(t, f)
		if slices.ContainsFunc(blocks, func(b block) bool { return b.now != 0 }) {
			continue // memcached's clock cannot be set
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			c := dial()
			defer c.Close()
			// Keys are prefixed per file so that files do not see each
			// other's items: flush first instead.
			c.Write([]byte("flush_all\r\n"))
			readAtLeast(t, c, len("OK\r\n"))
			for _, b := range blocks {
				if b.e3Only {
					continue
				}
				if _, err := c.Write(b.client); err != nil {
					t.Fatalf("%s:%d: write: %v", f, b.line, err)
				}
				got, eof := readAtLeast(t, c, len(b.want))
				if b.expectClose {
					for !eof {
						var more []byte
						more, eof = readAtLeast(t, c, 1)
						got = append(got, more...)
					}
				}
				if !bytes.Equal(got, b.want) || eof != b.expectClose {
					t.Errorf("%s:%d: memcached answers\n%q (closed %v)\nthe transcript says\n%q (closed %v)", f, b.line, got, eof, b.want, b.expectClose)
				}
				if eof {
					return
				}
			}
		})
	}
}

// readAtLeast reads until n bytes have come, then a little longer to
// catch any surplus; it reports whether the peer closed.
func readAtLeast(t *testing.T, c net.Conn, n int) ([]byte, bool) {
	var got []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(2 * time.Second)
	for {
		wait := deadline
		if len(got) >= n {
			wait = time.Now().Add(50 * time.Millisecond)
		}
		c.SetReadDeadline(wait)
		k, err := c.Read(buf)
		got = append(got, buf[:k]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got, false
			}
			return got, true
		}
	}
}
