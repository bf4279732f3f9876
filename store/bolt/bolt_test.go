package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
	"github.com/responder-sre/responder/store/storetest"
)

// waitLimit bounds every wait on the writer goroutine, so that a broken
// store fails the test instead of hanging it.
const waitLimit = 10 * time.Second

var errBoom = errors.New("boom")

var t0 = storetest.T0

// TestConformance runs the store contract's suite against bbolt, each test
// on a new file in its own temp dir.
func TestConformance(t *testing.T) {
	storetest.RunSuite(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "responder.db")
		return func() (store.DB, error) { return bolt.Open(path, bolt.Options{}) }
	})
}

func openAt(t *testing.T, path string, o bolt.Options) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func openTemp(t *testing.T, o bolt.Options) *bolt.DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "responder.db"), o)
}

// blockWriter occupies the single writer with an Update that waits until
// release is called. It returns once the writer is inside that Update.
// release is idempotent and also runs at cleanup, so a failing test does not
// leave the writer blocked.
func blockWriter(t *testing.T, db *bolt.DB) (release func()) {
	t.Helper()
	started, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		var once sync.Once
		done <- db.Update(context.Background(), func(store.Tx) error {
			once.Do(func() { close(started) })
			<-unblock
			return nil
		})
	}()
	select {
	case <-started:
	case <-time.After(waitLimit):
		t.Fatalf("writer did not start the blocking Update within %s", waitLimit)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(unblock)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("blocking Update: %v", err)
				}
			case <-time.After(waitLimit):
				t.Errorf("blocking Update did not return within %s of its release", waitLimit)
			}
		})
	}
	t.Cleanup(release)
	return release
}

func waitQueueDepth(t *testing.T, db *bolt.DB, want int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for db.QueueDepth() < want {
		if time.Now().After(deadline) {
			t.Fatalf("QueueDepth = %d after %s, want %d", db.QueueDepth(), waitLimit, want)
		}
		time.Sleep(time.Millisecond)
	}
	if got := db.QueueDepth(); got != want {
		t.Fatalf("QueueDepth = %d, want %d", got, want)
	}
}

func TestOpenCreatesBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "responder.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := db.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
	if err := db.Ready(); err != nil {
		t.Errorf("Ready() = %v, want nil", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Ready(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Ready() after Close = %v, want ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}

	// Look at the file with bbolt itself: the buckets exist before any write.
	raw, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	defer func() {
		if err := raw.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	err = raw.View(func(tx *bbolt.Tx) error {
		for _, name := range []string{"meta", "incidents", "open_by_dedup", "latest_by_dedup", "alerts", "timeline", "unmatched", "outbox"} {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q missing", name)
			}
		}
		if meta := tx.Bucket([]byte("meta")); meta != nil {
			if got := string(meta.Get([]byte("schema"))); got != "1" {
				t.Errorf("meta schema = %q, want %q", got, "1")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
}

// A file written before the history of resolved incidents existed gets
// one at its next open, from the first incident of each kind it kept.
func TestOpenFillsResolvedHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	err = db.Update(context.Background(), func(tx store.Tx) error {
		for _, id := range []string{"INC-1", "INC-2"} {
			if err := tx.PutIncident(storetest.NewIncident(id, store.StatusResolved, store.SourceDrill, id)); err != nil {
				return err
			}
		}
		if _, err := tx.ResolvedOfKind("drill:db", "INC-1"); err != nil {
			return err
		}
		_, err := tx.ResolvedOfKind("drill:db", "INC-2")
		return err
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	raw, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	if err := raw.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("resolved_by_kind")) }); err != nil {
		t.Fatalf("remove the history, as an older build wrote the file: %v", err)
	}
	if err := raw.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	db, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() { _ = db.Close() }()
	var got []string
	err = db.View(context.Background(), func(tx store.Tx) error {
		got, err = tx.ResolvedBefore("drill:db", "", 0)
		return err
	})
	if err != nil || !slices.Equal(got, []string{"INC-1"}) {
		t.Errorf("history after the upgrade = %v, %v; want the first incident of the kind", got, err)
	}
}

func TestOpenRejectsOtherSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	raw, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema"), []byte("999")) // a schema from some future build
	})
	if err != nil {
		t.Fatalf("write schema 999: %v", err)
	}
	if err := raw.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	db, err := bolt.Open(path, bolt.Options{})
	if err == nil {
		_ = db.Close()
		t.Fatalf("Open of a schema 999 file = nil error, want an error")
	}
	if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), path) {
		t.Errorf("Open error = %q, want it to name the schema and the file", err)
	}
}

// Fifty writes share one batch; every seventh fails. Each failure gets its own
// error and leaves no trace, and every other write lands exactly once.
func TestUpdateFailureIsolatedWithinBatch(t *testing.T) {
	db := openTemp(t, bolt.Options{})
	const n = 50
	release := blockWriter(t, db)

	var calls atomic.Int64
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Update(context.Background(), func(tx store.Tx) error {
				calls.Add(1)
				id, err := tx.NextIncidentID()
				if err != nil {
					return err
				}
				inc := storetest.NewIncident(id, store.StatusOpen, store.SourceAlertmanager, fmt.Sprintf("op-%d", i))
				inc.Title = fmt.Sprintf("op-%d", i)
				if err := tx.PutIncident(inc); err != nil {
					return err
				}
				if err := tx.AppendTimeline(id, store.Entry{At: t0, Kind: store.KindOpened, Text: inc.Title}); err != nil {
					return err
				}
				if i%7 == 0 {
					return fmt.Errorf("op %d: %w", i, errBoom)
				}
				return nil
			})
		}()
	}
	waitQueueDepth(t, db, n) // all fifty wait behind the blocked writer
	release()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("Updates did not return within %s", waitLimit)
	}

	wantTitles := map[string]bool{}
	for i := 1; i <= n; i++ {
		if i%7 == 0 {
			if !errors.Is(errs[i], errBoom) || !strings.Contains(errs[i].Error(), fmt.Sprintf("op %d:", i)) {
				t.Errorf("op %d: Update = %v, want its own errBoom", i, errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("op %d: Update = %v, want nil", i, errs[i])
		}
		wantTitles[fmt.Sprintf("op-%d", i)] = true
	}
	if got := calls.Load(); got <= n {
		t.Errorf("fn called %d times for %d writes, want more: a failure in a shared batch retries the others", got, n)
	}

	storetest.View(t, db, func(tx store.Tx) error {
		page, err := tx.ListIncidents(store.Filter{})
		if err != nil {
			return err
		}
		incs := page.Incidents
		if len(incs) != len(wantTitles) {
			t.Errorf("%d incidents stored, want %d", len(incs), len(wantTitles))
		}
		seen := map[string]bool{}
		for _, inc := range incs {
			if !wantTitles[inc.Title] || seen[inc.Title] {
				t.Errorf("unexpected or duplicate incident %s %q", inc.ID, inc.Title)
			}
			seen[inc.Title] = true
			entries, err := tx.Timeline(inc.ID)
			if err != nil || len(entries) != 1 || entries[0].Text != inc.Title {
				t.Errorf("Timeline(%s) = %v, %v; want exactly the entry of %s", inc.ID, entries, err, inc.Title)
			}
		}
		// Rolled-back writes gave their ids back: the committed ids have no gaps.
		for i, inc := range incs {
			if want := fmt.Sprintf("INC-%d", len(incs)-i); inc.ID != want {
				t.Errorf("incident %d has id %s, want %s", i, inc.ID, want)
			}
		}
		for i := 7; i <= n; i += 7 {
			if _, err := tx.LatestByDedupKey(store.SourceAlertmanager, fmt.Sprintf("op-%d", i)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("failed op %d left a dedup index entry: %v", i, err)
			}
		}
		return nil
	})
}

// Close commits what is already queued before it closes the file.
func TestCloseCommitsQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	release := blockWriter(t, db)
	queued := make(chan error, 1)
	go func() {
		queued <- db.Update(context.Background(), func(tx store.Tx) error {
			return tx.PutIncident(storetest.NewIncident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
		})
	}()
	waitQueueDepth(t, db, 1)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	// Close is now waiting for the writer; new writes are refused.
	deadline := time.Now().Add(waitLimit)
	for db.Ready() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := db.Update(context.Background(), func(store.Tx) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Update while closing = %v, want ErrClosed", err)
	}
	release()
	for name, ch := range map[string]chan error{"queued Update": queued, "Close": closed} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s = %v, want nil", name, err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("%s did not return within %s", name, waitLimit)
		}
	}
	db2 := openAt(t, path, bolt.Options{})
	storetest.View(t, db2, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); err != nil {
			t.Errorf("queued write lost on Close: %v", err)
		}
		return nil
	})
}

func TestUpdateQueueFull(t *testing.T) {
	db := openTemp(t, bolt.Options{QueueSize: 1, MaxBatch: 1})
	release := blockWriter(t, db) // the writer holds one write

	queued := make(chan error, 1)
	go func() {
		queued <- db.Update(context.Background(), func(tx store.Tx) error {
			return tx.PutIncident(storetest.NewIncident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
		})
	}()
	waitQueueDepth(t, db, 1) // the queue holds one more

	var called atomic.Bool
	refused := make(chan error, 1)
	go func() {
		refused <- db.Update(context.Background(), func(tx store.Tx) error {
			called.Store(true)
			return tx.PutIncident(storetest.NewIncident("INC-2", store.StatusOpen, store.SourceManual, "INC-2"))
		})
	}()
	// The answer must come while the writer is still blocked: Update on a
	// full queue does not wait for room.
	select {
	case err := <-refused:
		if !errors.Is(err, store.ErrBusy) {
			t.Errorf("Update on a full queue = %v, want ErrBusy", err)
		}
	case <-time.After(waitLimit):
		t.Errorf("Update on a full queue still waiting after %s, want ErrBusy at once", waitLimit)
		release()
		if err := <-refused; err != nil {
			t.Errorf("refused Update, once let through = %v", err)
		}
	}

	release()
	select {
	case err := <-queued:
		if err != nil {
			t.Errorf("queued Update = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("queued Update did not return within %s", waitLimit)
	}
	if called.Load() {
		t.Errorf("fn of the refused Update ran")
	}
	storetest.View(t, db, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); err != nil {
			t.Errorf("queued write: %v", err)
		}
		if _, err := tx.Incident("INC-2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused write: Incident(INC-2) = %v, want ErrNotFound", err)
		}
		return nil
	})
	// With room again, writes are accepted.
	storetest.Update(t, db, func(tx store.Tx) error {
		return tx.PutIncident(storetest.NewIncident("INC-3", store.StatusOpen, store.SourceManual, "INC-3"))
	})
}

func TestUpdateBusyHook(t *testing.T) {
	var busy atomic.Bool
	db := openTemp(t, bolt.Options{Busy: busy.Load})
	put := func(id string) (called bool, err error) {
		err = db.Update(context.Background(), func(tx store.Tx) error {
			called = true
			return tx.PutIncident(storetest.NewIncident(id, store.StatusOpen, store.SourceManual, id))
		})
		return called, err
	}

	busy.Store(true)
	if called, err := put("INC-1"); !errors.Is(err, store.ErrBusy) || called {
		t.Errorf("Update while Busy = %v (fn called %t), want ErrBusy without calling fn", err, called)
	}
	busy.Store(false)
	if _, err := put("INC-2"); err != nil {
		t.Errorf("Update after Busy cleared = %v, want nil", err)
	}
	storetest.View(t, db, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Incident(INC-1) = %v, want ErrNotFound", err)
		}
		if _, err := tx.Incident("INC-2"); err != nil {
			t.Errorf("Incident(INC-2) = %v, want found", err)
		}
		return nil
	})
}

func TestUpdateContextEndedBeforeWrite(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		queued  bool // the context ends while the write waits behind a busy writer
		wantErr error
	}{
		{
			name: "cancelled before Update",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			wantErr: context.Canceled,
		},
		{
			name: "deadline passed before Update",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithDeadline(context.Background(), time.Unix(0, 0))
			},
			wantErr: context.DeadlineExceeded,
		},
		{
			name:    "cancelled while queued",
			ctx:     func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			queued:  true,
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTemp(t, bolt.Options{})
			ctx, cancel := tt.ctx()
			defer cancel()
			var called atomic.Bool
			write := func() error {
				return db.Update(ctx, func(tx store.Tx) error {
					called.Store(true)
					return tx.PutIncident(storetest.NewIncident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
				})
			}
			var err error
			if tt.queued {
				release := blockWriter(t, db)
				res := make(chan error, 1)
				go func() { res <- write() }()
				waitQueueDepth(t, db, 1)
				cancel()
				release()
				select {
				case err = <-res:
				case <-time.After(waitLimit):
					t.Fatalf("Update did not return within %s", waitLimit)
				}
			} else {
				err = write()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Update = %v, want %v", err, tt.wantErr)
			}
			if called.Load() {
				t.Errorf("fn ran for a write whose context had ended")
			}
			storetest.View(t, db, func(tx store.Tx) error {
				if _, err := tx.Incident("INC-1"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Incident(INC-1) = %v, want ErrNotFound", err)
				}
				return nil
			})
			// The store keeps working for other callers.
			storetest.Update(t, db, func(tx store.Tx) error {
				return tx.PutIncident(storetest.NewIncident("INC-2", store.StatusOpen, store.SourceManual, "INC-2"))
			})
		})
	}
}

func TestSecondOpenFailsOnLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	first, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	t.Cleanup(func() { _ = first.Close() })

	// By default the second fails at once, and says who holds the file:
	// here this very process, through the first store.
	start := time.Now()
	if second, err := bolt.Open(path, bolt.Options{}); err == nil {
		_ = second.Close()
		t.Fatal("second Open of a locked file = nil error, want an error")
	} else if !strings.Contains(err.Error(), fmt.Sprintf("another process (pid %d) holds it", os.Getpid())) ||
		!strings.Contains(err.Error(), "data_dir") || !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("second Open: %v, want it to name the holder's pid and say what to do", err)
	}
	if elapsed := time.Since(start); elapsed >= time.Second {
		t.Errorf("second Open took %s to fail, want at once", elapsed)
	}

	const lockTimeout = 200 * time.Millisecond
	start = time.Now()
	second, err := bolt.Open(path, bolt.Options{LockTimeout: lockTimeout})
	elapsed := time.Since(start)
	if err == nil {
		_ = second.Close()
		t.Fatalf("second Open of a locked file = nil error, want an error")
	}
	if !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("second Open error = %v, want bbolt's ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("second Open error = %q, want it to name the file", err)
	}
	// Given a LockTimeout it retried for the lock, and gave up within it.
	// (bbolt polls every 50 ms and gives up once less than one poll
	// interval is left, so it fails slightly before it.)
	if elapsed < lockTimeout/2 || elapsed >= 10*lockTimeout {
		t.Errorf("second Open failed after %s, want about %s", elapsed, lockTimeout)
	}
	// The first store is unaffected and the lock is released by Close.
	storetest.Update(t, first, func(tx store.Tx) error {
		return tx.PutIncident(storetest.NewIncident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
	})
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	again := openAt(t, path, bolt.Options{LockTimeout: lockTimeout})
	storetest.View(t, again, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); err != nil {
			t.Errorf("Incident(INC-1) after reopening: %v", err)
		}
		return nil
	})
}

// Refusals decided before writing (404, 409) are answered inside the
// batch's transaction: they never make the other writes run again.
func TestRefusalsDoNotRerunTheBatch(t *testing.T) {
	db := openTemp(t, bolt.Options{})
	release := blockWriter(t, db)
	errRefused := errors.New("refused")
	const n = 20
	var calls [n]atomic.Int32
	results := make(chan error, n)
	for i := range n {
		go func() {
			results <- db.Update(context.Background(), func(tx store.Tx) error {
				calls[i].Add(1)
				if i%2 == 1 {
					_, err := tx.Incident("INC-999") // a read, then a refusal
					if !errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("read: %w", err)
					}
					return errRefused
				}
				id, err := tx.NextIncidentID()
				if err != nil {
					return err
				}
				return tx.PutIncident(storetest.NewIncident(id, store.StatusOpen, store.SourceManual, id))
			})
		}()
	}
	waitQueueDepth(t, db, n)
	release()
	refusedCount := 0
	for range n {
		select {
		case err := <-results:
			switch {
			case errors.Is(err, errRefused):
				refusedCount++
			case err != nil:
				t.Errorf("Update: %v", err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("Updates not answered within %s", waitLimit)
		}
	}
	if refusedCount != n/2 {
		t.Errorf("%d refused, want %d", refusedCount, n/2)
	}
	for i := range n {
		if c := calls[i].Load(); c != 1 {
			t.Errorf("write %d ran %d times, want once", i, c)
		}
	}
	storetest.View(t, db, func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		if len(open) != n/2 {
			t.Errorf("%d incidents written, want %d", len(open), n/2)
		}
		return err
	})
}

// An intent that cannot be decoded is reported by sequence, the others
// around it are listed, and SkipIntent takes it out of the pending index.
func TestPendingIntentsSkipsUndecodable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	db := openAt(t, path, bolt.Options{})
	storetest.Update(t, db, func(tx store.Tx) error {
		for range 3 {
			if err := tx.Enqueue(&store.Intent{IncidentID: "INC-1", Channel: "log", Target: "log", Event: "opened", CreatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("outbox")).Put([]byte{0, 0, 0, 0, 0, 0, 0, 2}, []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, bolt.Options{})
	storetest.View(t, db, func(tx store.Tx) error {
		got, err := tx.PendingIntents(0, 2)
		var bad *store.UndecodableError
		if !errors.As(err, &bad) || !reflect.DeepEqual(bad.Seqs, []uint64{2}) {
			t.Fatalf("error %v, want an UndecodableError naming 2", err)
		}
		if len(got) != 1 || got[0].Seq != 1 {
			t.Errorf("limit 2 listed %+v, want intent 1 (the bad one counts towards the limit)", got)
		}
		got, _ = tx.PendingIntents(0, 0)
		if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 {
			t.Errorf("listed %+v, want intents 1 and 3", got)
		}
		return nil
	})
	storetest.Update(t, db, func(tx store.Tx) error { return tx.SkipIntent(2) })
	storetest.View(t, db, func(tx store.Tx) error {
		got, err := tx.PendingIntents(0, 0)
		if err != nil || len(got) != 2 {
			t.Errorf("after SkipIntent: %d intents, %v; want 2 and no error", len(got), err)
		}
		// The incident's view lists the bad one as failed instead of failing.
		all, err := tx.IncidentIntents("INC-1")
		if err != nil || len(all) != 3 {
			t.Fatalf("incident intents: %d, %v; want 3 and no error", len(all), err)
		}
		if b := all[1]; b.Seq != 2 || b.State != store.IntentFailed || b.LastError == "" {
			t.Errorf("unreadable intent listed as %+v, want seq 2 failed with an error", b)
		}
		return nil
	})
}

// The writer keeps the incidents it reads and writes decoded; what a later
// transaction reads is still exactly what the file holds: a copy changed
// and not written, a write rolled back, and a write by a read-and-write
// cycle each read back as stored.
func TestWriterReadsWhatIsStored(t *testing.T) {
	db := openTemp(t, bolt.Options{})
	ctx := context.Background()
	eta := t0.Add(time.Hour)
	inc := &store.Incident{ID: "INC-1", Title: "disk full", Status: store.StatusOpen, Source: store.SourceAlertmanager,
		DedupKey: "g1", Labels: map[string]string{"team": "db"}, CreatedAt: t0, ETA: &eta}
	if err := db.Update(ctx, func(tx store.Tx) error { return tx.PutIncident(inc) }); err != nil {
		t.Fatal(err)
	}
	read := func() *store.Incident {
		t.Helper()
		var got *store.Incident
		err := db.Update(ctx, func(tx store.Tx) error {
			var err error
			got, err = tx.LatestByDedupKey(store.SourceAlertmanager, "g1")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// A copy read and changed, never written.
	got := read()
	got.Labels["team"] = "changed"
	*got.ETA = t0
	got.Title = "changed"
	if got := read(); got.Labels["team"] != "db" || !got.ETA.Equal(eta) || got.Title != "disk full" {
		t.Errorf("a change not written was read back: %+v", got)
	}
	// A write rolled back.
	err := db.Update(ctx, func(tx store.Tx) error {
		c, err := tx.Incident("INC-1")
		if err != nil {
			return err
		}
		c.Title, c.AlertsFiring = "rolled back", 99
		if err := tx.PutIncident(c); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("the failing write: %v", err)
	}
	if got := read(); got.Title != "disk full" || got.AlertsFiring != 0 {
		t.Errorf("a rolled back write was read back: %+v", got)
	}
	// Written: read back, in write and read transactions alike.
	err = db.Update(ctx, func(tx store.Tx) error {
		c, err := tx.Incident("INC-1")
		if err != nil {
			return err
		}
		c.AlertsFiring = 2
		return tx.PutIncident(c)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(); got.AlertsFiring != 2 || got.Title != "disk full" {
		t.Errorf("after a write: %+v", got)
	}
	var viewed *store.Incident
	if err := db.View(ctx, func(tx store.Tx) error { var err error; viewed, err = tx.Incident("INC-1"); return err }); err != nil {
		t.Fatal(err)
	}
	if viewed.AlertsFiring != 2 {
		t.Errorf("a read transaction: %+v", viewed)
	}
}
