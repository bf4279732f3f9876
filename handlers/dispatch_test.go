package handlers

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bbolt "go.etcd.io/bbolt"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/slack"
	"github.com/responder-sre/responder/integrations/slack/slacktest"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// One outbox intent whose stored value cannot be decoded is logged (without
// its content) and skipped for good; the intents around it are delivered.
func TestUndecodableIntentIsSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC)
	err = db.Update(context.Background(), func(tx store.Tx) error {
		inc := &store.Incident{ID: "INC-1", Title: "Checkout down", Severity: "S3", Status: store.StatusOpen,
			Source: store.SourceManual, CreatedAt: at}
		if err := tx.PutIncident(inc); err != nil {
			return err
		}
		for _, ev := range []string{integrations.EventOpened, integrations.EventNote, integrations.EventResolved} {
			in := &store.Intent{IncidentID: "INC-1", Channel: integrations.ChannelLog, Target: integrations.ChannelLog, Event: ev, CreatedAt: at, NextAt: at}
			if err := tx.Enqueue(in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The second intent's value is damaged: a type no decoder takes, and
	// text that must not reach the log.
	const secretish = "xoxb-must-not-be-logged"
	raw, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		key := make([]byte, 8)
		binary.BigEndian.PutUint64(key, 2)
		return tx.Bucket([]byte("outbox")).Put(key, []byte(`{"seq":2,"text":"`+secretish+`","attempts":"many"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	e := newEnv(t, func(s envSetup) {
		*s.path = path
		s.deps.Log = zerolog.New(logs)
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		err := e.db.View(context.Background(), func(tx store.Tx) error {
			_, err := tx.PendingIntents(0, 0)
			return err
		})
		if err == nil {
			break // skipped
		}
		if time.Now().After(deadline) {
			t.Fatalf("the undecodable intent is still pending after 10s: %v", err)
		}
	}
	if got, want := strings.Join(e.events(), " "), "INC-1:opened INC-1:resolved"; got != want {
		t.Errorf("delivered %q, want %q: the undecodable intent must not stop the others", got, want)
	}
	if !strings.Contains(logs.String(), "cannot be decoded") || !strings.Contains(logs.String(), `"seq":2`) {
		t.Errorf("the undecodable intent was not logged with its sequence:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), secretish) {
		t.Errorf("the log shows the stored text of the undecodable intent")
	}
	// Skipped for good: after a restart of the dispatcher nothing is
	// pending and nothing is delivered again.
	e.stopDispatcher()
	var pending []store.Intent
	err = e.db.View(context.Background(), func(tx store.Tx) error {
		var err error
		pending, err = tx.PendingIntents(0, 0)
		return err
	})
	if err != nil || len(pending) != 0 {
		t.Errorf("pending after the skip: %v, %v; want none", pending, err)
	}
}

// slackPosts counts the accepted chat.postMessage calls by the delivery key
// in their metadata.
func slackPosts(t *testing.T, v *vendors) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range v.slack.Posts() {
		if p.Method != slacktest.MethodPostMessage {
			continue
		}
		if p.Metadata == nil {
			t.Errorf("a Slack post without metadata: %q", p.Text)
			continue
		}
		key, _ := p.Metadata.EventPayload["key"].(string)
		out[key]++
	}
	return out
}

// A Slack post whose answer never came (the attempt timed out while Slack
// had stored the message) is in doubt: the next attempt finds the message
// by its metadata and adopts it instead of posting again.
func TestSlackAttemptWithoutAnswerIsFoundNotRepeated(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true), func(s envSetup) { s.dispatch.Timeout = 300 * time.Millisecond })
	v.slack.AnswerDelay(time.Second)
	id := e.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	e.flush()
	inc := e.incident(id)
	posts := slackPosts(t, &v)
	for _, n := range inc.Notifications {
		if n.Channel != integrations.ChannelSlack {
			continue
		}
		if n.State != store.IntentSent || n.Attempts < 2 || n.AttemptAt != nil {
			t.Errorf("slack %s: %s after %d attempts, in doubt since %v; want sent on a later attempt, no longer in doubt",
				n.Event, n.State, n.Attempts, n.AttemptAt)
		}
		if posts[n.Key] != 1 {
			t.Errorf("slack %s (%s) posted %d times, want once", n.Event, n.Key, posts[n.Key])
		}
	}
	roots := v.slack.Messages("sev1")
	if len(roots) == 0 {
		roots = v.slack.Messages("incidents")
	}
	if len(roots) != 1 || inc.SlackTS != roots[0].TS {
		t.Errorf("incident slack_ts %q, roots %+v: want the found root adopted", inc.SlackTS, roots)
	}
	if got := e.metric(`responder_notifications_found_total{channel="slack"}`); got == "" || got == "0" {
		t.Errorf("found metric %q, want at least 1", got)
	}
}

// postedThenCrash posts through Slack, then holds the outcome until the
// test has closed the store: the attempt's record is on disk, its outcome
// is not, as after a kill -9. The embedded *slack.Notifier keeps Find.
type postedThenCrash struct {
	*slack.Notifier
	posted  chan struct{}
	release chan struct{}
	once    *sync.Once
}

func (p postedThenCrash) Notify(ctx context.Context, m integrations.Message) (integrations.Receipt, error) {
	r, err := p.Notifier.Notify(ctx, m)
	if m.Event == integrations.EventOpened {
		p.once.Do(func() { close(p.posted) })
		<-p.release
	}
	return r, err
}

// After a crash between Slack accepting the announcement and its outcome
// being written, the restarted dispatcher finds the announcement and adopts
// it: one root in the channel, and the thread goes on under it.
func TestSlackAttemptInDoubtAfterCrashIsFound(t *testing.T) {
	var v vendors
	vend := withVendors(t, &v, true)
	path := filepath.Join(t.TempDir(), "responder.db")
	atPath := func(s envSetup) { *s.path = path }
	crash := postedThenCrash{posted: make(chan struct{}), release: make(chan struct{}), once: &sync.Once{}}
	e1 := newEnv(t, vend, atPath, func(s envSetup) {
		for i, n := range *s.notifiers {
			if sn, ok := n.(*slack.Notifier); ok {
				crash.Notifier = sn
				(*s.notifiers)[i] = crash
			}
		}
	})
	id := e1.postAM(readTestdata(t, "am_firing_old.json"))[0].ID
	select {
	case <-crash.posted:
	case <-time.After(10 * time.Second):
		t.Fatal("the announcement was never posted")
	}
	if err := e1.db.Close(); err != nil { // the crash: nothing more is written
		t.Fatal(err)
	}
	close(crash.release)
	e1.stopDispatcher()

	e2 := newEnv(t, vend, atPath)
	e2.postAM(readTestdata(t, "am_resolved_v034.json")) // another group: the daemon goes on
	e2.flush()
	inc := e2.incident(id)
	posts := slackPosts(t, &v)
	var opened *store.Intent
	for i, n := range inc.Notifications {
		if n.Channel == integrations.ChannelSlack && n.Event == integrations.EventOpened {
			opened = &inc.Notifications[i]
		}
	}
	if opened == nil || opened.State != store.IntentSent || posts[opened.Key] != 1 {
		t.Fatalf("announcement %+v posted %v times, want sent once", opened, posts)
	}
	var rootTS string
	for _, p := range v.slack.Posts() {
		if key, _ := p.Metadata.EventPayload["key"].(string); key == opened.Key {
			rootTS = p.TS
		}
	}
	if inc.SlackTS != rootTS {
		t.Errorf("incident slack_ts %q, want the found root's %q", inc.SlackTS, rootTS)
	}
	if got := e2.metric(`responder_notifications_found_total{channel="slack"}`); got != "1" {
		t.Errorf("found metric %q, want 1", got)
	}
}
