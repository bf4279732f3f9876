package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
)

func withActionReminders(every time.Duration) envOption {
	return func(s envSetup) { s.inc.ActionRemindEvery = every }
}

func (e *testEnv) actionItems(query string) []incident.ActionItemView {
	e.t.Helper()
	r := e.do(http.MethodGet, "/api/v1/action-items"+query, tokRead, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("list action items %s: %d %s", query, r.status, r.body)
	}
	var l struct {
		ActionItems []incident.ActionItemView `json:"action_items"`
	}
	r.json(e.t, &l)
	return l.ActionItems
}

func actionIDs(items []incident.ActionItemView) string {
	var ids []string
	for _, a := range items {
		ids = append(ids, a.ID)
	}
	return strings.Join(ids, " ")
}

func (e *testEnv) remindOverdue() {
	e.t.Helper()
	if err := e.svc.RemindOverdue(context.Background()); err != nil {
		e.t.Fatalf("RemindOverdue: %v", err)
	}
}

// Action items are added to an incident, changed (done, won't do, open
// again, new owner or date) with who and why in the timeline and the
// thread, and listed per incident and across incidents by state, owner and
// overdue; refusals write nothing.
func TestActionItems(t *testing.T) {
	e := newEnv(t)
	id := e.declareS("S2") // at 2026-11-17 03:00 UTC
	other := e.declareS("S3")
	r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/action-items", tokWrite,
		[]byte(`{"title":"Add protection against cluster deletion","owner":"dev","due":"2026-11-20","link":"https://tracker.example/OPS-1","by":"maria"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	var a incident.ActionItemView
	r.json(t, &a)
	if a.ID != "AI-1" || a.IncidentID != id || a.State != store.ActionOpen || a.CreatedBy != "maria" || a.Overdue || a.Link != "https://tracker.example/OPS-1" {
		t.Errorf("added %+v", a)
	}
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/action-items", `{"title":"Improve the DR procedure","owner":"maria"}`, http.StatusCreated)
	e.post(http.MethodPost, "/api/v1/incidents/"+other+"/action-items", `{"title":"Alert on replication lag","owner":"dev","due":"2026-12-01"}`, http.StatusCreated)

	before := len(e.incident(id).Timeline)
	for _, tc := range []struct {
		method, path, body string
		status             int
		says               string
	}{
		{http.MethodPost, "/api/v1/incidents/" + id + "/action-items", `{"owner":"dev"}`, http.StatusBadRequest, "title: required"},
		{http.MethodPost, "/api/v1/incidents/" + id + "/action-items", `{"title":"x"}`, http.StatusBadRequest, "owner: required"},
		{http.MethodPost, "/api/v1/incidents/" + id + "/action-items", `{"title":"x","owner":"dev","due":"next week"}`, http.StatusBadRequest, `due: "next week" is not a date like 2026-12-24`},
		{http.MethodPost, "/api/v1/incidents/" + id + "/action-items", `{"title":"x","owner":"dev","link":"ftp://x"}`, http.StatusBadRequest, "link:"},
		{http.MethodPost, "/api/v1/incidents/" + id + "/action-items", `{"title":"x","owner":"dev","priority":1}`, http.StatusBadRequest, "priority"},
		{http.MethodPost, "/api/v1/incidents/INC-99/action-items", `{"title":"x","owner":"dev"}`, http.StatusNotFound, "INC-99"},
		{http.MethodPatch, "/api/v1/action-items/AI-1", `{"state":"finished"}`, http.StatusBadRequest, `state: "finished": want open, done or wont_do`},
		{http.MethodPatch, "/api/v1/action-items/AI-1", `{"by":"maria"}`, http.StatusBadRequest, "nothing to change"},
		{http.MethodPatch, "/api/v1/action-items/AI-1", `{"state":"wont_do","by":"maria"}`, http.StatusBadRequest, "reason: required"},
		{http.MethodPatch, "/api/v1/action-items/AI-1", `{"state":"open","by":"maria"}`, http.StatusConflict, "already is as asked"},
		{http.MethodPatch, "/api/v1/action-items/AI-9", `{"state":"done"}`, http.StatusNotFound, `unknown action item "AI-9"`},
		{http.MethodPatch, "/api/v1/action-items/AI-1", `{"due":"31.12.2026"}`, http.StatusBadRequest, "due:"},
		{http.MethodGet, "/api/v1/action-items?state=closed", "", http.StatusBadRequest, `state: "closed"`},
		{http.MethodGet, "/api/v1/action-items?limit=0", "", http.StatusBadRequest, "limit:"},
		{http.MethodGet, "/api/v1/action-items/AI-x", "", http.StatusNotFound, `unknown action item "AI-x"`},
	} {
		tok := tokAll
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		r := e.do(tc.method, tc.path, tok, body)
		if r.status != tc.status || !strings.Contains(r.errorText(t), tc.says) {
			t.Errorf("%s %s %s: %d %s, want %d saying %q", tc.method, tc.path, tc.body, r.status, r.body, tc.status, tc.says)
		}
	}
	if n := len(e.incident(id).Timeline); n != before {
		t.Errorf("refusals wrote %d timeline entries", n-before)
	}
	if r := e.do(http.MethodPatch, "/api/v1/action-items/AI-1", tokRead, []byte(`{"state":"done"}`)); r.status != http.StatusForbidden {
		t.Errorf("a read token changes an action item: %d", r.status)
	}

	// Listed by incident, state, owner.
	if got := actionIDs(e.incident(id).ActionItems); got != "AI-1 AI-2" {
		t.Errorf("the incident's action items: %s", got)
	}
	for query, want := range map[string]string{
		"":                      "AI-1 AI-2 AI-3",
		"?owner=dev":            "AI-1 AI-3",
		"?state=open&owner=dev": "AI-1 AI-3",
		"?incident=" + other:    "AI-3",
		"?limit=2":              "AI-1 AI-2",
		"?overdue=true":         "",
		"?state=done":           "",
	} {
		if got := actionIDs(e.actionItems(query)); got != want {
			t.Errorf("action items %q: %s, want %s", query, got, want)
		}
	}

	// AI-1 is due 2026-11-20: overdue from the 21st (UTC here).
	e.setClock(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	if got := actionIDs(e.actionItems("?overdue=true")); got != "AI-1" {
		t.Errorf("overdue on the 21st: %s, want AI-1", got)
	}
	if got := e.metric(`responder_action_items_overdue`); got != "1" {
		t.Errorf("overdue metric %q", got)
	}

	// Done, then open again with a reason, then dropped with one.
	r = e.do(http.MethodPatch, "/api/v1/action-items/AI-1", tokWrite, []byte(`{"state":"done","by":"dev"}`))
	r.json(t, &a)
	if r.status != http.StatusOK || a.State != store.ActionDone || a.ClosedBy != "dev" || a.ClosedAt == nil || a.Overdue {
		t.Errorf("done: %d %+v", r.status, a)
	}
	e.post(http.MethodPatch, "/api/v1/action-items/AI-1", `{"state":"open","reason":"deletion is still possible through the API","by":"maria"}`, http.StatusOK)
	e.post(http.MethodPatch, "/api/v1/action-items/AI-2", `{"owner":"dev","due":"2026-12-15","by":"maria"}`, http.StatusOK)
	e.post(http.MethodPatch, "/api/v1/action-items/AI-3", `{"state":"wont_do","reason":"the replica is going away","by":"dev"}`, http.StatusOK)
	got := e.actionItems("?incident=" + other)
	if len(got) != 1 || got[0].State != store.ActionWontDo || got[0].Reason != "the replica is going away" {
		t.Errorf("dropped: %+v", got)
	}
	var texts []string
	for _, en := range e.incident(id).Timeline {
		if en.Kind == store.KindActionItem {
			texts = append(texts, en.Text)
		}
	}
	want := []string{
		"action item AI-1 added by maria: Add protection against cluster deletion (owner dev, due 2026-11-20)",
		"action item AI-2 added by oncall: Improve the DR procedure (owner maria, no due date)",
		`action item AI-1 "Add protection against cluster deletion" done by dev`,
		`action item AI-1 "Add protection against cluster deletion" open again: deletion is still possible through the API by maria`,
		`action item AI-2 "Improve the DR procedure" owner set to dev, due date set to 2026-12-15 by maria`,
	}
	if !equalStrings(texts, want) {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
	if got := e.metric(`responder_action_items{state="wont_do"}`); got != "1" {
		t.Errorf("wont_do metric %q", got)
	}
}

// An overdue action item is reminded to its owner in its incident's
// thread once per interval, whoever checks, and not once it is closed.
func TestOverdueActionItemsReminded(t *testing.T) {
	e := newEnv(t, withActionReminders(24*time.Hour))
	id := e.declareS("S3")
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/action-items", `{"title":"Restore drill for the orders DB","owner":"dev","due":"2026-11-18"}`, http.StatusCreated)
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/action-items", `{"title":"Document the failover","owner":"maria"}`, http.StatusCreated)
	e.setClock(time.Date(2026, 11, 18, 23, 59, 0, 0, time.UTC))
	e.remindOverdue()
	if got := e.reminders(id); len(got) != 0 {
		t.Fatalf("reminded before the due date ended: %v", got)
	}
	e.setClock(time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC))
	e.remindOverdue()
	e.remindOverdue()
	e.setClock(time.Date(2026, 11, 19, 23, 0, 0, 0, time.UTC))
	e.remindOverdue()
	got := e.reminders(id)
	if len(got) != 1 || !strings.Contains(got[0], `reminded dev: action item AI-1 "Restore drill for the orders DB" was due 2026-11-18 and is still open`) ||
		!strings.Contains(got[0], "/incidents/"+id+"#action-items") {
		t.Fatalf("reminders %q, want one for AI-1", got)
	}
	e.setClock(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	e.remindOverdue()
	if got := e.reminders(id); len(got) != 2 {
		t.Errorf("a day later: %q, want a second reminder", got)
	}
	e.post(http.MethodPatch, "/api/v1/action-items/AI-1", `{"state":"done","by":"dev"}`, http.StatusOK)
	e.setClock(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	e.remindOverdue()
	if got := e.reminders(id); len(got) != 2 {
		t.Errorf("after it was done: %q, want no more", got)
	}
	if got := e.metric(`responder_reminders_total{drill="false",kind="action_item"}`); got != "2" {
		t.Errorf("reminder metric %q", got)
	}
}

// The incident page lists its action items with their state, adds one,
// closes and reopens them, and shows a refusal beside the form.
func TestWebActionItems(t *testing.T) {
	e := newEnv(t)
	id := e.declareS("S2")
	b := newBrowser(e)
	b.login(tokAll)
	p := b.get("/incidents/" + id)
	wantBody(t, "no items", p, "No action items yet.", `id="action-form"`)

	p = b.post("/incidents/"+id+"/action-items", url.Values{"title": {"Add protection against cluster deletion"}, "owner": {"dev"}, "due": {"2026-11-16"}})
	wantStatus(t, "add", p, http.StatusSeeOther)
	p = b.post("/incidents/"+id+"/action-items", url.Values{"title": {"Improve the DR procedure"}, "due": {"soon"}})
	wantStatus(t, "add without an owner", p, http.StatusBadRequest)
	wantBody(t, "add without an owner", p, `id="action-error"`, "owner: required", `value="Improve the DR procedure"`)

	p = b.get("/incidents/" + id)
	wantBody(t, "listed", p, `id="action-AI-1" class="action-open overdue"`, `class="action-owner">dev`, `<span class="failed">overdue</span>`)
	p = b.post("/incidents/"+id+"/action-items/AI-1", url.Values{"state": {"wont_do"}})
	wantStatus(t, "drop without a reason", p, http.StatusBadRequest)
	wantBody(t, "drop without a reason", p, `id="action-error"`, "reason: required")
	other := e.declareS("S3")
	p = b.post("/incidents/"+other+"/action-items/AI-1", url.Values{"state": {"done"}, "by": {"dev"}})
	wantStatus(t, "another incident's item", p, http.StatusNotFound)
	wantBody(t, "another incident's item", p, "action item AI-1 belongs to "+id+", not "+other)
	wantStatus(t, "done", b.post("/incidents/"+id+"/action-items/AI-1", url.Values{"state": {"done"}, "by": {"dev"}}), http.StatusSeeOther)
	p = b.get("/incidents/" + id)
	wantBody(t, "done", p, `id="action-AI-1" class="action-done"`, `class="action-state">done by dev`, `class="action-open"`)
}
