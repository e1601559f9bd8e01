// Package spike is the spike microservice of E3: z-score spike detection
// over a sliding window per stream.
//
// Each stream (a thermostat, a server metric) keeps its last W values.
// A new value x is scored against the window before it joins it:
//
//	z = (x - mean) / std      mean, std (population) of the previous W values
//
// and flagged a spike when |z| >= threshold and the window already held
// at least min values. The value then joins the window, spikes included,
// replacing the oldest. A window with no spread (all values equal) scores
// a value equal to them 0 and any other value ±Inf.
//
// Mean and spread are kept incrementally in Welford's form: while the
// window fills, the classic update; once it is full, the sliding update
// that removes the oldest value and adds the new one in O(1). Once per lap
// of the ring (every W values) the summary is recomputed exactly from the
// window, so rounding errors cannot pile up; a property test checks the
// running figures against a from-scratch computation.
//
// State lives in three reliable collections guarded by one mutex:
// spike.slots (Map: stream key to slot), spike.ring (Array of float64:
// W values per slot) and spike.stats (Array of [Stats]: count, ring
// position, mean, M2 per slot, encoded by [StatsCodec]). A new stream
// appends W zeros to the ring and one Stats; an update of a known stream
// writes one ring element and one Stats and allocates nothing.
//
// # Requests
//
// A request is a [service.Event]. Fields read:
//
//   - Op: must be [service.OpObserve].
//   - Key: the stream.
//   - Value: the reading; NaN, ±Inf and |Value| > 1e100 ([MaxAbsValue],
//     beyond which squared deviations could overflow) are malformed.
//
// # Replies
//
// 25 bytes, little endian:
//
//	 0 z f64      z-score of Value against the previous window (0 for a new stream)
//	 8 mean f64   mean of the previous window
//	16 std f64    population standard deviation of the previous window
//	24 flags u8   bit 0 (FlagSpike): a spike; bit 1 (FlagWarm): the previous
//	              window held at least min values, so the score counts
//
// A malformed event returns an error wrapping [service.ErrMalformed] and
// changes nothing.
//
// # Downstream
//
// With the default emit policy ("spikes") only observations flagged as
// spikes are emitted, unchanged and routed by the key they arrived with:
// the detector is a filter that feeds alerting. "all" emits every
// observation, "none" nothing.
//
// # Config
//
//	window     values per stream window, 2..65536 (default 64)
//	threshold  |z| at or above which a value is a spike (default 3)
//	min        values the window needs before flagging, 2..window (default window/4)
//	emit       spikes | all | none (default spikes)
//
// # Generator
//
// [NewGenerator] models thermostats: 10,000 streams with set points of 18
// to 25 °C, Gaussian noise σ = 0.3 °C, and one reading in 200 raised by 2
// to 5 °C; events 10 µs apart, routed by stream key.
package spike
