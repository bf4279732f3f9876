package handlers

import (
	"strings"
	"testing"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
)

func TestOpsGenieLifecycle(t *testing.T) {
	e := newEnv(t)
	res := e.postOG(readTestdata(t, "og_create.json"))
	if len(res) != 1 || !res[0].Created || res[0].Severity != "S1" {
		t.Fatalf("create: got %+v, want one created S1 (priority P1)", res)
	}
	id := res[0].ID
	inc := e.incident(id)
	if inc.Source != store.SourceOpsGenie || inc.DedupKey != "checkout-api-latency" || inc.Status != store.StatusOpen {
		t.Errorf("incident: source %s dedup %q status %s", inc.Source, inc.DedupKey, inc.Status)
	}
	if inc.Title != "checkout-api p99 latency above 2s in production" || inc.Labels["env"] != "production" || inc.Labels["priority"] != "P1" {
		t.Errorf("title %q labels %v", inc.Title, inc.Labels)
	}

	steps := []struct {
		file       string
		wantStatus store.Status
		wantKind   string // last timeline entry after the step
	}{
		{"og_create.json", store.StatusOpen, store.KindOpened}, // re-sent: nothing new
		{"og_acknowledge.json", store.StatusAcknowledged, store.KindAcknowledged},
		{"og_acknowledge.json", store.StatusAcknowledged, store.KindAcknowledged},
		{"og_addnote.json", store.StatusAcknowledged, store.KindNote},
		{"og_addnote.json", store.StatusAcknowledged, store.KindNote},
		{"og_assign.json", store.StatusAcknowledged, store.KindAction},
		{"og_assign.json", store.StatusAcknowledged, store.KindAction},
		{"og_close.json", store.StatusResolved, store.KindPostmortem},
		{"og_close.json", store.StatusResolved, store.KindPostmortem},
	}
	for _, st := range steps {
		res := e.postOG(readTestdata(t, st.file))
		if len(res) != 1 || res[0].ID != id || res[0].Created {
			t.Fatalf("%s: got %+v, want %s", st.file, res, id)
		}
		inc := e.incident(id)
		if inc.Status != st.wantStatus {
			t.Errorf("%s: status %s, want %s", st.file, inc.Status, st.wantStatus)
		}
		if last := inc.Timeline[len(inc.Timeline)-1].Kind; last != st.wantKind {
			t.Errorf("%s: last timeline entry %s, want %s", st.file, last, st.wantKind)
		}
	}
	inc = e.incident(id)
	want := []string{"opened", "acknowledged", "note", "action", "resolved", "postmortem"}
	if got := kinds(inc.Timeline); !equalStrings(got, want) {
		t.Errorf("timeline %v, want %v (repeats must change nothing)", got, want)
	}
	if inc.AcknowledgedBy != "maria.schulz@example.com" || inc.ResolvedBy != "maria.schulz@example.com" {
		t.Errorf("acknowledged by %q resolved by %q", inc.AcknowledgedBy, inc.ResolvedBy)
	}
	if inc.Timeline[2].Text == "" || inc.Timeline[2].By != "dev.patel@example.com" {
		t.Errorf("note entry %+v", inc.Timeline[2])
	}
	if inc.AlertsFiring != 0 || inc.Alerts[0].Status != store.AlertResolved {
		t.Errorf("after close: firing %d alert %+v", inc.AlertsFiring, inc.Alerts[0])
	}
	wantNotes := []string{id + ":opened", id + ":acknowledged", id + ":note", id + ":resolved", id + ":note"}
	if got := e.events(); !equalStrings(got, wantNotes) {
		t.Errorf("notifications %v, want %v", got, wantNotes)
	}
}

func TestOpsGenieActionWithoutIncidentIsRecorded(t *testing.T) {
	e := newEnv(t)
	if res := e.postOG(readTestdata(t, "og_acknowledge.json")); len(res) != 0 {
		t.Fatalf("acknowledge for unknown alias: got %+v, want nothing opened", res)
	}
	if n := len(e.list("")); n != 0 {
		t.Errorf("%d incidents, want 0", n)
	}
}

func TestOpsGenieCreateAfterCloseOpensNew(t *testing.T) {
	e := newEnv(t)
	first := e.postOG(readTestdata(t, "og_create.json"))[0].ID
	e.postOG(readTestdata(t, "og_close.json"))
	// The same Create re-delivered after the close is not a new alert.
	if res := e.postOG(readTestdata(t, "og_create.json")); len(res) != 1 || res[0].ID != first || res[0].Created {
		t.Fatalf("re-sent create after close: got %+v, want %s untouched", res, first)
	}
	body := []byte(`{"action":"Create","alert":{"alertId":"new-alert-id","alias":"checkout-api-latency","message":"latency again","priority":"P3"}}`)
	res := e.postOG(body)
	if len(res) != 1 || !res[0].Created || res[0].ID == first || res[0].Severity != "S3" {
		t.Fatalf("new create after close: got %+v, want a new S3 incident", res)
	}
}

func TestOpsGenieOldPriorityFormat(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"action":"Create","alert":{"alertId":"a1","alias":"legacy","message":"legacy sender","priority":2,"details":{"n":3,"ok":true}}}`)
	res := e.postOG(body)
	if len(res) != 1 || res[0].Severity != "S2" {
		t.Fatalf("numeric priority 2: got %+v, want S2", res)
	}
	if inc := e.incident(res[0].ID); inc.Labels["n"] != "3" || inc.Labels["ok"] != "true" {
		t.Errorf("details as labels: %v", inc.Labels)
	}
}

func TestOpsGenieCreateWithoutAlertIDIsIdempotent(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"action":"Create","alert":{"alias":"db-down","message":"DB down","priority":"P1"}}`)
	id := e.postOG(body)[0].ID
	for range 2 {
		e.postOG(body)
	}
	inc := e.incident(id)
	if inc.AlertsTotal != 1 || inc.AlertsFiring != 1 || len(inc.Timeline) != 1 {
		t.Errorf("after three Creates: total %d firing %d timeline %v, want 1 1 [opened]", inc.AlertsTotal, inc.AlertsFiring, kinds(inc.Timeline))
	}
	e.postOG([]byte(`{"action":"Close","alert":{"alias":"db-down"}}`))
	if res := e.postOG(body); len(res) != 1 || res[0].ID != id || res[0].Created {
		t.Errorf("re-sent Create after Close: %+v, want %s untouched", res, id)
	}
	if n := len(e.list("")); n != 1 {
		t.Errorf("%d incidents, want 1", n)
	}
}

// Webhooks are bounded by the body limit only: an alert with many or long
// labels is accepted, since a refused webhook is lost for good.
func TestWebhooksAcceptLargeLabels(t *testing.T) {
	e := newEnv(t)
	details := `"k0":"v"`
	for i := 1; i < 100; i++ {
		details += `,"k` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":"v"`
	}
	long := strings.Repeat("x", 4000)
	og := []byte(`{"action":"Create","alert":{"alias":"big","message":"m","details":{` + details + `,"image":"` + long + `"}}}`)
	if res := e.postOG(og); len(res) != 1 {
		t.Fatalf("large OpsGenie alert: %+v", res)
	}
	am := amPayload(t, "am_firing_old.json", func(m *incident.AlertmanagerWebhook) {
		for i := range 70 {
			m.Alerts[0].Labels[strings.Repeat("l", i+1)] = "v"
		}
		m.Alerts[0].Labels["image"] = long
	})
	if res := e.postAM(am); len(res) != 1 {
		t.Fatalf("large Alertmanager alert: %+v", res)
	}
}
