// Package envcfg reads the numeric settings of a service instance from
// its [service.Env] config map, each checked against its allowed range.
// A [Reader] keeps the first error and makes every later read a no-op, so
// a constructor reads all its keys in a row and checks once:
//
//	r := envcfg.NewReader(env)
//	c.k1 = r.Float("k1", DefaultK1, 0, 100)
//	c.topK = r.Int("top_k", DefaultTopK, 1, 1000)
//	if err := r.Err(); err != nil {
//		return c, fmt.Errorf("bm25: %w", err)
//	}
//
// Errors name the key and the value and give the range, as in
// `config "top_k": 0 is outside [1, 1000]`; the caller adds its service's
// name.
package envcfg
