// Command export writes the nids benchmark inputs for the C peers in
// services/nids/bench: the patterns of the generated rule set and the
// transport payloads of generated packets, the same ones BenchmarkMatch
// scans. It prints the number of occurrences the Go matcher finds in one
// pass, which every peer must reproduce.
//
//	go run ./services/nids/bench/export -out DIR
//
// patterns.txt: one pattern per line, "<nocase 0|1> <hex bytes>".
// payloads.bin: each payload as a 4-byte little-endian length and its bytes.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/e3-platform/e3/services/internal/packet"
	"github.com/e3-platform/e3/services/nids"
)

func main() {
	out := flag.String("out", ".", "directory to write patterns.txt and payloads.bin to")
	n := flag.Int("packets", nids.BenchPackets, "packets to generate")
	size := flag.Int("size", packet.DefaultSize, "IPv4 packet size in bytes")
	seed := flag.Int64("seed", nids.BenchSeed, "packet generator seed")
	rules := flag.Int("rules", nids.DefaultRuleCount, "rules to generate")
	flag.Parse()
	if err := run(*out, *n, *size, *seed, *rules); err != nil {
		fmt.Fprintln(os.Stderr, "export:", err)
		os.Exit(1)
	}
}

func run(dir string, n, size int, seed int64, nrules int) error {
	rs := nids.GenerateRules(nids.DefaultRuleSeed, nrules)
	m, err := nids.Compile(nids.Patterns(rs))
	if err != nil {
		return err
	}
	pf, err := os.Create(filepath.Join(dir, "patterns.txt"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(pf)
	for _, r := range rs {
		nc := 0
		if r.NoCase {
			nc = 1
		}
		fmt.Fprintf(w, "%d %s\n", nc, hex.EncodeToString(r.Content))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := pf.Close(); err != nil {
		return err
	}
	payloads, err := nids.BenchPayloads(n, size, seed)
	if err != nil {
		return err
	}
	df, err := os.Create(filepath.Join(dir, "payloads.bin"))
	if err != nil {
		return err
	}
	w = bufio.NewWriter(df)
	bytes, matches := 0, 0
	for _, p := range payloads {
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], uint32(len(p)))
		w.Write(l[:])
		w.Write(p)
		bytes += len(p)
		matches += m.Count(p)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := df.Close(); err != nil {
		return err
	}
	st := m.Stats()
	fmt.Printf("patterns %d payloads %d bytes %d matches %d dfa_states %d classes %d table_bytes %d\n",
		len(rs), len(payloads), bytes, matches, st.States, st.Classes, st.TableBytes)
	return nil
}
