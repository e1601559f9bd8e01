package localcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process in a process group of its own. Its own group
// keeps a Ctrl-C at the terminal (which signals the foreground group)
// from reaching the children directly: e3 up catches it and stops them
// in order. Pdeathsig kills a child whose parent dies without stopping it
// (a crash, a SIGKILL, a test binary that times out), so that no child
// outlives e3 up. The child's stdout and stderr go to a log file; its
// first stdout line says it is ready.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // log file path
	done chan struct{}
	err  error // Wait's result, once done is closed

	mu     sync.Mutex
	killed bool // stopped or killed by us
}

// startProc starts argv with env added, logging to logPath, and waits up
// to timeout for its first line on stdout, which it returns.
func startProc(ctx context.Context, name string, argv, env []string, logPath string, timeout time.Duration) (*proc, string, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, "", fmt.Errorf("localcluster: starting %s (%s): %w", name, argv[0], err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	first := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		r := bufio.NewReader(out)
		line, err := r.ReadString('\n')
		fmt.Fprint(lf, line)
		if err == nil {
			first <- strings.TrimSpace(line)
		} else {
			close(first)
		}
		io.Copy(lf, r)
	}()
	go func() {
		<-copied
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line, ok := <-first:
		if ok {
			return p, line, nil
		}
		<-p.done
		return nil, "", fmt.Errorf("localcluster: %s exited before it was ready (%v); its log %s ends:\n%s", name, p.err, logPath, tail(logPath, 12))
	case <-t.C:
		p.kill()
		return nil, "", fmt.Errorf("localcluster: %s not ready after %v; its log %s ends:\n%s", name, timeout, logPath, tail(logPath, 12))
	case <-ctx.Done():
		p.kill()
		return nil, "", ctx.Err()
	}
}

// pid is the child's process id (and its process group's).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// signal sends sig to the child's whole process group.
func (p *proc) signal(sig syscall.Signal) error {
	err := syscall.Kill(-p.pid(), sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil // gone already
	}
	return err
}

// kill sends SIGKILL to the group and waits for the child.
func (p *proc) kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	p.signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to grace before SIGQUIT and SIGKILL.
// It reports whether the child exited by itself with status 0.
func (p *proc) stop(grace time.Duration) (clean bool) {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return false
	default:
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		// The group may hold more processes than the child itself (ip
		// netns exec execs, so it does not; a wrapper script might).
		p.signal(syscall.SIGKILL)
		return p.err == nil
	case <-time.After(grace):
		// Stuck: a Go program prints every goroutine's stack on SIGQUIT
		// (to its log) and exits, which shows where.
		p.signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(time.Second):
		}
		p.signal(syscall.SIGKILL)
		<-p.done
		return false
	}
}

// exited reports whether the child has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
