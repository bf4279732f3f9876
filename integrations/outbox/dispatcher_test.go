package outbox

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// These tests run the dispatcher on a real bbolt file inside a synctest
// bubble: its clock is virtual, so a test waits minutes of backoff and
// max_age at no cost, and synctest.Wait returns once every goroutine (the
// dispatcher, the store's writer, the deliveries) is blocked, so nothing
// is polled.

// fakeNotifier is a vendor in memory: do decides each delivery's outcome
// (nil: delivered), and every call is kept.
type fakeNotifier struct {
	name string
	do   func(m integrations.Message) error

	mu    sync.Mutex
	calls []integrations.Message
}

func (f *fakeNotifier) Name() string { return f.name }

func (f *fakeNotifier) Notify(_ context.Context, m integrations.Message) (integrations.Receipt, error) {
	f.mu.Lock()
	f.calls = append(f.calls, m)
	f.mu.Unlock()
	if f.do != nil {
		return integrations.Receipt{}, f.do(m)
	}
	return integrations.Receipt{}, nil
}

func (f *fakeNotifier) called() []integrations.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]integrations.Message(nil), f.calls...)
}

// bubble is a dispatcher on a store, started inside a synctest bubble and
// stopped (the store closed) when the test's function returns.
type bubble struct {
	t  *testing.T
	db *bolt.DB
	d  *Dispatcher
}

// run runs fn in a bubble with a dispatcher of cfg over notifiers, on a
// store opened with opts.
func run(t *testing.T, cfg Config, opts bolt.Options, notifiers []integrations.Notifier, fn func(b *bubble)) {
	synctest.Test(t, func(t *testing.T) {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "responder.db"), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		b := &bubble{t: t, db: db, d: New(cfg, db, notifiers, zerolog.Nop(), nil, nil, nil)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { b.d.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		fn(b)
	})
}

// incident opens an incident and queues intents for it, as a change does
// (created now, due now), and kicks the dispatcher.
func (b *bubble) incident(intents ...store.Intent) string {
	b.t.Helper()
	return b.incidentThen(nil, intents...)
}

// incidentThen is incident with also run in the same transaction, given
// the intents as queued.
func (b *bubble) incidentThen(also func(tx store.Tx, queued []*store.Intent) error, intents ...store.Intent) string {
	b.t.Helper()
	var id string
	err := b.db.Update(context.Background(), func(tx store.Tx) error {
		var err error
		if id, err = tx.NextIncidentID(); err != nil {
			return err
		}
		now := time.Now().UTC()
		if err := tx.PutIncident(&store.Incident{ID: id, Title: "Checkout down", Severity: "S2", Status: store.StatusOpen,
			Source: store.SourceManual, DedupKey: id, CreatedAt: now, UpdatedAt: now}); err != nil {
			return err
		}
		var queued []*store.Intent
		for _, in := range intents {
			in.IncidentID, in.CreatedAt, in.NextAt = id, now, now
			if err := tx.Enqueue(&in); err != nil {
				return err
			}
			queued = append(queued, &in)
		}
		if also != nil {
			return also(tx, queued)
		}
		return nil
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.d.Kick()
	return id
}

// after lets d of virtual time pass, then waits for everything to settle.
func (b *bubble) after(d time.Duration) {
	time.Sleep(d) // virtual: the bubble's clock
	synctest.Wait()
}

// intents are the incident's intents as stored.
func (b *bubble) intents(id string) []store.Intent {
	b.t.Helper()
	var out []store.Intent
	err := b.db.View(context.Background(), func(tx store.Tx) error {
		var err error
		out, err = tx.IncidentIntents(id)
		return err
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

func (b *bubble) timeline(id string) string {
	b.t.Helper()
	var lines []string
	err := b.db.View(context.Background(), func(tx store.Tx) error {
		tl, err := tx.Timeline(id)
		for _, e := range tl {
			lines = append(lines, e.Text)
		}
		return err
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// An intent that cannot be delivered within max_age is marked failed,
// with the reason, and shown in the timeline; nothing retries it after.
func TestIntentOlderThanMaxAgeFails(t *testing.T) {
	email := &fakeNotifier{name: integrations.ChannelEmail, do: func(integrations.Message) error {
		return integrations.Temporary(errors.New("smtp: 421 try again later"), 0)
	}}
	cfg := Config{MaxAge: 5 * time.Minute, BackoffBase: time.Second, BackoffMax: 30 * time.Second}
	run(t, cfg, bolt.Options{}, []integrations.Notifier{email}, func(b *bubble) {
		t := b.t
		id := b.incident(store.Intent{Channel: integrations.ChannelEmail, Target: "sre@example.com", Event: integrations.EventOpened})
		b.after(6 * time.Minute) // the next attempt after max_age finds it too old
		got := b.intents(id)
		if len(got) != 1 || got[0].State != store.IntentFailed || !strings.Contains(got[0].LastError, "max_age") {
			t.Fatalf("intents %+v, want the one failed for max_age", got)
		}
		if got[0].Attempts < 5 {
			t.Errorf("%d attempts in 5 minutes of backoff up to 30s, want retries first", got[0].Attempts)
		}
		if tl := b.timeline(id); !strings.Contains(tl, "email opened to sre@example.com: failed (not delivered within max_age") {
			t.Errorf("timeline does not say the email failed for max_age:\n%s", tl)
		}
		calls := len(email.called())
		b.after(time.Hour)
		if n := len(email.called()); n != calls {
			t.Errorf("%d more attempts after the intent failed, want none", n-calls)
		}
	})
}

// A delivery whose outcome cannot be written at once (the store's queue is
// full) is recorded later, and never delivered again meanwhile.
func TestUnsavedOutcomeIsNotRedelivered(t *testing.T) {
	var busy atomic.Bool
	email := &fakeNotifier{name: integrations.ChannelEmail}
	email.do = func(integrations.Message) error {
		// Delivered; then the store refuses writes for a minute.
		busy.Store(true)
		time.AfterFunc(time.Minute, func() { busy.Store(false) })
		return nil
	}
	run(t, Config{}, bolt.Options{Busy: busy.Load}, []integrations.Notifier{email}, func(b *bubble) {
		t := b.t
		id := b.incident(store.Intent{Channel: integrations.ChannelEmail, Target: "sre@example.com", Event: integrations.EventOpened})
		b.after(30 * time.Second)
		if n := len(email.called()); n != 1 {
			t.Fatalf("%d deliveries while the outcome waits to be written, want 1", n)
		}
		if got := b.intents(id); got[0].State != store.IntentPending {
			t.Fatalf("intent %s while the store refuses writes, want still pending", got[0].State)
		}
		b.after(time.Minute)
		got := b.intents(id)
		if len(email.called()) != 1 || got[0].State != store.IntentSent || got[0].Attempts != 1 {
			t.Errorf("%d deliveries, intent %s after %d attempts; want one delivery, sent after 1",
				len(email.called()), got[0].State, got[0].Attempts)
		}
	})
}

// With one delivery slot for many lanes, lanes wait for the slot and all
// are served, each in its own order, never two deliveries at once.
func TestLanesWaitForADeliverySlot(t *testing.T) {
	var inFlight, most atomic.Int32
	slow := &fakeNotifier{name: integrations.ChannelLog}
	slow.do = func(integrations.Message) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(2 * time.Second) // virtual: a slow vendor
		return nil
	}
	run(t, Config{Concurrency: 1}, bolt.Options{}, []integrations.Notifier{slow}, func(b *bubble) {
		t := b.t
		var ids []string
		for range 20 {
			ids = append(ids, b.incident(
				store.Intent{Channel: integrations.ChannelLog, Target: "log", Event: integrations.EventOpened},
				store.Intent{Channel: integrations.ChannelLog, Target: "log", Event: integrations.EventAcknowledged}))
		}
		b.after(2 * time.Minute)
		order := map[string][]string{}
		for _, m := range slow.called() {
			order[m.Incident.ID] = append(order[m.Incident.ID], m.Event)
		}
		for _, id := range ids {
			if got := fmt.Sprint(order[id]); got != "[opened acknowledged]" {
				t.Errorf("%s: delivered %s, want opened and then acknowledged", id, got)
			}
		}
		if m := most.Load(); m != 1 {
			t.Errorf("%d deliveries in flight at once, want 1", m)
		}
	})
}

// A page waiting for its bridge is claimed in a transaction before it is
// sent: one the incident service cancelled meanwhile (the incident
// resolved first) is not sent, and stays cancelled; one still pending is
// sent once the wait is over.
func TestCancelledPageIsNotSent(t *testing.T) {
	og := &fakeNotifier{name: integrations.ChannelOpsGenie}
	zoom := &fakeNotifier{name: integrations.ChannelZoom, do: func(integrations.Message) error {
		return integrations.Temporary(errors.New("zoom: HTTP 503"), time.Hour)
	}}
	cfg := Config{DependencyWait: 15 * time.Second}
	run(t, cfg, bolt.Options{}, []integrations.Notifier{og, zoom}, func(b *bubble) {
		queue := func() (string, uint64) {
			var page uint64
			id := b.incidentThen(func(tx store.Tx, q []*store.Intent) error {
				p := &store.Intent{IncidentID: q[0].IncidentID, Channel: integrations.ChannelOpsGenie, Target: "team:sre",
					Event: integrations.EventPage, Text: "S1 out of hours", After: q[0].Seq, CreatedAt: q[0].CreatedAt, NextAt: q[0].NextAt}
				if err := tx.Enqueue(p); err != nil {
					return err
				}
				page = p.Seq
				return nil
			}, store.Intent{Channel: integrations.ChannelZoom, Target: "meeting", Event: integrations.EventBridge})
			return id, page
		}
		cancelled, cancelledSeq := queue()
		kept, _ := queue()
		synctest.Wait()
		if n := len(og.called()); n != 0 {
			t.Fatalf("%d pages went before the bridge wait was over", n)
		}
		// The incident resolves: its page is cancelled, as the service does.
		err := b.db.Update(context.Background(), func(tx store.Tx) error {
			in, err := tx.Intent(cancelledSeq)
			if err != nil {
				return err
			}
			in.State = store.IntentCancelled
			return tx.PutIntent(in)
		})
		if err != nil {
			t.Fatal(err)
		}
		b.after(20 * time.Second)
		calls := og.called()
		if len(calls) != 1 || calls[0].Incident.ID != kept {
			t.Fatalf("pages sent %+v, want only %s's", calls, kept)
		}
		for _, in := range b.intents(cancelled) {
			if in.Channel == integrations.ChannelOpsGenie && in.State != store.IntentCancelled {
				t.Errorf("the cancelled page is %s after the dispatcher saw it", in.State)
			}
		}
	})
}
