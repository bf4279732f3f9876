package handlers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

const groupHighErrorRate = `{}/{env="production"}:{alertname="HighErrorRate"}`

func TestAlertmanagerSamples(t *testing.T) {
	e := newEnv(t)

	// A recent sender (notification_reason, routeLabels): one group, two alerts.
	res := e.postAM(readTestdata(t, "am_firing_v034.json"))
	if len(res) != 1 || !res[0].Created || res[0].Severity != "S1" {
		t.Fatalf("first firing: got %+v, want one created S1 incident", res)
	}
	id := res[0].ID
	inc := e.incident(id)
	if inc.Status != store.StatusOpen || inc.Source != store.SourceAlertmanager || inc.DedupKey != groupHighErrorRate {
		t.Errorf("incident: status %s source %s dedup %q", inc.Status, inc.Source, inc.DedupKey)
	}
	if inc.AlertsTotal != 2 || inc.AlertsFiring != 2 || len(inc.Alerts) != 2 {
		t.Errorf("alerts: total %d firing %d listed %d, want 2 2 2", inc.AlertsTotal, inc.AlertsFiring, len(inc.Alerts))
	}
	if inc.Title != "checkout-api 5xx error rate above 5%" || inc.RunbookURL == "" {
		t.Errorf("title %q runbook %q: want the common summary and runbook_url", inc.Title, inc.RunbookURL)
	}
	if !inc.OutOfHours {
		t.Errorf("out_of_hours false at 03:00 UTC with no business hours configured")
	}
	before := e.snapshot()

	// The same webhook again (Alertmanager retries, repeat_interval): nothing changes.
	res = e.postAM(readTestdata(t, "am_firing_v034.json"))
	if len(res) != 1 || res[0].ID != id || res[0].Created {
		t.Fatalf("duplicate: got %+v, want the same incident, not created", res)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("duplicate webhook changed the store:\nbefore %s\nafter  %s", before, after)
	}

	// An old sender (no notification_reason, no routeLabels), another group.
	res = e.postAM(readTestdata(t, "am_firing_old.json"))
	if len(res) != 1 || !res[0].Created || res[0].ID == id || res[0].Severity != "S3" {
		t.Fatalf("old sender: got %+v, want a second, S3 incident", res)
	}
	other := res[0].ID

	// One alert resolves: still open.
	e.postAM(readTestdata(t, "am_partial_resolved_v034.json"))
	inc = e.incident(id)
	if inc.Status != store.StatusOpen || inc.AlertsFiring != 1 {
		t.Errorf("partial resolve: status %s firing %d, want open 1", inc.Status, inc.AlertsFiring)
	}
	// Both resolved: the incident resolves (auto-resolve is on).
	e.postAM(readTestdata(t, "am_resolved_v034.json"))
	inc = e.incident(id)
	if inc.Status != store.StatusResolved || inc.AlertsFiring != 0 || inc.ResolvedAt == nil || inc.ResolvedBy != "alertmanager" {
		t.Errorf("all resolved: status %s firing %d resolved_at %v by %q", inc.Status, inc.AlertsFiring, inc.ResolvedAt, inc.ResolvedBy)
	}
	for _, a := range inc.Alerts {
		if a.Status != store.AlertResolved || a.EndsAt == nil {
			t.Errorf("alert %s: status %s ends %v, want resolved with an end", a.Fingerprint, a.Status, a.EndsAt)
		}
	}
	wantKinds := []string{"opened", "alert_firing", "alert_firing", "alert_resolved", "alert_resolved", "resolved", "postmortem"}
	if got := kinds(inc.Timeline); !equalStrings(got, wantKinds) {
		t.Errorf("timeline kinds %v, want %v", got, wantKinds)
	}
	if e.incident(other).Status != store.StatusOpen {
		t.Errorf("the other group's incident changed")
	}

	// A resolved for a group never seen firing is recorded and opens nothing.
	res = e.postAM(readTestdata(t, "am_resolved_unknown_group.json"))
	if len(res) != 0 {
		t.Fatalf("unknown resolved group: got %+v, want no incident", res)
	}
	if n := len(e.list("")); n != 2 {
		t.Errorf("incidents after unknown resolved: %d, want 2", n)
	}
	e.postAM(readTestdata(t, "am_resolved_unknown_group.json")) // re-delivered: recorded once
	var un []store.Unmatched
	_ = e.db.View(context.Background(), func(tx store.Tx) error {
		var err error
		un, err = tx.Unmatched(0)
		return err
	})
	if len(un) != 1 || un[0].DedupKey != `{}:{alertname="NeverSeen"}` || !strings.Contains(un[0].Detail, "80d7d5fc3e8ca741") {
		t.Errorf("unmatched records: %+v", un)
	}

	// Each incident's messages keep their order; two incidents' lanes are
	// delivered side by side, in no order between them.
	want := []string{id + ":opened", id + ":resolved", id + ":note", other + ":opened"}
	if got := perIncident(e.events()); !equalStrings(got, want) {
		t.Errorf("notifications %v, want %v", got, want)
	}
}

// amPayload rewrites a sample: status of every alert, startsAt shifted.
func amPayload(t *testing.T, name string, edit func(*incident.AlertmanagerWebhook)) []byte {
	t.Helper()
	var msg incident.AlertmanagerWebhook
	if err := json.Unmarshal(readTestdata(t, name), &msg); err != nil {
		t.Fatal(err)
	}
	edit(&msg)
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func refire(after time.Duration) func(*incident.AlertmanagerWebhook) {
	return func(m *incident.AlertmanagerWebhook) {
		for i := range m.Alerts {
			m.Alerts[i].StartsAt = m.Alerts[i].StartsAt.Add(after)
		}
	}
}

func TestAlertmanagerReopen(t *testing.T) {
	tests := []struct {
		name       string
		wait       time.Duration
		wantReopen bool
	}{
		{"fires again within reopen_within", 10 * time.Minute, true},
		{"fires again at the edge", 30 * time.Minute, true},
		{"fires again later", 31 * time.Minute, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
			e.postAM(readTestdata(t, "am_resolved_v034.json"))
			e.advance(tc.wait)

			// The resolved webhook again, and a stale firing with the old
			// start: neither changes anything.
			before := e.snapshot()
			e.postAM(readTestdata(t, "am_resolved_v034.json"))
			if res := e.postAM(readTestdata(t, "am_firing_v034.json")); len(res) != 1 || res[0].ID != id || res[0].Created {
				t.Fatalf("stale firing after resolution: got %+v, want %s untouched", res, id)
			}
			if e.snapshot() != before {
				t.Errorf("a stale firing or a repeated resolved changed the store")
			}

			res := e.postAM(amPayload(t, "am_firing_v034.json", refire(2*time.Hour)))
			if len(res) != 1 {
				t.Fatalf("refire: got %+v", res)
			}
			if tc.wantReopen {
				if res[0].ID != id || res[0].Created {
					t.Fatalf("refire: got %+v, want %s reopened", res, id)
				}
				inc := e.incident(id)
				if inc.Status != store.StatusOpen || inc.ResolvedAt != nil || inc.AlertsFiring != 2 || inc.AlertsTotal != 2 {
					t.Errorf("reopened: status %s resolved_at %v firing %d total %d", inc.Status, inc.ResolvedAt, inc.AlertsFiring, inc.AlertsTotal)
				}
				if k := kinds(inc.Timeline); k[len(k)-3] != store.KindReopened {
					t.Errorf("timeline %v: want reopened before the two firing alerts", k)
				}
				return
			}
			if res[0].ID == id || !res[0].Created {
				t.Fatalf("refire after the window: got %+v, want a new incident", res)
			}
			if old := e.incident(id); old.Status != store.StatusResolved {
				t.Errorf("old incident status %s, want resolved", old.Status)
			}
			if got := e.list("?status=open"); len(got) != 1 || got[0].ID != res[0].ID {
				t.Errorf("open incidents %+v, want only %s", got, res[0].ID)
			}
		})
	}
}

func TestAlertmanagerSeverityRisesNeverFalls(t *testing.T) {
	e := newEnv(t)
	warn := amPayload(t, "am_firing_old.json", func(m *incident.AlertmanagerWebhook) {})
	id := e.postAM(warn)[0].ID
	if got := e.incident(id).Severity; got != "S3" {
		t.Fatalf("severity %s, want S3", got)
	}
	crit := amPayload(t, "am_firing_old.json", func(m *incident.AlertmanagerWebhook) {
		a := m.Alerts[0]
		a.Fingerprint = "00000000000000c1"
		a.Labels = map[string]string{"alertname": "DiskFillingUp", "severity": "critical", "instance": "db-1"}
		m.Alerts = append(m.Alerts, a)
	})
	e.postAM(crit)
	inc := e.incident(id)
	if inc.Severity != "S2" {
		t.Errorf("after a critical alert joined: %s, want S2", inc.Severity)
	}
	if k := kinds(inc.Timeline); k[len(k)-1] != store.KindSeverityRaised {
		t.Errorf("timeline %v: want severity_raised last", k)
	}
	// The critical alert resolves, the warning keeps firing: still S2.
	e.postAM(amPayload(t, "am_firing_old.json", func(m *incident.AlertmanagerWebhook) {
		a := m.Alerts[0]
		a.Fingerprint = "00000000000000c1"
		a.Status = "resolved"
		a.Labels = map[string]string{"alertname": "DiskFillingUp", "severity": "critical", "instance": "db-1"}
		m.Alerts = append(m.Alerts, a)
	}))
	if got := e.incident(id).Severity; got != "S2" {
		t.Errorf("severity fell to %s after the critical alert resolved, want S2", got)
	}
	want := []string{id + ":opened", id + ":alert_joined", id + ":severity_raised"}
	if got := e.events(); !equalStrings(got, want) {
		t.Errorf("notifications %v, want %v", got, want)
	}
}

func TestAlertmanagerAutoResolveOff(t *testing.T) {
	e := newEnv(t, func(s envSetup) {
		s.incDeps.Policy.Process[policy.S1] = policy.Process{AutoResolve: false}
	})
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	e.postAM(readTestdata(t, "am_resolved_v034.json"))
	inc := e.incident(id)
	if inc.Status != store.StatusOpen || inc.AlertsFiring != 0 {
		t.Errorf("auto_resolve off: status %s firing %d, want open with 0 firing", inc.Status, inc.AlertsFiring)
	}
}

func TestAlertmanagerMissingFingerprintIsComputed(t *testing.T) {
	e := newEnv(t)
	body := amPayload(t, "am_firing_old.json", func(m *incident.AlertmanagerWebhook) { m.Alerts[0].Fingerprint = "" })
	id := e.postAM(body)[0].ID
	inc := e.incident(id)
	// The same value Alertmanager computes for these labels (see testdata).
	if len(inc.Alerts) != 1 || inc.Alerts[0].Fingerprint != "ade489890b4fe020" {
		t.Errorf("alerts %+v, want fingerprint ade489890b4fe020", inc.Alerts)
	}
}

// An incident resolved by hand while its alerts fire: Alertmanager's later
// "resolved" still updates the alerts, and a new episode of the same alert
// reopens the incident instead of being swallowed.
func TestAlertmanagerAfterManualResolve(t *testing.T) {
	e := newEnv(t)
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	if r := e.do("POST", "/api/v1/incidents/"+id+"/resolve", tokWrite, []byte(`{"by":"maria"}`)); r.status != 200 {
		t.Fatalf("resolve: %d %s", r.status, r.body)
	}
	e.postAM(readTestdata(t, "am_resolved_v034.json"))
	inc := e.incident(id)
	if inc.Status != store.StatusResolved || inc.AlertsFiring != 0 || inc.ResolvedBy != "maria" {
		t.Fatalf("after Alertmanager's resolved: status %s firing %d by %q", inc.Status, inc.AlertsFiring, inc.ResolvedBy)
	}
	e.advance(5 * time.Minute)
	res := e.postAM(amPayload(t, "am_firing_v034.json", refire(time.Hour)))
	if len(res) != 1 || res[0].ID != id {
		t.Fatalf("refire: %+v", res)
	}
	if inc = e.incident(id); inc.Status != store.StatusOpen || inc.AlertsFiring != 2 {
		t.Errorf("refire after manual resolve: status %s firing %d, want open 2", inc.Status, inc.AlertsFiring)
	}
}

// Resolved by hand, and Alertmanager's resolution never arrives: the same
// alert starting again still reopens the incident.
func TestAlertmanagerNewEpisodeOfStaleFiringAlert(t *testing.T) {
	e := newEnv(t)
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	e.do("POST", "/api/v1/incidents/"+id+"/resolve", tokWrite, nil)
	e.advance(time.Minute)
	e.postAM(amPayload(t, "am_firing_v034.json", refire(time.Hour)))
	inc := e.incident(id)
	if inc.Status != store.StatusOpen || inc.AlertsFiring != 2 {
		t.Errorf("status %s firing %d, want reopened with 2 firing", inc.Status, inc.AlertsFiring)
	}
	if k := kinds(inc.Timeline); k[len(k)-2] != store.KindReopened && k[len(k)-3] != store.KindReopened {
		t.Errorf("timeline %v lacks reopened", k)
	}
}

// With max_alerts, a webhook that leaves alerts out cannot prove the group
// resolved: no auto-resolve until a complete one says so.
func TestAlertmanagerTruncatedDoesNotAutoResolve(t *testing.T) {
	e := newEnv(t)
	id := e.postAM(amPayload(t, "am_firing_v034.json", func(m *incident.AlertmanagerWebhook) {
		m.Alerts = m.Alerts[:1]
		m.TruncatedAlerts = 1
	}))[0].ID
	e.postAM(amPayload(t, "am_resolved_v034.json", func(m *incident.AlertmanagerWebhook) {
		m.Alerts = m.Alerts[:1]
		m.TruncatedAlerts = 1
	}))
	inc := e.incident(id)
	if inc.Status != store.StatusOpen || inc.AlertsTruncated != 1 {
		t.Fatalf("truncated resolved: status %s truncated %d, want open 1", inc.Status, inc.AlertsTruncated)
	}
	notes := 0
	for _, en := range inc.Timeline {
		if en.Kind == store.KindNote {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("%d truncation notes, want 1 (only when the count changes)", notes)
	}
	e.postAM(readTestdata(t, "am_resolved_v034.json"))
	if inc = e.incident(id); inc.Status != store.StatusResolved || inc.AlertsTruncated != 0 {
		t.Errorf("complete resolved: status %s truncated %d, want resolved 0", inc.Status, inc.AlertsTruncated)
	}
}
