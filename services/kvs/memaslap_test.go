package kvs

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
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
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: CI must install Debian's libmemcached-tools", name)
		}
		t.Skipf("%s not found: install Debian's libmemcached-tools to drive the store with a real memcached client", name)
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
