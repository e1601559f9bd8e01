package durable

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

const childEnv = "E3_DURABLE_CRASH_CHILD"

// runChild is the writer process of TestKill9KeepsAcknowledgedWrites: when
// the test binary is started with childEnv set to a file path, it writes
// to a store there from several goroutines and prints each write whose
// Sync returned, until it is killed.
func runChild() bool {
	path := os.Getenv(childEnv)
	if path == "" {
		return false
	}
	st, err := Open(path, "test/kv.0", Options{}) // fsync on
	if err == nil {
		var k *kv
		if k, err = newKV(st); err == nil {
			err = st.Start()
			if err == nil {
				childWrite(st, k)
			}
		}
	}
	fmt.Fprintln(os.Stderr, "child:", err)
	os.Exit(2)
	return true
}

func childWrite(st *Store, k *kv) {
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := uint64(1); w <= 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); ; i++ {
				k.mu.Lock()
				k.m.Set(w, i)          // the writer's counter: only grows
				k.m.Set(w<<32|i, i)    // one key per write
				k.arr.Set(int(w%4), i) // and a shared array slot
				k.mu.Unlock()
				if err := st.Sync(context.Background()); err != nil {
					fmt.Fprintln(os.Stderr, "child sync:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d\n", w, i)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestKill9KeepsAcknowledgedWrites is the issue's "kill an agent process
// mid-run and restart it": a child process writes with fsync on and
// reports every acknowledged write over a pipe; it is killed with SIGKILL
// in the middle of writing, and the parent reopens the file and finds
// every acknowledged write.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := tmp(t, "kv.db")
	for round := 0; round < 2; round++ { // the second round restarts on the first's file
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[uint64]uint64{} // writer -> highest acknowledged i
		var writes [][2]uint64
		sc := bufio.NewScanner(stdout)
		deadline := time.Now().Add(20 * time.Second)
		for len(writes) < 400 && time.Now().Before(deadline) && sc.Scan() {
			var w, i uint64
			if _, err := fmt.Sscanf(sc.Text(), "%d %d", &w, &i); err != nil {
				t.Fatalf("child said %q: %v", sc.Text(), err)
			}
			writes = append(writes, [2]uint64{w, i})
			acked[w] = max(acked[w], i)
		}
		// Kill it while it writes: SIGKILL, no chance to flush or close.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() { // acknowledgements that were already in the pipe count too
			var w, i uint64
			if _, err := fmt.Sscanf(sc.Text(), "%d %d", &w, &i); err == nil {
				writes = append(writes, [2]uint64{w, i})
				acked[w] = max(acked[w], i)
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, not by SIGKILL", err)
		}
		if len(writes) < 50 {
			t.Fatalf("round %d: only %d writes acknowledged before the kill", round, len(writes))
		}

		st, k := startKV(t, path, Options{})
		for _, wi := range writes {
			if v, ok := k.get(wi[0]<<32 | wi[1]); !ok || v != wi[1] {
				t.Fatalf("round %d: acknowledged write %d of writer %d lost (got %d,%v)", round, wi[1], wi[0], v, ok)
			}
		}
		for w, i := range acked {
			if v, _ := k.get(w); v < i {
				t.Fatalf("round %d: writer %d's counter is %d, %d was acknowledged", round, w, v, i)
			}
		}
		t.Logf("round %d: %d acknowledged writes all present after SIGKILL; store at LSN %d", round, len(writes), st.LSN())
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
