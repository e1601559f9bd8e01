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
	"bufio"
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
	ServerCPU   float64       // server CPU seconds (user+system) in the interval; 0 if unknown
	ClientCPU   float64       // client CPU seconds in the interval
	// RPSPerCore is Requests per server CPU second: the rate one fully busy
	// server core would sustain. It is the fair figure when the client,
	// not the server, limits the raw rate.
	RPSPerCore float64
}

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

// processCPU returns a process's user+system CPU seconds from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s), or 0.
func processCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadBytes('\n')
	// The command name may contain spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(line, ')')
	if i < 0 {
		return 0
	}
	fields := bytes.Fields(line[i+1:])
	if len(fields) < 13 {
		return 0
	}
	// After ')' come state (field 3), ... utime is field 14, stime 15.
	ut, _ := strconv.ParseFloat(string(fields[11]), 64)
	st, _ := strconv.ParseFloat(string(fields[12]), 64)
	return (ut + st) / 100
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
