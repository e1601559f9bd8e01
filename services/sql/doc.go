// Package sql is the sql microservice of E3: an in-memory SQL database of
// sensor readings, with parameterised inserts and aggregate queries.
//
// Each instance owns a private SQLite database in memory
// (modernc.org/sqlite, SQLite transpiled to pure Go, so the binary stays
// cgo-free and cross-compiles to DPU cores) on a single connection. The
// schema ([Schema]) is one table and one index:
//
//	readings(sensor INTEGER, metric INTEGER, t INTEGER, value REAL)
//	index readings_by_sensor(sensor, metric, t)
//
// which serves the IoT applications: thermostats and devices (sensor)
// report measurements of several kinds (metric: temperature, set point,
// ...) at an event time t in ns, and dashboards and analytics ask for a
// device's statistics over a time window. The insert, the aggregate query
// and the pruning delete are prepared once, when the instance is created.
//
// The service talks to the driver directly (driver.Conn and driver.Stmt)
// rather than through database/sql: with one connection per instance
// there is no pool to manage, and the direct route skips database/sql's
// per-call bookkeeping (see BenchmarkInsertRowDatabaseSQL).
//
// # Not migratable
//
// The state of this service is the SQL database, not reliable
// collections, so the platform cannot snapshot, replicate or move it:
// the descriptor says Migratable: false and placement pins instances to
// host processors, as the E3 paper does with its SQL engine. A restart
// loses the readings. Memory is bounded instead: once more than max_rows
// readings are stored, the oldest are deleted (checked every 1024
// inserts, by row id, which grows with every insert).
//
// One mutex serialises calls, as the single connection would anyway; the
// handler is safe for concurrent calls. [DB.Close] (service.Closer)
// finalises the statements and frees the database; calls after it return
// [ErrClosed].
//
// # Requests
//
// A request is a [service.Event]. Fields read:
//
//   - Op: [service.OpObserve] inserts a reading; [service.OpQuery] asks for
//     an aggregate. Other ops are malformed.
//   - Key: the sensor id (stored as the int64 with the same bits).
//   - Item: the metric id (likewise).
//   - Time: observe: the reading's time in ns; query: the end of the
//     window (inclusive).
//   - Value: observe: the reading (NaN and ±Inf are malformed: SQLite
//     would store NaN as NULL); query: the window length in seconds
//     (0 to 9e9), so the window is [Time - Value s, Time].
//
// # Replies
//
// Little endian. To an insert, 8 bytes: the new row's id (u64). To a
// query, 32 bytes:
//
//	 0 count u64   readings of the sensor's metric in the window
//	 8 avg f64     their mean (NaN when count is 0)
//	16 min f64     their minimum (NaN when count is 0)
//	24 max f64     their maximum (NaN when count is 0)
//
// A malformed event returns an error wrapping [service.ErrMalformed];
// a database failure returns another error.
//
// # Downstream
//
// An insert emits the request unchanged, routed by the key it arrived
// with (stored updates trigger the analytics that follow the SQL store in
// the thermostat application); a query emits nothing.
//
// # Config
//
//	max_rows  readings kept before the oldest are deleted (default 1,000,000)
//
// # Generator
//
// [NewGenerator] models 10,000 thermostats reporting about every 10 s
// (events 1 ms apart): 90 % room temperatures, 5 % set points, 5 %
// queries for a thermostat's temperatures over the last 300 s. Requests
// are routed by sensor id.
//
// # Benchmark against C SQLite
//
// bench/run.sh compiles bench/sqlite_bench.c (our own program; needs gcc
// and libsqlite3-dev) and runs it beside BenchmarkInsertRow and
// BenchmarkSelectRow: the same schema, statements and rows, prepared
// single-row inserts into a growing table and single-row selects by
// index over 100,000 rows. It prints the Go/C time ratios.
package sql
