package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

func TestBackoffIsCappedWithJitter(t *testing.T) {
	d := NewDispatcher(DispatchConfig{BackoffBase: time.Second, BackoffMax: 60 * time.Second}, nil, nil, zerolog.Nop(), nil, "", nil)
	for attempt := 1; attempt <= 40; attempt++ {
		full := min(time.Second<<min(attempt-1, 30), 60*time.Second)
		for range 50 {
			got := d.backoff(attempt)
			if got > 60*time.Second {
				t.Fatalf("attempt %d: backoff %s over the 60s cap", attempt, got)
			}
			if got < full/2 || got > full {
				t.Fatalf("attempt %d: backoff %s outside [%s, %s]", attempt, got, full/2, full)
			}
		}
	}
}

// An intent that cannot be delivered within max_age is marked failed,
// with the reason, and shown in the timeline; nothing retries it after.
func TestIntentOlderThanMaxAgeFails(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true), func(s envSetup) { s.dispatch.MaxAge = 300 * time.Millisecond })
	v.slack.FailNext(1000, http.StatusServiceUnavailable)
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	e.flush()
	inc := e.incident(id)
	var slackIntent *store.Intent
	for i := range inc.Notifications {
		if inc.Notifications[i].Channel == channelSlack {
			slackIntent = &inc.Notifications[i]
		}
	}
	if slackIntent == nil || slackIntent.State != store.IntentFailed || !strings.Contains(slackIntent.LastError, "max_age") {
		t.Fatalf("slack intent %+v, want failed for max_age", slackIntent)
	}
	if slackIntent.Attempts < 2 {
		t.Errorf("%d attempts before giving up, want retries first", slackIntent.Attempts)
	}
	requests := v.slack.Requests()
	time.Sleep(300 * time.Millisecond)
	if v.slack.Requests() != requests {
		t.Errorf("a failed intent was tried again")
	}
	if !strings.Contains(v.logs.String(), "older than max_age") {
		t.Errorf("giving up was not logged")
	}
}

// busyAfter delivers through its notifier, then makes the store refuse
// writes for a while: the outcome cannot be recorded at once.
type busyAfter struct {
	integrations.Notifier
	busy *atomic.Bool
	for_ time.Duration
}

func (b busyAfter) Notify(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	r, err := b.Notifier.Notify(ctx, m)
	if b.busy.CompareAndSwap(false, true) {
		time.AfterFunc(b.for_, func() { b.busy.Store(false) })
	}
	return r, err
}

// A delivery whose outcome cannot be written at once (the store's queue is
// full) is recorded later, and never delivered again meanwhile.
func TestUnsavedOutcomeIsNotRedelivered(t *testing.T) {
	var v vendors
	var busy atomic.Bool
	e := newEnv(t, withVendors(t, &v, true), func(s envSetup) {
		s.store.Busy = busy.Load
		for i, n := range *s.notifiers {
			if n.Name() == channelSlack {
				(*s.notifiers)[i] = busyAfter{Notifier: n, busy: &busy, for_: 350 * time.Millisecond}
			}
		}
	})
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	for deadline := time.Now().Add(5 * time.Second); !busy.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Slack was never called")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); busy.Load(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the store stayed busy")
		}
	}
	e.flush()
	if posts := len(v.slack.Posts()); posts != 1 {
		t.Errorf("%d Slack posts, want 1: a delivery was repeated while its outcome waited to be written", posts)
	}
	for _, n := range e.incident(id).Notifications {
		if n.Channel == channelSlack && (n.State != store.IntentSent || n.Attempts != 1) {
			t.Errorf("slack intent %s after %d attempts, want sent after 1", n.State, n.Attempts)
		}
	}
}

// benchDispatcher is a dispatcher holding pending intents across incidents
// (incidents × perIncident alert_joined intents, one Slack lane each), all
// in the channel #incidents, which a Retry-After holds far in the future:
// every pass looks at every lane and starts nothing.
func benchDispatcher(b *testing.B, incidents, perIncident int) *Dispatcher {
	b.Helper()
	d := NewDispatcher(DispatchConfig{}, nil, nil, zerolog.Nop(), nil, "", nil)
	now := d.now()
	d.hold[channelSlack+"\x00#incidents"] = now.Add(time.Hour)
	seq := uint64(0)
	for i := range perIncident {
		for n := range incidents {
			seq++
			d.add(&store.Intent{
				Seq: seq, IncidentID: fmt.Sprintf("INC-%d", n+1), Channel: channelSlack, Target: "#incidents",
				Event: integrations.EventAlertJoined, Text: fmt.Sprintf("alert %d joined", i), State: store.IntentPending,
				CreatedAt: now, NextAt: now,
			})
		}
	}
	d.lastSeq = seq
	return d
}

// BenchmarkDispatchPass measures one pass of the dispatcher over 50,000
// pending intents in 50 incidents (a storm held back by Slack's rate).
// AllHeadsDue makes every lane due before each pass, the most a pass can
// cost; NothingDue is the pass after a kick while every lane waits.
func BenchmarkDispatchPass(b *testing.B) {
	ctx := context.Background()
	b.Run("AllHeadsDue", func(b *testing.B) {
		d := benchDispatcher(b, 50, 1000)
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range d.lanes {
				d.schedule(l, time.Time{})
			}
			d.startDue(ctx)
		}
	})
	b.Run("NothingDue", func(b *testing.B) {
		d := benchDispatcher(b, 50, 1000)
		d.startDue(ctx)
		b.ReportAllocs()
		for b.Loop() {
			d.startDue(ctx)
		}
	})
}
