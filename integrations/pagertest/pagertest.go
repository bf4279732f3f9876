// Package pagertest is the conformance suite of integrations.Pager: every
// pager (OpsGenie, Jira Service Management, PagerDuty) runs it against its
// local fake, so that the paging path behaves the same whichever pager a
// team chooses.
package pagertest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations"
)

// Alert is what a pager's fake holds for one incident's alert.
type Alert struct {
	Open, Acknowledged bool
	// Responders are whom the alert notifies, "type:name".
	Responders []string
	// Text is everything a person sees on the alert: its title, its
	// description or details, and its notes.
	Text string
	// Raised counts the distinct alerts raised about the incident: one,
	// however often a page is retried (a pager folds a repeat into the
	// open alert, so a person is paged once).
	Raised int
}

// Harness connects the suite to one pager and its fake.
type Harness struct {
	Pager integrations.Pager
	// Configured is the target that names the pager's configured responder.
	Configured string
	// Responder is a responder the suite may name ("user:…"), and how the
	// fake shows it in Alert.Responders.
	Responder, ResponderShown string
	// Alert is the fake's alert for inc, if it has one.
	Alert func(inc integrations.Incident) (Alert, bool)
	// Sourced opens an alert in the fake as if it had fired there, and
	// returns the incident Responder would have opened from its webhook.
	Sourced func(t *testing.T) integrations.Incident
	// Refuse makes the fake's next call answer status, with Retry-After
	// when retryAfter is not 0.
	Refuse func(status int, retryAfter time.Duration)
}

// Incident is the incident the suite pages for: an S1 from Alertmanager,
// out of hours, with a bridge.
func Incident(id string) integrations.Incident {
	return integrations.Incident{
		ID: id, Title: "Checkout is down", Description: "Checkout answers 503 to every request.",
		Severity: "S1", Status: "open", Source: "alertmanager", DedupKey: `{}:{alertname="CheckoutDown"}`,
		Team: "payments", Labels: map[string]string{"alertname": "CheckoutDown"},
		ZoomURL: "https://zoom.example/j/85746065400", URL: "https://responder.example.com/incidents/" + id,
		CreatedAt: time.Date(2026, 3, 14, 2, 7, 0, 0, time.UTC), OutOfHours: true,
	}
}

// RunSuite runs the conformance tests; open gives a fresh harness (a new
// fake) to each.
func RunSuite(t *testing.T, open func(t *testing.T) Harness) {
	ctx := context.Background()
	msg := func(h Harness, event, target string, inc integrations.Incident) integrations.Message {
		return integrations.Message{Key: inc.ID + "/" + event, Event: event, Target: target, Text: "S1 incident opened: " + inc.Title,
			At: inc.CreatedAt, By: "maria", Incident: inc}
	}
	call := func(t *testing.T, h Harness, m integrations.Message) {
		t.Helper()
		if _, err := integrations.NotifyPager(ctx, h.Pager, m); err != nil {
			t.Fatalf("%s %s: %v", h.Pager.Name(), m.Event, err)
		}
	}
	alert := func(t *testing.T, h Harness, inc integrations.Incident) Alert {
		t.Helper()
		a, ok := h.Alert(inc)
		if !ok {
			t.Fatalf("%s holds no alert for %s", h.Pager.Name(), inc.ID)
		}
		return a
	}

	t.Run("a page raises one alert with the link and the bridge, however often it is retried", func(t *testing.T) {
		h := open(t)
		inc := Incident("INC-1")
		for range 2 {
			call(t, h, msg(h, integrations.EventPage, h.Configured, inc))
		}
		a := alert(t, h, inc)
		if !a.Open || a.Raised != 1 || len(a.Responders) != 1 {
			t.Errorf("alert %+v: want one open alert, raised once, for the configured responder", a)
		}
		for _, want := range []string{inc.Title, inc.URL, inc.ZoomURL} {
			if !strings.Contains(a.Text, want) {
				t.Errorf("the alert does not show %q:\n%s", want, a.Text)
			}
		}
	})

	t.Run("a responder asked for is paged on the alert", func(t *testing.T) {
		h := open(t)
		inc := Incident("INC-2")
		call(t, h, msg(h, integrations.EventPage, h.Configured, inc))
		call(t, h, msg(h, integrations.EventAddResponder, h.Responder, inc))
		if a := alert(t, h, inc); !slices.Contains(a.Responders, h.ResponderShown) {
			t.Errorf("responders %v lack %s", a.Responders, h.ResponderShown)
		}
	})

	t.Run("the first page of an incident may name its responder", func(t *testing.T) {
		h := open(t)
		inc := Incident("INC-3")
		call(t, h, msg(h, integrations.EventPage, h.Responder, inc))
		// (A pager may page its configured on-call with them: PagerDuty's
		// events always reach the service's escalation policy.)
		if a := alert(t, h, inc); !slices.Contains(a.Responders, h.ResponderShown) {
			t.Errorf("responders %v lack %s", a.Responders, h.ResponderShown)
		}
	})

	t.Run("notes, acknowledgement and close reach the alert", func(t *testing.T) {
		h := open(t)
		inc := Incident("INC-4")
		call(t, h, msg(h, integrations.EventPage, h.Configured, inc))
		note := msg(h, integrations.EventNote, h.Configured, inc)
		note.Text = "Zoom bridge: https://zoom.example/j/111"
		call(t, h, note)
		call(t, h, msg(h, integrations.EventAcknowledged, h.Configured, inc))
		a := alert(t, h, inc)
		if !a.Acknowledged || !a.Open || !strings.Contains(a.Text, "https://zoom.example/j/111") {
			t.Errorf("after a note and an acknowledgement: %+v", a)
		}
		call(t, h, msg(h, integrations.EventClose, h.Configured, inc))
		if a := alert(t, h, inc); a.Open {
			t.Errorf("closed, yet the alert is open: %+v", a)
		}
	})

	t.Run("an incident that came from the pager pages on the pager's own alert", func(t *testing.T) {
		h := open(t)
		inc := h.Sourced(t)
		before, _ := h.Alert(inc)
		call(t, h, msg(h, integrations.EventPage, h.Responder, inc))
		a := alert(t, h, inc)
		if a.Raised != before.Raised || !slices.Contains(a.Responders, h.ResponderShown) {
			t.Errorf("before %+v, after %+v: want %s added to the same alert, raised no more", before, a, h.ResponderShown)
		}
	})

	t.Run("failures say whether to retry", func(t *testing.T) {
		for _, tc := range []struct {
			status int
			after  time.Duration
			retry  bool
		}{
			{429, 7 * time.Second, true},
			{503, 0, true},
			{500, 0, true},
			{400, 0, false},
		} {
			h := open(t)
			h.Refuse(tc.status, tc.after)
			_, err := integrations.NotifyPager(ctx, h.Pager, msg(h, integrations.EventPage, h.Configured, Incident("INC-5")))
			retry, after := integrations.Retryable(err)
			if err == nil || retry != tc.retry || after != tc.after {
				t.Errorf("HTTP %d: %v, retry %v after %s; want retry %v after %s", tc.status, err, retry, after, tc.retry, tc.after)
			}
		}
	})

	t.Run("an event that is not a pager's is refused for good", func(t *testing.T) {
		h := open(t)
		_, err := integrations.NotifyPager(ctx, h.Pager, msg(h, integrations.EventOpened, h.Configured, Incident("INC-6")))
		if retry, _ := integrations.Retryable(err); err == nil || retry {
			t.Errorf("opened sent to a pager: %v (retry %v)", err, retry)
		}
	})
}
