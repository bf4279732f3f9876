package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// withWatchdog configures the heartbeat "watchdog": pinged by
// Alertmanager's Watchdog alert or the API, expected every minute, with two
// minutes of grace, S2 when silent.
func withWatchdog(t *testing.T) envOption {
	return func(s envSetup) {
		m, err := labels.ParseMatcher(`alertname="Watchdog"`)
		if err != nil {
			t.Fatal(err)
		}
		s.incDeps.Policy.Heartbeats = []policy.Heartbeat{{Name: "watchdog", Interval: time.Minute, Grace: 2 * time.Minute,
			Severity: policy.S2, Team: "sre", Matchers: labels.Matchers{m}}}
	}
}

func watchdogWebhook(status string) []byte {
	return []byte(fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"Watchdog\"}","status":%q,"receiver":"responder",
		"groupLabels":{"alertname":"Watchdog"},"commonLabels":{"alertname":"Watchdog","severity":"none"},"commonAnnotations":{},
		"externalURL":"http://am.example","alerts":[{"status":%q,"labels":{"alertname":"Watchdog","severity":"none"},"annotations":{},
		"startsAt":"2026-11-17T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"wd"}]}`, status, status))
}

// silences lists the heartbeat incidents, newest first.
func (e *testEnv) silences() []store.Incident {
	e.t.Helper()
	var out []store.Incident
	for _, inc := range e.list("?limit=100") {
		if inc.Source == store.SourceHeartbeat {
			out = append(out, inc)
		}
	}
	return out
}

func (e *testEnv) checkHeartbeats() {
	e.t.Helper()
	if err := e.svc.CheckHeartbeats(context.Background()); err != nil {
		e.t.Fatalf("CheckHeartbeats: %v", err)
	}
}

// The dead-man's switch: the Watchdog alert is a ping, never an incident;
// a heartbeat silent for interval + grace (counted from the start, so a
// start raises no false alarm) opens "monitoring is silent", once however
// often it is checked, and a ping (the alert, or the API) resolves it.
func TestDeadMansSwitch(t *testing.T) {
	e := newEnv(t, withWatchdog(t))
	t0 := e.clock() // the service started now

	e.setClock(t0.Add(2*time.Minute + 59*time.Second))
	e.checkHeartbeats()
	if s := e.silences(); len(s) != 0 {
		t.Fatalf("silent before interval + grace from the start: %+v", s)
	}
	e.setClock(t0.Add(3 * time.Minute))
	e.checkHeartbeats()
	e.checkHeartbeats()
	s := e.silences()
	if len(s) != 1 || s[0].Title != "monitoring is silent: watchdog" || s[0].Severity != "S2" || s[0].Status != store.StatusOpen || s[0].Team != "sre" {
		t.Fatalf("after interval + grace: %+v, want one open S2 silence for sre", s)
	}

	// The Watchdog fires: a ping, no incident of its own; the silence ends.
	if res := e.postAM(watchdogWebhook("firing")); len(res) != 0 {
		t.Errorf("the Watchdog alert opened or joined %+v", res)
	}
	s = e.silences()
	if len(s) != 1 || s[0].Status != store.StatusResolved {
		t.Fatalf("after a ping: %+v, want the silence resolved", s)
	}
	for _, inc := range e.list("?limit=100") {
		if inc.Source == store.SourceAlertmanager {
			t.Errorf("an incident from the Watchdog alert: %s %s", inc.ID, inc.Title)
		}
	}

	// Silent again interval + grace after that ping; the API pings too.
	pinged := e.clock()
	e.setClock(pinged.Add(2 * time.Minute))
	e.checkHeartbeats()
	if s := e.silences(); s[0].Status != store.StatusResolved || len(s) != 1 {
		t.Fatalf("two minutes after a ping: %+v", s)
	}
	e.setClock(pinged.Add(3 * time.Minute))
	e.checkHeartbeats()
	if s := e.silences(); len(s) != 2 || s[0].Status != store.StatusOpen {
		t.Fatalf("three minutes after the last ping: %+v, want a new silence", s)
	}
	e.doWant(http.MethodPost, "/api/v1/heartbeats/watchdog", tokIngest, "", http.StatusAccepted)
	if s := e.silences(); s[0].Status != store.StatusResolved {
		t.Errorf("after an API ping: %+v", s[0])
	}
	got, err := strconv.ParseFloat(e.metric(`responder_heartbeat_last_ping_timestamp_seconds{heartbeat="watchdog"}`), 64)
	if err != nil || int64(got) != e.clock().Unix() {
		t.Errorf("last ping metric %v (%v), want %d", got, err, e.clock().Unix())
	}
	r := e.do(http.MethodPost, "/api/v1/heartbeats/backups", tokIngest, nil)
	if r.status != http.StatusNotFound || !strings.Contains(r.errorText(t), `no heartbeat "backups"`) {
		t.Errorf("an unknown heartbeat: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPost, "/api/v1/heartbeats/watchdog", tokRead, nil); r.status != http.StatusForbidden {
		t.Errorf("a ping with a read token: %d", r.status)
	}
}

// A restart in the middle of a silence that has not yet been called: the
// last ping is kept, and the grace counts from the new start, so the
// restart raises no false alarm; the alarm comes interval + grace later.
func TestDeadMansSwitchAcrossARestart(t *testing.T) {
	opt := withWatchdog(t)
	e := newEnv(t, opt, withoutDispatcher())
	e.postAM(watchdogWebhook("firing"))
	pinged := e.clock()

	// Restarted two minutes after the ping: without the restart, the
	// silence would be called a minute later.
	restarted := pinged.Add(2 * time.Minute)
	e2 := reopenEnv(t, e, opt, withoutDispatcher(), func(s envSetup) { *s.now = restarted })
	e2.setClock(pinged.Add(3 * time.Minute))
	e2.checkHeartbeats()
	if s := e2.silences(); len(s) != 0 {
		t.Fatalf("a minute after the restart: %+v, want no alarm yet (grace counts from the start)", s)
	}
	e2.setClock(restarted.Add(3 * time.Minute))
	e2.checkHeartbeats()
	if s := e2.silences(); len(s) != 1 || s[0].Status != store.StatusOpen {
		t.Fatalf("interval + grace after the restart: %+v, want the silence", s)
	}
	var hb *store.Heartbeat
	err := e2.db.View(context.Background(), func(tx store.Tx) error {
		var err error
		hb, err = tx.Heartbeat("watchdog")
		return err
	})
	if err != nil || hb.Pings != 1 || !hb.LastPing.Equal(pinged) {
		t.Fatalf("the ping after the restart: %+v, %v", hb, err)
	}
}
