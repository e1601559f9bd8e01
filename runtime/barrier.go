package runtime

import "sync"

// The barrier without a waiting worker. A message whose handler left
// records that are not yet durable is set aside, with copies of what the
// handler emitted and responded; the store's SyncFunc hands it to the
// agent's releaser once the records are on disk and at the backup, and
// the releaser routes it then. A worker never blocks on a commit: it
// takes the next message at once, and the records of all the messages
// handled meanwhile go into the next commit together.

// deferred is a message waiting for its barrier.
type deferred struct {
	in     *instance
	m      *msg
	emits  []emitted
	arena  []byte
	resp   []byte
	err    error
	agent  *Agent
	readyF func(error) // d.ready, allocated once per pooled deferred
}

var deferredPool = sync.Pool{New: func() any {
	d := &deferred{}
	d.readyF = d.ready
	return d
}}

func newDeferred(in *instance, m *msg, emits []emitted, arena, resp []byte) *deferred {
	d := deferredPool.Get().(*deferred)
	d.in, d.m, d.agent, d.err = in, m, in.a, nil
	d.emits = append(d.emits[:0], emits...)
	d.arena = append(d.arena[:0], arena...)
	d.resp = append(d.resp[:0], resp...)
	return d
}

// ready is the SyncFunc callback: it runs on the store's committer (and
// must not block), so it only queues d for the releaser.
func (d *deferred) ready(err error) {
	d.err = err
	d.agent.rel.push(d)
}

// releaser routes deferred messages in the order their barriers passed.
type releaser struct {
	mu    sync.Mutex
	items []*deferred
	spare []*deferred
	wake  chan struct{}
}

func newReleaser() *releaser { return &releaser{wake: make(chan struct{}, 1)} }

func (r *releaser) push(d *deferred) {
	r.mu.Lock()
	r.items = append(r.items, d)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *releaser) take() []*deferred {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.items
	r.items = r.spare[:0]
	r.spare = nil
	return out
}

func (r *releaser) give(s []*deferred) {
	clear(s)
	r.mu.Lock()
	if r.spare == nil {
		r.spare = s[:0]
	}
	r.mu.Unlock()
}

// releaseLoop is the agent's releaser goroutine.
func (a *Agent) releaseLoop() {
	defer a.wg.Done()
	for {
		batch := a.rel.take()
		for _, d := range batch {
			a.release(d)
		}
		a.rel.give(batch)
		if len(batch) > 0 {
			continue
		}
		select {
		case <-a.rel.wake:
		case <-a.ctx.Done():
			// Whatever is still queued belongs to requests that fail
			// with the agent; drop it.
			for _, d := range a.rel.take() {
				d.in.exit()
				putMsg(d.m)
				d.recycle()
			}
			return
		}
	}
}

// release routes a deferred message whose barrier returned.
func (a *Agent) release(d *deferred) {
	in, m := d.in, d.m
	if d.err != nil {
		in.errs.Add(1)
		a.sendError(m.h, "runtime: "+in.inst.ID+": "+d.err.Error(), m.finish)
	} else {
		a.route(in, m, d.emits, d.arena, d.resp)
	}
	in.exit()
	putMsg(m)
	d.recycle()
}

func (d *deferred) recycle() {
	d.in, d.m, d.agent, d.err = nil, nil, nil, nil
	deferredPool.Put(d)
}
