package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// withSchedule schedules drills of database-failover in Europe/Berlin:
// "weekly" on Wednesdays at 10:00 (organised by maria), and the surprise
// "night" every day at 02:30 (organised by the admin token).
func withSchedule(t *testing.T) envOption {
	t.Helper()
	weekly, err := policy.ParseCron("0 10 * * wed")
	if err != nil {
		t.Fatal(err)
	}
	night, err := policy.ParseCron("30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	loc := berlin(t)
	return func(s envSetup) {
		s.inc.Scenarios = map[string]incident.Scenario{"database-failover": {Title: "Primary database lost", Severity: policy.S1}}
		s.inc.Schedule = []incident.ScheduledDrill{
			{Name: "weekly", Scenario: "database-failover", Cron: weekly, Location: loc, Organiser: "maria"},
			{Name: "night", Scenario: "database-failover", Cron: night, Location: loc, Organiser: "admin", Surprise: true},
		}
	}
}

// drills lists the drill incidents, oldest first, as "id scheduled by".
func (e *testEnv) drills() []string {
	e.t.Helper()
	var out []string
	incs := e.list("?limit=500")
	for i := len(incs) - 1; i >= 0; i-- {
		if inc := incs[i]; inc.Drill {
			out = append(out, inc.ID+" "+inc.Scheduled+" "+inc.DeclaredBy)
		}
	}
	return out
}

func (e *testEnv) startScheduled(at time.Time) {
	e.t.Helper()
	e.setClock(at)
	if err := e.svc.StartScheduledDrills(context.Background()); err != nil {
		e.t.Fatalf("StartScheduledDrills at %s: %v", at, err)
	}
}

// A scheduled drill starts at its time, once however often it is checked,
// late within the catch-up window and not after it; across the DST change
// in both directions it neither misses a day nor runs twice.
func TestScheduledDrills(t *testing.T) {
	e := newEnv(t, withSchedule(t))
	utc := func(s string) time.Time {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	// Spring forward in Berlin, Sunday 2027-03-28: 02:30 does not exist;
	// the night drill runs at 03:30 CEST (01:30 UTC).
	e.startScheduled(utc("2027-03-28T00:29:00Z"))
	e.startScheduled(utc("2027-03-28T01:29:00Z"))
	if got := e.drills(); len(got) != 0 {
		t.Fatalf("drills before their time: %v", got)
	}
	e.startScheduled(utc("2027-03-28T01:30:00Z"))
	e.startScheduled(utc("2027-03-28T01:31:00Z"))
	e.startScheduled(utc("2027-03-28T01:44:00Z"))
	if got := e.drills(); !equalStrings(got, []string{"INC-1 night admin"}) {
		t.Fatalf("after the spring-forward night: %v, want one drill", got)
	}
	// The next night as usual, at 02:30 CEST (00:30 UTC), started 10
	// minutes late (no pass ran at the time): within the catch-up window.
	e.startScheduled(utc("2027-03-29T00:40:00Z"))
	// Wednesday 10:00 CEST is 08:00 UTC: a pass 20 minutes late, past the
	// catch-up window, skips it; a week later 14 minutes late starts it.
	e.startScheduled(utc("2027-03-31T08:20:00Z"))
	e.startScheduled(utc("2027-04-07T08:14:00Z"))
	want := []string{"INC-1 night admin", "INC-2 night admin", "INC-3 weekly maria"}
	if got := e.drills(); !equalStrings(got, want) {
		t.Errorf("drills %v, want %v", got, want)
	}
	if tl := e.incident("INC-3").Timeline; len(tl) == 0 || !strings.HasSuffix(tl[0].Text, " (scheduled drill weekly, organised by maria)") {
		t.Errorf("the scheduled drill's opening: %+v", tl)
	}
	if got := e.metric(`responder_drills_started_total{scenario="database-failover",started_by="schedule"}`); got != "3" {
		t.Errorf("scheduled drills counted %q, want 3", got)
	}

	// What is scheduled: a surprise drill is listed to its organiser only.
	var sched struct {
		Drills []incident.Upcoming `json:"drills"`
	}
	e.setClock(utc("2027-04-07T09:00:00Z"))
	e.do(http.MethodGet, "/api/v1/drills/schedule", tokRead, nil).json(t, &sched)
	if len(sched.Drills) != 1 || sched.Drills[0].Name != "weekly" || !sched.Drills[0].Next.Equal(utc("2027-04-14T08:00:00Z")) ||
		sched.Drills[0].NextLocal != "2027-04-14 10:00 CEST" || sched.Drills[0].TimeZone != "Europe/Berlin" {
		t.Errorf("schedule as the viewer sees it: %+v", sched.Drills)
	}
	e.do(http.MethodGet, "/api/v1/drills/schedule", tokAll, nil).json(t, &sched)
	if len(sched.Drills) != 2 || sched.Drills[0].Name != "night" || !sched.Drills[0].Surprise || !sched.Drills[0].Next.Equal(utc("2027-04-08T00:30:00Z")) {
		t.Errorf("schedule as the surprise drill's organiser sees it: %+v", sched.Drills)
	}

	// Fall back in Berlin, Sunday 2026-10-25: 02:30 happens twice (00:30
	// and 01:30 UTC); the night drill runs the first time only.
	f := newEnv(t, withSchedule(t))
	for _, at := range []string{"2026-10-25T00:29:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T01:40:00Z"} {
		f.startScheduled(utc(at))
	}
	if got := f.drills(); !equalStrings(got, []string{"INC-1 night admin"}) {
		t.Errorf("after the fall-back night: %v, want one drill", got)
	}
	var inc store.Incident
	f.do(http.MethodGet, "/api/v1/incidents/INC-1", tokRead, nil).json(t, &inc)
	if !inc.CreatedAt.Equal(utc("2026-10-25T00:30:00Z")) {
		t.Errorf("the fall-back drill started at %s, want 00:30 UTC (02:30 CEST)", inc.CreatedAt)
	}
}
