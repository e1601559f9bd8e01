package sql

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"modernc.org/sqlite"

	"github.com/e3-platform/e3/service"
)

// Config keys and defaults.
const (
	// ConfigMaxRows bounds the readings kept: the oldest are deleted once
	// more are stored. A row takes about 60 bytes with its index entry,
	// so the default million rows is some 60 MB, well inside the 1 GB the
	// descriptor reserves, and 17 minutes of the generator's thermostats.
	ConfigMaxRows  = "max_rows"
	DefaultMaxRows = 1_000_000
	// pruneEvery: deleting old rows costs a statement; doing it once per
	// this many inserts keeps that cost per insert small while the table
	// exceeds max_rows by at most this much.
	pruneEvery = 1024
)

// MaxWindowSecs is the longest query window, about 285 years: its ns
// still fit an int64.
const MaxWindowSecs = 9e9

// Reply lengths.
const (
	InsertReplyLen = 8
	QueryReplyLen  = 32
)

// Schema is the database every instance starts with.
const Schema = `
CREATE TABLE readings (
	sensor INTEGER NOT NULL, -- Event.Key: thermostat or device id
	metric INTEGER NOT NULL, -- Event.Item: what was measured (temperature, set point, ...)
	t      INTEGER NOT NULL, -- Event.Time: ns since the epoch
	value  REAL    NOT NULL  -- Event.Value
);
CREATE INDEX readings_by_sensor ON readings (sensor, metric, t);
`

// The statements, prepared once per instance.
const (
	insertSQL = `INSERT INTO readings (sensor, metric, t, value) VALUES (?, ?, ?, ?)`
	querySQL  = `SELECT count(*), avg(value), min(value), max(value) FROM readings
	             WHERE sensor = ? AND metric = ? AND t BETWEEN ? AND ?`
	pruneSQL = `DELETE FROM readings WHERE rowid <= ?`
	// pointSQL is the single-row select of the C SQLite comparison.
	pointSQL = `SELECT value FROM readings WHERE sensor = ? AND metric = ? AND t = ?`
)

// ErrClosed is returned by Handle after Close.
var ErrClosed = errors.New("sql: instance closed")

// DB is one sql instance: a private in-memory SQLite database on one
// connection. It is safe for concurrent use; a mutex serialises calls,
// as the connection would anyway.
type DB struct {
	maxRows int64

	mu      sync.Mutex
	conn    driver.Conn
	insert  stmt
	query   stmt
	prune   stmt
	point   stmt
	args    [4]driver.NamedValue
	row     [4]driver.Value
	inserts int64
	closed  bool
}

// stmt is a prepared statement seen through the context interfaces
// modernc's driver implements.
type stmt struct {
	driver.Stmt
	exec  driver.StmtExecContext
	query driver.StmtQueryContext
}

func prepare(c driver.Conn, q string) (stmt, error) {
	s, err := c.Prepare(q)
	if err != nil {
		return stmt{}, fmt.Errorf("sql: preparing %q: %w", q, err)
	}
	e, ok1 := s.(driver.StmtExecContext)
	r, ok2 := s.(driver.StmtQueryContext)
	if !ok1 || !ok2 {
		s.Close()
		return stmt{}, fmt.Errorf("sql: driver statement %T lacks the context methods", s)
	}
	return stmt{s, e, r}, nil
}

// New opens the instance's database, creates the schema and prepares the
// statements; see the package comment for config keys.
func New(env service.Env) (service.Handler, error) {
	return open(env)
}

func open(env service.Env) (*DB, error) {
	maxRows, err := env.Int(ConfigMaxRows, DefaultMaxRows)
	if err != nil {
		return nil, fmt.Errorf("sql: %w", err)
	}
	if maxRows < 1 {
		return nil, fmt.Errorf("sql: config %q: %d rows; need at least 1", ConfigMaxRows, maxRows)
	}
	// ":memory:" gives each connection its own database, and this is the
	// instance's only connection: instances share nothing.
	conn, err := (&sqlite.Driver{}).Open(":memory:")
	if err != nil {
		return nil, fmt.Errorf("sql: opening the in-memory database: %w", err)
	}
	db := &DB{maxRows: int64(maxRows), conn: conn}
	if err := db.setup(); err != nil {
		db.Close()
		return nil, err
	}
	for i := range db.args {
		db.args[i].Ordinal = i + 1
	}
	return db, nil
}

func (db *DB) setup() error {
	ex, ok := db.conn.(driver.ExecerContext)
	if !ok {
		return fmt.Errorf("sql: driver connection %T cannot execute", db.conn)
	}
	if _, err := ex.ExecContext(context.Background(), Schema, nil); err != nil {
		return fmt.Errorf("sql: creating the schema: %w", err)
	}
	var err error
	for _, p := range []struct {
		s *stmt
		q string
	}{{&db.insert, insertSQL}, {&db.query, querySQL}, {&db.prune, pruneSQL}, {&db.point, pointSQL}} {
		if *p.s, err = prepare(db.conn, p.q); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the statements and the database. It implements
// service.Closer; calls after it return ErrClosed.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	var errs []error
	for _, s := range []*stmt{&db.insert, &db.query, &db.prune, &db.point} {
		if s.Stmt != nil {
			errs = append(errs, s.Close())
		}
	}
	errs = append(errs, db.conn.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sql: closing: %w", err)
	}
	return nil
}

// Handle stores a reading or answers an aggregate query; see the package
// comment for the encoding.
func (db *DB) Handle(c *service.Context, req []byte) error {
	var ev service.Event
	if err := service.DecodeEvent(req, &ev); err != nil {
		return fmt.Errorf("sql: %w", err)
	}
	switch ev.Op {
	case service.OpObserve:
		if math.IsNaN(ev.Value) || math.IsInf(ev.Value, 0) {
			// SQLite would store NaN as NULL, which the schema refuses.
			return fmt.Errorf("sql: %w: value %v of sensor %d is not finite", service.ErrMalformed, ev.Value, ev.Key)
		}
		id, err := db.Insert(int64(ev.Key), int64(ev.Item), ev.Time, ev.Value)
		if err != nil {
			return err
		}
		var out [InsertReplyLen]byte
		binary.LittleEndian.PutUint64(out[:], uint64(id))
		c.Respond(out[:])
		c.Emit(c.Key, req)
	case service.OpQuery:
		if !(ev.Value >= 0 && ev.Value <= MaxWindowSecs) {
			return fmt.Errorf("sql: %w: window of %v s is outside [0, %g]", service.ErrMalformed, ev.Value, float64(MaxWindowSecs))
		}
		from := ev.Time - int64(ev.Value*1e9)
		if from > ev.Time { // wrapped below MinInt64
			from = math.MinInt64
		}
		a, err := db.Aggregate(int64(ev.Key), int64(ev.Item), from, ev.Time)
		if err != nil {
			return err
		}
		var out [QueryReplyLen]byte
		binary.LittleEndian.PutUint64(out[:], uint64(a.Count))
		binary.LittleEndian.PutUint64(out[8:], math.Float64bits(a.Avg))
		binary.LittleEndian.PutUint64(out[16:], math.Float64bits(a.Min))
		binary.LittleEndian.PutUint64(out[24:], math.Float64bits(a.Max))
		c.Respond(out[:])
	default:
		return fmt.Errorf("sql: %w: op %d not supported; want observe (%d) or query (%d)",
			service.ErrMalformed, ev.Op, service.OpObserve, service.OpQuery)
	}
	return nil
}

// Insert stores one reading and returns its row id. Every pruneEvery
// inserts it deletes the rows beyond the newest max_rows.
func (db *DB) Insert(sensor, metric, t int64, value float64) (int64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return 0, ErrClosed
	}
	db.args[0].Value, db.args[1].Value, db.args[2].Value, db.args[3].Value = sensor, metric, t, value
	res, err := db.insert.exec.ExecContext(context.Background(), db.args[:4])
	if err != nil {
		return 0, fmt.Errorf("sql: insert of sensor %d: %w", sensor, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("sql: insert of sensor %d: %w", sensor, err)
	}
	db.inserts++
	if db.inserts%pruneEvery == 0 && id > db.maxRows {
		// Row ids grow with every insert, so the oldest rows are those
		// with the smallest ids: a range delete on the primary key.
		db.args[0].Value = id - db.maxRows
		if _, err := db.prune.exec.ExecContext(context.Background(), db.args[:1]); err != nil {
			return 0, fmt.Errorf("sql: pruning old readings: %w", err)
		}
	}
	return id, nil
}

// Aggregate summarises a sensor's metric over [from, to] (ns).
type Aggregate struct {
	Count         int64
	Avg, Min, Max float64 // NaN when Count is 0
}

// Aggregate returns count, mean, minimum and maximum of the readings of
// sensor's metric with from <= t <= to.
func (db *DB) Aggregate(sensor, metric, from, to int64) (Aggregate, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return Aggregate{}, ErrClosed
	}
	db.args[0].Value, db.args[1].Value, db.args[2].Value, db.args[3].Value = sensor, metric, from, to
	rows, err := db.query.query.QueryContext(context.Background(), db.args[:4])
	if err != nil {
		return Aggregate{}, fmt.Errorf("sql: aggregate of sensor %d: %w", sensor, err)
	}
	defer rows.Close()
	if err := rows.Next(db.row[:]); err != nil {
		return Aggregate{}, fmt.Errorf("sql: aggregate of sensor %d: %w", sensor, err)
	}
	a := Aggregate{Avg: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	a.Count, _ = db.row[0].(int64)
	if a.Count > 0 {
		a.Avg = asFloat(db.row[1])
		a.Min = asFloat(db.row[2])
		a.Max = asFloat(db.row[3])
	}
	return a, nil
}

// Point returns the value of the reading of sensor's metric at t, the
// prepared single-row select measured against C SQLite.
func (db *DB) Point(sensor, metric, t int64) (float64, bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return 0, false, ErrClosed
	}
	db.args[0].Value, db.args[1].Value, db.args[2].Value = sensor, metric, t
	rows, err := db.point.query.QueryContext(context.Background(), db.args[:3])
	if err != nil {
		return 0, false, fmt.Errorf("sql: point select of sensor %d: %w", sensor, err)
	}
	defer rows.Close()
	if err := rows.Next(db.row[:1]); err != nil {
		return 0, false, nil // io.EOF: no such row
	}
	return asFloat(db.row[0]), true, nil
}

// asFloat reads a REAL column; min and max of a REAL column are REAL, but
// SQLite may hand back an integer-valued aggregate as INTEGER.
func asFloat(v driver.Value) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return math.NaN()
}

// Rows returns the number of readings held.
func (db *DB) Rows() (int64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return 0, ErrClosed
	}
	q, ok := db.conn.(driver.QueryerContext)
	if !ok {
		return 0, fmt.Errorf("sql: driver connection %T cannot query", db.conn)
	}
	rows, err := q.QueryContext(context.Background(), "SELECT count(*) FROM readings", nil)
	if err != nil {
		return 0, fmt.Errorf("sql: counting rows: %w", err)
	}
	defer rows.Close()
	var v [1]driver.Value
	if err := rows.Next(v[:]); err != nil {
		return 0, fmt.Errorf("sql: counting rows: %w", err)
	}
	n, _ := v[0].(int64)
	return n, nil
}
