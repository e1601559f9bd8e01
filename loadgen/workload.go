package loadgen

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/e3-platform/e3/app"
	"github.com/e3-platform/e3/internal/mix"
	"github.com/e3-platform/e3/service"
)

// Workload produces the requests of a run. A client calls Next under its own
// lock, so implementations need not be safe for concurrent use, but one
// Workload must not be shared by two running clients.
type Workload interface {
	// Next appends the next request to dst[:0] and returns it, with its
	// routing key and the index of the ingress it enters at (0 when there
	// is only one).
	Next(dst []byte) (req []byte, key uint64, source int)
}

// FromGenerator turns a service's request generator into a single-ingress
// workload; keys are the generator's own.
func FromGenerator(g service.Generator) Workload { return genWorkload{g} }

type genWorkload struct{ g service.Generator }

func (w genWorkload) Next(dst []byte) ([]byte, uint64, int) {
	req, key := w.g.Next(dst)
	return req, key, 0
}

// ForService returns the workload of one microservice driven alone (the
// paper's Table 1 runs): its deterministic generator with the given seed and
// request size (0 for the service's default).
func ForService(d *service.Descriptor, seed int64, size int) (Workload, error) {
	if d == nil || d.NewGenerator == nil {
		name := "<nil>"
		if d != nil {
			name = d.Name
		}
		return nil, fmt.Errorf("loadgen: service %q has no request generator", name)
	}
	return FromGenerator(d.NewGenerator(seed, size)), nil
}

// AppOptions tunes an [AppWorkload]. The zero value follows the
// application's spec with uniform keys.
type AppOptions struct {
	// Seed makes the run reproducible: source choice, keys and every
	// source's generator derive from it.
	Seed int64
	// Size overrides the spec's workload.request_size when positive.
	Size int
	// KeySpace overrides the spec's workload.key_space when positive.
	KeySpace int
	// Zipf is the key-popularity exponent; 0 draws keys uniformly (see
	// [ZipfKeys]).
	Zipf float64
	// RawPayload leaves event payloads exactly as the source's generator
	// made them instead of writing the drawn key into Event.Key.
	RawPayload bool
}

// AppWorkload generates the requests entering an application: each request
// picks an ingress (a source node) by the spec's mix, takes its payload from
// that node's service generator, and carries a key drawn from the spec's key
// space.
//
// The key is the request's routing key. Services route what they emit by the
// key they were called with, so the drawn key decides the shard of every
// key_hash stage downstream. The generators have no way to be told a key, so
// the payload comes from the generator and the key is drawn separately; for
// event-family sources the drawn key is also written into the payload's
// Event.Key (unless RawPayload), so that downstream services that keep state
// per Event.Key (EMA, Spike, SQL, Recommend) see the same key the request is
// routed by. Packet payloads are left as generated: their 5-tuple is the
// generator's, and only the routing key follows the key space.
type AppWorkload struct {
	app     *app.App
	sources []*app.Node
	gens    []service.Generator
	patch   []bool // write the key into Event.Key for this source
	// enrich holds generators of the event services downstream of the
	// sources; see [AppWorkload.Next].
	enrich  []service.Generator
	size    int
	scratch []byte
	enc     []byte
	ev, ex  service.Event
	cum     []float64 // cumulative mix weights, last is 1
	keys    Keys
	rng     *rand.Rand
}

// NewAppWorkload returns the workload of application a.
func NewAppWorkload(a *app.App, opt AppOptions) (*AppWorkload, error) {
	if a == nil {
		return nil, fmt.Errorf("loadgen: no application")
	}
	size := a.Workload.RequestSize
	if opt.Size > 0 {
		size = opt.Size
	}
	space := a.Workload.KeySpace
	if opt.KeySpace > 0 {
		space = opt.KeySpace
	}
	if space <= 0 {
		return nil, fmt.Errorf("loadgen: %s: key space %d; need at least one key", a.Name, space)
	}
	var keys Keys
	var err error
	if opt.Zipf == 0 {
		keys, err = UniformKeys(uint64(space))
	} else {
		keys, err = ZipfKeys(uint64(space), opt.Zipf, opt.Seed)
	}
	if err != nil {
		return nil, fmt.Errorf("loadgen: %s: %w", a.Name, err)
	}
	srcs := a.Sources()
	if len(srcs) == 0 {
		return nil, fmt.Errorf("loadgen: %s has no source node", a.Name)
	}
	w := &AppWorkload{
		app:     a,
		sources: srcs,
		keys:    keys,
		rng:     rand.New(rand.NewPCG(uint64(opt.Seed), 0x617070)), // "app"
	}
	var total float64
	for i, n := range srcs {
		d := n.Descriptor
		if d == nil || d.NewGenerator == nil {
			return nil, fmt.Errorf("loadgen: %s: source %s: service %q has no request generator", a.Name, n.Name, n.Service)
		}
		// Distinct, reproducible seeds per source: two sources running the
		// same service must not send identical streams. The runtime gives
		// the source's instances the same seed (runtime.instanceSeed), so
		// the mixer is the shared one.
		w.gens = append(w.gens, d.NewGenerator(opt.Seed^int64(mix.SplitMix64Next(uint64(i)+1)), size))
		w.patch = append(w.patch, !opt.RawPayload && d.Family == service.FamilyEvent)
		total += n.Ingress
		w.cum = append(w.cum, total)
	}
	if !(total > 0) {
		return nil, fmt.Errorf("loadgen: %s: source shares add up to %v", a.Name, total)
	}
	for i := range w.cum {
		w.cum[i] /= total
	}
	w.cum[len(w.cum)-1] = 1
	w.size = size
	if !opt.RawPayload {
		isSource := map[*app.Node]bool{}
		for _, n := range srcs {
			isSource[n] = true
		}
		for j, n := range a.Nodes() {
			d := n.Descriptor
			if isSource[n] || d == nil || d.Family != service.FamilyEvent || d.NewGenerator == nil {
				continue
			}
			w.enrich = append(w.enrich, d.NewGenerator(opt.Seed^int64(mix.SplitMix64Next(uint64(j)+1<<32)), size))
		}
	}
	return w, nil
}

// App returns the application.
func (w *AppWorkload) App() *app.App { return w.app }

// Source returns the node of ingress index i, as returned by Next.
func (w *AppWorkload) Source(i int) *app.Node { return w.sources[i] }

// Keys returns the key distribution.
func (w *AppWorkload) Keys() Keys { return w.keys }

// Next returns the next request, its key and its ingress index into
// App().Sources().
func (w *AppWorkload) Next(dst []byte) ([]byte, uint64, int) {
	i := 0
	if len(w.cum) > 1 {
		u := w.rng.Float64()
		for i < len(w.cum)-1 && u >= w.cum[i] {
			i++
		}
	}
	req, _ := w.gens[i].Next(dst)
	key := w.keys.Key(w.rng)
	if w.patch[i] {
		req = w.enrichEvent(req)
		setEventKey(req, key)
	}
	return req, key, i
}

// enrichEvent fills the parts of a source's event that downstream services
// need and the source's generator leaves empty. An application's request is
// one event that flows through every stage, and each stage reads its own
// fields: a data hub's gateway event carries a reading and credentials, but
// its classifier further down needs a feature vector, and a log search
// stage needs query text. Features and Text are taken from the downstream
// services' own generators when the event lacks them; the event is
// re-encoded and padded to the request size.
func (w *AppWorkload) enrichEvent(req []byte) []byte {
	if len(w.enrich) == 0 || service.DecodeEvent(req, &w.ev) != nil {
		return req
	}
	changed := false
	for _, g := range w.enrich {
		if len(w.ev.Features) > 0 && len(w.ev.Text) > 0 {
			break
		}
		w.scratch, _ = g.Next(w.scratch[:0])
		if service.DecodeEvent(w.scratch, &w.ex) != nil {
			continue
		}
		if len(w.ev.Features) == 0 && len(w.ex.Features) > 0 {
			w.ev.Features, changed = w.ex.Features, true
		}
		if len(w.ev.Text) == 0 && len(w.ex.Text) > 0 {
			w.ev.Text, changed = w.ex.Text, true
		}
		if changed {
			// The parts alias w.scratch and req: encode before the next
			// generator call overwrites the scratch.
			var err error
			w.enc, err = service.AppendEvent(w.enc[:0], &w.ev, w.size)
			if err != nil {
				return req
			}
			req = append(req[:0], w.enc...)
			if service.DecodeEvent(req, &w.ev) != nil {
				return req
			}
			changed = false
		}
	}
	return req
}

// setEventKey writes key into an encoded event's Key field; a payload that
// is not an event is left alone.
func setEventKey(b []byte, key uint64) {
	if len(b) >= service.EventHeaderLen && b[0] == service.EventVersion {
		binary.LittleEndian.PutUint64(b[8:], key)
	}
}
