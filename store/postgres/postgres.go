// Package postgres is the store backend for several replicas: one
// PostgreSQL database shared by every Responder process. It passes the same
// conformance suite (store/storetest) as the embedded bbolt backend.
//
// Every Update is one READ COMMITTED transaction, committed (and so durable:
// PostgreSQL syncs its WAL at commit) before Update returns. Writes that
// race across replicas are made safe by the database, not by luck: the
// incident documents a write reads are locked (SELECT ... FOR UPDATE), so
// two writes of one incident take turns and the second sees the first;
// two replicas that open an incident for the same group at once collide on
// a unique index of open incidents, and the loser's write is run again
// (a deadlock, a serialization failure or a unique violation runs fn once
// more, as the store contract allows), when it finds the winner's incident.
package postgres

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/responder-sre/responder/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune Open. Zero values take the defaults.
type Options struct {
	// MaxWrites bounds the writes in progress or waiting for a connection;
	// beyond it Update returns store.ErrBusy at once.
	MaxWrites int
	// MaxConns is the pool's size.
	MaxConns int32
	// Busy, when set and returning true, makes Update answer store.ErrBusy
	// (overload tests of the whole daemon).
	Busy func() bool
}

// Defaults of Options.
const (
	DefaultMaxWrites = 1024
	DefaultMaxConns  = 16
	// maxAttempts bounds the runs of one write that keeps colliding.
	maxAttempts = 20
)

// DB is the PostgreSQL-backed store. It is safe for concurrent use, and
// several processes may use one database at once.
type DB struct {
	pool    *pgxpool.Pool
	slots   chan struct{}
	waiting atomic.Int64
	busy    func() bool

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup // writes in progress, for Close
}

var (
	_ store.DB = (*DB)(nil)
	_ store.Tx = (*pgTx)(nil)
)

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string), applies the schema migrations it lacks (once, under a lock, when
// several replicas start together), and returns the store.
func Open(ctx context.Context, dsn string, o Options) (*DB, error) {
	if o.MaxWrites <= 0 {
		o.MaxWrites = DefaultMaxWrites
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: the PostgreSQL DSN does not parse: %w", redactDSN(err))
	}
	cfg.MaxConns = o.MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", redactDSN(err))
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open store: %w", redactDSN(err))
	}
	return &DB{pool: pool, slots: make(chan struct{}, o.MaxWrites), busy: o.Busy}, nil
}

// redactDSN keeps a password that a connection error may quote out of it.
func redactDSN(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid DSN (not shown: it may hold a password)")
	}
	return err
}

// QueueDepth is the number of writes waiting for a connection or running.
func (db *DB) QueueDepth() int { return int(db.waiting.Load()) }

// Ready reports whether the database answers.
func (db *DB) Ready() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return store.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return nil
}

// Update runs fn in one transaction, committed before it returns. fn runs
// again when the transaction collides with another (a deadlock, a
// serialization failure, a unique violation), so it must have no effect
// outside the transaction other than setting its own results.
func (db *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	if db.busy != nil && db.busy() {
		return store.ErrBusy
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case db.slots <- struct{}{}:
	default:
		db.mu.RUnlock()
		return store.ErrBusy
	}
	db.wg.Add(1)
	db.mu.RUnlock()
	db.waiting.Add(1)
	defer func() {
		db.waiting.Add(-1)
		<-db.slots
		db.wg.Done()
	}()
	// The write is not cut off by its caller going away once it started:
	// a caller must never report failure for a write that then lands.
	wctx := context.WithoutCancel(ctx)
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = db.run(wctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, true, fn)
		if !retryable(err) {
			return unwrapFn(err)
		}
		time.Sleep(time.Duration(attempt) * time.Millisecond) // the other write finishes meanwhile
	}
	return fmt.Errorf("write collided %d times with other writes: %w", maxAttempts, err)
}

// View runs fn in a read-only transaction that sees one snapshot.
func (db *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	db.mu.RLock()
	closed := db.closed
	db.mu.RUnlock()
	if closed {
		return store.ErrClosed
	}
	return unwrapFn(db.run(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, false, fn))
}

// fnError marks the error of fn itself, so that it comes back unchanged
// and is never taken for a collision to run again.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

func (db *DB) run(ctx context.Context, opts pgx.TxOptions, write bool, fn func(store.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, opts)
	if err != nil {
		return unavailable("begin", err)
	}
	t := &pgTx{ctx: ctx, tx: tx, write: write}
	if ferr := call(fn, t); ferr != nil {
		_ = tx.Rollback(ctx)
		switch {
		case t.dbErr != nil && retryable(t.dbErr):
			return t.dbErr // a collision met inside fn: run it again
		case t.dbErr != nil && lostConnection(t.dbErr):
			return unavailable("write", t.dbErr)
		}
		return &fnError{ferr}
	}
	if err := tx.Commit(ctx); err != nil {
		if retryable(err) {
			return err
		}
		// Whether a commit cut off by a lost connection landed is not
		// known: the caller is told to retry, and ingest is idempotent.
		return unavailable("commit", err)
	}
	return nil
}

// lostConnection reports an error of the connection rather than of the
// statement: the database restarting, a network failure, a refused
// connection.
func lostConnection(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01-57P03: the server is
		// shutting down, crashed, or cannot take connections yet.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// unavailable is a failure to reach the database, as store.ErrUnavailable
// (the API answers 503 with Retry-After).
func unavailable(what string, err error) error {
	if !lostConnection(err) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, store.ErrUnavailable, err)
}

// call runs fn and turns a panic into its error.
func call(fn func(store.Tx) error, tx store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(tx)
}

// retryable reports a collision with another transaction, after which
// running the write again succeeds.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01", "23505": // serialization failure, deadlock, unique violation
		return true
	}
	return false
}

// Close refuses new writes, waits for those in progress, and closes the
// pool.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	db.wg.Wait()
	db.pool.Close()
	return nil
}

// Unwrap gives fn's own error back to the caller of Update.
func unwrapFn(err error) error {
	var fe *fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	return err
}

type pgTx struct {
	ctx   context.Context
	tx    pgx.Tx
	write bool
	// dbErr is the last error the database gave a call of fn: when fn
	// fails because of it, a collision makes the whole write run again.
	dbErr error
}

func (t *pgTx) fail(err error) error {
	t.dbErr = err
	return err
}

// incidentNumber parses "INC-42" into 42.
func incidentNumber(id string) (int64, error) {
	n, err := store.IncidentNumber(id)
	return int64(n), err //nolint:gosec // below 2^63: IncidentNumber parses 63 bits
}

func idOf(n int64) string { return "INC-" + strconv.FormatInt(n, 10) }

func (t *pgTx) NextIncidentID() (string, error) {
	var n int64
	err := t.tx.QueryRow(t.ctx, `UPDATE responder_counters SET value = value + 1 WHERE name = 'incident' RETURNING value`).Scan(&n)
	if err != nil {
		return "", t.fail(fmt.Errorf("next incident id: %w", err))
	}
	return idOf(n), nil
}

// lock is the row lock a write takes on what it reads, so that two writes
// of one incident take turns.
func (t *pgTx) lock() string {
	if t.write {
		return " FOR UPDATE"
	}
	return ""
}

func (t *pgTx) Incident(id string) (*store.Incident, error) {
	n, err := incidentNumber(id)
	if err != nil {
		return nil, err
	}
	return t.incidentWhere(id, `SELECT doc FROM incidents WHERE num = $1`+t.lock(), n)
}

func (t *pgTx) incidentWhere(what, query string, args ...any) (*store.Incident, error) {
	return oneDoc[store.Incident](t, "incident "+what, query, args...)
}

// oneDoc decodes the one document query returns; no row is
// store.ErrNotFound.
func oneDoc[T any](t *pgTx, what, query string, args ...any) (*T, error) {
	var doc []byte
	if err := t.tx.QueryRow(t.ctx, query, args...).Scan(&doc); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		return nil, t.fail(fmt.Errorf("read %s: %w", what, err))
	}
	var v T
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	return &v, nil
}

func (t *pgTx) PutIncident(inc *store.Incident) error {
	n, err := incidentNumber(inc.ID)
	if err != nil {
		return fmt.Errorf("put incident: %w", err)
	}
	doc, err := json.Marshal(inc)
	if err != nil {
		return fmt.Errorf("encode incident %s: %w", inc.ID, err)
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO incidents (num, source, dedup_key, status, severity, doc) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (num) DO UPDATE SET source = $2, dedup_key = $3, status = $4, severity = $5, doc = $6`,
		n, string(inc.Source), []byte(inc.DedupKey), string(inc.Status), inc.Severity, doc)
	if err != nil {
		return t.fail(fmt.Errorf("put incident %s: %w", inc.ID, err))
	}
	return nil
}

func (t *pgTx) LatestByDedupKey(src store.Source, key string) (*store.Incident, error) {
	if key == "" {
		return nil, fmt.Errorf("incident with dedup key %q: %w", key, store.ErrNotFound)
	}
	return t.incidentWhere(fmt.Sprintf("with dedup key %q", key),
		`SELECT doc FROM incidents WHERE source = $1 AND dedup_key = $2 ORDER BY num DESC LIMIT 1`+t.lock(), string(src), []byte(key))
}

func (t *pgTx) OpenIncidents() ([]store.Incident, error) {
	return t.incidents(`SELECT num, doc FROM incidents WHERE status <> 'resolved' ORDER BY num DESC`)
}

func (t *pgTx) incidents(query string, args ...any) ([]store.Incident, error) {
	rows, err := t.tx.Query(t.ctx, query, args...)
	if err != nil {
		return nil, t.fail(fmt.Errorf("read incidents: %w", err))
	}
	defer rows.Close()
	out := []store.Incident{}
	for rows.Next() {
		var n int64
		var doc []byte
		if err := rows.Scan(&n, &doc); err != nil {
			return nil, t.fail(fmt.Errorf("read incidents: %w", err))
		}
		var inc store.Incident
		if err := json.Unmarshal(doc, &inc); err != nil {
			return nil, fmt.Errorf("decode incident %s: %w", idOf(n), err)
		}
		out = append(out, inc)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(fmt.Errorf("read incidents: %w", err))
	}
	return out, nil
}

// ListIncidents lists newest first, as the bbolt backend does: the open
// and acknowledged ones through the open index, the others by walking
// incidents down from Before, at most MaxScan of them.
func (t *pgTx) ListIncidents(f store.Filter) (store.Page, error) {
	if f.Status == store.StatusOpen || f.Status == store.StatusAcknowledged {
		open, err := t.OpenIncidents()
		if err != nil {
			return store.Page{}, err
		}
		return store.PageOfOpen(open, f)
	}
	var before int64
	if f.Before != "" {
		n, err := incidentNumber(f.Before)
		if err != nil {
			return store.Page{}, fmt.Errorf("before: %w", err)
		}
		before = n
	}
	full := func(out []store.Incident) bool { return f.Limit > 0 && len(out) >= f.Limit }
	var page store.Page
	query := `SELECT num, status, severity, doc FROM incidents WHERE ($1 = 0 OR num < $1) ORDER BY num DESC`
	args := []any{before}
	if f.MaxScan > 0 {
		query += ` LIMIT $2`
		args = append(args, f.MaxScan+1)
	}
	rows, err := t.tx.Query(t.ctx, query, args...)
	if err != nil {
		return store.Page{}, t.fail(fmt.Errorf("list incidents: %w", err))
	}
	defer rows.Close()
	scanned := 0
	for rows.Next() {
		var n int64
		var status, severity string
		var doc []byte
		if err := rows.Scan(&n, &status, &severity, &doc); err != nil {
			return store.Page{}, t.fail(fmt.Errorf("list incidents: %w", err))
		}
		if full(page.Incidents) || (f.MaxScan > 0 && scanned >= f.MaxScan) {
			// Stopped early: the caller continues before the last row seen.
			page.Next = idOf(n + 1)
			break
		}
		scanned++
		if !f.Matches(store.Status(status), severity) {
			continue
		}
		var inc store.Incident
		if err := json.Unmarshal(doc, &inc); err != nil {
			return store.Page{}, fmt.Errorf("decode incident %s: %w", idOf(n), err)
		}
		page.Incidents = append(page.Incidents, inc)
	}
	if err := rows.Err(); err != nil {
		return store.Page{}, t.fail(fmt.Errorf("list incidents: %w", err))
	}
	return page, nil
}

func (t *pgTx) Alert(incidentID, fingerprint string) (*store.Alert, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	return oneDoc[store.Alert](t, fmt.Sprintf("alert %s of %s", fingerprint, incidentID),
		`SELECT doc FROM alerts WHERE incident = $1 AND fingerprint = $2`, n, []byte(fingerprint))
}

func (t *pgTx) PutAlert(incidentID string, a *store.Alert) error {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return fmt.Errorf("put alert: %w", err)
	}
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert %s: %w", a.Fingerprint, err)
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO alerts (incident, fingerprint, doc) VALUES ($1, $2, $3)
		ON CONFLICT (incident, fingerprint) DO UPDATE SET doc = $3`, n, []byte(a.Fingerprint), doc)
	if err != nil {
		return t.fail(fmt.Errorf("put alert %s of %s: %w", a.Fingerprint, incidentID, err))
	}
	return nil
}

// rowsOf decodes the documents query returns, in its order.
func rowsOf[T any](t *pgTx, what, query string, args ...any) ([]T, error) {
	rows, err := t.tx.Query(t.ctx, query, args...)
	if err != nil {
		return nil, t.fail(fmt.Errorf("read %s: %w", what, err))
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, t.fail(fmt.Errorf("read %s: %w", what, err))
		}
		var v T
		if err := json.Unmarshal(doc, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(fmt.Errorf("read %s: %w", what, err))
	}
	return out, nil
}

func (t *pgTx) Alerts(incidentID string) ([]store.Alert, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	return rowsOf[store.Alert](t, "alerts of "+incidentID, `SELECT doc FROM alerts WHERE incident = $1 ORDER BY fingerprint`, n)
}

func (t *pgTx) AppendTimeline(incidentID string, e store.Entry) error {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	doc, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode timeline entry of %s: %w", incidentID, err)
	}
	if _, err := t.tx.Exec(t.ctx, `INSERT INTO timeline (incident, doc) VALUES ($1, $2)`, n, doc); err != nil {
		return t.fail(fmt.Errorf("append timeline of %s: %w", incidentID, err))
	}
	return nil
}

func (t *pgTx) Timeline(incidentID string) ([]store.Entry, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	return rowsOf[store.Entry](t, "timeline of "+incidentID, `SELECT doc FROM timeline WHERE incident = $1 ORDER BY id`, n)
}

// RecordUnmatched keeps one row per distinct input (source, key, reason,
// detail): a sender re-delivering the same webhook adds nothing.
func (t *pgTx) RecordUnmatched(u store.Unmatched) error {
	sum := sha256.Sum256([]byte(string(u.Source) + "\x00" + u.DedupKey + "\x00" + u.Reason + "\x00" + u.Detail))
	doc, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode unmatched: %w", err)
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO unmatched (key, at, doc) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`, sum[:16], u.At, doc)
	if err != nil {
		return t.fail(fmt.Errorf("record unmatched: %w", err))
	}
	return nil
}

// Unmatched lists recorded unmatched input, newest first.
func (t *pgTx) Unmatched(limit int) ([]store.Unmatched, error) {
	query, args := `SELECT doc FROM unmatched ORDER BY at DESC, key`, []any{}
	if limit > 0 {
		query += ` LIMIT $1`
		args = append(args, limit)
	}
	out, err := rowsOf[store.Unmatched](t, "unmatched", query, args...)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out, nil
}

func (t *pgTx) Enqueue(in *store.Intent) error {
	n, err := incidentNumber(in.IncidentID)
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	var seq int64
	if err := t.tx.QueryRow(t.ctx, `SELECT nextval('intent_seq')`).Scan(&seq); err != nil {
		return t.fail(fmt.Errorf("enqueue for %s: %w", in.IncidentID, err))
	}
	in.Seq = seqOf(seq)
	if in.Key == "" {
		in.Key = fmt.Sprintf("%s/%s/%d", in.IncidentID, in.Channel, seq)
	}
	if in.State == "" {
		in.State = store.IntentPending
	}
	doc, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode intent %d: %w", in.Seq, err)
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO intents (seq, incident, pending, doc) VALUES ($1, $2, $3, $4)`,
		seq, n, in.State == store.IntentPending, doc)
	if err != nil {
		return t.fail(fmt.Errorf("enqueue for %s: %w", in.IncidentID, err))
	}
	return nil
}

func (t *pgTx) Intent(seq uint64) (*store.Intent, error) {
	return oneDoc[store.Intent](t, fmt.Sprintf("intent %d", seq), `SELECT doc FROM intents WHERE seq = $1`+t.lock(), dbSeq(seq))
}

func (t *pgTx) PutIntent(in *store.Intent) error {
	doc, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode intent %d: %w", in.Seq, err)
	}
	tag, err := t.tx.Exec(t.ctx, `UPDATE intents SET pending = $2, doc = $3 WHERE seq = $1`,
		dbSeq(in.Seq), in.State == store.IntentPending, doc)
	if err != nil {
		return t.fail(fmt.Errorf("put intent %d: %w", in.Seq, err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put intent %d: %w", in.Seq, store.ErrNotFound)
	}
	return nil
}

func (t *pgTx) PendingIntents(after uint64, limit int) ([]store.Intent, error) {
	query, args := `SELECT seq, doc FROM intents WHERE pending AND seq > $1 ORDER BY seq`, []any{dbSeq(after)}
	if limit > 0 {
		query += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := t.tx.Query(t.ctx, query, args...)
	if err != nil {
		return nil, t.fail(fmt.Errorf("read pending intents: %w", err))
	}
	defer rows.Close()
	var out []store.Intent
	var bad *store.UndecodableError
	for rows.Next() {
		var seq int64
		var doc []byte
		if err := rows.Scan(&seq, &doc); err != nil {
			return nil, t.fail(fmt.Errorf("read pending intents: %w", err))
		}
		var in store.Intent
		if err := json.Unmarshal(doc, &in); err != nil {
			// One bad value must not hold back every intent after it.
			if bad == nil {
				bad = &store.UndecodableError{}
			}
			bad.Seqs = append(bad.Seqs, seqOf(seq))
			bad.Errs = append(bad.Errs, fmt.Errorf("decode intent %d: %w", seq, err))
			continue
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(fmt.Errorf("read pending intents: %w", err))
	}
	if bad != nil {
		return out, bad
	}
	return out, nil
}

func (t *pgTx) PendingSeqs(after uint64, limit int) ([]uint64, error) {
	query, args := `SELECT seq FROM intents WHERE pending AND seq > $1 ORDER BY seq`, []any{dbSeq(after)}
	if limit > 0 {
		query += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := t.tx.Query(t.ctx, query, args...)
	if err != nil {
		return nil, t.fail(fmt.Errorf("read pending intents: %w", err))
	}
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (uint64, error) {
		var s int64
		err := r.Scan(&s)
		return seqOf(s), err
	})
	if err != nil {
		return nil, t.fail(fmt.Errorf("read pending intents: %w", err))
	}
	return seqs, nil
}

func (t *pgTx) SkipIntent(seq uint64) error {
	if _, err := t.tx.Exec(t.ctx, `UPDATE intents SET pending = false WHERE seq = $1`, dbSeq(seq)); err != nil {
		return t.fail(fmt.Errorf("skip intent %d: %w", seq, err))
	}
	return nil
}

func (t *pgTx) IncidentIntents(incidentID string) ([]store.Intent, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx, `SELECT seq, doc FROM intents WHERE incident = $1 ORDER BY seq`, n)
	if err != nil {
		return nil, t.fail(fmt.Errorf("read intents of %s: %w", incidentID, err))
	}
	defer rows.Close()
	out := []store.Intent{}
	for rows.Next() {
		var seq int64
		var doc []byte
		if err := rows.Scan(&seq, &doc); err != nil {
			return nil, t.fail(fmt.Errorf("read intents of %s: %w", incidentID, err))
		}
		var in store.Intent
		if err := json.Unmarshal(doc, &in); err != nil {
			// Shown as failed rather than failing the incident's whole view.
			in = store.Intent{Seq: seqOf(seq), IncidentID: incidentID, State: store.IntentFailed,
				LastError: "stored notification record is unreadable"}
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(fmt.Errorf("read intents of %s: %w", incidentID, err))
	}
	return out, nil
}

func (t *pgTx) Request(key string) (*store.Request, error) {
	return oneDoc[store.Request](t, fmt.Sprintf("request %q", key), `SELECT doc FROM requests WHERE key = $1`, []byte(key))
}

// PutRequest records a request under its key. A key another replica
// recorded meanwhile makes the write collide and run again, when it finds
// that record: idempotency keys hold across replicas.
func (t *pgTx) PutRequest(key string, r store.Request) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request %q: %w", key, err)
	}
	if _, err := t.tx.Exec(t.ctx, `INSERT INTO requests (key, doc) VALUES ($1, $2)`, []byte(key), doc); err != nil {
		return t.fail(fmt.Errorf("put request %q: %w", key, err))
	}
	return nil
}

func (t *pgTx) ResolvedOfKind(kind, incidentID string) (string, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return "", fmt.Errorf("resolved of kind: %w", err)
	}
	var first int64
	err = t.tx.QueryRow(t.ctx, `INSERT INTO resolved_kinds (kind, first_incident) VALUES ($1, $2)
		ON CONFLICT (kind) DO UPDATE SET kind = resolved_kinds.kind RETURNING first_incident`, []byte(kind), n).Scan(&first)
	if err != nil {
		return "", t.fail(fmt.Errorf("record kind of %s: %w", incidentID, err))
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO resolved_history (kind, incident) VALUES ($1, $2) ON CONFLICT DO NOTHING`, []byte(kind), n)
	if err != nil {
		return "", t.fail(fmt.Errorf("record kind of %s: %w", incidentID, err))
	}
	return idOf(first), nil
}

func (t *pgTx) ResolvedBefore(kind, before string, limit int) ([]string, error) {
	below := int64(math.MaxInt64)
	if before != "" {
		n, err := incidentNumber(before)
		if err != nil {
			return nil, fmt.Errorf("resolved before: %w", err)
		}
		below = n
	}
	if limit <= 0 {
		limit = math.MaxInt32
	}
	rows, err := t.tx.Query(t.ctx, `SELECT incident FROM resolved_history WHERE kind = $1 AND incident < $2
		ORDER BY incident DESC LIMIT $3`, []byte(kind), below, limit)
	if err != nil {
		return nil, t.fail(fmt.Errorf("resolved of kind before %s: %w", before, err))
	}
	ns, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, t.fail(fmt.Errorf("resolved of kind before %s: %w", before, err))
	}
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, idOf(n))
	}
	return out, nil
}

// Intent sequences come from a PostgreSQL sequence: positive, below 2^63,
// so they convert both ways unchanged.
func seqOf(n int64) uint64 { return uint64(n) } //nolint:gosec // see above

func dbSeq(s uint64) int64 { return int64(s) } //nolint:gosec // see above

var _ store.Leases = (*DB)(nil)

// HoldLease takes or extends the lease name for holder, in one statement,
// with the database's clock (the replicas' own clocks may disagree).
func (db *DB) HoldLease(ctx context.Context, name, holder string, ttl time.Duration) (uint64, error) {
	var token int64
	var got string
	err := db.pool.QueryRow(ctx, `
		INSERT INTO leases (name, holder, token, expires_at) VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET
			token = CASE WHEN leases.holder = $2 AND leases.expires_at > clock_timestamp() THEN leases.token ELSE leases.token + 1 END,
			holder = $2,
			expires_at = clock_timestamp() + $3 * interval '1 microsecond'
		WHERE leases.holder = $2 OR leases.expires_at <= clock_timestamp()
		RETURNING holder, token`, name, holder, ttl.Microseconds()).Scan(&got, &token)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil // held by another
	}
	if err != nil {
		return 0, unavailable("hold lease "+name, err)
	}
	return seqOf(token), nil
}

// CheckLease fails with store.ErrLeaseLost unless the lease is unexpired
// and still has token. It locks the lease row, so that the lease cannot
// change hands before this transaction commits.
func (t *pgTx) CheckLease(name string, token uint64) error {
	var current int64
	err := t.tx.QueryRow(t.ctx, `SELECT token FROM leases WHERE name = $1 AND expires_at > clock_timestamp() FOR SHARE`, name).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && seqOf(current) != token) {
		return fmt.Errorf("lease %s (token %d): %w", name, token, store.ErrLeaseLost)
	}
	if err != nil {
		return t.fail(fmt.Errorf("check lease %s: %w", name, err))
	}
	return nil
}

// SessionKey is the key that signs web session cookies, the same for every
// replica: made at random by the first replica that asks.
func (db *DB) SessionKey(ctx context.Context) ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	var key []byte
	err := db.pool.QueryRow(ctx, `INSERT INTO web_secrets (name, value) VALUES ('session_key', $1)
		ON CONFLICT (name) DO UPDATE SET name = web_secrets.name RETURNING value`, k).Scan(&key)
	if err != nil {
		return nil, unavailable("session key", err)
	}
	return key, nil
}

// RevokeSession records a logout, and forgets the logouts of sessions
// that have expired.
func (db *DB) RevokeSession(ctx context.Context, id string, until time.Time) error {
	_, err := db.pool.Exec(ctx, `WITH gone AS (DELETE FROM web_logouts WHERE until < clock_timestamp())
		INSERT INTO web_logouts (id, until) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, until)
	if err != nil {
		return unavailable("record logout", err)
	}
	return nil
}

// SessionRevoked reports whether the session logged out.
func (db *DB) SessionRevoked(ctx context.Context, id string) (bool, error) {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM web_logouts WHERE id = $1`, id).Scan(&n); err != nil {
		return false, unavailable("read logouts", err)
	}
	return n > 0, nil
}

// Empty reports whether the database holds nothing of Responder's yet (no
// incident number given, no outbox intent, no request, nothing unmatched):
// what responder migrate requires of its target.
func (db *DB) Empty(ctx context.Context) (bool, error) {
	var used int64
	var rows bool
	err := db.pool.QueryRow(ctx, `SELECT (SELECT value FROM responder_counters WHERE name = 'incident'),
		EXISTS (SELECT 1 FROM incidents) OR EXISTS (SELECT 1 FROM intents) OR EXISTS (SELECT 1 FROM requests) OR EXISTS (SELECT 1 FROM unmatched)
		OR EXISTS (SELECT 1 FROM heartbeats) OR EXISTS (SELECT 1 FROM action_items) OR EXISTS (SELECT 1 FROM postmortems)`).Scan(&used, &rows)
	if err != nil {
		return false, unavailable("check the database is empty", err)
	}
	return used == 0 && !rows, nil
}

// CounterTx is the transaction of responder migrate: it sets the next
// incident number to follow the incidents copied in.
type CounterTx interface {
	SetIncidentCounter(last uint64) error
	SetActionItemCounter(last uint64) error
}

// SetIncidentCounter makes INC-(last+1) the next incident id.
func (t *pgTx) SetIncidentCounter(last uint64) error {
	if _, err := t.tx.Exec(t.ctx, `UPDATE responder_counters SET value = $1 WHERE name = 'incident'`, dbSeq(last)); err != nil {
		return t.fail(fmt.Errorf("set the incident counter: %w", err))
	}
	return nil
}

func (t *pgTx) SetActionItemCounter(last uint64) error {
	if _, err := t.tx.Exec(t.ctx, `UPDATE responder_counters SET value = $1 WHERE name = 'action_item'`, dbSeq(last)); err != nil {
		return t.fail(fmt.Errorf("set the action item counter: %w", err))
	}
	return nil
}

// Counts are the rows of each of Responder's tables, for responder migrate
// to check a copy: incidents, alerts, timeline, intents, pending (intents),
// requests, unmatched, kinds.
func (db *DB) Counts(ctx context.Context) (map[string]int, error) {
	var c [14]int
	err := db.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM incidents), (SELECT count(*) FROM alerts), (SELECT count(*) FROM timeline),
		(SELECT count(*) FROM intents), (SELECT count(*) FROM intents WHERE pending), (SELECT count(*) FROM requests),
		(SELECT count(*) FROM unmatched), (SELECT count(*) FROM resolved_kinds), (SELECT count(*) FROM resolved_history),
		(SELECT count(*) FROM heartbeats), (SELECT count(*) FROM action_items), (SELECT count(*) FROM postmortems),
		(SELECT count(*) FROM postmortem_versions), (SELECT count(*) FROM checklists)`).
		Scan(&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8], &c[9], &c[10], &c[11], &c[12], &c[13])
	if err != nil {
		return nil, unavailable("count rows", err)
	}
	return map[string]int{"incidents": c[0], "alerts": c[1], "timeline": c[2], "intents": c[3], "pending": c[4],
		"requests": c[5], "unmatched": c[6], "kinds": c[7], "resolved": c[8], "heartbeats": c[9], "action_items": c[10],
		"postmortems": c[11], "postmortem_versions": c[12], "checklists": c[13]}, nil
}

func (t *pgTx) Heartbeat(name string) (*store.Heartbeat, error) {
	return oneDoc[store.Heartbeat](t, fmt.Sprintf("heartbeat %q", name), `SELECT doc FROM heartbeats WHERE name = $1`+t.lock(), []byte(name))
}

func (t *pgTx) PutHeartbeat(h *store.Heartbeat) error {
	doc, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode heartbeat %q: %w", h.Name, err)
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO heartbeats (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET doc = $2`, []byte(h.Name), doc)
	if err != nil {
		return t.fail(fmt.Errorf("put heartbeat %q: %w", h.Name, err))
	}
	return nil
}

func (t *pgTx) NextActionItemID() (string, error) {
	var n int64
	err := t.tx.QueryRow(t.ctx, `UPDATE responder_counters SET value = value + 1 WHERE name = 'action_item' RETURNING value`).Scan(&n)
	if err != nil {
		return "", t.fail(fmt.Errorf("next action item id: %w", err))
	}
	return "AI-" + strconv.FormatInt(n, 10), nil
}

// actionNumber parses "AI-7" into 7.
func actionNumber(id string) (int64, error) {
	n, err := store.ActionNumber(id)
	return int64(n), err //nolint:gosec // below 2^63: ActionNumber parses 63 bits
}

func (t *pgTx) ActionItem(id string) (*store.ActionItem, error) {
	n, err := actionNumber(id)
	if err != nil {
		return nil, err
	}
	return oneDoc[store.ActionItem](t, "action item "+id, `SELECT doc FROM action_items WHERE num = $1`+t.lock(), n)
}

func (t *pgTx) PutActionItem(a *store.ActionItem) error {
	n, err := actionNumber(a.ID)
	if err != nil {
		return fmt.Errorf("put action item: %w", err)
	}
	inc, err := incidentNumber(a.IncidentID)
	if err != nil {
		return fmt.Errorf("put action item %s: %w", a.ID, err)
	}
	doc, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode action item %s: %w", a.ID, err)
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO action_items (num, incident, open, owner, doc) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (num) DO UPDATE SET incident = $2, open = $3, owner = $4, doc = $5`, n, inc, a.State == store.ActionOpen, a.Owner, doc)
	if err != nil {
		return t.fail(fmt.Errorf("put action item %s: %w", a.ID, err))
	}
	return nil
}

func (t *pgTx) ActionItems(f store.ActionFilter) ([]store.ActionItem, error) {
	query, args := `SELECT doc FROM action_items WHERE true`, []any{}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Incident != "" {
		inc, err := incidentNumber(f.Incident)
		if errors.Is(err, store.ErrNotFound) {
			return []store.ActionItem{}, nil // no incident has that id: nothing of it
		} else if err != nil {
			return nil, err
		}
		query += ` AND incident = ` + arg(inc)
	}
	switch f.State {
	case "":
	case store.ActionOpen:
		query += ` AND open`
	default:
		query += ` AND NOT open AND doc->>'state' = ` + arg(f.State)
	}
	if f.Owner != "" {
		query += ` AND owner = ` + arg(f.Owner)
	}
	query += ` ORDER BY num`
	if f.Limit > 0 {
		query += ` LIMIT ` + arg(f.Limit)
	}
	return rowsOf[store.ActionItem](t, "action items", query, args...)
}

func (t *pgTx) Postmortem(incidentID string) (*store.Postmortem, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	return oneDoc[store.Postmortem](t, "post-mortem of "+incidentID, `SELECT doc FROM postmortems WHERE incident = $1`+t.lock(), n)
}

func (t *pgTx) PutPostmortem(p *store.Postmortem) error {
	n, err := incidentNumber(p.IncidentID)
	if err != nil {
		return fmt.Errorf("put post-mortem: %w", err)
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode post-mortem of %s: %w", p.IncidentID, err)
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO postmortems (incident, doc) VALUES ($1, $2) ON CONFLICT (incident) DO UPDATE SET doc = $2`, n, doc)
	if err != nil {
		return t.fail(fmt.Errorf("put post-mortem of %s: %w", p.IncidentID, err))
	}
	return nil
}

func (t *pgTx) AddPostmortemVersion(incidentID string, pv store.PostmortemVersion) error {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return fmt.Errorf("add post-mortem version: %w", err)
	}
	if pv.Version < 1 {
		return fmt.Errorf("post-mortem of %s: version %d: versions count from 1", incidentID, pv.Version)
	}
	doc, err := json.Marshal(pv)
	if err != nil {
		return fmt.Errorf("encode post-mortem version of %s: %w", incidentID, err)
	}
	tag, err := t.tx.Exec(t.ctx, `INSERT INTO postmortem_versions (incident, version, doc) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, n, pv.Version, doc)
	if err != nil {
		return t.fail(fmt.Errorf("add post-mortem version of %s: %w", incidentID, err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("post-mortem of %s: version %d is already kept", incidentID, pv.Version)
	}
	return nil
}

func (t *pgTx) PostmortemVersions(incidentID string) ([]store.PostmortemVersion, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	return rowsOf[store.PostmortemVersion](t, "post-mortem versions of "+incidentID,
		`SELECT doc FROM postmortem_versions WHERE incident = $1 ORDER BY version`, n)
}

func (t *pgTx) Checklist(incidentID string) ([]store.Step, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	steps, err := oneDoc[[]store.Step](t, "checklist of "+incidentID, `SELECT doc FROM checklists WHERE incident = $1`+t.lock(), n)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return []store.Step{}, nil
	case err != nil:
		return nil, err
	}
	return *steps, nil
}

func (t *pgTx) PutChecklist(incidentID string, steps []store.Step) error {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return fmt.Errorf("put checklist: %w", err)
	}
	doc, err := json.Marshal(steps)
	if err != nil {
		return fmt.Errorf("encode checklist of %s: %w", incidentID, err)
	}
	_, err = t.tx.Exec(t.ctx, `INSERT INTO checklists (incident, doc) VALUES ($1, $2) ON CONFLICT (incident) DO UPDATE SET doc = $2`, n, doc)
	if err != nil {
		return t.fail(fmt.Errorf("put checklist of %s: %w", incidentID, err))
	}
	return nil
}
