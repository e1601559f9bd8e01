package loadgen

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// SimConfig describes a [SimServer].
type SimConfig struct {
	// Workers serve requests in parallel (at least 1).
	Workers int
	// Service is the time one request holds a worker (positive). The
	// server's capacity is Workers/Service requests per second.
	Service time.Duration
	// QueueLimit bounds the requests waiting for a worker; Send refuses
	// more with ErrSimQueueFull. 0 means unbounded.
	QueueLimit int
	// Fault injection, by the request's arrival number n (1, 2, ...):
	// RefuseEvery n-th request is refused by Send (ErrSimRefused),
	// FailEvery n-th is answered with ErrSimFailed, and DropEvery n-th is
	// served but never answered. 0 disables each; refusal is checked
	// first, then dropping, then failure.
	RefuseEvery, FailEvery, DropEvery int
}

// Errors a [SimServer] produces.
var (
	ErrSimRefused   = errors.New("loadgen: simulated server refused the request")
	ErrSimQueueFull = errors.New("loadgen: simulated server queue full")
	ErrSimFailed    = errors.New("loadgen: simulated server failed the request")
)

// SimServer is a fake [Target]: a first-come first-served queue in front of
// Workers identical workers that each take Service per request, timed by a
// Clock, answering with the request itself. Its capacity is exact, so a test
// can check a client's figures against queueing theory: with N requests
// outstanding in a closed loop, throughput is min(N, Workers)/Service and
// latency max(Service, N*Service/Workers). On a [FakeClock] it is
// deterministic. Safe for concurrent use.
type SimServer struct {
	clk Clock
	cfg SimConfig

	mu                      sync.Mutex
	busy                    int
	queue                   []simJob
	head                    int
	n                       int
	served, failed, dropped int
	refused                 int
}

type simJob struct {
	r Request
	n int
}

// NewSimServer returns a simulated server on clk.
func NewSimServer(clk Clock, cfg SimConfig) (*SimServer, error) {
	switch {
	case clk == nil:
		return nil, fmt.Errorf("loadgen: simulated server: no clock")
	case cfg.Workers < 1:
		return nil, fmt.Errorf("loadgen: simulated server: Workers %d; need at least 1", cfg.Workers)
	case cfg.Service <= 0:
		return nil, fmt.Errorf("loadgen: simulated server: Service %v; need a positive time", cfg.Service)
	case cfg.QueueLimit < 0 || cfg.RefuseEvery < 0 || cfg.FailEvery < 0 || cfg.DropEvery < 0:
		return nil, fmt.Errorf("loadgen: simulated server: negative QueueLimit or fault period in %+v", cfg)
	}
	return &SimServer{clk: clk, cfg: cfg}, nil
}

// Capacity returns the server's peak throughput in requests per second.
func (s *SimServer) Capacity() float64 {
	return float64(s.cfg.Workers) / s.cfg.Service.Seconds()
}

// Send queues c, or starts it on a free worker.
func (s *SimServer) Send(r Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if every(s.n, s.cfg.RefuseEvery) {
		s.refused++
		return ErrSimRefused
	}
	j := simJob{r, s.n}
	if s.busy < s.cfg.Workers {
		s.busy++
		s.startLocked(j)
		return nil
	}
	if s.cfg.QueueLimit > 0 && len(s.queue)-s.head >= s.cfg.QueueLimit {
		s.refused++
		return ErrSimQueueFull
	}
	s.queue = append(s.queue, j)
	return nil
}

func every(n, k int) bool { return k > 0 && n%k == 0 }

func (s *SimServer) startLocked(j simJob) {
	s.clk.AfterFunc(s.cfg.Service, func() { s.complete(j) })
}

func (s *SimServer) complete(j simJob) {
	s.mu.Lock()
	if s.head < len(s.queue) {
		next := s.queue[s.head]
		s.queue[s.head] = simJob{}
		s.head++
		if s.head == len(s.queue) {
			s.queue, s.head = s.queue[:0], 0
		}
		s.startLocked(next)
	} else {
		s.busy--
	}
	var err error
	switch {
	case every(j.n, s.cfg.DropEvery):
		s.dropped++
		s.mu.Unlock()
		return
	case every(j.n, s.cfg.FailEvery):
		s.failed++
		err = ErrSimFailed
	default:
		s.served++
	}
	s.mu.Unlock()
	if err != nil {
		j.r.Done(nil, err)
	} else {
		j.r.Done(j.r.Payload, nil)
	}
}

// SimStats counts what a SimServer did.
type SimStats struct {
	Received, Served, Failed, Dropped, Refused int
	Queued, Busy                               int
}

// Stats returns the server's counters.
func (s *SimServer) Stats() SimStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SimStats{Received: s.n, Served: s.served, Failed: s.failed, Dropped: s.dropped,
		Refused: s.refused, Queued: len(s.queue) - s.head, Busy: s.busy}
}
