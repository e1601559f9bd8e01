// Package echo is the one-hop echo benchmark of package transport: a UDP
// echo server built on [transport.UDPConn] batch I/O, and a closed-loop load
// client that keeps many requests outstanding and measures requests per
// second, and, given the server's process id, requests per second of server
// CPU time (requests/s per core).
//
// The same client drives the C peer in ../echo.c, so the two servers are
// compared under identical load; ../run.sh builds and runs both.
package echo

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/e3-platform/e3/transport"
)

// Serve echoes every E3 request that arrives on conn back to its source as
// a reply (the header's kind is changed, nothing else), batch datagrams at a
// time, until conn is closed. Datagrams that are not valid E3 messages are
// dropped. It returns the number of replies sent.
func Serve(conn transport.BatchConn, batch int) (uint64, error) {
	ms := transport.NewMessages(batch, 2048)
	var h transport.Header
	var echoed uint64
	for {
		n, err := conn.ReadBatch(ms)
		if err != nil {
			if errors.Is(err, transport.ErrClosed) {
				return echoed, nil
			}
			return echoed, err
		}
		out := 0
		for i := 0; i < n; i++ {
			b := ms[i].Payload()
			if h.Decode(b) != nil || h.Kind != transport.KindRequest {
				continue
			}
			b[1] = byte(transport.KindReply) // the kind byte: see transport.Header's layout
			if out != i {
				ms[out], ms[i] = ms[i], ms[out] // swap, so every slot keeps a buffer
			}
			out++
		}
		if out == 0 {
			continue
		}
		if _, err := conn.WriteBatch(ms[:out]); err != nil {
			if errors.Is(err, transport.ErrClosed) {
				return echoed, nil
			}
			return echoed, err
		}
		echoed += uint64(out)
	}
}

// LoadConfig configures [Load].
type LoadConfig struct {
	Server    netip.AddrPort // echo server address
	Window    int            // requests kept outstanding (closed loop)
	Batch     int            // datagrams per ReadBatch/WriteBatch
	Payload   int            // payload bytes after the 56-byte header
	Warmup    time.Duration  // run before measuring
	Duration  time.Duration  // measured interval
	Requests  int            // if > 0: stop after this many replies instead (no warm-up), for go test -bench
	ServerPID int            // if > 0, the server's CPU time is read from /proc
}

// Result is what one load run measured.
type Result struct {
	Requests    uint64        // replies received in the measured interval
	Seconds     float64       // length of the measured interval
	RPS         float64       // Requests / Seconds
	Resent      uint64        // requests resent after 200 ms without a reply (lost)
	MeanLatency time.Duration // mean request-to-reply time
	ServerCPU   float64       // server CPU seconds (all threads, from schedstat) in the interval; 0 if unknown
	ClientCPU   float64       // client CPU seconds in the interval
	// RPSPerCore is Requests per server CPU second: the rate one fully busy
	// server core would sustain. It is the fair figure when the client,
	// not the server, limits the raw rate.
	RPSPerCore float64
}

// String formats the result on one line for a terminal.
func (r Result) String() string {
	return fmt.Sprintf("%.0f req/s, server cpu %.2f cores, %.0f req/s per server core, client cpu %.2f cores, mean latency %v, resent %d",
		r.RPS, r.ServerCPU/r.Seconds, r.RPSPerCore, r.ClientCPU/r.Seconds, r.MeanLatency.Round(time.Microsecond), r.Resent)
}

// Load runs a closed-loop client against an echo server: Window requests
// are outstanding at all times; every reply is answered by a new request in
// the same batch. Request ids carry the slot and a generation, so a late
// reply to a request that was given up on is recognised and ignored.
func Load(cfg LoadConfig) (Result, error) {
	if cfg.Window < 1 || cfg.Batch < 1 || cfg.Payload < 0 || (cfg.Duration <= 0 && cfg.Requests <= 0) {
		return Result{}, fmt.Errorf("echo: load config %+v: want Window, Batch >= 1, Payload >= 0, and Duration or Requests > 0", cfg)
	}
	if cfg.Requests > 0 {
		cfg.Warmup, cfg.Duration = 0, 365*24*time.Hour
	}
	local := netip.AddrPortFrom(cfg.Server.Addr(), 0)
	conn, err := transport.ListenUDP(local, transport.UDPConfig{})
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()

	size := transport.HeaderSize + cfg.Payload
	out := transport.NewMessages(cfg.Batch, size)
	for i := range out {
		out[i].N = size
		out[i].Addr = cfg.Server
	}
	in := transport.NewMessages(cfg.Batch, 2048)
	gen := make([]uint32, cfg.Window)
	sentAt := make([]time.Time, cfg.Window)
	hdr := transport.Header{Kind: transport.KindRequest, App: 1, Instance: 1, PayloadLen: uint32(cfg.Payload), Weight: transport.InitialWeight}

	k := 0
	flush := func() error {
		if k == 0 {
			return nil
		}
		_, err := conn.WriteBatch(out[:k])
		k = 0
		return err
	}
	request := func(slot int, now time.Time) error {
		gen[slot]++
		hdr.Request = uint64(gen[slot])<<32 | uint64(slot)
		hdr.Timestamp = now.UnixNano()
		if err := hdr.Encode(out[k].Buf); err != nil {
			return err
		}
		sentAt[slot] = now
		k++
		if k == len(out) {
			return flush()
		}
		return nil
	}

	start := time.Now()
	for slot := range cfg.Window {
		if err := request(slot, start); err != nil {
			return Result{}, err
		}
	}
	if err := flush(); err != nil {
		return Result{}, err
	}

	var (
		res                    Result
		measuring              bool
		measureStart           time.Time
		serverCPU0, clientCPU0 float64
		latSum                 time.Duration
		deadlineSet            time.Time
		h                      transport.Header
	)
	warmupEnd := start.Add(cfg.Warmup)
	for {
		now := time.Now()
		if !measuring && !now.Before(warmupEnd) {
			measuring, measureStart = true, now
			serverCPU0, clientCPU0 = processCPU(cfg.ServerPID), selfCPU()
			res.Requests, res.Resent, latSum = 0, 0, 0
		}
		if measuring && (now.Sub(measureStart) >= cfg.Duration || (cfg.Requests > 0 && res.Requests >= uint64(cfg.Requests))) {
			res.Seconds = now.Sub(measureStart).Seconds()
			if cfg.ServerPID > 0 {
				res.ServerCPU = processCPU(cfg.ServerPID) - serverCPU0
			}
			res.ClientCPU = selfCPU() - clientCPU0
			break
		}
		if now.Sub(deadlineSet) > 10*time.Millisecond {
			conn.SetReadDeadline(now.Add(50 * time.Millisecond))
			deadlineSet = now
		}
		n, err := conn.ReadBatch(in)
		now = time.Now()
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return res, err
			}
			// Nothing for 50 ms: resend what has waited too long.
			for slot := range cfg.Window {
				if now.Sub(sentAt[slot]) > 200*time.Millisecond {
					res.Resent++
					if err := request(slot, now); err != nil {
						return res, err
					}
				}
			}
			if err := flush(); err != nil {
				return res, err
			}
			continue
		}
		for i := 0; i < n; i++ {
			if h.Decode(in[i].Payload()) != nil || h.Kind != transport.KindReply {
				continue
			}
			slot := int(h.Request & 0xffffffff)
			if slot >= cfg.Window || uint32(h.Request>>32) != gen[slot] {
				continue // a late reply to a request already resent
			}
			res.Requests++
			latSum += now.Sub(sentAt[slot])
			if err := request(slot, now); err != nil {
				return res, err
			}
		}
		if err := flush(); err != nil {
			return res, err
		}
	}
	res.RPS = float64(res.Requests) / res.Seconds
	if res.Requests > 0 {
		res.MeanLatency = latSum / time.Duration(res.Requests)
	}
	if res.ServerCPU > 0 {
		res.RPSPerCore = float64(res.Requests) / res.ServerCPU
	}
	return res, nil
}

// processCPU returns the CPU seconds all threads of a process have run,
// from /proc/PID/task/*/schedstat (nanoseconds, so short intervals measure
// well), or 0 if it cannot be read.
func processCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended meanwhile
		}
		if f := bytes.Fields(b); len(f) > 0 {
			v, _ := strconv.ParseFloat(string(f[0]), 64)
			ns += v
		}
	}
	return ns / 1e9
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BurstConfig configures [Burst].
type BurstConfig struct {
	Server    netip.AddrPort
	ServerPID int // required: the server is stopped and resumed by signal
	Requests  int // requests per round
	Rounds    int
	Batch     int
	Payload   int
}

// Burst measures the server saturated, free of any interference from the
// client: each round stops the server (SIGSTOP), queues Requests requests
// in its socket buffer, resumes it (SIGCONT) and collects the replies. The
// server then works through full batches as fast as its core allows, and
// its CPU time over the round is the cost of exactly those requests. The
// result's RPSPerCore is requests per second of server CPU. The server's
// and the client's socket buffers must hold a whole round (the servers
// take a buffer size argument; run.sh passes 64 MiB).
func Burst(cfg BurstConfig) (Result, error) {
	if cfg.ServerPID <= 0 || cfg.Requests < 1 || cfg.Rounds < 1 || cfg.Batch < 1 || cfg.Payload < 0 {
		return Result{}, fmt.Errorf("echo: burst config %+v: want ServerPID, Requests, Rounds, Batch >= 1 and Payload >= 0", cfg)
	}
	conn, err := transport.ListenUDP(netip.AddrPortFrom(cfg.Server.Addr(), 0), transport.UDPConfig{SocketBuffer: 64 << 20})
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	size := transport.HeaderSize + cfg.Payload
	out := transport.NewMessages(cfg.Batch, size)
	in := transport.NewMessages(cfg.Batch, 2048)
	hdr := transport.Header{Kind: transport.KindRequest, App: 1, Instance: 1, PayloadLen: uint32(cfg.Payload), Weight: transport.InitialWeight}
	var res Result
	var h transport.Header
	for round := 0; round < cfg.Rounds; round++ {
		if err := syscall.Kill(cfg.ServerPID, syscall.SIGSTOP); err != nil {
			return res, fmt.Errorf("echo: stop server %d: %w", cfg.ServerPID, err)
		}
		if err := waitStopped(cfg.ServerPID); err != nil {
			syscall.Kill(cfg.ServerPID, syscall.SIGCONT)
			return res, err
		}
		for sent := 0; sent < cfg.Requests; {
			k := min(cfg.Batch, cfg.Requests-sent)
			for i := range k {
				hdr.Request = uint64(sent + i)
				hdr.Encode(out[i].Buf)
				out[i].N = size
				out[i].Addr = cfg.Server
			}
			if _, err := conn.WriteBatch(out[:k]); err != nil {
				syscall.Kill(cfg.ServerPID, syscall.SIGCONT)
				return res, err
			}
			sent += k
		}
		cpu0 := processCPU(cfg.ServerPID)
		start := time.Now()
		syscall.Kill(cfg.ServerPID, syscall.SIGCONT)
		got := 0
		for got < cfg.Requests {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.ReadBatch(in)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break // the rest was dropped (a socket buffer overflowed)
				}
				return res, err
			}
			for i := 0; i < n; i++ {
				if h.Decode(in[i].Payload()) == nil && h.Kind == transport.KindReply {
					got++
				}
			}
		}
		res.Seconds += time.Since(start).Seconds()
		res.ServerCPU += processCPU(cfg.ServerPID) - cpu0
		res.Requests += uint64(got)
		res.Resent += uint64(cfg.Requests - got) // here: lost, never resent
	}
	if res.Seconds > 0 {
		res.RPS = float64(res.Requests) / res.Seconds
	}
	if res.ServerCPU > 0 {
		res.RPSPerCore = float64(res.Requests) / res.ServerCPU
	}
	return res, nil
}

// waitStopped waits until /proc shows every thread of the process stopped,
// so that no request is served before the round's CPU reading.
func waitStopped(pid int) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	for i := 0; i < 1000; i++ {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		stopped := true
		for _, t := range tasks {
			b, err := os.ReadFile(dir + "/" + t.Name() + "/stat")
			if err != nil {
				continue
			}
			if j := bytes.LastIndexByte(b, ')'); j < 0 || j+2 >= len(b) || b[j+2] != 'T' {
				stopped = false
				break
			}
		}
		if stopped {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("echo: server %d did not stop", pid)
}
