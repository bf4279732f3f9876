package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/responder-sre/responder/store"
)

// waitLimit bounds every wait on the writer goroutine, so that a broken
// store fails the test instead of hanging it.
const waitLimit = 10 * time.Second

var errBoom = errors.New("boom")

var t0 = time.Date(2026, time.March, 30, 7, 30, 0, 0, time.UTC)

func openAt(t *testing.T, path string, o store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(path, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func openTemp(t *testing.T, o store.Options) *store.DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "responder.db"), o)
}

func update(t *testing.T, db *store.DB, fn func(store.Tx) error) {
	t.Helper()
	if err := db.Update(context.Background(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, db *store.DB, fn func(store.Tx) error) {
	t.Helper()
	if err := db.View(context.Background(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func ids(incs []store.Incident) []string {
	out := []string{}
	for _, inc := range incs {
		out = append(out, inc.ID)
	}
	return out
}

func incident(id string, status store.Status, src store.Source, key string) *store.Incident {
	return &store.Incident{
		ID: id, Title: "title of " + id, Severity: "S2", Status: status, Source: src, DedupKey: key,
		Labels: map[string]string{"alertname": "Down"}, CreatedAt: t0, UpdatedAt: t0,
	}
}

func putIncidents(t *testing.T, db *store.DB, incs ...*store.Incident) {
	t.Helper()
	update(t, db, func(tx store.Tx) error {
		for _, inc := range incs {
			if err := tx.PutIncident(inc); err != nil {
				return err
			}
		}
		return nil
	})
}

// blockWriter occupies the single writer with an Update that waits until
// release is called. It returns once the writer is inside that Update.
// release is idempotent and also runs at cleanup, so a failing test does not
// leave the writer blocked.
func blockWriter(t *testing.T, db *store.DB) (release func()) {
	t.Helper()
	started, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		var once sync.Once
		done <- db.Update(context.Background(), func(store.Tx) error {
			once.Do(func() { close(started) })
			<-unblock
			return nil
		})
	}()
	select {
	case <-started:
	case <-time.After(waitLimit):
		t.Fatalf("writer did not start the blocking Update within %s", waitLimit)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(unblock)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("blocking Update: %v", err)
				}
			case <-time.After(waitLimit):
				t.Errorf("blocking Update did not return within %s of its release", waitLimit)
			}
		})
	}
	t.Cleanup(release)
	return release
}

func waitQueueDepth(t *testing.T, db *store.DB, want int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for db.QueueDepth() < want {
		if time.Now().After(deadline) {
			t.Fatalf("QueueDepth = %d after %s, want %d", db.QueueDepth(), waitLimit, want)
		}
		time.Sleep(time.Millisecond)
	}
	if got := db.QueueDepth(); got != want {
		t.Fatalf("QueueDepth = %d, want %d", got, want)
	}
}

func TestOpenCreatesBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "responder.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := db.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
	if err := db.Ready(); err != nil {
		t.Errorf("Ready() = %v, want nil", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Ready(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Ready() after Close = %v, want ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}

	// Look at the file with bbolt itself: the buckets exist before any write.
	raw, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	defer func() {
		if err := raw.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	err = raw.View(func(tx *bolt.Tx) error {
		for _, name := range []string{"meta", "incidents", "open_by_dedup", "latest_by_dedup", "alerts", "timeline", "unmatched", "outbox"} {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q missing", name)
			}
		}
		if meta := tx.Bucket([]byte("meta")); meta != nil {
			if got := string(meta.Get([]byte("schema"))); got != "1" {
				t.Errorf("meta schema = %q, want %q", got, "1")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
}

func TestOpenRejectsOtherSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	raw, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema"), []byte("999")) // a schema from some future build
	})
	if err != nil {
		t.Fatalf("write schema 999: %v", err)
	}
	if err := raw.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	db, err := store.Open(path, store.Options{})
	if err == nil {
		_ = db.Close()
		t.Fatalf("Open of a schema 999 file = nil error, want an error")
	}
	if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), path) {
		t.Errorf("Open error = %q, want it to name the schema and the file", err)
	}
}

func TestSequentialIDs(t *testing.T) {
	db := openTemp(t, store.Options{})
	var got []string
	next := func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		got = append(got, id)
		return nil
	}
	update(t, db, func(tx store.Tx) error {
		for range 3 {
			if err := next(tx); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, db, next)

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
	update(t, db, next)

	want := []string{"INC-1", "INC-2", "INC-3", "INC-4", "INC-5"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ids = %v, want %v", got, want)
	}
	if failedID != "INC-5" {
		t.Errorf("id reserved by the failed Update = %q, want INC-5", failedID)
	}
}

func TestIncidentRoundTrip(t *testing.T) {
	db := openTemp(t, store.Options{})
	acked, resolved, eta := t0.Add(5*time.Minute), t0.Add(time.Hour), t0.Add(2*time.Hour)
	want := store.Incident{
		ID: "INC-1", Title: "API down", Description: "5xx everywhere", Severity: "S1", Status: store.StatusResolved,
		Source: store.SourceAlertmanager, DedupKey: `{}:{alertname="Down"}`,
		Labels: map[string]string{"alertname": "Down", "env": "prod"}, Team: "sre", RunbookURL: "https://runbooks.example/down",
		CreatedAt: t0, UpdatedAt: resolved, DeclaredBy: "alice",
		AcknowledgedAt: &acked, AcknowledgedBy: "bob", ResolvedAt: &resolved, ResolvedBy: "carol", Summary: "fixed",
		OutOfHours: true, Roles: store.Roles{RecoveryLead: "bob", CommsLead: "carol"}, ETA: &eta,
		CustomerImpact: true, PostmortemRequired: true, Drill: false, ZoomURL: "https://zoom.example/j/1",
		AlertsFiring: 0, AlertsTotal: 3, AlertsTruncated: 7,
	}
	in := want // PutIncident gets its own copy; want stays untouched
	putIncidents(t, db, &in)

	var got *store.Incident
	view(t, db, func(tx store.Tx) error {
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
	update(t, db, func(tx store.Tx) error {
		inc := incident("INC-1", store.StatusOpen, store.SourceAlertmanager, want.DedupKey)
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
	view(t, db, func(tx store.Tx) error {
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

func TestUnknownAndMalformedIDs(t *testing.T) {
	db := openTemp(t, store.Options{})
	putIncidents(t, db, incident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
	update(t, db, func(tx store.Tx) error { return tx.PutAlert("INC-1", &store.Alert{Fingerprint: "fp"}) })

	for _, id := range []string{
		"INC-0", "INC-01", "inc-1", "../etc", "INC-99", "", "INC-", "INC--1", "INC-+1", "INC-1 ", " INC-1",
		"INC-1/../INC-1", "INC-0x1", "INC-18446744073709551616", "INC-1\x00",
	} {
		view(t, db, func(tx store.Tx) error {
			if inc, err := tx.Incident(id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Incident(%q) = %v, %v; want ErrNotFound", id, inc, err)
			}
			if a, err := tx.Alert(id, "fp"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Alert(%q, fp) = %v, %v; want ErrNotFound", id, a, err)
			}
			return nil
		})
	}
	view(t, db, func(tx store.Tx) error {
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
			return tx.PutIncident(incident(id, store.StatusOpen, store.SourceManual, "k"))
		})
		if err == nil {
			t.Errorf("PutIncident(%q) = nil error, want an error", id)
		}
		err = db.Update(context.Background(), func(tx store.Tx) error {
			return tx.AppendTimeline(id, store.Entry{At: t0, Kind: store.KindNote, Text: "x"})
		})
		if err == nil {
			t.Errorf("AppendTimeline(%q) = nil error, want an error", id)
		}
	}
}

func TestLatestByDedupKey(t *testing.T) {
	db := openTemp(t, store.Options{})
	putIncidents(t, db,
		incident("INC-1", store.StatusResolved, store.SourceAlertmanager, "group-a"),
		incident("INC-2", store.StatusOpen, store.SourceAlertmanager, "group-a"),
		incident("INC-3", store.StatusOpen, store.SourceOpsGenie, "group-a"), // same key, other source
		incident("INC-4", store.StatusResolved, store.SourceAlertmanager, "group-b"),
	)
	// Re-writing an older incident must not make it the latest again.
	putIncidents(t, db, incident("INC-1", store.StatusResolved, store.SourceAlertmanager, "group-a"))

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
	view(t, db, func(tx store.Tx) error {
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

func TestOpenIndex(t *testing.T) {
	db := openTemp(t, store.Options{})
	openIDs := func() []string {
		t.Helper()
		var got []string
		view(t, db, func(tx store.Tx) error {
			incs, err := tx.OpenIncidents()
			got = ids(incs)
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
	putIncidents(t, db,
		incident("INC-1", store.StatusOpen, store.SourceAlertmanager, "g1"),
		incident("INC-2", store.StatusAcknowledged, store.SourceOpsGenie, "alias-2"),
		incident("INC-3", store.StatusResolved, store.SourceAlertmanager, "g3"),
		incident("INC-4", store.StatusOpen, store.SourceManual, "INC-4"),
	)
	check("open and acknowledged, newest first", []string{"INC-4", "INC-2", "INC-1"})

	putIncidents(t, db, incident("INC-1", store.StatusResolved, store.SourceAlertmanager, "g1"))
	check("INC-1 resolved", []string{"INC-4", "INC-2"})

	putIncidents(t, db, incident("INC-1", store.StatusOpen, store.SourceAlertmanager, "g1"))
	check("INC-1 reopened", []string{"INC-4", "INC-2", "INC-1"})

	putIncidents(t, db, incident("INC-2", store.StatusOpen, store.SourceOpsGenie, "alias-2"))
	check("INC-2 back from acknowledged to open", []string{"INC-4", "INC-2", "INC-1"})

	// The list carries the current documents, not the ones first indexed.
	ack := incident("INC-4", store.StatusAcknowledged, store.SourceManual, "INC-4")
	ack.Title = "acknowledged now"
	putIncidents(t, db, ack)
	view(t, db, func(tx store.Tx) error {
		incs, err := tx.OpenIncidents()
		if err != nil {
			return err
		}
		if len(incs) == 0 || incs[0].ID != "INC-4" || incs[0].Status != store.StatusAcknowledged || incs[0].Title != "acknowledged now" {
			t.Errorf("OpenIncidents()[0] = %+v, want INC-4 acknowledged with the new title", incs)
		}
		return nil
	})

	putIncidents(t, db,
		incident("INC-1", store.StatusResolved, store.SourceAlertmanager, "g1"),
		incident("INC-2", store.StatusResolved, store.SourceOpsGenie, "alias-2"),
		incident("INC-4", store.StatusResolved, store.SourceManual, "INC-4"),
	)
	check("all resolved", []string{})
}

func TestListIncidents(t *testing.T) {
	db := openTemp(t, store.Options{})
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
	update(t, db, func(tx store.Tx) error {
		for i, s := range seed {
			id, err := tx.NextIncidentID()
			if err != nil {
				return err
			}
			inc := incident(id, s.status, store.SourceAlertmanager, fmt.Sprintf("group-%d", i))
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
	view(t, db, func(tx store.Tx) error {
		for _, tt := range tests {
			page, err := tx.ListIncidents(tt.f)
			if err != nil {
				t.Errorf("%s: ListIncidents(%+v) error = %v", tt.name, tt.f, err)
				continue
			}
			if got := ids(page.Incidents); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: ListIncidents(%+v) = %v, want %v", tt.name, tt.f, got, tt.want)
			}
		}
		return nil
	})
}

// Incidents 1, 10 and 256 share no key range: with decimal keys "1" would
// be a prefix of "10", and with little-endian keys 256 and 1 would sort apart
// from their numbers. Incidents 2 and 255 have no rows at all.
func TestAlertsAndTimelinePerIncident(t *testing.T) {
	db := openTemp(t, store.Options{})
	nums := []int{1, 10, 256, 257}
	for _, n := range nums {
		putIncidents(t, db, incident(fmt.Sprintf("INC-%d", n), store.StatusOpen, store.SourceAlertmanager, fmt.Sprintf("g%d", n)))
	}
	// Interleave writes across incidents and transactions.
	for step := range 3 {
		update(t, db, func(tx store.Tx) error {
			for _, n := range []int{256, 1, 257, 10} {
				id := fmt.Sprintf("INC-%d", n)
				// Fingerprints arrive out of order; alerts come back sorted by fingerprint.
				fp := fmt.Sprintf("fp-%d-%c", n, "cab"[step])
				if err := tx.PutAlert(id, &store.Alert{Fingerprint: fp, Status: store.AlertFiring, StartsAt: t0, Labels: map[string]string{"n": fmt.Sprint(n)}}); err != nil {
					return err
				}
				if err := tx.AppendTimeline(id, store.Entry{At: t0.Add(time.Duration(step) * time.Minute), Kind: store.KindNote, Text: fmt.Sprintf("%s step %d", id, step)}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Updating an alert replaces it in place.
	update(t, db, func(tx store.Tx) error {
		end := t0.Add(time.Hour)
		return tx.PutAlert("INC-10", &store.Alert{Fingerprint: "fp-10-a", Status: store.AlertResolved, StartsAt: t0, EndsAt: &end, Labels: map[string]string{"n": "10"}})
	})

	view(t, db, func(tx store.Tx) error {
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
			if len(entries) == 3 && !entries[2].At.Equal(t0.Add(2*time.Minute)) {
				t.Errorf("Timeline(%s)[2].At = %s, want %s", id, entries[2].At, t0.Add(2*time.Minute))
			}
		}

		a, err := tx.Alert("INC-10", "fp-10-a")
		if err != nil {
			t.Errorf("Alert(INC-10, fp-10-a): %v", err)
		} else if a.Status != store.AlertResolved || a.EndsAt == nil || !a.EndsAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("Alert(INC-10, fp-10-a) = %+v, want the resolved version", a)
		}
		if _, err := tx.Alert("INC-1", "fp-10-a"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Alert(INC-1, fp-10-a) = %v, want ErrNotFound (belongs to INC-10)", err)
		}

		// Incidents walk in number order, not byte order of some other encoding.
		page, err := tx.ListIncidents(store.Filter{})
		if got, want := ids(page.Incidents), []string{"INC-257", "INC-256", "INC-10", "INC-1"}; err != nil || !reflect.DeepEqual(got, want) {
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

func TestUnmatched(t *testing.T) {
	db := openTemp(t, store.Options{})
	view(t, db, func(tx store.Tx) error {
		got, err := tx.Unmatched(0)
		if err != nil || len(got) != 0 {
			t.Errorf("Unmatched(0) on an empty store = %v, %v; want none", got, err)
		}
		return nil
	})
	var want []store.Unmatched
	for i := range 4 {
		u := store.Unmatched{
			At: t0.Add(time.Duration(i) * time.Second), Source: store.SourceAlertmanager,
			DedupKey: fmt.Sprintf("group-%d", i), Reason: "resolved for unknown group", Detail: fmt.Sprintf("fp%d", i),
		}
		want = append([]store.Unmatched{u}, want...) // newest first
		update(t, db, func(tx store.Tx) error { return tx.RecordUnmatched(u) })
	}
	update(t, db, func(tx store.Tx) error {
		return tx.RecordUnmatched(store.Unmatched{At: t0.Add(time.Minute), Source: store.SourceOpsGenie, DedupKey: "alias", Reason: "close for unknown alias"})
	})
	want = append([]store.Unmatched{{At: t0.Add(time.Minute), Source: store.SourceOpsGenie, DedupKey: "alias", Reason: "close for unknown alias"}}, want...)

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
	view(t, db, func(tx store.Tx) error {
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

func TestUpdateErrorWritesNothing(t *testing.T) {
	db := openTemp(t, store.Options{})
	err := db.Update(context.Background(), func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		if err := tx.PutIncident(incident(id, store.StatusOpen, store.SourceAlertmanager, "g")); err != nil {
			return err
		}
		if err := tx.PutAlert(id, &store.Alert{Fingerprint: "fp"}); err != nil {
			return err
		}
		if err := tx.AppendTimeline(id, store.Entry{At: t0, Kind: store.KindOpened}); err != nil {
			return err
		}
		if err := tx.RecordUnmatched(store.Unmatched{At: t0, Source: store.SourceAlertmanager}); err != nil {
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
	view(t, db, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Incident(INC-1) = %v, want ErrNotFound", err)
		}
		if _, err := tx.LatestByDedupKey(store.SourceAlertmanager, "g"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LatestByDedupKey = %v, want ErrNotFound", err)
		}
		if open, err := tx.OpenIncidents(); err != nil || len(open) != 0 {
			t.Errorf("OpenIncidents = %v, %v; want none", ids(open), err)
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

// Fifty writes share one batch; every seventh fails. Each failure gets its own
// error and leaves no trace, and every other write lands exactly once.
func TestUpdateFailureIsolatedWithinBatch(t *testing.T) {
	db := openTemp(t, store.Options{})
	const n = 50
	release := blockWriter(t, db)

	var calls atomic.Int64
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Update(context.Background(), func(tx store.Tx) error {
				calls.Add(1)
				id, err := tx.NextIncidentID()
				if err != nil {
					return err
				}
				inc := incident(id, store.StatusOpen, store.SourceAlertmanager, fmt.Sprintf("op-%d", i))
				inc.Title = fmt.Sprintf("op-%d", i)
				if err := tx.PutIncident(inc); err != nil {
					return err
				}
				if err := tx.AppendTimeline(id, store.Entry{At: t0, Kind: store.KindOpened, Text: inc.Title}); err != nil {
					return err
				}
				if i%7 == 0 {
					return fmt.Errorf("op %d: %w", i, errBoom)
				}
				return nil
			})
		}()
	}
	waitQueueDepth(t, db, n) // all fifty wait behind the blocked writer
	release()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("Updates did not return within %s", waitLimit)
	}

	wantTitles := map[string]bool{}
	for i := 1; i <= n; i++ {
		if i%7 == 0 {
			if !errors.Is(errs[i], errBoom) || !strings.Contains(errs[i].Error(), fmt.Sprintf("op %d:", i)) {
				t.Errorf("op %d: Update = %v, want its own errBoom", i, errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("op %d: Update = %v, want nil", i, errs[i])
		}
		wantTitles[fmt.Sprintf("op-%d", i)] = true
	}
	if got := calls.Load(); got <= n {
		t.Errorf("fn called %d times for %d writes, want more: a failure in a shared batch retries the others", got, n)
	}

	view(t, db, func(tx store.Tx) error {
		page, err := tx.ListIncidents(store.Filter{})
		if err != nil {
			return err
		}
		incs := page.Incidents
		if len(incs) != len(wantTitles) {
			t.Errorf("%d incidents stored, want %d", len(incs), len(wantTitles))
		}
		seen := map[string]bool{}
		for _, inc := range incs {
			if !wantTitles[inc.Title] || seen[inc.Title] {
				t.Errorf("unexpected or duplicate incident %s %q", inc.ID, inc.Title)
			}
			seen[inc.Title] = true
			entries, err := tx.Timeline(inc.ID)
			if err != nil || len(entries) != 1 || entries[0].Text != inc.Title {
				t.Errorf("Timeline(%s) = %v, %v; want exactly the entry of %s", inc.ID, entries, err, inc.Title)
			}
		}
		// Rolled-back writes gave their ids back: the committed ids have no gaps.
		for i, inc := range incs {
			if want := fmt.Sprintf("INC-%d", len(incs)-i); inc.ID != want {
				t.Errorf("incident %d has id %s, want %s", i, inc.ID, want)
			}
		}
		for i := 7; i <= n; i += 7 {
			if _, err := tx.LatestByDedupKey(store.SourceAlertmanager, fmt.Sprintf("op-%d", i)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("failed op %d left a dedup index entry: %v", i, err)
			}
		}
		return nil
	})
}

func TestUpdateAfterClose(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "responder.db"), store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	called := false
	err = db.Update(context.Background(), func(store.Tx) error { called = true; return nil })
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("Update after Close = %v, want ErrClosed", err)
	}
	if called {
		t.Errorf("fn ran after Close")
	}
}

// Close commits what is already queued before it closes the file.
func TestCloseCommitsQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	release := blockWriter(t, db)
	queued := make(chan error, 1)
	go func() {
		queued <- db.Update(context.Background(), func(tx store.Tx) error {
			return tx.PutIncident(incident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
		})
	}()
	waitQueueDepth(t, db, 1)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	// Close is now waiting for the writer; new writes are refused.
	deadline := time.Now().Add(waitLimit)
	for db.Ready() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := db.Update(context.Background(), func(store.Tx) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Update while closing = %v, want ErrClosed", err)
	}
	release()
	for name, ch := range map[string]chan error{"queued Update": queued, "Close": closed} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s = %v, want nil", name, err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("%s did not return within %s", name, waitLimit)
		}
	}
	db2 := openAt(t, path, store.Options{})
	view(t, db2, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); err != nil {
			t.Errorf("queued write lost on Close: %v", err)
		}
		return nil
	})
}

func TestUpdateQueueFull(t *testing.T) {
	db := openTemp(t, store.Options{QueueSize: 1, MaxBatch: 1})
	release := blockWriter(t, db) // the writer holds one write

	queued := make(chan error, 1)
	go func() {
		queued <- db.Update(context.Background(), func(tx store.Tx) error {
			return tx.PutIncident(incident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
		})
	}()
	waitQueueDepth(t, db, 1) // the queue holds one more

	var called atomic.Bool
	refused := make(chan error, 1)
	go func() {
		refused <- db.Update(context.Background(), func(tx store.Tx) error {
			called.Store(true)
			return tx.PutIncident(incident("INC-2", store.StatusOpen, store.SourceManual, "INC-2"))
		})
	}()
	// The answer must come while the writer is still blocked: Update on a
	// full queue does not wait for room.
	select {
	case err := <-refused:
		if !errors.Is(err, store.ErrBusy) {
			t.Errorf("Update on a full queue = %v, want ErrBusy", err)
		}
	case <-time.After(waitLimit):
		t.Errorf("Update on a full queue still waiting after %s, want ErrBusy at once", waitLimit)
		release()
		if err := <-refused; err != nil {
			t.Errorf("refused Update, once let through = %v", err)
		}
	}

	release()
	select {
	case err := <-queued:
		if err != nil {
			t.Errorf("queued Update = %v, want nil", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("queued Update did not return within %s", waitLimit)
	}
	if called.Load() {
		t.Errorf("fn of the refused Update ran")
	}
	view(t, db, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); err != nil {
			t.Errorf("queued write: %v", err)
		}
		if _, err := tx.Incident("INC-2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused write: Incident(INC-2) = %v, want ErrNotFound", err)
		}
		return nil
	})
	// With room again, writes are accepted.
	update(t, db, func(tx store.Tx) error {
		return tx.PutIncident(incident("INC-3", store.StatusOpen, store.SourceManual, "INC-3"))
	})
}

func TestUpdateBusyHook(t *testing.T) {
	var busy atomic.Bool
	db := openTemp(t, store.Options{Busy: busy.Load})
	put := func(id string) (called bool, err error) {
		err = db.Update(context.Background(), func(tx store.Tx) error {
			called = true
			return tx.PutIncident(incident(id, store.StatusOpen, store.SourceManual, id))
		})
		return called, err
	}

	busy.Store(true)
	if called, err := put("INC-1"); !errors.Is(err, store.ErrBusy) || called {
		t.Errorf("Update while Busy = %v (fn called %t), want ErrBusy without calling fn", err, called)
	}
	busy.Store(false)
	if _, err := put("INC-2"); err != nil {
		t.Errorf("Update after Busy cleared = %v, want nil", err)
	}
	view(t, db, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Incident(INC-1) = %v, want ErrNotFound", err)
		}
		if _, err := tx.Incident("INC-2"); err != nil {
			t.Errorf("Incident(INC-2) = %v, want found", err)
		}
		return nil
	})
}

func TestUpdateContextEndedBeforeWrite(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		queued  bool // the context ends while the write waits behind a busy writer
		wantErr error
	}{
		{
			name: "cancelled before Update",
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			wantErr: context.Canceled,
		},
		{
			name: "deadline passed before Update",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithDeadline(context.Background(), time.Unix(0, 0))
			},
			wantErr: context.DeadlineExceeded,
		},
		{
			name:    "cancelled while queued",
			ctx:     func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			queued:  true,
			wantErr: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTemp(t, store.Options{})
			ctx, cancel := tt.ctx()
			defer cancel()
			var called atomic.Bool
			write := func() error {
				return db.Update(ctx, func(tx store.Tx) error {
					called.Store(true)
					return tx.PutIncident(incident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
				})
			}
			var err error
			if tt.queued {
				release := blockWriter(t, db)
				res := make(chan error, 1)
				go func() { res <- write() }()
				waitQueueDepth(t, db, 1)
				cancel()
				release()
				select {
				case err = <-res:
				case <-time.After(waitLimit):
					t.Fatalf("Update did not return within %s", waitLimit)
				}
			} else {
				err = write()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Update = %v, want %v", err, tt.wantErr)
			}
			if called.Load() {
				t.Errorf("fn ran for a write whose context had ended")
			}
			view(t, db, func(tx store.Tx) error {
				if _, err := tx.Incident("INC-1"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Incident(INC-1) = %v, want ErrNotFound", err)
				}
				return nil
			})
			// The store keeps working for other callers.
			update(t, db, func(tx store.Tx) error {
				return tx.PutIncident(incident("INC-2", store.StatusOpen, store.SourceManual, "INC-2"))
			})
		})
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	resolvedAt := t0.Add(time.Hour)
	ackedAt := t0.Add(10 * time.Minute)
	inc1 := incident("INC-1", store.StatusOpen, store.SourceAlertmanager, "group-1")
	inc2 := incident("INC-2", store.StatusResolved, store.SourceAlertmanager, "group-2")
	inc2.ResolvedAt, inc2.ResolvedBy = &resolvedAt, "alice"
	inc3 := incident("INC-3", store.StatusAcknowledged, store.SourceOpsGenie, "alias-3")
	inc3.AcknowledgedAt, inc3.AcknowledgedBy = &ackedAt, "bob"
	alerts := []store.Alert{
		{Fingerprint: "a1", Status: store.AlertFiring, StartsAt: t0, Labels: map[string]string{"alertname": "Down"}, Severity: "S2", UpdatedAt: t0},
		{Fingerprint: "a2", Status: store.AlertResolved, StartsAt: t0, EndsAt: &resolvedAt, Labels: map[string]string{"alertname": "Slow"}, Severity: "S3", UpdatedAt: resolvedAt},
	}
	timeline := []store.Entry{
		{At: t0, Kind: store.KindOpened, Text: "opened by Alertmanager"},
		{At: t0.Add(time.Minute), Kind: store.KindNote, Text: "looking", By: "bob"},
	}
	unmatched := store.Unmatched{At: t0, Source: store.SourceAlertmanager, DedupKey: "group-x", Reason: "resolved for unknown group", Detail: "fp"}

	err = db.Update(context.Background(), func(tx store.Tx) error {
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

	db = openAt(t, path, store.Options{})
	view(t, db, func(tx store.Tx) error {
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
		if got, want := ids(open), []string{"INC-3", "INC-1"}; !reflect.DeepEqual(got, want) {
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
	update(t, db, func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		if id != "INC-4" {
			t.Errorf("NextIncidentID after restart = %s, want INC-4", id)
		}
		if err := tx.PutIncident(incident(id, store.StatusOpen, store.SourceAlertmanager, "group-2")); err != nil {
			return err
		}
		return tx.PutIncident(incident("INC-1", store.StatusResolved, store.SourceAlertmanager, "group-1"))
	})
	view(t, db, func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		if got, want := ids(open), []string{"INC-4", "INC-3"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("OpenIncidents after restart and changes = %v, %v; want %v", got, err, want)
		}
		if inc, err := tx.LatestByDedupKey(store.SourceAlertmanager, "group-2"); err != nil || inc.ID != "INC-4" {
			t.Errorf("LatestByDedupKey(group-2) = %v, %v; want INC-4", inc, err)
		}
		return nil
	})
}

func TestSecondOpenFailsOnLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	first, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	t.Cleanup(func() { _ = first.Close() })

	const lockTimeout = 200 * time.Millisecond
	start := time.Now()
	second, err := store.Open(path, store.Options{LockTimeout: lockTimeout})
	elapsed := time.Since(start)
	if err == nil {
		_ = second.Close()
		t.Fatalf("second Open of a locked file = nil error, want an error")
	}
	if !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("second Open error = %v, want bbolt's ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("second Open error = %q, want it to name the file", err)
	}
	// It retried for the lock, and gave up within the LockTimeout asked for
	// rather than the 5 s default. (bbolt polls every 50 ms and gives up once
	// less than one poll interval is left, so it fails slightly before it.)
	if elapsed < lockTimeout/2 || elapsed >= store.DefaultLockTimeout {
		t.Errorf("second Open failed after %s, want about %s (at least %s, well under the default %s)", elapsed, lockTimeout, lockTimeout/2, store.DefaultLockTimeout)
	}
	// The first store is unaffected and the lock is released by Close.
	update(t, first, func(tx store.Tx) error {
		return tx.PutIncident(incident("INC-1", store.StatusOpen, store.SourceManual, "INC-1"))
	})
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	again := openAt(t, path, store.Options{LockTimeout: lockTimeout})
	view(t, again, func(tx store.Tx) error {
		if _, err := tx.Incident("INC-1"); err != nil {
			t.Errorf("Incident(INC-1) after reopening: %v", err)
		}
		return nil
	})
}

// A panic inside a write must not kill the writer (and the daemon): it
// becomes that write's error, nothing of it lands, and the store goes on.
func TestUpdatePanicIsAnError(t *testing.T) {
	db := openTemp(t, store.Options{})
	err := db.Update(context.Background(), func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		if err := tx.PutIncident(incident(id, store.StatusOpen, store.SourceManual, "k")); err != nil {
			return err
		}
		panic("handler bug")
	})
	if err == nil || !strings.Contains(err.Error(), "write panicked") {
		t.Fatalf("Update with a panicking fn = %v, want a write panicked error", err)
	}
	update(t, db, func(tx store.Tx) error {
		id, err := tx.NextIncidentID()
		if err != nil {
			return err
		}
		if id != "INC-1" {
			t.Errorf("first id after the panic = %s, want INC-1 (nothing of the panicking write kept)", id)
		}
		return tx.PutIncident(incident(id, store.StatusOpen, store.SourceManual, "k"))
	})
	if err := db.Ready(); err != nil {
		t.Errorf("Ready after a panicking write = %v", err)
	}
}

// Refusals decided before writing (404, 409) are answered inside the
// batch's transaction: they never make the other writes run again.
func TestRefusalsDoNotRerunTheBatch(t *testing.T) {
	db := openTemp(t, store.Options{})
	release := blockWriter(t, db)
	errRefused := errors.New("refused")
	const n = 20
	var calls [n]atomic.Int32
	results := make(chan error, n)
	for i := range n {
		go func() {
			results <- db.Update(context.Background(), func(tx store.Tx) error {
				calls[i].Add(1)
				if i%2 == 1 {
					_, err := tx.Incident("INC-999") // a read, then a refusal
					if !errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("read: %w", err)
					}
					return errRefused
				}
				id, err := tx.NextIncidentID()
				if err != nil {
					return err
				}
				return tx.PutIncident(incident(id, store.StatusOpen, store.SourceManual, id))
			})
		}()
	}
	waitQueueDepth(t, db, n)
	release()
	refusedCount := 0
	for range n {
		select {
		case err := <-results:
			switch {
			case errors.Is(err, errRefused):
				refusedCount++
			case err != nil:
				t.Errorf("Update: %v", err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("Updates not answered within %s", waitLimit)
		}
	}
	if refusedCount != n/2 {
		t.Errorf("%d refused, want %d", refusedCount, n/2)
	}
	for i := range n {
		if c := calls[i].Load(); c != 1 {
			t.Errorf("write %d ran %d times, want once", i, c)
		}
	}
	view(t, db, func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		if len(open) != n/2 {
			t.Errorf("%d incidents written, want %d", len(open), n/2)
		}
		return err
	})
}

// A filter that matches little must not read the whole file in one call:
// MaxScan stops the walk and Next says where to go on, until the end.
func TestListIncidentsPages(t *testing.T) {
	db := openTemp(t, store.Options{})
	for i := 1; i <= 10; i++ {
		id := fmt.Sprintf("INC-%d", i)
		inc := incident(id, store.StatusResolved, store.SourceManual, id)
		inc.Severity = "S3"
		if i == 1 {
			inc.Severity = "S1"
		}
		putIncidents(t, db, inc)
	}
	var pages [][]string
	var nexts []string
	f := store.Filter{Severity: "S1", MaxScan: 4}
	view(t, db, func(tx store.Tx) error {
		for range 5 {
			page, err := tx.ListIncidents(f)
			if err != nil {
				return err
			}
			pages = append(pages, ids(page.Incidents))
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
	view(t, db, func(tx store.Tx) error {
		page, err := tx.ListIncidents(store.Filter{Limit: 3, Before: "INC-99"})
		if got := ids(page.Incidents); err != nil || !reflect.DeepEqual(got, []string{"INC-10", "INC-9", "INC-8"}) || page.Next != "INC-8" {
			t.Errorf("before past the end, limit 3 = %v next %q (%v), want INC-10..8 next INC-8", got, page.Next, err)
		}
		page, err = tx.ListIncidents(store.Filter{Before: "INC-1"})
		if err != nil || len(page.Incidents) != 0 || page.Next != "" {
			t.Errorf("before the first = %v next %q (%v), want nothing", ids(page.Incidents), page.Next, err)
		}
		return nil
	})
}

// An intent that cannot be decoded is reported by sequence, the others
// around it are listed, and SkipIntent takes it out of the pending index.
func TestPendingIntentsSkipsUndecodable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "responder.db")
	db := openAt(t, path, store.Options{})
	update(t, db, func(tx store.Tx) error {
		for range 3 {
			if err := tx.Enqueue(&store.Intent{IncidentID: "INC-1", Channel: "log", Target: "log", Event: "opened", CreatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("outbox")).Put([]byte{0, 0, 0, 0, 0, 0, 0, 2}, []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, store.Options{})
	view(t, db, func(tx store.Tx) error {
		got, err := tx.PendingIntents(0, 2)
		var bad *store.UndecodableError
		if !errors.As(err, &bad) || !reflect.DeepEqual(bad.Seqs, []uint64{2}) {
			t.Fatalf("error %v, want an UndecodableError naming 2", err)
		}
		if len(got) != 1 || got[0].Seq != 1 {
			t.Errorf("limit 2 listed %+v, want intent 1 (the bad one counts towards the limit)", got)
		}
		got, _ = tx.PendingIntents(0, 0)
		if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 {
			t.Errorf("listed %+v, want intents 1 and 3", got)
		}
		return nil
	})
	update(t, db, func(tx store.Tx) error { return tx.SkipIntent(2) })
	view(t, db, func(tx store.Tx) error {
		got, err := tx.PendingIntents(0, 0)
		if err != nil || len(got) != 2 {
			t.Errorf("after SkipIntent: %d intents, %v; want 2 and no error", len(got), err)
		}
		// The incident's view lists the bad one as failed instead of failing.
		all, err := tx.IncidentIntents("INC-1")
		if err != nil || len(all) != 3 {
			t.Fatalf("incident intents: %d, %v; want 3 and no error", len(all), err)
		}
		if b := all[1]; b.Seq != 2 || b.State != store.IntentFailed || b.LastError == "" {
			t.Errorf("unreadable intent listed as %+v, want seq 2 failed with an error", b)
		}
		return nil
	})
}
