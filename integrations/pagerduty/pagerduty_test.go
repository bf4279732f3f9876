package pagerduty_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/pagerduty"
	"github.com/responder-sre/responder/integrations/pagerduty/pagerdutytest"
	"github.com/responder-sre/responder/integrations/pagertest"
)

const (
	routingKey = "R0UT1NGKEYEXAMPLE0000000000000000"
	restToken  = "u+pd-rest-token-example"
)

func newPager(t *testing.T, srv *pagerdutytest.Server, rest bool) *pagerduty.Notifier {
	t.Helper()
	cfg := pagerduty.Config{RoutingKey: routingKey, EventsURL: srv.URL(), HTTPClient: &http.Client{Timeout: 5 * time.Second}}
	if rest {
		cfg.REST = &pagerduty.REST{URL: srv.URL(), Token: restToken, From: "responder@example.com", RequesterID: "PRESP01"}
	}
	n, err := pagerduty.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// PagerDuty passes the pager conformance suite against its fake.
func TestConformance(t *testing.T) {
	pagertest.RunSuite(t, func(t *testing.T) pagertest.Harness {
		srv := pagerdutytest.New(routingKey, restToken)
		t.Cleanup(srv.Close)
		return pagertest.Harness{
			Pager:      newPager(t, srv, true),
			Configured: pagerduty.Label, Responder: "user:PLEAD01", ResponderShown: "user_reference:PLEAD01",
			Alert: func(inc integrations.Incident) (pagertest.Alert, bool) {
				var got pagerdutytest.Incident
				var ok bool
				if inc.Source == integrations.ChannelPagerDuty {
					got, ok = srv.IncidentByID(inc.DedupKey)
				} else {
					key, err := pagerduty.DedupKey(inc)
					if err != nil {
						t.Fatal(err)
					}
					got, ok = srv.Incident(key)
				}
				if !ok {
					return pagertest.Alert{}, false
				}
				text := got.Summary
				for _, l := range got.Links {
					text += "\n" + l["href"]
				}
				for _, v := range got.Details {
					text += "\n" + v.(string)
				}
				text += "\n" + strings.Join(got.Notes, "\n")
				return pagertest.Alert{
					Open: got.Status != "resolved", Acknowledged: got.Status == "acknowledged", Raised: 1, Text: text,
					Responders: append([]string{pagerduty.Label}, got.Responder...),
				}, true
			},
			Sourced: func(t *testing.T) integrations.Incident {
				id := srv.Open("checkout-down", "Checkout is down")
				inc := pagertest.Incident("INC-9")
				inc.Source, inc.DedupKey = integrations.ChannelPagerDuty, id
				return inc
			},
			Refuse: func(status int, retryAfter time.Duration) { srv.FailNext(status, retryAfter) },
		}
	})
}

func message(event, target string) integrations.Message {
	inc := pagertest.Incident("INC-4")
	return integrations.Message{Key: "INC-4/" + event, Event: event, Target: target, Text: "S1 incident opened", Incident: inc}
}

// The trigger carries what the person paged needs: the severity mapped
// from S1..S4, the summary, links to the incident page and the bridge, and
// the incident's details, under a dedup_key of its own.
func TestTriggerEvent(t *testing.T) {
	srv := pagerdutytest.New(routingKey, restToken)
	defer srv.Close()
	n := newPager(t, srv, false)
	for _, tc := range []struct{ sev, want string }{{"S1", "critical"}, {"S2", "error"}, {"S3", "warning"}, {"S4", "info"}} {
		m := message(integrations.EventPage, pagerduty.Label)
		m.Incident.Severity = tc.sev
		m.Incident.ID = "INC-" + tc.sev
		if err := n.Page(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		evs := srv.Events()
		ev := evs[len(evs)-1]
		if ev.Action != "trigger" || ev.Payload["severity"] != tc.want || ev.DedupKey != "responder/responder.example.com/INC-"+tc.sev {
			t.Errorf("%s: %s severity %v dedup_key %q", tc.sev, ev.Action, ev.Payload["severity"], ev.DedupKey)
		}
	}
	var body struct {
		Payload struct {
			Summary string            `json:"summary"`
			Details map[string]string `json:"custom_details"`
		} `json:"payload"`
		Links []map[string]string `json:"links"`
	}
	if err := json.Unmarshal(srv.Events()[0].Raw, &body); err != nil {
		t.Fatal(err)
	}
	inc := pagertest.Incident("INC-S1")
	if body.Payload.Summary != "[S1] "+inc.Title || body.Payload.Details["url"] != "https://responder.example.com/incidents/INC-4" ||
		body.Payload.Details["bridge"] != inc.ZoomURL || len(body.Links) != 2 || body.Links[1]["href"] != inc.ZoomURL {
		t.Errorf("trigger body %+v", body)
	}
	if strings.Contains(string(srv.Events()[0].Raw), restToken) {
		t.Error("the REST token went into an event")
	}
}

// Without a REST token only the service's on-call is paged: asking anyone
// else, or adding a note, fails for good and says why; with one, a
// responder is refused when PagerDuty cannot ask them (a team), and an
// incident PagerDuty has not opened yet is worth retrying.
func TestWhatNeedsTheRESTAPI(t *testing.T) {
	srv := pagerdutytest.New(routingKey, restToken)
	defer srv.Close()
	ctx := context.Background()
	bare := newPager(t, srv, false)
	for _, m := range []integrations.Message{message(integrations.EventAddResponder, "user:PLEAD01"), message(integrations.EventNote, "")} {
		_, err := bare.Notify(ctx, m)
		if retry, _ := integrations.Retryable(err); err == nil || retry || !strings.Contains(err.Error(), "notifications.pagerduty.rest") {
			t.Errorf("%s without REST: %v (retry %v)", m.Event, err, retry)
		}
	}

	n := newPager(t, srv, true)
	if err := n.Page(ctx, message(integrations.EventPage, pagerduty.Label)); err != nil {
		t.Fatal(err)
	}
	_, err := n.Notify(ctx, message(integrations.EventAddResponder, "team:database"))
	if retry, _ := integrations.Retryable(err); err == nil || retry || !strings.Contains(err.Error(), "user or an escalation policy") {
		t.Errorf("a team: %v (retry %v)", err, retry)
	}
	srv.Lag(1)
	_, err = n.Notify(ctx, message(integrations.EventAddResponder, "user:PLEAD01"))
	if retry, after := integrations.Retryable(err); err == nil || !retry || after <= 0 {
		t.Errorf("an incident not opened yet: %v (retry %v after %s)", err, retry, after)
	}
	if _, err := n.Notify(ctx, message(integrations.EventAddResponder, "escalation:PDBA001")); err != nil {
		t.Fatal(err)
	}
	key, _ := pagerduty.DedupKey(pagertest.Incident("INC-4"))
	if got, _ := srv.Incident(key); len(got.Responder) != 1 || got.Responder[0] != "escalation_policy_reference:PDBA001" {
		t.Errorf("responders %v", got.Responder)
	}
}

// Errors never show the routing key or the REST token, and a wrong token
// is a permanent failure.
func TestSecretsStayOutOfErrors(t *testing.T) {
	srv := pagerdutytest.New(routingKey, "another-token-example")
	defer srv.Close()
	n := newPager(t, srv, true)
	if err := n.Page(context.Background(), message(integrations.EventPage, pagerduty.Label)); err != nil {
		t.Fatal(err)
	}
	_, err := n.Notify(context.Background(), message(integrations.EventNote, ""))
	if retry, _ := integrations.Retryable(err); err == nil || retry || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v (retry %v)", err, retry)
	}
	for _, secret := range []string{routingKey, restToken} {
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

// New names each problem with its config key, and refuses plain http but
// to loopback.
func TestNewValidates(t *testing.T) {
	_, err := pagerduty.New(pagerduty.Config{EventsURL: "http://events.example.com", REST: &pagerduty.REST{URL: "ftp://x"}})
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, want := range []string{"routing_key:", "events_url:", "rest.url:", "rest.token:", "rest.from:", "rest.requester_id:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := pagerduty.New(pagerduty.Config{RoutingKey: routingKey}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// The log shows what PagerDuty would be sent for a page through it, and
// nothing for another pager's.
func TestPreview(t *testing.T) {
	p := pagerduty.Preview()
	m := message(integrations.EventPage, "pagerduty user:PLEAD01")
	got := p.Render(m)
	for _, want := range []string{"pagerduty: trigger (critical) [S1] Checkout is down", m.Incident.ZoomURL, "ask user:PLEAD01 to join"} {
		if !strings.Contains(got, want) {
			t.Errorf("preview lacks %q:\n%s", want, got)
		}
	}
	m.Target = "opsgenie team:sre"
	if got := p.Render(m); got != "" {
		t.Errorf("a page through OpsGenie previewed as PagerDuty's:\n%s", got)
	}
}
