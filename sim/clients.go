package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// startClients schedules the first requests of application a.
func (s *sim) startClients(a int32) {
	ar := &s.apps[a]
	c := &ar.clients
	if c.Outstanding == 0 {
		s.q.push(s.now+s.expNs(1e9/c.Rate), evSend, a, -1)
		return
	}
	for i := range c.Outstanding {
		s.clientReady(a, int32(i), 0)
	}
}

// expNs draws an exponential time of mean meanNs from the arrivals stream.
func (s *sim) expNs(meanNs float64) int64 {
	return int64(s.r.arrivals.ExpFloat64()*meanNs + 0.5)
}

// clientReady is closed-loop client c of application a being ready at
// time t: after its think time, and a token from the rate limiter if
// there is one, it sends.
func (s *sim) clientReady(a, c int32, t int64) {
	ar := &s.apps[a]
	if ar.clients.Think > 0 {
		t += s.expNs(float64(ar.clients.Think))
	}
	if ar.interval > 0 {
		// Generic cell-rate algorithm: a send conforms if it is no more
		// than tau ahead of the theoretical arrival time.
		at := max(float64(t), ar.tat-ar.tau)
		ar.tat = max(ar.tat, at) + ar.interval
		t = int64(math.Ceil(at))
	}
	if t <= s.now {
		s.clientSend(a, c)
		return
	}
	s.q.push(t, evSend, a, c)
}

// clientSend sends a request of application a now: from closed-loop
// client c, or (c = -1) as the next arrival of the open-loop process,
// which also schedules the one after.
func (s *sim) clientSend(a, c int32) {
	ar := &s.apps[a]
	if c < 0 {
		s.q.push(s.now+s.expNs(1e9/ar.clients.Rate), evSend, a, -1)
		if ar.inFlight >= ar.maxFlight {
			if s.inWindow(s.now) {
				ar.rejected++
			}
			return
		}
	}
	ar.inFlight++
	if s.inWindow(s.now) {
		ar.sent++
	}
	// Source node by the workload mix, shard by the flow's ECMP hash.
	flow := s.r.keys.Uint64()
	src := ar.sources[0]
	if len(ar.sources) > 1 {
		u := s.r.keys.Float64()
		for _, d := range ar.sources {
			if u < s.dags[d].mixCum {
				src = d
				break
			}
		}
	}
	prim := s.dags[src].primaries
	inst := prim[pick(flow, saltSource, len(prim))]

	r := s.allocReq()
	s.reqs[r] = request{sent: s.now, pending: 1, app: a, client: c, ingress: inst}
	m := s.allocMsg()
	s.msgs[m] = message{
		key: ar.keys.draw(s.r.keys), flow: flow, req: r, inst: inst, src: -1,
		from: -1, bytes: ar.bytes,
	}
	s.fromClient(m)
}

// fromClient sends message m (a request) from its client to its
// instance's node: the client's NIC and the ToR, then the node's port.
func (s *sim) fromClient(m int32) {
	msg := &s.msgs[m]
	in := &s.insts[msg.inst]
	if in.migrating {
		msg.from = -1
		in.held = append(in.held, m)
		return
	}
	msg.to = in.node
	msg.stage = stageInstance
	s.q.push(s.now+int64(s.p.PortLatency+s.p.SwitchLatency), evPort, m, 0)
}

// keySampler draws keys: ranks from a uniform or Zipf distribution over
// the key space, scrambled by a hash so that popular keys fall on
// unrelated shards.
type keySampler struct {
	n    uint64
	salt uint64
	// Zipf with 0 < s < 1, by the method of Gray et al., "Quickly
	// generating billion-record synthetic databases" (SIGMOD 1994), as
	// YCSB does.
	theta, zetan, alpha, eta, half float64
	// Zipf with s > 1: the standard library's rejection-inversion sampler,
	// bound lazily to the keys stream.
	sOver1 float64
	zipf   *rand.Zipf
}

func newKeySampler(space int, s float64, salt uint64) (keySampler, error) {
	k := keySampler{n: uint64(space), salt: mix64(salt ^ 0x6b79)}
	switch {
	case s == 0:
	case s > 1:
		k.sOver1 = s
	case s > 0 && s < 1:
		k.theta = s
		k.zetan = zeta(space, s)
		zeta2 := zeta(2, s)
		k.alpha = 1 / (1 - s)
		k.eta = (1 - math.Pow(2/float64(space), 1-s)) / (1 - zeta2/k.zetan)
		k.half = 1 + math.Pow(0.5, s)
	default:
		return k, fmt.Errorf("Keys.Zipf = %v: want 0, 0 < s < 1 or s > 1", s)
	}
	return k, nil
}

// zeta returns the generalised harmonic number H(n, s) = sum 1/i^s. Terms
// beyond the first million are summed by the Euler-Maclaurin integral,
// whose error there is far below a part per million.
func zeta(n int, s float64) float64 {
	const exact = 1 << 20
	sum := 0.0
	m := min(n, exact)
	for i := m; i >= 1; i-- { // smallest terms first
		sum += math.Pow(float64(i), -s)
	}
	if n > m {
		a, b := float64(m)+0.5, float64(n)+0.5
		sum += (math.Pow(b, 1-s) - math.Pow(a, 1-s)) / (1 - s)
	}
	return sum
}

// draw returns a key.
func (k *keySampler) draw(r *rand.Rand) uint64 {
	var rank uint64
	switch {
	case k.sOver1 > 0:
		if k.zipf == nil {
			k.zipf = rand.NewZipf(r, k.sOver1, 1, k.n-1)
		}
		rank = k.zipf.Uint64()
	case k.theta > 0:
		u := r.Float64()
		uz := u * k.zetan
		switch {
		case uz < 1:
			rank = 0
		case uz < k.half:
			rank = 1
		default:
			rank = uint64(float64(k.n) * math.Pow(k.eta*u-k.eta+1, k.alpha))
			rank = min(rank, k.n-1)
		}
	default:
		rank = r.Uint64N(k.n)
	}
	return mix64(rank ^ k.salt)
}
