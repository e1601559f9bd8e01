package natv4

import (
	"testing"

	"pgregory.net/rapid"
)

// linearLPM is the reference: scan every route, keep the longest match;
// among equal prefixes the last listed wins, as in Table.
func linearLPM(routes []Route, addr uint32) uint16 {
	best, bestLen := uint16(0), -1
	for _, r := range routes {
		m := mask(r.Len)
		if addr&m == r.Addr&m && r.Len >= bestLen {
			best, bestLen = r.NextHop, r.Len
		}
	}
	return best
}

// TestDIR248AgainstLinearScan is the property test of issue 3: for random
// prefix sets (clustered so that prefixes nest and overlap, all lengths
// 0-32) every lookup agrees with a linear scan, at random addresses and at
// the first and last address of, and just outside, every prefix.
func TestDIR248AgainstLinearScan(t *testing.T) {
	tab := &Table{tbl24: make([]uint16, 1<<24)} // reused: 32 MiB per build otherwise
	rapid.Check(t, func(t *rapid.T) {
		// A few random /8 "regions" make nesting likely.
		regions := rapid.SliceOfN(rapid.Uint32(), 1, 4).Draw(t, "regions")
		n := rapid.IntRange(0, 40).Draw(t, "n")
		routes := make([]Route, n)
		for i := range routes {
			base := regions[rapid.IntRange(0, len(regions)-1).Draw(t, "region")]
			// Short prefixes fill up to 2^24 TBL24 entries each; keep
			// them present but rare so a run stays fast.
			l := rapid.IntRange(9, 32).Draw(t, "len")
			if rapid.IntRange(0, 9).Draw(t, "short") == 0 {
				l = rapid.IntRange(0, 8).Draw(t, "shortlen")
			}
			low := rapid.Uint32().Draw(t, "low")
			a := base&0xff000000 | low&0x00ffffff
			if rapid.Bool().Draw(t, "near") {
				a = base&0xffffff00 | low&0xff // same /24 as the region base: long prefixes collide
			}
			routes[i] = Route{Addr: a, Len: l, NextHop: uint16(rapid.IntRange(1, MaxNextHop).Draw(t, "hop"))}
		}
		if err := tab.Rebuild(routes); err != nil {
			t.Fatal(err)
		}
		check := func(a uint32) {
			if got, want := tab.Lookup(a), linearLPM(routes, a); got != want {
				t.Fatalf("Lookup(%s) = %d, linear scan %d", addrString(a), got, want)
			}
		}
		for _, r := range routes {
			m := mask(r.Len)
			first, last := r.Addr&m, r.Addr|^m
			check(first)
			check(last)
			check(first - 1)
			check(last + 1)
		}
		for _, a := range rapid.SliceOfN(rapid.Uint32(), 50, 50).Draw(t, "addrs") {
			check(a)
		}
		for _, b := range regions {
			check(b)
		}
	})
}

func TestGeneratedRoutes(t *testing.T) {
	routes := GenerateRoutes(1, 4000, 16, true)
	if len(routes) != 4001 {
		t.Fatalf("%d routes, want 4001", len(routes))
	}
	var byLen [33]int
	for _, r := range routes[:4000] {
		byLen[r.Len]++
		if r.Len < 8 || r.Addr&^mask(r.Len) != 0 || r.NextHop < 1 || r.NextHop > 16 {
			t.Fatalf("bad route %+v", r)
		}
	}
	if byLen[24] < 2000 || byLen[24] > 2700 || byLen[22]+byLen[23] < 650 {
		t.Errorf("length distribution off: %v", byLen)
	}
	long := 0
	for l := 25; l <= 32; l++ {
		long += byLen[l]
	}
	if long == 0 {
		t.Error("no prefixes longer than /24")
	}
	tab, err := NewTable(routes)
	if err != nil {
		t.Fatal(err)
	}
	if tab.LongBlocks() == 0 {
		t.Error("no TBLlong blocks built")
	}
	// Spot-check against the linear scan on this realistic table.
	for i := uint32(0); i < 5000; i++ {
		a := i * 2654435761
		if got, want := tab.Lookup(a), linearLPM(routes, a); got != want {
			t.Fatalf("Lookup(%s) = %d, linear %d", addrString(a), got, want)
		}
	}
	t.Logf("%d routes, %d TBLlong blocks, lengths %v", tab.Routes(), tab.LongBlocks(), byLen)
	again := GenerateRoutes(1, 4000, 16, true)
	for i := range routes {
		if routes[i] != again[i] {
			t.Fatal("route generation is not deterministic")
		}
	}
}

func TestParseRoutes(t *testing.T) {
	rs, err := ParseRoutes("0.0.0.0/0>1; 198.51.100.0/24>2, 198.51.100.128/25 > 3")
	if err != nil || len(rs) != 3 || rs[2] != (Route{Addr: 0xc6336480, Len: 25, NextHop: 3}) {
		t.Fatalf("%+v %v", rs, err)
	}
	for _, bad := range []string{"10.0.0.0/8", "10.0.0.0/33>1", "::/0>1", "10.0.0.0/8>0", "10.0.0.0/8>x"} {
		if _, err := ParseRoutes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := NewTable([]Route{{Len: 40, NextHop: 1}}); err == nil {
		t.Error("length 40 accepted")
	}
}

func BenchmarkLookup(b *testing.B) {
	tab, err := NewTable(GenerateRoutes(1, 4000, 16, true))
	if err != nil {
		b.Fatal(err)
	}
	addrs := make([]uint32, 4096)
	for i := range addrs {
		addrs[i] = uint32(i) * 2654435761
	}
	i := 0
	var sink uint16
	for b.Loop() {
		sink += tab.Lookup(addrs[i&4095])
		i++
	}
	_ = sink
}
