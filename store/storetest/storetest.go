// Package storetest is the conformance suite of the store contract: every
// backend (store/bolt, and any other) runs RunSuite from its own tests and
// must pass it unchanged. It holds no backend of its own.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
)

// Opener opens the backend under test on the data of one test: every call
// opens the same data again (after the previous DB was closed), so that a
// test can check what survives a restart. A backend's test builds a fresh
// Opener per test, over a new file or a new database.
type Opener func() (store.DB, error)

// RunSuite runs every contract test against the backend that newOpener
// opens; newOpener is called once per test, with that test's t.
func RunSuite(t *testing.T, newOpener func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"SequentialIDs", testSequentialIDs},
		{"IncidentRoundTrip", testIncidentRoundTrip},
		{"UnknownAndMalformedIDs", testUnknownAndMalformedIDs},
		{"LatestByDedupKey", testLatestByDedupKey},
		{"OpenIndex", testOpenIndex},
		{"ListIncidents", testListIncidents},
		{"ListIncidentsPages", testListIncidentsPages},
		{"AlertsAndTimelinePerIncident", testAlertsAndTimelinePerIncident},
		{"Unmatched", testUnmatched},
		{"UpdateErrorWritesNothing", testUpdateErrorWritesNothing},
		{"UpdateAfterClose", testUpdateAfterClose},
		{"UpdatePanicIsAnError", testUpdatePanicIsAnError},
		{"RestartKeepsEverything", testRestartKeepsEverything},
		{"ContextEndedBeforeUpdate", testContextEndedBeforeUpdate},
		{"ConcurrentWritersEachLandOnce", testConcurrentWritersEachLandOnce},
		{"RefusalsAndFailuresAmongConcurrentWrites", testRefusalsAndFailuresAmongConcurrentWrites},
		{"OutboxPendingIndex", testOutboxPendingIndex},
		{"OutboxPaging", testOutboxPaging},
		{"IncidentIntents", testIncidentIntents},
		{"Requests", testRequests},
		{"ResolvedOfKind", testResolvedOfKind},
		{"ResolvedBefore", testResolvedBefore},
		{"Heartbeats", testHeartbeats},
		{"Checklists", testChecklists},
		{"ActionItems", testActionItems},
		{"Postmortems", testPostmortems},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newOpener(t)) })
	}
}

// WaitLimit bounds every wait of the suite on a backend, so that a broken
// backend fails a test instead of hanging it.
const WaitLimit = 10 * time.Second

var errBoom = errors.New("boom")

// T0 is the time the suite's records are made at.
var T0 = time.Date(2026, time.March, 30, 7, 30, 0, 0, time.UTC)

// mustOpen opens the backend and closes it at the end of the test; closing
// a DB twice is allowed by the contract.
func mustOpen(t *testing.T, open Opener) store.DB {
	t.Helper()
	db, err := open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// Update runs fn in a write of db and fails the test on an error.
func Update(t *testing.T, db store.DB, fn func(store.Tx) error) {
	t.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// View runs fn in a read of db and fails the test on an error.
func View(t *testing.T, db store.DB, fn func(store.Tx) error) {
	t.Helper()
	if err := db.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// IDs lists the incidents' ids in order.
func IDs(incs []store.Incident) []string {
	out := []string{}
	for _, inc := range incs {
		out = append(out, inc.ID)
	}
	return out
}

// NewIncident is an incident document with every required field set.
func NewIncident(id string, status store.Status, src store.Source, key string) *store.Incident {
	return &store.Incident{
		ID: id, Title: "title of " + id, Severity: "S2", Status: status, Source: src, DedupKey: key,
		Labels: map[string]string{"alertname": "Down"}, CreatedAt: T0, UpdatedAt: T0,
	}
}

// PutIncidents writes the incidents in one Update.
func PutIncidents(t *testing.T, db store.DB, incs ...*store.Incident) {
	t.Helper()
	Update(t, db, func(tx store.Tx) error {
		for _, inc := range incs {
			if err := tx.PutIncident(inc); err != nil {
				return err
			}
		}
		return nil
	})
}
