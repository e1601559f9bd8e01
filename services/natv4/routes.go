package natv4

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
)

// prefixLengthShare is the share, in parts per ten thousand, of each
// prefix length in the generated routing tables. It follows the shape of
// the public IPv4 BGP table as regularly reported (e.g. the CIDR Report
// and Huston's BGP table analyses, 2020-2024): /24 is more than half of
// all prefixes, /22 and /23 about a tenth each, /16-/21 a few per cent,
// shorter prefixes rare. Prefixes longer than /24 are filtered from the
// global table but common in provider and data-centre tables (customer
// /25-/30 and /32 host routes); they get 2% here so the TBLlong path of
// DIR-24-8 carries real traffic. The figures are rounded and assumed, not
// measured here.
var prefixLengthShare = [33]int{
	8: 2, 9: 2, 10: 3, 11: 5, 12: 10, 13: 20, 14: 40, 15: 70,
	16: 140, 17: 100, 18: 170, 19: 300, 20: 450, 21: 500,
	22: 1100, 23: 1000, 24: 5888,
	25: 40, 26: 30, 27: 20, 28: 20, 29: 20, 30: 30, 31: 10, 32: 30,
}

// GenerateRoutes returns n distinct prefixes of length 8-32 drawn from
// public unicast space with the length distribution above, each with a
// next hop from 1 to nextHops. With withDefault a default route 0.0.0.0/0
// to next hop 1 is added (the n+1st route), as an edge router has.
func GenerateRoutes(seed int64, n, nextHops int, withDefault bool) []Route {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e6174))
	var cum [33]int
	total := 0
	for l, s := range prefixLengthShare {
		total += s
		cum[l] = total
	}
	seen := make(map[[2]uint32]bool, n)
	routes := make([]Route, 0, n+1)
	for len(routes) < n {
		x := rng.IntN(total)
		l := 0
		for cum[l] <= x {
			l++
		}
		a := publicAddr(rng) & mask(l)
		k := [2]uint32{a, uint32(l)}
		if seen[k] {
			continue
		}
		seen[k] = true
		routes = append(routes, Route{Addr: a, Len: l, NextHop: uint16(1 + rng.IntN(nextHops))})
	}
	if withDefault {
		routes = append(routes, Route{Addr: 0, Len: 0, NextHop: 1})
	}
	return routes
}

func publicAddr(rng *rand.Rand) uint32 {
	for {
		a := rng.Uint32()
		switch o := a >> 24; {
		case o == 0, o == 10, o == 127, o >= 224, a>>20 == 0xac1, a>>16 == 0xc0a8:
			continue
		}
		return a
	}
}

// ParseRoutes parses a route list: entries separated by commas or
// semicolons, each "a.b.c.d/len>nexthop", e.g. "0.0.0.0/0>1, 198.51.100.0/24>2".
func ParseRoutes(s string) ([]Route, error) {
	var routes []Route
	for i, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' }) {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		pfx, nh, ok := strings.Cut(f, ">")
		if !ok {
			return nil, fmt.Errorf("natv4: route %d %q: want prefix>nexthop", i, f)
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(pfx))
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("natv4: route %d %q: %q is not an IPv4 prefix", i, f, pfx)
		}
		h, err := strconv.Atoi(strings.TrimSpace(nh))
		if err != nil || h < 1 || h > MaxNextHop {
			return nil, fmt.Errorf("natv4: route %d %q: next hop %q is not in 1..%d", i, f, nh, MaxNextHop)
		}
		routes = append(routes, Route{Addr: u32(p.Addr()), Len: p.Bits(), NextHop: uint16(h)})
	}
	return routes, nil
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
