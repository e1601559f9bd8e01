// Command udpecho runs the Go side of the transport echo benchmark.
//
//	udpecho serve -addr 127.0.0.1:9000
//	udpecho load  -addr 127.0.0.1:9000 -server-pid PID -duration 5s
//	udpecho load  -addr 127.0.0.1:9000 -server-pid PID -burst 20000
//
//	udpecho report [-last] results.jsonl
//
// serve is the Go echo server (package echo's Serve on a transport.UDPConn);
// load is the closed-loop client that drives it or the C peer (../echo.c).
// report summarises the JSON lines that load -json printed: medians per
// server and the ratio Go/C. ../run.sh runs both servers under the same
// client and prints the report.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/e3-platform/e3/transport"
	"github.com/e3-platform/e3/transport/bench/echo"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: udpecho serve|load [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: want serve, load or report", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpecho:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "address to serve on")
	batch := fs.Int("batch", 64, "datagrams per ReadBatch/WriteBatch")
	xnet := fs.Bool("xnet", false, "use golang.org/x/net/ipv4's batch calls instead of the built-in recvmmsg/sendmmsg path")
	sockbuf := fs.Int("sockbuf", 4<<20, "socket buffer bytes (SO_RCVBUF, SO_SNDBUF)")
	fs.Parse(args)
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		return err
	}
	conn, err := transport.ListenUDP(ap, transport.UDPConfig{XNet: *xnet, SocketBuffer: *sockbuf})
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sig; conn.Close() }()
	n, err := echo.Serve(conn, *batch)
	fmt.Printf("echoed %d\n", n)
	return err
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "echo server address")
	window := fs.Int("window", 256, "requests outstanding")
	batch := fs.Int("batch", 64, "datagrams per ReadBatch/WriteBatch")
	payload := fs.Int("payload", 64, "payload bytes after the 56-byte E3 header")
	warmup := fs.Duration("warmup", time.Second, "warm-up before measuring")
	duration := fs.Duration("duration", 5*time.Second, "measured interval")
	pid := fs.Int("server-pid", 0, "server process id, to measure its CPU time")
	label := fs.String("label", "", "name printed with the result")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	burst := fs.Int("burst", 0, "if > 0: instead of a closed loop, measure the server saturated: rounds of this many requests queued while it is stopped (needs -server-pid)")
	rounds := fs.Int("rounds", 10, "rounds for -burst")
	fs.Parse(args)
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		return err
	}
	var res echo.Result
	if *burst > 0 {
		res, err = echo.Burst(echo.BurstConfig{Server: ap, ServerPID: *pid, Requests: *burst, Rounds: *rounds, Batch: *batch, Payload: *payload})
	} else {
		res, err = echo.Load(echo.LoadConfig{Server: ap, Window: *window, Batch: *batch, Payload: *payload, Warmup: *warmup, Duration: *duration, ServerPID: *pid})
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(struct {
			Label string `json:"label"`
			echo.Result
		}{*label, res})
	}
	fmt.Printf("%s: %v\n", *label, res)
	return nil
}

type record struct {
	Label string `json:"label"`
	echo.Result
}

func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	last := fs.Bool("last", false, "print only the last result")
	fs.Parse(args)
	if fs.NArg() != 1 {
		return fmt.Errorf("report: want one results file")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("report: %s line %d: %w", fs.Arg(0), line, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("report: %s: no results", fs.Arg(0))
	}
	if *last {
		r := recs[len(recs)-1]
		fmt.Printf("  %-3s %v\n", r.Label, r.Result)
		return nil
	}
	median := func(label string, get func(echo.Result) float64) float64 {
		var xs []float64
		for _, r := range recs {
			if r.Label == label {
				xs = append(xs, get(r.Result))
			}
		}
		if len(xs) == 0 {
			return 0
		}
		slices.Sort(xs)
		if len(xs)%2 == 1 {
			return xs[len(xs)/2]
		}
		return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	rps := func(r echo.Result) float64 { return r.RPS }
	perCore := func(r echo.Result) float64 { return r.RPSPerCore }
	util := func(r echo.Result) float64 { return r.ServerCPU / r.Seconds }
	// Labels are "IMPL MODE" (run.sh) or just "IMPL".
	var modes []string
	for _, r := range recs {
		mode := ""
		if _, m, ok := strings.Cut(r.Label, " "); ok {
			mode = m
		}
		if !slices.Contains(modes, mode) {
			modes = append(modes, mode)
		}
	}
	fmt.Println("medians:")
	for _, mode := range modes {
		label := func(impl string) string { return strings.TrimSpace(impl + " " + mode) }
		for _, impl := range []string{"C", "Go"} {
			l := label(impl)
			fmt.Printf("  %-10s %9.0f req/s   %9.0f req/s per server core   server busy %.2f cores\n", l, median(l, rps), median(l, perCore), median(l, util))
		}
		c, g := median(label("C"), perCore), median(label("Go"), perCore)
		cr, gr := median(label("C"), rps), median(label("Go"), rps)
		if c > 0 && cr > 0 {
			fmt.Printf("  ratio Go/C %s: %.3f per server core, %.3f wall-clock req/s\n", mode, g/c, gr/cr)
		}
	}
	return nil
}
