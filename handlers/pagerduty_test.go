package handlers

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// pdEvent is a PagerDuty v3 webhook body about the PagerDuty incident id.
func pdEvent(eventType, id string) string {
	data := fmt.Sprintf(`{"id":%q,"type":"incident","title":"Checkout API down","number":42,"status":"triggered","incident_key":"checkout-api",
		"html_url":"https://example.pagerduty.com/incidents/%s","urgency":"high","priority":{"id":"PPRIO1","summary":"P1"},
		"service":{"id":"PSVC1","summary":"checkout-api"}}`, id, id)
	if eventType == "incident.annotated" {
		data = fmt.Sprintf(`{"id":"NOTE1","type":"incident_note","content":"rolling back 2.41.4","incident":{"id":%q,"summary":"Checkout API down"}}`, id)
	}
	return fmt.Sprintf(`{"event":{"id":"01EV%s","event_type":%q,"resource_type":"incident","occurred_at":"2026-12-02T03:04:05Z",
		"agent":{"id":"PUSER1","summary":"Maria Lopez"},"data":%s}}`, eventType, eventType, data)
}

func pdSign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

func (e *testEnv) postPD(body, signature string) response {
	e.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if signature != "" {
		h.Set("X-PagerDuty-Signature", signature)
	}
	return e.doWith(http.MethodPost, "/api/v1/alerts/pagerduty", "", []byte(body), h)
}

// PagerDuty's webhooks are authenticated by their signature over the raw
// body, in constant time, against each configured secret: a missing or
// wrong signature is refused with 401 and nothing is written; without a
// secret they are refused with 403.
func TestPagerDutyWebhookSignature(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true))
	body := pdEvent("incident.triggered", "Q00042")
	before := e.snapshot()
	for _, tc := range []struct {
		name, sig string
		says      string
	}{
		{"none", "", "X-PagerDuty-Signature: required"},
		{"another secret", pdSign("another-secret-0000-example", body), "no signature matches"},
		{"another body", pdSign(pdWebhookSecret, body+" "), "no signature matches"},
		{"not v1", strings.Replace(pdSign(pdWebhookSecret, body), "v1=", "v0=", 1), "no signature matches"},
		{"not hex", "v1=zz", "no signature matches"},
	} {
		r := e.postPD(body, tc.sig)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.errorText(t), tc.says) {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
		}
	}
	if e.snapshot() != before {
		t.Fatal("a refused webhook wrote something")
	}
	// One of several signatures (a secret being rotated) is enough.
	r := e.postPD(body, pdSign("old-secret-0000-example", body)+", "+pdSign(pdWebhookSecret, body))
	if r.status != http.StatusAccepted {
		t.Fatalf("signed: %d %s", r.status, r.body)
	}

	plain := newEnv(t)
	if r := plain.postPD(body, pdSign(pdWebhookSecret, body)); r.status != http.StatusForbidden || !strings.Contains(r.errorText(t), "webhook_secrets") {
		t.Errorf("no secret configured: %d %s", r.status, r.body)
	}
}

// A PagerDuty incident opens a Responder incident (its priority P1: S1);
// out of business hours the configured responder is asked to join that
// PagerDuty incident, never a second alert; its acknowledgement, note and
// resolution follow it, and none of them is sent back to PagerDuty.
func TestPagerDutyWebhookDrivesTheIncident(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, false))
	pdID := v.pd.Open("checkout-api", "Checkout API down")
	send := func(eventType string) []ingestResult {
		t.Helper()
		body := pdEvent(eventType, pdID)
		r := e.postPD(body, pdSign(pdWebhookSecret, body))
		if r.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", eventType, r.status, r.body)
		}
		var res ingestResponse
		r.json(t, &res)
		return res.Incidents
	}
	opened := send("incident.triggered")
	if len(opened) != 1 || !opened[0].Created || opened[0].Severity != "S1" {
		t.Fatalf("triggered: %+v", opened)
	}
	id := opened[0].ID
	if again := send("incident.triggered"); len(again) != 1 || again[0].ID != id || again[0].Created {
		t.Errorf("a re-delivered trigger: %+v", again)
	}
	e.flush()
	got, _ := v.pd.IncidentByID(pdID)
	if len(got.Responder) != 1 || got.Responder[0] != "user_reference:PLEAD01" {
		t.Errorf("responder requests %v, want the lead asked to join %s", got.Responder, pdID)
	}
	send("incident.acknowledged")
	send("incident.annotated")
	send("incident.annotated") // re-delivered: one note
	send("incident.resolved")
	e.flush()
	inc := e.incident(id)
	if inc.Source != store.SourcePagerDuty || inc.Status != store.StatusResolved || inc.AcknowledgedBy != "Maria Lopez" {
		t.Errorf("incident: source %s, status %s, acknowledged by %q", inc.Source, inc.Status, inc.AcknowledgedBy)
	}
	notes := 0
	for _, en := range inc.Timeline {
		if en.Kind == store.KindNote && en.Text == "rolling back 2.41.4" {
			notes++
		}
	}
	if notes != 1 || !timelineHas(inc, store.KindResolved, "resolved in PagerDuty") {
		t.Errorf("%d notes, timeline %+v", notes, inc.Timeline)
	}
	if n := len(v.pd.Events()); n != 0 {
		t.Errorf("%d events sent to PagerDuty about its own incident", n)
	}
	// An event for an incident Responder never saw is recorded, not applied.
	body := pdEvent("incident.resolved", "QUNKNOWN")
	if r := e.postPD(body, pdSign(pdWebhookSecret, body)); r.status != http.StatusAccepted {
		t.Errorf("unknown incident: %d %s", r.status, r.body)
	}
	for _, bad := range []string{`{"event":{"event_type":"service.updated","data":{"id":"X"}}}`, `{"event":{"event_type":"incident.triggered","data":{"id":"Q1"}}}`, `{"event":`} {
		if r := e.postPD(bad, pdSign(pdWebhookSecret, bad)); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, r.status, r.body)
		}
	}
}

// An out-of-hours S1 from Alertmanager routed to PagerDuty triggers one
// alert with the bridge and the incident page, the lead is asked to join,
// and resolving resolves it; in business hours nothing is sent.
func TestFanoutPagesThroughPagerDuty(t *testing.T) {
	for _, inHours := range []bool{false, true} {
		t.Run(fmt.Sprintf("in hours %v", inHours), func(t *testing.T) {
			var v vendors
			e := newEnv(t, withVendors(t, &v, inHours), func(s envSetup) { s.inc.Routes.Paging.Pager = integrations.ChannelPagerDuty })
			id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
			e.flush()
			if inHours {
				if n := len(v.pd.Events()); n != 0 {
					t.Fatalf("%d PagerDuty events in business hours", n)
				}
				return
			}
			evs := v.pd.Events()
			inc := e.incident(id)
			if len(evs) != 1 || evs[0].Action != "trigger" || !strings.Contains(string(evs[0].Raw), inc.ZoomURL) || inc.ZoomURL == "" ||
				!strings.Contains(string(evs[0].Raw), "/incidents/"+id) {
				t.Fatalf("events %+v, want one trigger with the bridge %q and the page", evs, inc.ZoomURL)
			}
			if got, _ := v.pd.Incident(evs[0].DedupKey); len(got.Responder) != 1 {
				t.Errorf("the lead was not asked to join: %+v", got)
			}
			e.postAM(readTestdata(t, "am_resolved_v034.json"))
			e.flush()
			if evs := v.pd.Events(); len(evs) != 2 || evs[1].Action != "resolve" || evs[1].DedupKey != evs[0].DedupKey {
				t.Errorf("after resolving: %+v", evs)
			}
			if inc := e.incident(id); inc.PagedVia != integrations.ChannelPagerDuty {
				t.Errorf("paged_via %q", inc.PagedVia)
			}
		})
	}
}
