// Package ema is the ema microservice of E3: an exponential moving
// average per stream.
//
// Each stream (a sensor, a machine, a metric of a user) has an average
// that every new value pulls towards itself by a fraction alpha:
//
//	ema = ema + alpha * (x - ema)    (the first value starts the average)
//
// With the halflife config key set, the weight depends on the time since
// the stream's previous value instead, so that irregularly spaced events
// are treated fairly: a value arriving dt after the previous one gets
// weight 1 - 2^(-dt/halflife). A value whose time is not after the newest
// time seen on its stream gets weight 0: it is counted but does not move
// the average (time does not run backwards).
//
// State: the reliable map ema.streams from stream key to [State] (average,
// count, newest time), encoded by [StateCodec]. A mutex guards it.
//
// # Requests
//
// A request is a [service.Event]. Fields read:
//
//   - Op: [service.OpObserve] folds Value in; [service.OpQuery] reads the
//     stream's average without changing it. Other ops are malformed.
//   - Key: the stream.
//   - Value: the observation; NaN or ±Inf is malformed (it would poison
//     the average for good).
//   - Time: event time in ns, used only in time-aware (halflife) mode.
//
// # Replies
//
// 16 bytes, little endian, to both ops:
//
//	0 ema f64     the stream's average after this event (0 when count is 0)
//	8 count u64   values folded into the stream so far
//
// A malformed event returns an error wrapping [service.ErrMalformed] and
// changes nothing.
//
// # Downstream
//
// An observation emits the request unchanged, routed by the key it
// arrived with; a query emits nothing.
//
// # Config
//
//	alpha     smoothing factor in (0, 1] (default 0.1)
//	halflife  Go duration (e.g. 30s); when set, time-aware decay replaces alpha
//
// # Generator
//
// [NewGenerator] models server-health telemetry: CPU temperatures of
// 10,000 machines, each with its own baseline, a slow swing and Gaussian
// noise (σ = 1.5 °C), events 10 µs apart, routed by stream key.
package ema
