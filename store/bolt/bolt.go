// Package bolt is the embedded default backend of the store: one bbolt
// file. One writer goroutine commits queued writes together (group commit),
// each durable on disk before Update returns.
package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/responder-sre/responder/store"
)

// Bucket names. Keys of incidents are the incident number, big-endian, so
// that a cursor walks them in id order; alert and timeline keys start with
// the same eight bytes so that one incident's rows are one key range.
var (
	bucketMeta        = []byte("meta")
	bucketIncidents   = []byte("incidents")
	bucketOpen        = []byte("open_by_dedup")       // source + dedup key -> number of the open incident
	bucketLatest      = []byte("latest_by_dedup")     // source + dedup key -> number of the newest incident
	bucketAlerts      = []byte("alerts")              // incident number + fingerprint -> store.Alert
	bucketTimeline    = []byte("timeline")            // incident number + entry sequence -> store.Entry
	bucketUnmatched   = []byte("unmatched")           // hash of the input -> store.Unmatched
	bucketOutbox      = []byte("outbox")              // sequence -> store.Intent
	bucketPending     = []byte("outbox_pending")      // sequence of every pending intent -> nothing
	bucketIntents     = []byte("outbox_by_incident")  // incident number + sequence -> nothing
	bucketKinds       = []byte("resolved_kinds")      // incident kind -> number of the first resolved incident of that kind
	bucketRequests    = []byte("requests_by_key")     // who + Idempotency-Key -> store.Request
	bucketHeartbeats  = []byte("heartbeats")          // name -> store.Heartbeat
	bucketResolved    = []byte("resolved_by_kind")    // incident kind -> bucket of resolved incident numbers
	bucketActions     = []byte("action_items")        // action item number -> store.ActionItem
	bucketActionsBy   = []byte("actions_by_incident") // incident number + action item number -> nothing
	bucketActionsOpen = []byte("actions_open")        // action item number -> nothing, for the open ones
	bucketPostmortems = []byte("postmortems")         // incident number -> store.Postmortem
	bucketPMVersions  = []byte("postmortem_versions") // incident number + version -> store.PostmortemVersion
	bucketChecklists  = []byte("checklists")          // incident number -> []store.Step
	allBuckets        = [][]byte{bucketMeta, bucketIncidents, bucketOpen, bucketLatest, bucketAlerts, bucketTimeline, bucketUnmatched, bucketOutbox, bucketPending, bucketIntents, bucketKinds, bucketRequests, bucketHeartbeats, bucketResolved,
		bucketActions, bucketActionsBy, bucketActionsOpen, bucketPostmortems, bucketPMVersions, bucketChecklists}
)

const schemaVersion = "1"

const initialMmapSize = 256 << 20

// Options tune Open. Zero values take the defaults.
type Options struct {
	// LockTimeout bounds the wait for the file lock held by another
	// process; zero tries once and fails at once.
	LockTimeout time.Duration
	// QueueSize bounds the writes waiting for the writer; a full queue makes
	// Update return store.ErrBusy at once.
	QueueSize int
	// MaxBatch is the most writes committed together in one transaction.
	MaxBatch int
	// Busy, when set and returning true, makes Update answer store.ErrBusy as if the
	// queue were full. It exists for overload tests of the whole daemon.
	Busy func() bool
}

// Defaults of Options.
const (
	DefaultQueueSize = 1024
	DefaultMaxBatch  = 256
)

// DB is the bbolt-backed store. It is safe for concurrent use.
type DB struct {
	bolt     *bbolt.DB
	queue    chan *op
	maxBatch int
	busy     func() bool

	incidents *incidentCache // the writer's alone

	mu      sync.RWMutex // guards closed against sends on a closed queue
	closed  bool
	stopped chan struct{}
}

type op struct {
	ctx  context.Context
	fn   func(store.Tx) error
	done chan error
}

// Open opens (creating if needed) the database file at path, creates every
// bucket, and starts the writer. Close it to stop the writer and release the
// file.
func Open(path string, o Options) (*DB, error) {
	// bbolt waits for ever on a zero timeout; a tiny one tries once.
	lockWait := max(o.LockTimeout, time.Nanosecond)
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create data dir for %s: %w", path, err)
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      lockWait,
		FreelistType: bbolt.FreelistMapType,
		// Growing the mapping waits for every open read transaction; mapping
		// ahead of the file keeps the writer from stalling behind a long read
		// until the file passes this size. It reserves address space only.
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %s holds it, most likely another responder on the same data directory: "+
			"stop it, or give this one its own data_dir (waited %s for the lock, store.lock_timeout): %w", path, "another process"+pidOf(path), o.LockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		backfill := tx.Bucket(bucketResolved) == nil && tx.Bucket(bucketKinds) != nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if backfill {
			// A file from before the history of resolved incidents: it
			// starts with the first incident of each kind, all it knew.
			err := tx.Bucket(bucketKinds).ForEach(func(kind, first []byte) error {
				hist, err := tx.Bucket(bucketResolved).CreateBucketIfNotExists(kindKey(string(kind)))
				if err != nil {
					return err
				}
				return hist.Put(first, []byte{1})
			})
			if err != nil {
				return fmt.Errorf("fill the history of resolved incidents: %w", err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get([]byte("schema")); v != nil && string(v) != schemaVersion {
			return fmt.Errorf("schema version %s, this build reads %s", v, schemaVersion)
		}
		return meta.Put([]byte("schema"), []byte(schemaVersion))
	})
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db := &DB{
		bolt:     b,
		queue:    make(chan *op, o.QueueSize),
		maxBatch: o.MaxBatch,
		busy:     o.Busy,
		stopped:  make(chan struct{}),

		incidents: newIncidentCache(),
	}
	go db.writer()
	return db, nil
}

// Path is the file the store lives in.
func (db *DB) Path() string { return db.bolt.Path() }

// QueueDepth is the number of writes waiting for the writer.
func (db *DB) QueueDepth() int { return len(db.queue) }

// Update runs fn in a read-write transaction and returns once that
// transaction is committed and synced to disk. fn may be called more than
// once (when another write of the same batch fails, the batch is retried
// without it), so it must have no effect outside the transaction other than
// setting its own results. When fn returns an error nothing it wrote is kept
// and that error is returned. A full queue returns store.ErrBusy without waiting.
func (db *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	if db.busy != nil && db.busy() {
		return store.ErrBusy
	}
	if err := ctx.Err(); err != nil {
		return err // do not take a queue slot from a live writer
	}
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	db.mu.RLock()
	if db.closed {
		db.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case db.queue <- o:
	default:
		db.mu.RUnlock()
		return store.ErrBusy
	}
	db.mu.RUnlock()
	// Wait for the outcome even when ctx ends: the write may already be in
	// a transaction, and the caller must not report failure for a write that
	// then lands. The writer skips ops whose context ended before it started.
	return <-o.done
}

// View runs fn in a read-only transaction. It sees every committed write.
func (db *DB) View(_ context.Context, fn func(store.Tx) error) error {
	return db.bolt.View(func(tx *bbolt.Tx) error { return fn(&boltTx{tx: tx}) })
}

// Close stops accepting writes, commits what is queued, and closes the file.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.queue)
	db.mu.Unlock()
	<-db.stopped
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", db.bolt.Path(), err)
	}
	return nil
}

// writer is the single goroutine that commits. It takes whatever is queued
// (up to maxBatch) into one transaction, so concurrent writers share one
// fsync instead of paying one each.
func (db *DB) writer() {
	defer close(db.stopped)
	batch := make([]*op, 0, db.maxBatch)
	for first := range db.queue {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < db.maxBatch {
			select {
			case o, ok := <-db.queue:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		db.commit(batch)
	}
}

// commit runs a batch in one transaction. A write that fails before
// writing anything (a 404 or 409 decided on reads) is answered with its error
// and the transaction goes on; one that fails after writing forces a
// rollback, and the rest of the batch is run again without it. Refusals are
// cheap that way: they cannot make everyone else's work run twice.
func (db *DB) commit(batch []*op) {
	live := batch[:0]
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.done <- err // the caller gave up before its write started
			continue
		}
		live = append(live, o)
	}
	refused := make([]error, len(live))
	for len(live) > 0 {
		failed, failErr := -1, error(nil)
		clear(refused)
		err := db.bolt.Update(func(btx *bbolt.Tx) error {
			tx := &boltTx{tx: btx, incidents: db.incidents}
			for i, o := range live {
				tx.wrote = false
				if err := o.run(tx); err != nil {
					if !tx.wrote {
						refused[i] = err
						continue
					}
					failed, failErr = i, err
					return err
				}
			}
			return nil
		})
		switch {
		case err == nil:
			for i, o := range live {
				o.done <- refused[i]
			}
			return
		case failed >= 0:
			// Answer the write that failed and those refused before it (their
			// answer does not depend on the batch); run the rest again.
			next := live[:0]
			for i, o := range live {
				switch {
				case i == failed:
					o.done <- failErr
				case refused[i] != nil:
					o.done <- refused[i]
				default:
					next = append(next, o)
				}
			}
			live = next
			refused = refused[:len(live)]
		default: // the commit itself failed: nothing of the batch is on disk
			for i, o := range live {
				if refused[i] != nil {
					o.done <- refused[i]
					continue
				}
				o.done <- fmt.Errorf("commit: %w", err)
			}
			return
		}
	}
}

// run calls fn and turns a panic into that write's error: fn runs on the
// writer goroutine, where a panic would take the whole daemon down with the
// other writes of the batch.
func (o *op) run(tx store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return o.fn(tx)
}

type boltTx struct {
	tx    *bbolt.Tx
	wrote bool // set by every method that changes the file
	// incidents is the writer's cache of decoded incidents; nil in read
	// transactions.
	incidents *incidentCache
}

var (
	_ store.Tx = (*boltTx)(nil)
	_ store.DB = (*DB)(nil)
)

// incidentNumber parses "INC-42" into 42.
func incidentNumber(id string) (uint64, error) { return store.IncidentNumber(id) }

func u64key(n uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, n)
	return k
}

func (t *boltTx) NextIncidentID() (string, error) {
	t.wrote = true
	n, err := t.tx.Bucket(bucketIncidents).NextSequence()
	if err != nil {
		return "", fmt.Errorf("next incident id: %w", err)
	}
	return "INC-" + strconv.FormatUint(n, 10), nil
}

func (t *boltTx) Incident(id string) (*store.Incident, error) {
	n, err := incidentNumber(id)
	if err != nil {
		return nil, err
	}
	return t.incidentByKey(u64key(n), id)
}

func (t *boltTx) incidentByKey(k []byte, id string) (*store.Incident, error) {
	v := t.tx.Bucket(bucketIncidents).Get(k)
	if v == nil {
		return nil, fmt.Errorf("incident %s: %w", id, store.ErrNotFound)
	}
	n := binary.BigEndian.Uint64(k)
	if inc, ok := t.incidents.get(n, v); ok {
		return inc, nil
	}
	var inc store.Incident
	if err := json.Unmarshal(v, &inc); err != nil {
		return nil, fmt.Errorf("decode incident %s: %w", id, err)
	}
	if t.incidents != nil {
		// v lives in the file's memory map only as long as the
		// transaction: keep a copy.
		t.incidents.put(n, bytes.Clone(v), &inc)
	}
	return &inc, nil
}

func (t *boltTx) PutIncident(inc *store.Incident) error {
	t.wrote = true
	n, err := incidentNumber(inc.ID)
	if err != nil {
		return fmt.Errorf("put incident: %w", err)
	}
	v, err := json.Marshal(inc)
	if err != nil {
		return fmt.Errorf("encode incident %s: %w", inc.ID, err)
	}
	key := u64key(n)
	if err := t.tx.Bucket(bucketIncidents).Put(key, v); err != nil {
		return fmt.Errorf("put incident %s: %w", inc.ID, err)
	}
	t.incidents.put(n, v, inc)
	if inc.DedupKey == "" {
		return nil
	}
	dk := dedupIndexKey(inc.Source, inc.DedupKey)
	// The indexes are written only when they change: an unchanged Put
	// still costs a search and dirties its page (an alert joining an open
	// incident changes neither).
	latest := t.tx.Bucket(bucketLatest)
	if cur := latest.Get(dk); cur == nil || binary.BigEndian.Uint64(cur) < n {
		if err := latest.Put(dk, key); err != nil {
			return fmt.Errorf("index incident %s: %w", inc.ID, err)
		}
	}
	open := t.tx.Bucket(bucketOpen)
	if inc.Status == store.StatusResolved {
		if cur := open.Get(dk); cur != nil && binary.BigEndian.Uint64(cur) == n {
			if err := open.Delete(dk); err != nil {
				return fmt.Errorf("unindex incident %s: %w", inc.ID, err)
			}
		}
		return nil
	}
	if cur := open.Get(dk); cur != nil && binary.BigEndian.Uint64(cur) == n {
		return nil
	}
	if err := open.Put(dk, key); err != nil {
		return fmt.Errorf("index incident %s: %w", inc.ID, err)
	}
	return nil
}

// dedupIndexKey scopes a dedup key to its source, so that an OpsGenie alias
// can never collide with an Alertmanager group key.
func dedupIndexKey(src store.Source, key string) []byte {
	return []byte(string(src) + "\x00" + key)
}

func (t *boltTx) LatestByDedupKey(src store.Source, key string) (*store.Incident, error) {
	v := t.tx.Bucket(bucketLatest).Get(dedupIndexKey(src, key))
	if v == nil {
		return nil, fmt.Errorf("incident with dedup key %q: %w", key, store.ErrNotFound)
	}
	return t.incidentByKey(v, "INC-"+strconv.FormatUint(binary.BigEndian.Uint64(v), 10))
}

func (t *boltTx) OpenIncidents() ([]store.Incident, error) {
	var keys []uint64
	err := t.tx.Bucket(bucketOpen).ForEach(func(_, v []byte) error {
		keys = append(keys, binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read open index: %w", err)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] > keys[j] })
	out := make([]store.Incident, 0, len(keys))
	for _, n := range keys {
		inc, err := t.incidentByKey(u64key(n), "INC-"+strconv.FormatUint(n, 10))
		if err != nil {
			return nil, err
		}
		out = append(out, *inc)
	}
	return out, nil
}

func (t *boltTx) ListIncidents(f store.Filter) (store.Page, error) {
	if f.Status == store.StatusOpen || f.Status == store.StatusAcknowledged {
		open, err := t.OpenIncidents()
		if err != nil {
			return store.Page{}, err
		}
		return store.PageOfOpen(open, f)
	}
	var before uint64
	if f.Before != "" {
		n, err := incidentNumber(f.Before)
		if err != nil {
			return store.Page{}, fmt.Errorf("before: %w", err)
		}
		before = n
	}
	full := func(out []store.Incident) bool { return f.Limit > 0 && len(out) >= f.Limit }
	var page store.Page
	c := t.tx.Bucket(bucketIncidents).Cursor()
	k, v := c.Last()
	if before != 0 {
		if k, _ = c.Seek(u64key(before)); k == nil {
			k, v = c.Last() // every incident is older than before
		} else {
			k, v = c.Prev()
		}
	}
	scanned := 0
	for ; k != nil; k, v = c.Prev() {
		if full(page.Incidents) || (f.MaxScan > 0 && scanned >= f.MaxScan) {
			// Stopped early: the caller continues before the last row seen.
			page.Next = "INC-" + strconv.FormatUint(binary.BigEndian.Uint64(k)+1, 10)
			break
		}
		scanned++
		var inc store.Incident
		if err := json.Unmarshal(v, &inc); err != nil {
			return store.Page{}, fmt.Errorf("decode incident %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if f.Matches(inc.Status, inc.Severity) {
			page.Incidents = append(page.Incidents, inc)
		}
	}
	return page, nil
}

func alertKey(n uint64, fingerprint string) []byte {
	return append(u64key(n), fingerprint...)
}

func (t *boltTx) Alert(incidentID, fingerprint string) (*store.Alert, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	v := t.tx.Bucket(bucketAlerts).Get(alertKey(n, fingerprint))
	if v == nil {
		return nil, fmt.Errorf("alert %s of %s: %w", fingerprint, incidentID, store.ErrNotFound)
	}
	var a store.Alert
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("decode alert %s of %s: %w", fingerprint, incidentID, err)
	}
	return &a, nil
}

func (t *boltTx) PutAlert(incidentID string, a *store.Alert) error {
	t.wrote = true
	n, err := incidentNumber(incidentID)
	if err != nil {
		return fmt.Errorf("put alert: %w", err)
	}
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert %s: %w", a.Fingerprint, err)
	}
	if err := t.tx.Bucket(bucketAlerts).Put(alertKey(n, a.Fingerprint), v); err != nil {
		return fmt.Errorf("put alert %s of %s: %w", a.Fingerprint, incidentID, err)
	}
	return nil
}

// listIncidentRows decodes every value of bucket whose key starts with the
// incident's eight-byte number, in key order.
func listIncidentRows[T any](t *boltTx, bucket []byte, incidentID, what string) ([]T, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	prefix := u64key(n)
	out := []T{}
	c := t.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var row T
		if err := json.Unmarshal(v, &row); err != nil {
			return nil, fmt.Errorf("decode %s of %s: %w", what, incidentID, err)
		}
		out = append(out, row)
	}
	return out, nil
}

func (t *boltTx) Alerts(incidentID string) ([]store.Alert, error) {
	return listIncidentRows[store.Alert](t, bucketAlerts, incidentID, "alert")
}

func (t *boltTx) AppendTimeline(incidentID string, e store.Entry) error {
	t.wrote = true
	n, err := incidentNumber(incidentID)
	if err != nil {
		return fmt.Errorf("append timeline: %w", err)
	}
	b := t.tx.Bucket(bucketTimeline)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("append timeline of %s: %w", incidentID, err)
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode timeline entry of %s: %w", incidentID, err)
	}
	if err := b.Put(append(u64key(n), u64key(seq)...), v); err != nil {
		return fmt.Errorf("append timeline of %s: %w", incidentID, err)
	}
	return nil
}

func (t *boltTx) Timeline(incidentID string) ([]store.Entry, error) {
	return listIncidentRows[store.Entry](t, bucketTimeline, incidentID, "timeline entry")
}

// RecordUnmatched keeps one row per distinct input (source, key, reason,
// detail): a sender re-delivering the same webhook adds nothing.
func (t *boltTx) RecordUnmatched(u store.Unmatched) error {
	sum := sha256.Sum256([]byte(string(u.Source) + "\x00" + u.DedupKey + "\x00" + u.Reason + "\x00" + u.Detail))
	key := sum[:16]
	b := t.tx.Bucket(bucketUnmatched)
	if b.Get(key) != nil {
		return nil
	}
	t.wrote = true
	v, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode unmatched: %w", err)
	}
	if err := b.Put(key, v); err != nil {
		return fmt.Errorf("record unmatched: %w", err)
	}
	return nil
}

// store.Unmatched lists recorded unmatched input, newest first.
func (t *boltTx) Unmatched(limit int) ([]store.Unmatched, error) {
	var out []store.Unmatched
	err := t.tx.Bucket(bucketUnmatched).ForEach(func(_, v []byte) error {
		var u store.Unmatched
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("decode unmatched: %w", err)
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Ready reports whether the store accepts writes.
func (db *DB) Ready() error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return store.ErrClosed
	}
	select {
	case <-db.stopped:
		return fmt.Errorf("writer stopped: %w", store.ErrClosed)
	default:
		return nil
	}
}

func (t *boltTx) Enqueue(in *store.Intent) error {
	n, err := incidentNumber(in.IncidentID)
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	t.wrote = true
	seq, err := t.tx.Bucket(bucketOutbox).NextSequence()
	if err != nil {
		return fmt.Errorf("enqueue for %s: %w", in.IncidentID, err)
	}
	in.Seq = seq
	if in.Key == "" {
		in.Key = fmt.Sprintf("%s/%s/%d", in.IncidentID, in.Channel, seq)
	}
	if in.State == "" {
		in.State = store.IntentPending
	}
	if err := t.tx.Bucket(bucketIntents).Put(append(u64key(n), u64key(seq)...), nil); err != nil {
		return fmt.Errorf("index intent %d: %w", seq, err)
	}
	return t.PutIntent(in)
}

func (t *boltTx) Intent(seq uint64) (*store.Intent, error) {
	v := t.tx.Bucket(bucketOutbox).Get(u64key(seq))
	if v == nil {
		return nil, fmt.Errorf("intent %d: %w", seq, store.ErrNotFound)
	}
	var in store.Intent
	if err := json.Unmarshal(v, &in); err != nil {
		return nil, fmt.Errorf("decode intent %d: %w", seq, err)
	}
	return &in, nil
}

func (t *boltTx) PutIntent(in *store.Intent) error {
	t.wrote = true
	v, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode intent %d: %w", in.Seq, err)
	}
	key := u64key(in.Seq)
	if err := t.tx.Bucket(bucketOutbox).Put(key, v); err != nil {
		return fmt.Errorf("put intent %d: %w", in.Seq, err)
	}
	pending := t.tx.Bucket(bucketPending)
	if in.State == store.IntentPending {
		err = pending.Put(key, nil)
	} else {
		err = pending.Delete(key)
	}
	if err != nil {
		return fmt.Errorf("index intent %d: %w", in.Seq, err)
	}
	return nil
}

func (t *boltTx) PendingIntents(after uint64, limit int) ([]store.Intent, error) {
	var out []store.Intent
	var bad *store.UndecodableError
	read := 0 // intents read, decodable or not
	c := t.tx.Bucket(bucketPending).Cursor()
	for k, _ := c.Seek(u64key(after + 1)); k != nil && (limit <= 0 || read < limit); k, _ = c.Next() {
		read++
		seq := binary.BigEndian.Uint64(k)
		in, err := t.Intent(seq) // fails only on a missing or unreadable value
		if err != nil {
			// One bad value must not hold back every intent after it.
			if bad == nil {
				bad = &store.UndecodableError{}
			}
			bad.Seqs = append(bad.Seqs, seq)
			bad.Errs = append(bad.Errs, err)
			continue
		}
		out = append(out, *in)
	}
	if bad != nil {
		return out, bad
	}
	return out, nil
}

func (t *boltTx) PendingSeqs(after uint64, limit int) ([]uint64, error) {
	var out []uint64
	c := t.tx.Bucket(bucketPending).Cursor()
	for k, _ := c.Seek(u64key(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
		out = append(out, binary.BigEndian.Uint64(k))
	}
	return out, nil
}

func (t *boltTx) SkipIntent(seq uint64) error {
	t.wrote = true
	if err := t.tx.Bucket(bucketPending).Delete(u64key(seq)); err != nil {
		return fmt.Errorf("skip intent %d: %w", seq, err)
	}
	return nil
}

func (t *boltTx) IncidentIntents(incidentID string) ([]store.Intent, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	prefix := u64key(n)
	out := []store.Intent{}
	c := t.tx.Bucket(bucketIntents).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		seq := binary.BigEndian.Uint64(k[8:])
		in, err := t.Intent(seq)
		if err != nil {
			// Shown as failed rather than failing the incident's whole view;
			// the dispatcher skips it the same way (see SkipIntent).
			out = append(out, store.Intent{Seq: seq, IncidentID: incidentID, State: store.IntentFailed,
				LastError: "stored notification record is unreadable"})
			continue
		}
		out = append(out, *in)
	}
	return out, nil
}

func (t *boltTx) Request(key string) (*store.Request, error) {
	v := t.tx.Bucket(bucketRequests).Get([]byte(key))
	if v == nil {
		return nil, fmt.Errorf("request %q: %w", key, store.ErrNotFound)
	}
	var r store.Request
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("decode request %q: %w", key, err)
	}
	return &r, nil
}

func (t *boltTx) PutRequest(key string, r store.Request) error {
	t.wrote = true
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode request %q: %w", key, err)
	}
	if err := t.tx.Bucket(bucketRequests).Put([]byte(key), v); err != nil {
		return fmt.Errorf("put request %q: %w", key, err)
	}
	return nil
}

func (t *boltTx) ResolvedOfKind(kind, incidentID string) (string, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return "", fmt.Errorf("resolved of kind: %w", err)
	}
	t.wrote = true
	hist, err := t.tx.Bucket(bucketResolved).CreateBucketIfNotExists(kindKey(kind))
	if err != nil {
		return "", fmt.Errorf("record kind of %s: %w", incidentID, err)
	}
	if err := hist.Put(u64key(n), []byte{1}); err != nil {
		return "", fmt.Errorf("record kind of %s: %w", incidentID, err)
	}
	b := t.tx.Bucket(bucketKinds)
	k := []byte(kind)
	if v := b.Get(k); v != nil {
		return "INC-" + strconv.FormatUint(binary.BigEndian.Uint64(v), 10), nil
	}
	t.wrote = true
	if err := b.Put(k, u64key(n)); err != nil {
		return "", fmt.Errorf("record kind of %s: %w", incidentID, err)
	}
	return incidentID, nil
}

func (t *boltTx) ResolvedBefore(kind, before string, limit int) ([]string, error) {
	var below uint64 // 0: no bound
	if before != "" {
		n, err := incidentNumber(before)
		if err != nil {
			return nil, fmt.Errorf("resolved before: %w", err)
		}
		below = n
	}
	hist := t.tx.Bucket(bucketResolved).Bucket(kindKey(kind))
	if hist == nil {
		return nil, nil
	}
	var out []string
	c := hist.Cursor()
	k, _ := c.Last()
	if below != 0 {
		k, _ = c.Seek(u64key(below))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
	}
	for ; k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Prev() {
		out = append(out, "INC-"+strconv.FormatUint(binary.BigEndian.Uint64(k), 10))
	}
	return out, nil
}

// kindKey is the key of a kind's bucket of resolved incidents: a prefix
// byte, because a bucket's name cannot be empty and a kind can.
func kindKey(kind string) []byte { return append([]byte{'k'}, kind...) }

// ResolvedHistory lists every incident recorded by ResolvedOfKind, by
// kind, oldest first, for responder migrate.
func (db *DB) ResolvedHistory() (map[string][]string, error) {
	out := map[string][]string{}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketResolved).ForEachBucket(func(kind []byte) error {
			ids := []string{}
			err := tx.Bucket(bucketResolved).Bucket(kind).ForEach(func(k, _ []byte) error {
				ids = append(ids, "INC-"+strconv.FormatUint(binary.BigEndian.Uint64(k), 10))
				return nil
			})
			out[string(kind[1:])] = ids
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read resolved history: %w", err)
	}
	return out, nil
}

// Requests lists every recorded idempotency key and its request, for
// responder migrate (the store contract reads them one key at a time).
func (db *DB) Requests() (map[string]store.Request, error) {
	out := map[string]store.Request{}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketRequests).ForEach(func(k, v []byte) error {
			var r store.Request
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode request %q: %w", k, err)
			}
			out[string(k)] = r
			return nil
		})
	})
	return out, err
}

// ResolvedKinds lists every incident kind with the first incident of that
// kind that resolved, for responder migrate.
func (db *DB) ResolvedKinds() (map[string]string, error) {
	out := map[string]string{}
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketKinds).ForEach(func(k, v []byte) error {
			out[string(k)] = "INC-" + strconv.FormatUint(binary.BigEndian.Uint64(v), 10)
			return nil
		})
	})
	return out, err
}

// Heartbeats lists the state of every heartbeat, for responder migrate.
func (db *DB) Heartbeats() ([]store.Heartbeat, error) {
	var out []store.Heartbeat
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketHeartbeats).ForEach(func(k, v []byte) error {
			var h store.Heartbeat
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("decode heartbeat %q: %w", k, err)
			}
			out = append(out, h)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read heartbeats: %w", err)
	}
	return out, nil
}

func (t *boltTx) Heartbeat(name string) (*store.Heartbeat, error) {
	v := t.tx.Bucket(bucketHeartbeats).Get([]byte(name))
	if v == nil {
		return nil, fmt.Errorf("heartbeat %q: %w", name, store.ErrNotFound)
	}
	var h store.Heartbeat
	if err := json.Unmarshal(v, &h); err != nil {
		return nil, fmt.Errorf("decode heartbeat %q: %w", name, err)
	}
	return &h, nil
}

func (t *boltTx) PutHeartbeat(h *store.Heartbeat) error {
	t.wrote = true
	v, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode heartbeat %q: %w", h.Name, err)
	}
	if err := t.tx.Bucket(bucketHeartbeats).Put([]byte(h.Name), v); err != nil {
		return fmt.Errorf("put heartbeat %q: %w", h.Name, err)
	}
	return nil
}

func (t *boltTx) NextActionItemID() (string, error) {
	t.wrote = true
	n, err := t.tx.Bucket(bucketActions).NextSequence()
	if err != nil {
		return "", fmt.Errorf("next action item id: %w", err)
	}
	return "AI-" + strconv.FormatUint(n, 10), nil
}

func (t *boltTx) ActionItem(id string) (*store.ActionItem, error) {
	n, err := store.ActionNumber(id)
	if err != nil {
		return nil, err
	}
	return decodeAction(t.tx.Bucket(bucketActions).Get(u64key(n)), id)
}

func decodeAction(v []byte, id string) (*store.ActionItem, error) {
	if v == nil {
		return nil, fmt.Errorf("action item %s: %w", id, store.ErrNotFound)
	}
	var a store.ActionItem
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, fmt.Errorf("decode action item %s: %w", id, err)
	}
	return &a, nil
}

func (t *boltTx) PutActionItem(a *store.ActionItem) error {
	n, err := store.ActionNumber(a.ID)
	if err != nil {
		return fmt.Errorf("put action item: %w", err)
	}
	inc, err := incidentNumber(a.IncidentID)
	if err != nil {
		return fmt.Errorf("put action item %s: %w", a.ID, err)
	}
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode action item %s: %w", a.ID, err)
	}
	t.wrote = true
	k := u64key(n)
	if err := t.tx.Bucket(bucketActions).Put(k, v); err != nil {
		return fmt.Errorf("put action item %s: %w", a.ID, err)
	}
	if err := t.tx.Bucket(bucketActionsBy).Put(append(u64key(inc), k...), []byte{1}); err != nil {
		return fmt.Errorf("index action item %s: %w", a.ID, err)
	}
	open := t.tx.Bucket(bucketActionsOpen)
	if a.State == store.ActionOpen {
		err = open.Put(k, []byte{1})
	} else {
		err = open.Delete(k)
	}
	if err != nil {
		return fmt.Errorf("index action item %s: %w", a.ID, err)
	}
	return nil
}

func (t *boltTx) ActionItems(f store.ActionFilter) ([]store.ActionItem, error) {
	var keys [][]byte
	switch {
	case f.Incident != "":
		inc, err := incidentNumber(f.Incident)
		if errors.Is(err, store.ErrNotFound) {
			return []store.ActionItem{}, nil // no incident has that id: nothing of it
		} else if err != nil {
			return nil, err
		}
		prefix := u64key(inc)
		c := t.tx.Bucket(bucketActionsBy).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, k[8:])
		}
	case f.State == store.ActionOpen:
		c := t.tx.Bucket(bucketActionsOpen).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, k)
		}
	default:
		c := t.tx.Bucket(bucketActions).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, k)
		}
	}
	out := []store.ActionItem{}
	for _, k := range keys {
		id := "AI-" + strconv.FormatUint(binary.BigEndian.Uint64(k), 10)
		a, err := decodeAction(t.tx.Bucket(bucketActions).Get(k), id)
		if err != nil {
			return nil, err
		}
		if !f.Matches(a) {
			continue
		}
		out = append(out, *a)
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	return out, nil
}

func (t *boltTx) Postmortem(incidentID string) (*store.Postmortem, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	v := t.tx.Bucket(bucketPostmortems).Get(u64key(n))
	if v == nil {
		return nil, fmt.Errorf("post-mortem of %s: %w", incidentID, store.ErrNotFound)
	}
	var p store.Postmortem
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("decode post-mortem of %s: %w", incidentID, err)
	}
	return &p, nil
}

func (t *boltTx) PutPostmortem(p *store.Postmortem) error {
	n, err := incidentNumber(p.IncidentID)
	if err != nil {
		return fmt.Errorf("put post-mortem: %w", err)
	}
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode post-mortem of %s: %w", p.IncidentID, err)
	}
	t.wrote = true
	if err := t.tx.Bucket(bucketPostmortems).Put(u64key(n), v); err != nil {
		return fmt.Errorf("put post-mortem of %s: %w", p.IncidentID, err)
	}
	return nil
}

func (t *boltTx) AddPostmortemVersion(incidentID string, pv store.PostmortemVersion) error {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return fmt.Errorf("add post-mortem version: %w", err)
	}
	if pv.Version < 1 {
		return fmt.Errorf("post-mortem of %s: version %d: versions count from 1", incidentID, pv.Version)
	}
	k := append(u64key(n), u64key(uint64(pv.Version))...)
	b := t.tx.Bucket(bucketPMVersions)
	if b.Get(k) != nil {
		return fmt.Errorf("post-mortem of %s: version %d is already kept", incidentID, pv.Version)
	}
	v, err := json.Marshal(pv)
	if err != nil {
		return fmt.Errorf("encode post-mortem version of %s: %w", incidentID, err)
	}
	t.wrote = true
	if err := b.Put(k, v); err != nil {
		return fmt.Errorf("add post-mortem version of %s: %w", incidentID, err)
	}
	return nil
}

func (t *boltTx) PostmortemVersions(incidentID string) ([]store.PostmortemVersion, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	prefix := u64key(n)
	out := []store.PostmortemVersion{}
	c := t.tx.Bucket(bucketPMVersions).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var pv store.PostmortemVersion
		if err := json.Unmarshal(v, &pv); err != nil {
			return nil, fmt.Errorf("decode post-mortem version of %s: %w", incidentID, err)
		}
		out = append(out, pv)
	}
	return out, nil
}

func (t *boltTx) Checklist(incidentID string) ([]store.Step, error) {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return nil, err
	}
	steps := []store.Step{}
	if v := t.tx.Bucket(bucketChecklists).Get(u64key(n)); v != nil {
		if err := json.Unmarshal(v, &steps); err != nil {
			return nil, fmt.Errorf("decode checklist of %s: %w", incidentID, err)
		}
	}
	return steps, nil
}

func (t *boltTx) PutChecklist(incidentID string, steps []store.Step) error {
	n, err := incidentNumber(incidentID)
	if err != nil {
		return fmt.Errorf("put checklist: %w", err)
	}
	v, err := json.Marshal(steps)
	if err != nil {
		return fmt.Errorf("encode checklist of %s: %w", incidentID, err)
	}
	t.wrote = true
	if err := t.tx.Bucket(bucketChecklists).Put(u64key(n), v); err != nil {
		return fmt.Errorf("put checklist of %s: %w", incidentID, err)
	}
	return nil
}
