package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
)

func testSequentialIDs(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	var got []string
	next := func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		got = append(got, id)
		return nil
	}
	Update(t, db, func(tx store.Tx) error {
		for range 3 {
			if err := next(tx); err != nil {
				return err
			}
		}
		return nil
	})
	Update(t, db, next)

	// A failed Update gives its id back: the next one gets the same number.
	var failedID string
	err := db.Update(context.Background(), func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		failedID = id
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("failing Update = %v, want errBoom", err)
	}
	Update(t, db, next)

	want := []string{"INC-1", "INC-2", "INC-3", "INC-4", "INC-5"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ids = %v, want %v", got, want)
	}
	if failedID != "INC-5" {
		t.Errorf("id reserved by the failed Update = %q, want INC-5", failedID)
	}
}

func testIncidentRoundTrip(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	acked, resolved, eta := T0.Add(5*time.Minute), T0.Add(time.Hour), T0.Add(2*time.Hour)
	want := store.Incident{
		ID: "INC-1", Title: "API down", Description: "5xx everywhere", Severity: "S1", Status: store.StatusResolved,
		Source: store.SourceAlertmanager, DedupKey: `{}:{alertname="Down"}`,
		Labels: map[string]string{"alertname": "Down", "env": "prod"}, Team: "sre", RunbookURL: "https://runbooks.example/down",
		CreatedAt: T0, UpdatedAt: resolved, DeclaredBy: "alice",
		AcknowledgedAt: &acked, AcknowledgedBy: "bob", ResolvedAt: &resolved, ResolvedBy: "carol", Summary: "fixed",
		OutOfHours: true, Roles: store.Roles{RecoveryLead: "bob", CommsLead: "carol"}, ETA: &eta,
		CustomerImpact: true, PostmortemRequired: true, Drill: false, ZoomURL: "https://zoom.example/j/1",
		AlertsFiring: 0, AlertsTotal: 3, AlertsTruncated: 7,
	}
	in := want // PutIncident gets its own copy; want stays untouched
	PutIncidents(t, db, &in)

	var got *store.Incident
	View(t, db, func(tx store.Tx) error {
		var err error
		got, err = tx.Incident("INC-1")
		return err
	})
	// got was decoded inside a transaction that has ended; it must still be whole.
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Incident round trip:\n got %+v\nwant %+v", *got, want)
	}
	for name, tm := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt, "ResolvedAt": *got.ResolvedAt, "AcknowledgedAt": *got.AcknowledgedAt, "ETA": *got.ETA} {
		if tm.Location() != time.UTC {
			t.Errorf("%s location = %v, want UTC", name, tm.Location())
		}
	}

	// Overwrite the incident and grow the file well past its first mapping:
	// the copy taken earlier must not change or point into freed pages.
	Update(t, db, func(tx store.Tx) error {
		inc := NewIncident("INC-1", store.StatusOpen, store.SourceAlertmanager, want.DedupKey)
		inc.Title = "overwritten"
		if err := tx.PutIncident(inc); err != nil {
			return err
		}
		big := strings.Repeat("x", 64<<10)
		for i := range 64 {
			if err := tx.PutAlert("INC-1", &store.Alert{Fingerprint: fmt.Sprintf("fp%03d", i), Annotations: map[string]string{"big": big}}); err != nil {
				return err
			}
		}
		return nil
	})
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("copy changed after later writes:\n got %+v\nwant %+v", *got, want)
	}
	View(t, db, func(tx store.Tx) error {
		cur, err := tx.Incident("INC-1")
		if err != nil {
			return err
		}
		if cur.Title != "overwritten" || cur.Status != store.StatusOpen || cur.ResolvedAt != nil {
			t.Errorf("after overwrite: title %q status %q resolved_at %v; want overwritten, open, nil", cur.Title, cur.Status, cur.ResolvedAt)
		}
		return nil
	})
}

func testUnknownAndMalformedIDs(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	PutIncidents(t, db, NewIncident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
	Update(t, db, func(tx store.Tx) error { return tx.PutAlert("INC-1", &store.Alert{Fingerprint: "fp"}) })

	for _, id := range []string{
		"INC-0", "INC-01", "inc-1", "../etc", "INC-99", "", "INC-", "INC--1", "INC-+1", "INC-1 ", " INC-1",
		"INC-1/../INC-1", "INC-0x1", "INC-18446744073709551616", "INC-1\x00",
	} {
		View(t, db, func(tx store.Tx) error {
			if inc, err := tx.Incident(id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Incident(%q) = %v, %v; want ErrNotFound", id, inc, err)
			}
			if a, err := tx.Alert(id, "fp"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Alert(%q, fp) = %v, %v; want ErrNotFound", id, a, err)
			}
			return nil
		})
	}
	View(t, db, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); err != nil {
			t.Errorf("Incident(INC-1) = %v, want it found", err)
		}
		if a, err := tx.Alert("INC-1", "other"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Alert(INC-1, other) = %v, %v; want ErrNotFound", a, err)
		}
		return nil
	})
	// Writes with a malformed id are refused, not stored under some key.
	for _, id := range []string{"INC-01", "inc-1", "../etc", ""} {
		err := db.Update(context.Background(), func(tx store.Tx) error {
			return tx.PutIncident(NewIncident(id, store.StatusOpen, store.SourceManual, "k"))
		})
		if err == nil {
			t.Errorf("PutIncident(%q) = nil error, want an error", id)
		}
		err = db.Update(context.Background(), func(tx store.Tx) error {
			return tx.AppendTimeline(id, store.Entry{At: T0, Kind: store.KindNote, Text: "x"})
		})
		if err == nil {
			t.Errorf("AppendTimeline(%q) = nil error, want an error", id)
		}
	}
}

func testLatestByDedupKey(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	PutIncidents(t, db,
		NewIncident("INC-1", store.StatusResolved, store.SourceAlertmanager, "group-a"),
		NewIncident("INC-2", store.StatusOpen, store.SourceAlertmanager, "group-a"),
		NewIncident("INC-3", store.StatusOpen, store.SourceOpsGenie, "group-a"), // same key, other source
		NewIncident("INC-4", store.StatusResolved, store.SourceAlertmanager, "group-b"),
	)
	// Re-writing an older incident must not make it the latest again.
	PutIncidents(t, db, NewIncident("INC-1", store.StatusResolved, store.SourceAlertmanager, "group-a"))

	tests := []struct {
		src    store.Source
		key    string
		wantID string // empty: not found
		status store.Status
	}{
		{store.SourceAlertmanager, "group-a", "INC-2", store.StatusOpen},
		{store.SourceOpsGenie, "group-a", "INC-3", store.StatusOpen},
		{store.SourceAlertmanager, "group-b", "INC-4", store.StatusResolved}, // resolved incidents stay findable
		{store.SourceOpsGenie, "group-b", "", ""},
		{store.SourceManual, "group-a", "", ""},
		{store.SourceAlertmanager, "group-c", "", ""},
		{store.SourceAlertmanager, "", "", ""},
	}
	View(t, db, func(tx store.Tx) error {
		for _, tt := range tests {
			inc, err := tx.LatestByDedupKey(tt.src, tt.key)
			if tt.wantID == "" {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("LatestByDedupKey(%s, %q) = %v, %v; want ErrNotFound", tt.src, tt.key, inc, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("LatestByDedupKey(%s, %q) error = %v", tt.src, tt.key, err)
				continue
			}
			if inc.ID != tt.wantID || inc.Status != tt.status || inc.Source != tt.src {
				t.Errorf("LatestByDedupKey(%s, %q) = %s %s %s, want %s %s %s", tt.src, tt.key, inc.ID, inc.Status, inc.Source, tt.wantID, tt.status, tt.src)
			}
		}
		return nil
	})
}

func testOpenIndex(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	openIDs := func() []string {
		t.Helper()
		var got []string
		View(t, db, func(tx store.Tx) error {
			incs, err := tx.OpenIncidents()
			got = IDs(incs)
			for _, inc := range incs {
				if inc.Status == store.StatusResolved {
					t.Errorf("OpenIncidents returned resolved %s", inc.ID)
				}
			}
			return err
		})
		return got
	}
	check := func(step string, want []string) {
		t.Helper()
		if got := openIDs(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: OpenIncidents = %v, want %v", step, got, want)
		}
	}

	check("empty store", []string{})
	PutIncidents(t, db,
		NewIncident("INC-1", store.StatusOpen, store.SourceAlertmanager, "g1"),
		NewIncident("INC-2", store.StatusAcknowledged, store.SourceOpsGenie, "alias-2"),
		NewIncident("INC-3", store.StatusResolved, store.SourceAlertmanager, "g3"),
		NewIncident("INC-4", store.StatusOpen, store.SourceManual, "INC-4"),
	)
	check("open and acknowledged, newest first", []string{"INC-4", "INC-2", "INC-1"})

	PutIncidents(t, db, NewIncident("INC-1", store.StatusResolved, store.SourceAlertmanager, "g1"))
	check("INC-1 resolved", []string{"INC-4", "INC-2"})

	PutIncidents(t, db, NewIncident("INC-1", store.StatusOpen, store.SourceAlertmanager, "g1"))
	check("INC-1 reopened", []string{"INC-4", "INC-2", "INC-1"})

	PutIncidents(t, db, NewIncident("INC-2", store.StatusOpen, store.SourceOpsGenie, "alias-2"))
	check("INC-2 back from acknowledged to open", []string{"INC-4", "INC-2", "INC-1"})

	// The list carries the current documents, not the ones first indexed.
	ack := NewIncident("INC-4", store.StatusAcknowledged, store.SourceManual, "INC-4")
	ack.Title = "acknowledged now"
	PutIncidents(t, db, ack)
	View(t, db, func(tx store.Tx) error {
		incs, err := tx.OpenIncidents()
		if err != nil {
			return err
		}
		if len(incs) == 0 || incs[0].ID != "INC-4" || incs[0].Status != store.StatusAcknowledged || incs[0].Title != "acknowledged now" {
			t.Errorf("OpenIncidents()[0] = %+v, want INC-4 acknowledged with the new title", incs)
		}
		return nil
	})

	PutIncidents(t, db,
		NewIncident("INC-1", store.StatusResolved, store.SourceAlertmanager, "g1"),
		NewIncident("INC-2", store.StatusResolved, store.SourceOpsGenie, "alias-2"),
		NewIncident("INC-4", store.StatusResolved, store.SourceManual, "INC-4"),
	)
	check("all resolved", []string{})
}

func testListIncidents(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	seed := []struct {
		status   store.Status
		severity string
	}{
		{store.StatusResolved, "S1"},     // INC-1
		{store.StatusOpen, "S2"},         // INC-2
		{store.StatusAcknowledged, "S1"}, // INC-3
		{store.StatusOpen, "S1"},         // INC-4
		{store.StatusResolved, "S3"},     // INC-5
		{store.StatusOpen, "S3"},         // INC-6
		{store.StatusResolved, "S1"},     // INC-7
	}
	Update(t, db, func(tx store.Tx) error {
		for i, s := range seed {
			id, err := tx.NextIncidentID()
			if err != nil {
				return err
			}
			inc := NewIncident(id, s.status, store.SourceAlertmanager, fmt.Sprintf("group-%d", i))
			inc.Severity = s.severity
			if err := tx.PutIncident(inc); err != nil {
				return err
			}
		}
		return nil
	})

	tests := []struct {
		name string
		f    store.Filter
		want []string
	}{
		{"everything, newest first", store.Filter{}, []string{"INC-7", "INC-6", "INC-5", "INC-4", "INC-3", "INC-2", "INC-1"}},
		{"limit", store.Filter{Limit: 3}, []string{"INC-7", "INC-6", "INC-5"}},
		{"negative limit is no limit", store.Filter{Limit: -1}, []string{"INC-7", "INC-6", "INC-5", "INC-4", "INC-3", "INC-2", "INC-1"}},
		{"open", store.Filter{Status: store.StatusOpen}, []string{"INC-6", "INC-4", "INC-2"}},
		{"acknowledged", store.Filter{Status: store.StatusAcknowledged}, []string{"INC-3"}},
		{"resolved", store.Filter{Status: store.StatusResolved}, []string{"INC-7", "INC-5", "INC-1"}},
		{"severity", store.Filter{Severity: "S1"}, []string{"INC-7", "INC-4", "INC-3", "INC-1"}},
		{"severity S4 matches nothing", store.Filter{Severity: "S4"}, []string{}},
		{"open S1", store.Filter{Status: store.StatusOpen, Severity: "S1"}, []string{"INC-4"}},
		{"resolved S1", store.Filter{Status: store.StatusResolved, Severity: "S1"}, []string{"INC-7", "INC-1"}},
		{"limit counts matches, not rows scanned", store.Filter{Severity: "S1", Limit: 3}, []string{"INC-7", "INC-4", "INC-3"}},
		{"open with limit", store.Filter{Status: store.StatusOpen, Limit: 2}, []string{"INC-6", "INC-4"}},
		{"resolved with limit", store.Filter{Status: store.StatusResolved, Limit: 1}, []string{"INC-7"}},
	}
	View(t, db, func(tx store.Tx) error {
		for _, tt := range tests {
			page, err := tx.ListIncidents(tt.f)
			if err != nil {
				t.Errorf("%s: ListIncidents(%+v) error = %v", tt.name, tt.f, err)
				continue
			}
			if got := IDs(page.Incidents); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: ListIncidents(%+v) = %v, want %v", tt.name, tt.f, got, tt.want)
			}
		}
		return nil
	})
}

// Incidents 1, 10 and 256 share no key range: with decimal keys "1" would
// be a prefix of "10", and with little-endian keys 256 and 1 would sort apart
// from their numbers. Incidents 2 and 255 have no rows at all.
func testAlertsAndTimelinePerIncident(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	nums := []int{1, 10, 256, 257}
	for _, n := range nums {
		PutIncidents(t, db, NewIncident(fmt.Sprintf("INC-%d", n), store.StatusOpen, store.SourceAlertmanager, fmt.Sprintf("g%d", n)))
	}
	// Interleave writes across incidents and transactions.
	for step := range 3 {
		Update(t, db, func(tx store.Tx) error {
			for _, n := range []int{256, 1, 257, 10} {
				id := fmt.Sprintf("INC-%d", n)
				// Fingerprints arrive out of order; alerts come back sorted by fingerprint.
				fp := fmt.Sprintf("fp-%d-%c", n, "cab"[step])
				if err := tx.PutAlert(id, &store.Alert{Fingerprint: fp, Status: store.AlertFiring, StartsAt: T0, Labels: map[string]string{"n": fmt.Sprint(n)}}); err != nil {
					return err
				}
				if err := tx.AppendTimeline(id, store.Entry{At: T0.Add(time.Duration(step) * time.Minute), Kind: store.KindNote, Text: fmt.Sprintf("%s step %d", id, step)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Updating an alert replaces it in place.
	Update(t, db, func(tx store.Tx) error {
		end := T0.Add(time.Hour)
		return tx.PutAlert("INC-10", &store.Alert{Fingerprint: "fp-10-a", Status: store.AlertResolved, StartsAt: T0, EndsAt: &end, Labels: map[string]string{"n": "10"}})
	})

	View(t, db, func(tx store.Tx) error {
		for _, n := range nums {
			id := fmt.Sprintf("INC-%d", n)
			alerts, err := tx.Alerts(id)
			if err != nil {
				t.Errorf("Alerts(%s): %v", id, err)
				continue
			}
			var gotFP []string
			for _, a := range alerts {
				gotFP = append(gotFP, a.Fingerprint)
				if a.Labels["n"] != fmt.Sprint(n) {
					t.Errorf("Alerts(%s) holds %s with labels %v of another incident", id, a.Fingerprint, a.Labels)
				}
			}
			wantFP := []string{fmt.Sprintf("fp-%d-a", n), fmt.Sprintf("fp-%d-b", n), fmt.Sprintf("fp-%d-c", n)}
			if !reflect.DeepEqual(gotFP, wantFP) {
				t.Errorf("Alerts(%s) fingerprints = %v, want %v", id, gotFP, wantFP)
			}

			entries, err := tx.Timeline(id)
			if err != nil {
				t.Errorf("Timeline(%s): %v", id, err)
				continue
			}
			var gotText []string
			for _, e := range entries {
				gotText = append(gotText, e.Text)
			}
			wantText := []string{id + " step 0", id + " step 1", id + " step 2"}
			if !reflect.DeepEqual(gotText, wantText) {
				t.Errorf("Timeline(%s) = %v, want %v", id, gotText, wantText)
			}
			if len(entries) == 3 && !entries[2].At.Equal(T0.Add(2*time.Minute)) {
				t.Errorf("Timeline(%s)[2].At = %s, want %s", id, entries[2].At, T0.Add(2*time.Minute))
			}
		}

		a, err := tx.Alert("INC-10", "fp-10-a")
		if err != nil {
			t.Errorf("Alert(INC-10, fp-10-a): %v", err)
		} else if a.Status != store.AlertResolved || a.EndsAt == nil || !a.EndsAt.Equal(T0.Add(time.Hour)) {
			t.Errorf("Alert(INC-10, fp-10-a) = %+v, want the resolved version", a)
		}
		if _, err := tx.Alert("INC-1", "fp-10-a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Alert(INC-1, fp-10-a) = %v, want ErrNotFound (belongs to INC-10)", err)
		}

		// Incidents walk in number order, not byte order of some other encoding.
		page, err := tx.ListIncidents(store.Filter{})
		if got, want := IDs(page.Incidents), []string{"INC-257", "INC-256", "INC-10", "INC-1"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ListIncidents = %v, %v; want %v", got, err, want)
		}

		for _, id := range []string{"INC-2", "INC-255", "INC-100"} {
			alerts, err := tx.Alerts(id)
			if err != nil || len(alerts) != 0 {
				t.Errorf("Alerts(%s) = %v, %v; want empty", id, alerts, err)
			}
			entries, err := tx.Timeline(id)
			if err != nil || len(entries) != 0 {
				t.Errorf("Timeline(%s) = %v, %v; want empty", id, entries, err)
			}
		}
		return nil
	})
}

func testUnmatched(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	View(t, db, func(tx store.Tx) error {
		got, err := tx.Unmatched(0)
		if err != nil || len(got) != 0 {
			t.Errorf("Unmatched(0) on an empty store = %v, %v; want none", got, err)
		}
		return nil
	})
	var want []store.Unmatched
	for i := range 4 {
		u := store.Unmatched{
			At: T0.Add(time.Duration(i) * time.Second), Source: store.SourceAlertmanager,
			DedupKey: fmt.Sprintf("group-%d", i), Reason: "resolved for unknown group", Detail: fmt.Sprintf("fp%d", i),
		}
		want = append([]store.Unmatched{u}, want...) // newest first
		Update(t, db, func(tx store.Tx) error { return tx.RecordUnmatched(u) })
	}
	Update(t, db, func(tx store.Tx) error {
		return tx.RecordUnmatched(store.Unmatched{At: T0.Add(time.Minute), Source: store.SourceOpsGenie, DedupKey: "alias", Reason: "close for unknown alias"})
	})
	want = append([]store.Unmatched{{At: T0.Add(time.Minute), Source: store.SourceOpsGenie, DedupKey: "alias", Reason: "close for unknown alias"}}, want...)

	tests := []struct {
		limit int
		want  []store.Unmatched
	}{
		{0, want},
		{-1, want},
		{2, want[:2]},
		{5, want},
		{50, want},
	}
	View(t, db, func(tx store.Tx) error {
		for _, tt := range tests {
			got, err := tx.Unmatched(tt.limit)
			if err != nil {
				t.Errorf("Unmatched(%d): %v", tt.limit, err)
				continue
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Unmatched(%d) =\n %+v\nwant\n %+v", tt.limit, got, tt.want)
			}
		}
		return nil
	})
}

func testUpdateErrorWritesNothing(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	err := db.Update(context.Background(), func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		if err := tx.PutIncident(NewIncident(id, store.StatusOpen, store.SourceAlertmanager, "g")); err != nil {
			return err
		}
		if err := tx.PutAlert(id, &store.Alert{Fingerprint: "fp"}); err != nil {
			return err
		}
		if err := tx.AppendTimeline(id, store.Entry{At: T0, Kind: store.KindOpened}); err != nil {
			return err
		}
		if err := tx.RecordUnmatched(store.Unmatched{At: T0, Source: store.SourceAlertmanager}); err != nil {
			return err
		}
		return fmt.Errorf("decide: %w", errBoom)
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update = %v, want the fn's error", err)
	}
	if err.Error() != "decide: boom" {
		t.Errorf("Update error = %q, want the fn's error unchanged", err)
	}
	View(t, db, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Incident(INC-1) = %v, want ErrNotFound", err)
		}
		if _, err := tx.LatestByDedupKey(store.SourceAlertmanager, "g"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LatestByDedupKey = %v, want ErrNotFound", err)
		}
		if open, err := tx.OpenIncidents(); err != nil || len(open) != 0 {
			t.Errorf("OpenIncidents = %v, %v; want none", IDs(open), err)
		}
		if a, err := tx.Alerts("INC-1"); err != nil || len(a) != 0 {
			t.Errorf("Alerts = %v, %v; want none", a, err)
		}
		if e, err := tx.Timeline("INC-1"); err != nil || len(e) != 0 {
			t.Errorf("Timeline = %v, %v; want none", e, err)
		}
		if u, err := tx.Unmatched(0); err != nil || len(u) != 0 {
			t.Errorf("Unmatched = %v, %v; want none", u, err)
		}
		return nil
	})
}

func testUpdateAfterClose(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	called := false
	err := db.Update(context.Background(), func(store.Tx) error { called = true; return nil })
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("Update after Close = %v, want ErrClosed", err)
	}
	if called {
		t.Errorf("fn ran after Close")
	}
}

func testRestartKeepsEverything(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	resolvedAt := T0.Add(time.Hour)
	ackedAt := T0.Add(10 * time.Minute)
	inc1 := NewIncident("INC-1", store.StatusOpen, store.SourceAlertmanager, "group-1")
	inc2 := NewIncident("INC-2", store.StatusResolved, store.SourceAlertmanager, "group-2")
	inc2.ResolvedAt, inc2.ResolvedBy = &resolvedAt, "alice"
	inc3 := NewIncident("INC-3", store.StatusAcknowledged, store.SourceOpsGenie, "alias-3")
	inc3.AcknowledgedAt, inc3.AcknowledgedBy = &ackedAt, "bob"
	alerts := []store.Alert{
		{Fingerprint: "a1", Status: store.AlertFiring, StartsAt: T0, Labels: map[string]string{"alertname": "Down"}, Severity: "S2", UpdatedAt: T0},
		{Fingerprint: "a2", Status: store.AlertResolved, StartsAt: T0, EndsAt: &resolvedAt, Labels: map[string]string{"alertname": "Slow"}, Severity: "S3", UpdatedAt: resolvedAt},
	}
	timeline := []store.Entry{
		{At: T0, Kind: store.KindOpened, Text: "opened by Alertmanager"},
		{At: T0.Add(time.Minute), Kind: store.KindNote, Text: "looking", By: "bob"},
	}
	unmatched := store.Unmatched{At: T0, Source: store.SourceAlertmanager, DedupKey: "group-x", Reason: "resolved for unknown group", Detail: "fp"}

	err := db.Update(context.Background(), func(tx store.Tx) error {
		for _, inc := range []*store.Incident{inc1, inc2, inc3} {
			if _, err := tx.NextIncidentID(); err != nil {
				return err
			}
			if err := tx.PutIncident(inc); err != nil {
				return err
			}
		}
		for i := range alerts {
			if err := tx.PutAlert("INC-1", &alerts[i]); err != nil {
				return err
			}
		}
		for _, e := range timeline {
			if err := tx.AppendTimeline("INC-1", e); err != nil {
				return err
			}
		}
		if err := tx.AppendTimeline("INC-2", store.Entry{At: resolvedAt, Kind: store.KindResolved, Text: "resolved"}); err != nil {
			return err
		}
		return tx.RecordUnmatched(unmatched)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = mustOpen(t, open)
	View(t, db, func(tx store.Tx) error {
		for _, want := range []*store.Incident{inc1, inc2, inc3} {
			got, err := tx.Incident(want.ID)
			if err != nil {
				t.Errorf("Incident(%s) after restart: %v", want.ID, err)
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Incident(%s) after restart:\n got %+v\nwant %+v", want.ID, got, want)
			}
		}
		open, err := tx.OpenIncidents()
		if err != nil {
			t.Errorf("OpenIncidents: %v", err)
		}
		if got, want := IDs(open), []string{"INC-3", "INC-1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("OpenIncidents after restart = %v, want %v", got, want)
		}
		for _, tt := range []struct {
			src    store.Source
			key    string
			wantID string
		}{
			{store.SourceAlertmanager, "group-1", "INC-1"},
			{store.SourceAlertmanager, "group-2", "INC-2"},
			{store.SourceOpsGenie, "alias-3", "INC-3"},
		} {
			inc, err := tx.LatestByDedupKey(tt.src, tt.key)
			if err != nil || inc.ID != tt.wantID {
				t.Errorf("LatestByDedupKey(%s, %s) after restart = %v, %v; want %s", tt.src, tt.key, inc, err, tt.wantID)
			}
		}
		if got, err := tx.Alerts("INC-1"); err != nil || !reflect.DeepEqual(got, alerts) {
			t.Errorf("Alerts(INC-1) after restart = %+v, %v; want %+v", got, err, alerts)
		}
		if got, err := tx.Timeline("INC-1"); err != nil || !reflect.DeepEqual(got, timeline) {
			t.Errorf("Timeline(INC-1) after restart = %+v, %v; want %+v", got, err, timeline)
		}
		if got, err := tx.Timeline("INC-2"); err != nil || len(got) != 1 || got[0].Kind != store.KindResolved {
			t.Errorf("Timeline(INC-2) after restart = %+v, %v; want the resolved entry", got, err)
		}
		if got, err := tx.Unmatched(0); err != nil || !reflect.DeepEqual(got, []store.Unmatched{unmatched}) {
			t.Errorf("Unmatched after restart = %+v, %v; want %+v", got, err, unmatched)
		}
		return nil
	})

	// The id sequence and the open index keep working after the restart.
	Update(t, db, func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		if id != "INC-4" {
			t.Errorf("NextIncidentID after restart = %s, want INC-4", id)
		}
		if err := tx.PutIncident(NewIncident(id, store.StatusOpen, store.SourceAlertmanager, "group-2")); err != nil {
			return err
		}
		return tx.PutIncident(NewIncident("INC-1", store.StatusResolved, store.SourceAlertmanager, "group-1"))
	})
	View(t, db, func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		if got, want := IDs(open), []string{"INC-4", "INC-3"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("OpenIncidents after restart and changes = %v, %v; want %v", got, err, want)
		}
		if inc, err := tx.LatestByDedupKey(store.SourceAlertmanager, "group-2"); err != nil || inc.ID != "INC-4" {
			t.Errorf("LatestByDedupKey(group-2) = %v, %v; want INC-4", inc, err)
		}
		return nil
	})
}

// A panic inside a write must not kill the writer (and the daemon): it
// becomes that write's error, nothing of it lands, and the store goes on.
func testUpdatePanicIsAnError(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	err := db.Update(context.Background(), func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		if err := tx.PutIncident(NewIncident(id, store.StatusOpen, store.SourceManual, "k")); err != nil {
			return err
		}
		panic("handler bug")
	})
	if err == nil || !strings.Contains(err.Error(), "write panicked") {
		t.Fatalf("Update with a panicking fn = %v, want a write panicked error", err)
	}
	Update(t, db, func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		if id != "INC-1" {
			t.Errorf("first id after the panic = %s, want INC-1 (nothing of the panicking write kept)", id)
		}
		return tx.PutIncident(NewIncident(id, store.StatusOpen, store.SourceManual, "k"))
	})
	if err := db.Ready(); err != nil {
		t.Errorf("Ready after a panicking write = %v", err)
	}
}

// A filter that matches little must not read the whole file in one call:
// MaxScan stops the walk and Next says where to go on, until the end.
func testListIncidentsPages(t *testing.T, open Opener) {
	db := mustOpen(t, open)
	for i := 1; i <= 10; i++ {
		id := fmt.Sprintf("INC-%d", i)
		inc := NewIncident(id, store.StatusResolved, store.SourceManual, id)
		inc.Severity = "S3"
		if i == 1 {
			inc.Severity = "S1"
		}
		PutIncidents(t, db, inc)
	}
	var pages [][]string
	var nexts []string
	f := store.Filter{Severity: "S1", MaxScan: 4}
	View(t, db, func(tx store.Tx) error {
		for range 5 {
			page, err := tx.ListIncidents(f)
			if err != nil {
				return err
			}
			pages = append(pages, IDs(page.Incidents))
			nexts = append(nexts, page.Next)
			if page.Next == "" {
				break
			}
			f.Before = page.Next
		}
		return nil
	})
	if want := []string{"INC-7", "INC-3", ""}; !reflect.DeepEqual(nexts, want) {
		t.Errorf("next of each page = %q, want %q", nexts, want)
	}
	if len(pages) != 3 || len(pages[0]) != 0 || len(pages[1]) != 0 || !reflect.DeepEqual(pages[2], []string{"INC-1"}) {
		t.Errorf("pages = %v, want [] [] [INC-1]", pages)
	}
	View(t, db, func(tx store.Tx) error {
		page, err := tx.ListIncidents(store.Filter{Limit: 3, Before: "INC-99"})
		if got := IDs(page.Incidents); err != nil || !reflect.DeepEqual(got, []string{"INC-10", "INC-9", "INC-8"}) || page.Next != "INC-8" {
			t.Errorf("before past the end, limit 3 = %v next %q (%v), want INC-10..8 next INC-8", got, page.Next, err)
		}
		page, err = tx.ListIncidents(store.Filter{Before: "INC-1"})
		if err != nil || len(page.Incidents) != 0 || page.Next != "" {
			t.Errorf("before the first = %v next %q (%v), want nothing", IDs(page.Incidents), page.Next, err)
		}
		return nil
	})
}
