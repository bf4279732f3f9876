package outbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/outbox"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
	"github.com/responder-sre/responder/store/storetest"
)

// Every pending Slack delivery of a restored store is in doubt afterwards,
// an earlier doubt is kept as it was, finished ones and other channels'
// are left alone; more than one page of them are all marked.
func TestMarkInDoubt(t *testing.T) {
	ctx := context.Background()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "responder.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	t0 := storetest.T0
	earlier := t0.Add(-time.Minute)
	const n = 1203
	storetest.Update(t, db, func(tx store.Tx) error {
		if _, err := tx.NextIncidentID(); err != nil {
			return err
		}
		if err := tx.PutIncident(storetest.NewIncident("INC-1", store.StatusOpen, store.SourceManual, "k")); err != nil {
			return err
		}
		for i := range n {
			in := &store.Intent{IncidentID: "INC-1", Channel: integrations.ChannelSlack, Target: "#ops", Event: integrations.EventAlertJoined,
				Key: fmt.Sprintf("k%d", i), State: store.IntentPending, CreatedAt: t0, NextAt: t0}
			switch i {
			case 0:
				in.AttemptAt, in.AttemptKey = &earlier, "k-other"
			case 1:
				in.State = store.IntentSent
			case 2:
				in.Channel, in.Target, in.Event = integrations.ChannelOpsGenie, "team:sre", integrations.EventOpened
			}
			if err := tx.Enqueue(in); err != nil {
				return err
			}
		}
		return nil
	})
	marked, err := outbox.MarkInDoubt(ctx, db, t0)
	if err != nil {
		t.Fatal(err)
	}
	if marked != n-3 {
		t.Errorf("marked %d, want %d", marked, n-3)
	}
	storetest.View(t, db, func(tx store.Tx) error {
		ins, err := tx.IncidentIntents("INC-1")
		if err != nil {
			return err
		}
		for _, in := range ins {
			switch {
			case in.Key == "k0":
				if !in.AttemptAt.Equal(earlier) || in.AttemptKey != "k-other" {
					t.Errorf("the intent already in doubt changed: %v %q", in.AttemptAt, in.AttemptKey)
				}
			case in.Key == "k1":
				if in.AttemptAt != nil {
					t.Errorf("a sent intent was marked")
				}
			case in.Key == "k2":
				if in.AttemptAt != nil {
					t.Errorf("a pending page was marked: it could no longer be cancelled")
				}
			case in.AttemptAt == nil || !in.AttemptAt.Equal(t0) || in.AttemptKey != in.Key:
				t.Errorf("intent %s: attempt %v key %q, want in doubt since %v under its own key", in.Key, in.AttemptAt, in.AttemptKey, t0)
			}
		}
		return nil
	})
	if again, err := outbox.MarkInDoubt(ctx, db, t0.Add(time.Hour)); err != nil || again != 0 {
		t.Errorf("a second pass marked %d (%v), want 0", again, err)
	}
}
