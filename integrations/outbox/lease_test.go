package outbox

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// sharedStore is a bbolt store made to look shared by several replicas: a
// delivery lease that the test hands from one holder to another, checked
// inside transactions as store/postgres does.
type sharedStore struct {
	*bolt.DB
	mu     sync.Mutex
	holder string
	token  uint64
}

func (s *sharedStore) HoldLease(_ context.Context, _, holder string, _ time.Duration) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder == "" {
		s.holder, s.token = holder, s.token+1
	}
	if s.holder != holder {
		return 0, nil
	}
	return s.token, nil
}

// handTo gives the lease to holder ("": free), with a new fencing number.
func (s *sharedStore) handTo(holder string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holder, s.token = holder, s.token+1
}

func (s *sharedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.DB.Update(ctx, func(tx store.Tx) error { return fn(&sharedTx{Tx: tx, s: s}) })
}

type sharedTx struct {
	store.Tx
	s *sharedStore
}

func (t *sharedTx) CheckLease(_ string, token uint64) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if token != t.s.token || t.s.holder == "" {
		return store.ErrLeaseLost
	}
	return nil
}

// Only the replica holding the delivery lease delivers; one whose lease
// passed to another replica while a delivery waited (a pause, a stall)
// sends nothing when it wakes: its fencing number is checked where the
// attempt is recorded, before the vendor is called. Given the lease back,
// it reads the outbox again and delivers each intent once.
func TestOnlyTheLeaseHolderDelivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, err := bolt.Open(t.TempDir()+"/responder.db", bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		shared := &sharedStore{DB: db, holder: "replica-b", token: 1}
		slack := &fakeNotifier{name: integrations.ChannelSlack}
		zoom := &fakeNotifier{name: integrations.ChannelZoom, do: func(integrations.Message) error {
			return integrations.Temporary(errors.New("zoom: HTTP 503"), time.Hour)
		}}
		// Renewed every 20s; the announcement waits 5s for its bridge.
		d := New(Config{Holder: "replica-a", LeaseTTL: time.Minute, DependencyWait: 5 * time.Second}, shared,
			[]integrations.Notifier{slack, zoom}, zerolog.Nop(), nil, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		b := &bubble{t: t, db: db, d: d}
		announce := func() string {
			// The announcement waits for the bridge (which Zoom refuses).
			return b.incidentThen(func(tx store.Tx, q []*store.Intent) error {
				in := &store.Intent{IncidentID: q[0].IncidentID, Channel: integrations.ChannelSlack, Target: "#incidents",
					Event: integrations.EventOpened, Text: "S1 incident opened", After: q[0].Seq, CreatedAt: q[0].CreatedAt, NextAt: q[0].NextAt}
				return tx.Enqueue(in)
			}, store.Intent{Channel: integrations.ChannelZoom, Target: "meeting", Event: integrations.EventBridge})
		}

		announce()
		b.after(time.Minute)
		if n := len(slack.called()) + len(zoom.called()); n != 0 {
			t.Fatalf("%d deliveries by a replica without the lease", n)
		}
		shared.handTo("")         // replica-b died: its lease ran out
		b.after(21 * time.Second) // the next renewal takes it
		if n := len(slack.called()); n != 1 {
			t.Fatalf("the new lease holder posted %d announcements, want the waiting one", n)
		}

		// A new announcement waits for its bridge; meanwhile another replica
		// takes the lease (this one was paused past it and has not renewed).
		id := announce()
		synctest.Wait()
		shared.handTo("replica-b")
		b.after(6 * time.Second)
		if n := len(slack.called()); n != 1 {
			t.Fatalf("%d posts: a replica whose lease had passed to another posted", n)
		}
		for _, in := range b.intents(id) {
			if in.Channel == integrations.ChannelSlack && (in.State != store.IntentPending || in.AttemptAt != nil) {
				t.Errorf("the fenced replica recorded the announcement: %s, attempt at %v", in.State, in.AttemptAt)
			}
		}

		// The lease comes back: the outbox is read again, the post goes once.
		shared.handTo("")
		b.after(time.Minute)
		if n := len(slack.called()); n != 2 {
			t.Errorf("%d posts after the lease came back, want 2", n)
		}
	})
}
