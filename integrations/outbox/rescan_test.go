package outbox

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// logRecorder is the log channel, keeping the keys it was given.
type logRecorder struct {
	mu   sync.Mutex
	keys []string
}

func (r *logRecorder) Name() string { return integrations.ChannelLog }

func (r *logRecorder) Notify(_ context.Context, m integrations.Message) (integrations.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, m.Key)
	return integrations.Receipt{}, nil
}

func (r *logRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...)
}

// A networked backend commits transactions concurrently, so an intent with
// a lower sequence can become visible after the dispatcher has read past
// it. The dispatcher compares the pending index with what it holds, as a
// set, and delivers it all the same.
func TestIntentVisibleOutOfOrderIsDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "responder.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		now := time.Now().UTC()
		var late store.Intent
		err = db.Update(context.Background(), func(tx store.Tx) error {
			id, err := tx.NextIncidentID()
			if err != nil {
				return err
			}
			if err := tx.PutIncident(&store.Incident{ID: id, Title: "t", Severity: "S3", Status: store.StatusOpen,
				Source: store.SourceManual, DedupKey: id, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
			for i := range 3 {
				in := &store.Intent{IncidentID: id, Channel: integrations.ChannelLog, Target: "log", Event: integrations.EventNote,
					CreatedAt: now, NextAt: now}
				if err := tx.Enqueue(in); err != nil {
					return err
				}
				if i == 1 {
					// Not visible yet: out of the pending index until the
					// "late commit" below.
					late = *in
					in.State = store.IntentFailed
					if err := tx.PutIntent(in); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		rec := &logRecorder{}
		d := New(Config{RescanEvery: time.Second}, db, []integrations.Notifier{rec}, zerolog.Nop(), nil, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()

		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if got := rec.got(); len(got) != 2 {
			t.Fatalf("delivered %v before the late intent, want the 2 visible ones", got)
		}
		if err := db.Update(context.Background(), func(tx store.Tx) error { return tx.PutIntent(&late) }); err != nil {
			t.Fatal(err)
		}
		d.Kick() // a kick alone reads only past the last sequence seen
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if got := rec.got(); len(got) != 2 {
			t.Fatalf("delivered %v at once; this test wants the late intent found by the rescan", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		got := rec.got()
		if len(got) != 3 || got[2] != late.Key {
			t.Fatalf("delivered %v, want the late intent %s too", got, late.Key)
		}
	})
}
