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
	// Clamped so that a vanishing rate cannot overflow the clock: a time
	// past maxVirtual is past the end of any run.
	return int64(min(s.r.arrivals.ExpFloat64()*meanNs+0.5, float64(maxVirtual)))
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
	s.reqs[r] = request{flow: flow, sent: s.now, pending: 1, app: a, client: c, ingress: inst, origin: s.insts[inst].node}
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
	// Zipf by rejection-inversion (Hörmann and Derflinger, "Rejection-
	// inversion to generate variates from monotone discrete
	// distributions", ACM TOMACS 1996), exact for every exponent s > 0;
	// the standard library's sampler needs s > 1.
	s, hX1, hN, sq float64
}

func newKeySampler(space int, s float64, salt uint64) (keySampler, error) {
	k := keySampler{n: uint64(space), salt: mix64(salt ^ 0x6b79)}
	switch {
	case s == 0:
	case s > 0 && !math.IsInf(s, 0):
		k.s = s
		k.hX1 = k.hIntegral(1.5) - 1
		k.hN = k.hIntegral(float64(space) + 0.5)
		k.sq = 2 - k.hIntegralInverse(k.hIntegral(2.5)-k.h(2))
	default:
		return k, fmt.Errorf("Keys.Zipf = %v: want 0 (uniform) or a finite s > 0", s)
	}
	return k, nil
}

// draw returns a key.
func (k *keySampler) draw(r *rand.Rand) uint64 { return mix64(k.rank(r) ^ k.salt) }

// rank draws a popularity rank, 0 the most popular: rank i with
// probability proportional to 1/(i+1)^s.
func (k *keySampler) rank(r *rand.Rand) uint64 {
	if k.s == 0 {
		return r.Uint64N(k.n)
	}
	for {
		u := k.hN + r.Float64()*(k.hX1-k.hN)
		x := k.hIntegralInverse(u)
		kk := math.Floor(x + 0.5)
		kk = min(max(kk, 1), float64(k.n))
		if kk-x <= k.sq || u >= k.hIntegral(kk+0.5)-k.h(kk) {
			return uint64(kk) - 1
		}
	}
}

// h is the unnormalised probability x^-s; hIntegral its antiderivative
// ((x^(1-s) - 1)/(1-s), log x at s = 1) and hIntegralInverse the
// inverse of that, written with helpers that stay accurate near s = 1.
func (k *keySampler) h(x float64) float64 { return math.Exp(-k.s * math.Log(x)) }

func (k *keySampler) hIntegral(x float64) float64 {
	lx := math.Log(x)
	return expm1Over((1-k.s)*lx) * lx
}

func (k *keySampler) hIntegralInverse(x float64) float64 {
	t := max(x*(1-k.s), -1)
	return math.Exp(log1pOver(t) * x)
}

// log1pOver is log(1+x)/x, expm1Over (exp(x)-1)/x, both continued to
// their limit 1 at x = 0.
func log1pOver(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Log1p(x) / x
	}
	return 1 - x*(0.5-x*(1.0/3-0.25*x))
}

func expm1Over(x float64) float64 {
	if math.Abs(x) > 1e-8 {
		return math.Expm1(x) / x
	}
	return 1 + x*0.5*(1+x/3*(1+0.25*x))
}
