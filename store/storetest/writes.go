package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
)

// A write whose caller gave up before it was made is not made: its fn
// never runs, the caller's error comes back, and the backend goes on.
func testContextEndedBeforeUpdate(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	for name, ctx := range map[string]func() (context.Context, context.CancelFunc){
		"cancelled": func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		},
		"deadline passed": func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Unix(0, 0))
		},
	} {
		c, cancel := ctx()
		called := false
		err := db.Update(c, func(tx store.Tx) error {
			called = true
			return tx.PutIncident(NewIncident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
		})
		cancel()
		if err == nil || !errors.Is(err, c.Err()) {
			t.Errorf("%s: Update = %v, want %v", name, err, c.Err())
		}
		if called {
			t.Errorf("%s: fn ran for a write whose context had ended", name)
		}
	}
	View(t, db, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Incident(INC-1) = %v, want ErrNotFound", err)
		}
		return nil
	})
	Update(t, db, func(tx store.Tx) error {
		return tx.PutIncident(NewIncident("INC-2", store.StatusOpen, store.SourceManual, "INC-2"))
	})
}

// Many writers at once, each opening an incident with the next id: every
// write lands exactly once, ids are unique and gapless, and each incident
// carries its own timeline entry and outbox intent.
func testConcurrentWritersEachLandOnce(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	const writers = 64
	got := make([]string, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = db.Update(context.Background(), func(tx store.Tx) error {
				id, err := tx.NextIncidentID()
				if err != nil {
					return err
				}
				got[i] = id
				inc := NewIncident(id, store.StatusOpen, store.SourceAlertmanager, fmt.Sprintf("group-%d", i))
				if err := tx.PutIncident(inc); err != nil {
					return err
				}
				if err := tx.AppendTimeline(id, store.Entry{At: T0, Kind: store.KindOpened, Text: fmt.Sprintf("writer %d", i)}); err != nil {
					return err
				}
				return tx.Enqueue(&store.Intent{IncidentID: id, Channel: "log", Target: "log", Event: "opened", CreatedAt: T0, NextAt: T0})
			})
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		seen[got[i]]++
	}
	for n := 1; n <= writers; n++ {
		if id := fmt.Sprintf("INC-%d", n); seen[id] != 1 {
			t.Errorf("%s given to %d writers, want 1 (ids %v)", id, seen[id], got)
		}
	}
	View(t, db, func(tx store.Tx) error {
		for i, id := range got {
			inc, err := tx.LatestByDedupKey(store.SourceAlertmanager, fmt.Sprintf("group-%d", i))
			if err != nil || inc.ID != id {
				t.Errorf("LatestByDedupKey(group-%d) = %v, %v; want %s", i, inc, err, id)
			}
			tl, err := tx.Timeline(id)
			if err != nil || len(tl) != 1 || tl[0].Text != fmt.Sprintf("writer %d", i) {
				t.Errorf("Timeline(%s) = %+v, %v; want the one entry of writer %d", id, tl, err, i)
			}
		}
		open, err := tx.OpenIncidents()
		if err != nil || len(open) != writers {
			t.Errorf("OpenIncidents = %d, %v; want %d", len(open), err, writers)
		}
		pending, err := tx.PendingIntents(0, 0)
		if err != nil || len(pending) != writers {
			t.Errorf("PendingIntents = %d, %v; want %d", len(pending), err, writers)
		}
		return nil
	})
}

// Among concurrent writes (which a backend may commit together), one that
// refuses before writing and one that fails after writing get their own
// error and leave no trace; every other write lands once, whatever the
// backend does to isolate the failures (re-running fn is allowed).
func testRefusalsAndFailuresAmongConcurrentWrites(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	const n = 60
	errs := make([]error, n)
	var runs atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.Update(context.Background(), func(tx store.Tx) error {
				runs.Add(1)
				key := fmt.Sprintf("k%02d", i)
				switch i % 6 {
				case 1: // refused on reads: nothing written
					if _, err := tx.Incident("INC-999999"); err != nil {
						return fmt.Errorf("refuse %d: %w", i, err)
					}
				case 4: // fails after writing
					if err := tx.PutRequest(key, store.Request{At: T0, Digest: "d", IncidentID: "INC-1"}); err != nil {
						return err
					}
					return fmt.Errorf("write %d: %w", i, errBoom)
				}
				return tx.PutRequest(key, store.Request{At: T0, Digest: "d", IncidentID: "INC-1"})
			})
		})
	}
	wg.Wait()
	View(t, db, func(tx store.Tx) error {
		for i := range n {
			key := fmt.Sprintf("k%02d", i)
			_, err := tx.Request(key)
			switch i % 6 {
			case 1:
				if !errors.Is(errs[i], store.ErrNotFound) {
					t.Errorf("refused write %d = %v, want its ErrNotFound", i, errs[i])
				}
			case 4:
				if !errors.Is(errs[i], errBoom) {
					t.Errorf("failing write %d = %v, want its own error", i, errs[i])
				}
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Request(%s) of a failed write = %v, want ErrNotFound", key, err)
				}
			default:
				if errs[i] != nil {
					t.Errorf("write %d = %v, want nil", i, errs[i])
				}
				if err != nil {
					t.Errorf("Request(%s) = %v, want it written", key, err)
				}
			}
		}
		return nil
	})
	if runs.Load() < n {
		t.Errorf("fn ran %d times for %d writes", runs.Load(), n)
	}
}
