package incident

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// newService is the service on st (a real bbolt file when nil), at the
// clock *now (2026-11-17 03:00 UTC when nil), with every severity
// resolving by itself, and nothing to deliver the outbox.
func newService(t *testing.T, st Store, now *time.Time) *Service {
	t.Helper()
	if st == nil {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "responder.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		st = db
	}
	proc := map[policy.Severity]policy.Process{}
	for _, s := range policy.Severities() {
		proc[s] = policy.Process{AutoResolve: true}
	}
	pol := &policy.Policy{DefaultSeverity: policy.S3, Process: proc, ReopenWithin: 30 * time.Minute}
	if now == nil {
		t0 := time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC)
		now = &t0
	}
	return New(Config{ExternalURL: "http://127.0.0.1:9095"}, Deps{Store: st, Policy: pol, Log: zerolog.Nop(),
		Now: func() time.Time { return *now }})
}

// The service refuses in kinds, not HTTP statuses: each names what to fix,
// and an invalid field is named in Field.
func TestRefusalsAreKinds(t *testing.T) {
	s := newService(t, nil, nil)
	ctx := context.Background()
	_, _, err := s.Declare(ctx, DeclareRequest{Severity: "S2"}, "oncall", Idempotency{})
	if e := (*Error)(nil); !errors.As(err, &e) || e.Kind != Invalid || e.Field != "title" {
		t.Errorf("declare without a title: %v, want Invalid naming title", err)
	}
	if _, _, err := s.Declare(ctx, DeclareRequest{Title: "x"}, "", Idempotency{}); KindOf(err) != Invalid {
		t.Errorf("declare with nobody acting: %v, want Invalid", err)
	}
	v, _, err := s.Declare(ctx, DeclareRequest{Title: "Checkout down", Severity: "S2"}, "oncall", Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	if v.DeclaredBy != "oncall" || v.Severity != "S2" || v.Status != store.StatusOpen {
		t.Errorf("declared %+v, want an open S2 declared by the actor", v.Incident)
	}
	tests := []struct {
		name string
		do   func() error
		want Kind
	}{
		{"unknown incident", func() error { _, err := s.Acknowledge(ctx, "INC-99", AckRequest{}, "maria"); return err }, NotFound},
		{"not an id", func() error { _, err := s.Get(ctx, "../etc"); return err }, NotFound},
		{"same person in both roles", func() error {
			maria := "maria"
			_, err := s.SetRoles(ctx, v.ID, RolesRequest{RecoveryLead: &maria, CommsLead: &maria}, "oncall")
			return err
		}, Unprocessable},
		{"unknown scenario", func() error {
			_, _, err := s.Drill(ctx, DrillRequest{Scenario: "x"}, "oncall", Idempotency{})
			return err
		}, Unprocessable},
		{"bad list status", func() error { _, err := s.List(ctx, ListQuery{Status: "closed"}); return err }, Invalid},
		{"eta in the past", func() error {
			past := time.Date(2026, 11, 17, 2, 0, 0, 0, time.UTC)
			_, err := s.PostUpdate(ctx, v.ID, UpdateRequest{Text: "x", ETA: &past}, "oncall")
			return err
		}, Invalid},
	}
	for _, tt := range tests {
		if got := KindOf(tt.do()); got != tt.want {
			t.Errorf("%s: kind %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := s.Acknowledge(ctx, v.ID, AckRequest{}, "maria"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acknowledge(ctx, v.ID, AckRequest{}, "maria"); KindOf(err) != Conflict {
		t.Errorf("second acknowledgement: %v, want Conflict", err)
	}
}

// failingReads is a store whose transactions fail reads of INC-1 (its
// document and its alerts) with a transient error, as a networked store
// can; other incidents read well.
type failingReads struct {
	Store
	err error
}

func (f failingReads) Update(ctx context.Context, fn func(store.Tx) error) error {
	return f.Store.Update(ctx, func(tx store.Tx) error { return fn(failingTx{Tx: tx, err: f.err}) })
}

func (f failingReads) View(ctx context.Context, fn func(store.Tx) error) error {
	return f.Store.View(ctx, func(tx store.Tx) error { return fn(failingTx{Tx: tx, err: f.err}) })
}

type failingTx struct {
	store.Tx
	err error
}

func (t failingTx) Alert(id, fp string) (*store.Alert, error) {
	if id == "INC-1" {
		return nil, t.err
	}
	return t.Tx.Alert(id, fp)
}

func (t failingTx) Incident(id string) (*store.Incident, error) {
	if id == "INC-1" {
		return nil, t.err
	}
	return t.Tx.Incident(id)
}

// A read that fails is never taken for "not found": a firing alert that
// arrives for a resolved group while the store cannot say whether it is
// known fails the write (the sender retries) instead of opening a
// duplicate incident, and a lookup fails with the read's error, not 404.
func TestReadErrorIsNotNotFound(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "responder.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	now := time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC)
	s := newService(t, db, &now)
	ctx := context.Background()
	start := time.Date(2026, 11, 17, 2, 0, 0, 0, time.UTC)
	alert := template.Alert{Status: store.AlertFiring, Labels: template.KV{"alertname": "Down"}, StartsAt: start, Fingerprint: "f1"}
	msg := func(status string) *AlertmanagerWebhook {
		a := alert
		a.Status = status
		if status == store.AlertResolved {
			a.EndsAt = start.Add(time.Minute)
		}
		return &AlertmanagerWebhook{Version: "4", GroupKey: "g", Data: template.Data{Alerts: template.Alerts{a}}}
	}
	if _, err := s.ApplyAlertmanager(ctx, msg(store.AlertFiring)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyAlertmanager(ctx, msg(store.AlertResolved)); err != nil {
		t.Fatal(err)
	}

	// Past the reopen window, a new firing alert would open a new incident.
	now = now.Add(time.Hour)
	transient := errors.New("connection reset by peer")
	flaky := newService(t, failingReads{Store: db, err: transient}, &now)
	if _, err := flaky.ApplyAlertmanager(ctx, msg(store.AlertFiring)); !errors.Is(err, transient) {
		t.Errorf("re-sent firing alert with failing reads: %v, want the read error", err)
	}
	if _, err := flaky.Get(ctx, "INC-1"); !errors.Is(err, transient) || KindOf(err) == NotFound {
		t.Errorf("Get with failing reads: %v, want the read error, not NotFound", err)
	}
	page, err := s.List(ctx, ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Incidents) != 1 || page.Incidents[0].Status != store.StatusResolved {
		var got []string
		for _, inc := range page.Incidents {
			got = append(got, inc.ID+" "+string(inc.Status))
		}
		t.Errorf("incidents %v, want the one resolved incident and no duplicate", got)
	}
}
