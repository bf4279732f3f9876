package handlers

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// timelineKinds are the kinds of an incident's timeline entries whose text
// holds part.
func timelineHas(v view, kind, part string) bool {
	return slices.ContainsFunc(v.Timeline, func(e store.Entry) bool { return e.Kind == kind && strings.Contains(e.Text, part) })
}

// The moves a responder makes during an incident, through the API: each
// recorded with who made it and why, refused with the usual 4xx (nothing
// written), and told in the thread.
func TestIncidentControls(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, false)) // out of business hours
	var inc view
	e.doWant(http.MethodPost, "/api/v1/incidents", tokWrite, `{"title":"Search is slow","severity":"S3"}`, http.StatusCreated).json(t, &inc)
	base := "/api/v1/incidents/" + inc.ID

	before := e.snapshot()
	for _, tc := range []struct {
		method, path, body string
		status             int
		says               string
	}{
		{http.MethodPut, "/severity", `{"severity":"S9","reason":"x"}`, http.StatusBadRequest, "severity:"},
		{http.MethodPut, "/severity", `{"severity":"S1"}`, http.StatusBadRequest, "reason: required"},
		{http.MethodPut, "/severity", `{"severity":"S3","reason":"x"}`, http.StatusConflict, "already S3"},
		{http.MethodPut, "/customer_impact", `{"reason":"x"}`, http.StatusBadRequest, "customer_impact: required"},
		{http.MethodPut, "/customer_impact", `{"customer_impact":false,"reason":"x"}`, http.StatusConflict, "not marked"},
		{http.MethodPost, "/reopen", `{"reason":"x"}`, http.StatusConflict, "only a resolved incident"},
		{http.MethodPost, "/notes", `{"text":" "}`, http.StatusBadRequest, "text: required"},
		{http.MethodPost, "/notes", `{"text":"x","by":"a","extra":1}`, http.StatusBadRequest, "unknown field"},
	} {
		r := e.do(tc.method, base+tc.path, tokWrite, []byte(tc.body))
		if r.status != tc.status || !strings.Contains(r.errorText(t), tc.says) {
			t.Errorf("%s %s: %d %s, want %d saying %q", tc.path, tc.body, r.status, r.body, tc.status, tc.says)
		}
	}
	if e.snapshot() != before {
		t.Fatal("a refused control wrote something")
	}

	// Raised out of hours to S1: the page goes, the bridge is made, the
	// reason and who gave it are recorded.
	e.doWant(http.MethodPut, base+"/severity", tokWrite, `{"severity":"S1","reason":"checkout fails too","by":"maria"}`, http.StatusOK).json(t, &inc)
	if inc.Severity != "S1" || !timelineHas(inc, store.KindSeverityRaised, "checkout fails too (set by maria)") {
		t.Errorf("after raising: %s, timeline %+v", inc.Severity, inc.Timeline)
	}
	e.flush()
	inc = e.incident(inc.ID)
	if inc.PagedAt == nil || !slices.ContainsFunc(inc.Notifications, func(n store.Intent) bool { return n.Event == integrations.EventPage }) {
		t.Errorf("raised to S1 out of hours, nobody paged: %+v", inc.Notifications)
	}

	// Customers affected, set later: customer engineering is told.
	e.doWant(http.MethodPut, base+"/customer_impact", tokWrite, `{"customer_impact":true,"reason":"EU checkouts fail","by":"dev"}`, http.StatusOK).json(t, &inc)
	e.flush()
	inc = e.incident(inc.ID)
	told := slices.ContainsFunc(inc.Notifications, func(n store.Intent) bool {
		return n.Event == integrations.EventCustomer && n.Target == "#customer-eng"
	})
	if !inc.CustomerImpact || !told || !timelineHas(inc, store.KindCustomerImpact, "EU checkouts fail (set by dev)") {
		t.Errorf("customer impact set later: %v, told %v, timeline %+v", inc.CustomerImpact, told, inc.Timeline)
	}
	e.doWant(http.MethodPut, base+"/customer_impact", tokWrite, `{"customer_impact":false,"reason":"only staff accounts","by":"dev"}`, http.StatusOK).json(t, &inc)
	if inc.CustomerImpact || !timelineHas(inc, store.KindCustomerImpact, "cleared by dev: only staff accounts") {
		t.Errorf("customer impact cleared: %v, timeline %+v", inc.CustomerImpact, inc.Timeline)
	}

	// Lowered: said, not paged again.
	e.doWant(http.MethodPut, base+"/severity", tokWrite, `{"severity":"S3","reason":"only search is slow","by":"maria"}`, http.StatusOK).json(t, &inc)
	if inc.Severity != "S3" || !timelineHas(inc, store.KindSeverityLowered, "lowered from S1 to S3 by maria: only search is slow") {
		t.Errorf("after lowering: %s, timeline %+v", inc.Severity, inc.Timeline)
	}

	e.doWant(http.MethodPost, base+"/notes", tokWrite, `{"text":"cache hit rate fell at 02:10","by":"dev"}`, http.StatusCreated).json(t, &inc)
	if !timelineHas(inc, store.KindNote, "note from dev: cache hit rate fell at 02:10") {
		t.Errorf("note: timeline %+v", inc.Timeline)
	}

	e.doWant(http.MethodPost, base+"/resolve", tokWrite, `{"by":"maria"}`, http.StatusOK)
	e.doWant(http.MethodPost, base+"/reopen", tokWrite, `{"reason":"errors are back","by":"maria"}`, http.StatusOK).json(t, &inc)
	if inc.Status != store.StatusOpen || inc.ResolvedAt != nil || !timelineHas(inc, store.KindReopened, "errors are back (by maria)") {
		t.Errorf("after reopening: %s, timeline %+v", inc.Status, inc.Timeline)
	}

	// Each reached the thread.
	e.flush()
	var events []string
	for _, m := range v.slack.Messages("incidents") {
		for _, r := range m.Replies {
			events = append(events, r.Text)
		}
	}
	all := strings.Join(events, "\n")
	for _, want := range []string{"checkout fails too", "lowered from S1 to S3", "cache hit rate fell", "errors are back", "customer impact cleared"} {
		if !strings.Contains(all, want) {
			t.Errorf("the thread never said %q:\n%s", want, all)
		}
	}
}

// The same controls on the incident page's forms.
func TestIncidentControlsOnThePage(t *testing.T) {
	e := newEnv(t)
	id := e.declareS("S3")
	b := newBrowser(e)
	b.login(tokAll)
	page := b.get("/incidents/" + id)
	wantBody(t, "the page", page, `id="severity-form"`, `id="customers-form"`, `id="note-form"`, `id="incident-customers"`,
		`id="incident-hours"`, `id="incident-paged"`)
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/severity", url.Values{"severity": {"S2"}, "reason": {"more users hit"}, "by": {"ann"}}},
		{"/customer_impact", url.Values{"customer_impact": {"true"}, "reason": {"checkout"}, "by": {"ann"}}},
		{"/notes", url.Values{"text": {"looking at the cache"}, "by": {"ann"}}},
		{"/resolve", url.Values{"by": {"ann"}}},
		{"/reopen", url.Values{"reason": {"back"}, "by": {"ann"}}},
	} {
		b.get("/incidents/" + id) // the form's CSRF token
		if p := b.post("/incidents/"+id+tc.path, tc.form); p.status != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", tc.path, p.status, p.body)
		}
	}
	v := e.incident(id)
	if v.Severity != "S2" || !v.CustomerImpact || v.Status != store.StatusOpen || !timelineHas(v, store.KindNote, "looking at the cache") {
		t.Errorf("after the forms: %s, customers %v, %s, timeline %+v", v.Severity, v.CustomerImpact, v.Status, v.Timeline)
	}
	// A refused form shows its error beside it.
	b.get("/incidents/" + id)
	p := b.post("/incidents/"+id+"/severity", url.Values{"severity": {"S2"}, "reason": {"x"}})
	wantStatus(t, "same severity", p, http.StatusConflict)
	wantBody(t, "same severity", p, `id="severity-error"`, "already S2")
}

// Paging someone now, whatever the hour: the first page of an incident
// creates its alert with that responder, a later one adds the responder to
// the alert, and resolving closes it. Each is recorded with who asked and
// why, and said in the thread.
func TestPageSomeoneNow(t *testing.T) {
	var v vendors
	e := newEnv(t, withVendors(t, &v, true)) // business hours: the policy pages nobody
	var inc view
	e.doWant(http.MethodPost, "/api/v1/incidents", tokWrite, `{"title":"Replication lag","severity":"S2"}`, http.StatusCreated).json(t, &inc)
	base := "/api/v1/incidents/" + inc.ID
	e.flush()
	if n := len(v.og.Creates()); n != 0 {
		t.Fatalf("in business hours the policy paged (%d alerts)", n)
	}

	before := e.snapshot()
	for _, tc := range []struct {
		body   string
		status int
		says   string
	}{
		{`{"responder":"database","reason":"x"}`, http.StatusBadRequest, "responder:"},
		{`{"responder":"group:database","reason":"x"}`, http.StatusBadRequest, `type "group"`},
		{`{"responder":"team:database"}`, http.StatusBadRequest, "reason: required"},
		{`{"responder":"team:database","reason":"x","urgent":true}`, http.StatusBadRequest, "unknown field"},
	} {
		r := e.do(http.MethodPost, base+"/page", tokWrite, []byte(tc.body))
		if r.status != tc.status || !strings.Contains(r.errorText(t), tc.says) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.body, r.status, r.body, tc.status, tc.says)
		}
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/INC-999/page", tokWrite, []byte(`{"responder":"team:x","reason":"x"}`)); r.status != http.StatusNotFound {
		t.Errorf("unknown incident: %d %s", r.status, r.body)
	}
	if e.snapshot() != before {
		t.Fatal("a refused page wrote something")
	}

	e.doWant(http.MethodPost, base+"/page", tokWrite, `{"responder":"schedule:database-oncall","reason":"the replica is behind","by":"maria"}`, http.StatusOK).json(t, &inc)
	if !timelineHas(inc, store.KindAction, "paging schedule:database-oncall now, asked by maria: the replica is behind") {
		t.Errorf("timeline %+v", inc.Timeline)
	}
	e.flush()
	creates := v.og.Creates()
	if len(creates) != 1 || len(creates[0].Request.Responders) != 1 ||
		creates[0].Request.Responders[0].Type != "schedule" || creates[0].Request.Responders[0].Name != "database-oncall" {
		t.Fatalf("creates %+v, want one alert for schedule database-oncall", creates)
	}
	alias := creates[0].Request.Alias

	// The alert exists: only a user or a team can be added to it.
	r := e.do(http.MethodPost, base+"/page", tokWrite, []byte(`{"responder":"escalation:dba","reason":"x","by":"maria"}`))
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), "only a user or a team") {
		t.Errorf("escalation onto an existing alert: %d %s", r.status, r.body)
	}
	e.doWant(http.MethodPost, base+"/page", tokWrite, `{"responder":"user:lead@example.com","reason":"calling the team lead","by":"maria"}`, http.StatusOK)
	e.flush()
	adds := v.og.AddResponders()
	if len(adds) != 1 || adds[0].Identifier != alias || adds[0].Responder.Type != "user" || adds[0].Responder.Username != "lead@example.com" {
		t.Fatalf("add-responders %+v, want user lead@example.com on alias %q", adds, alias)
	}
	if len(v.og.Creates()) != 1 {
		t.Errorf("a second alert was created: %+v", v.og.Creates())
	}

	inc = e.incident(inc.ID)
	var paged []string
	for _, n := range inc.Notifications {
		if integrations.IsPage(n.Event) && n.Channel == integrations.ChannelOpsGenie {
			paged = append(paged, n.Target+" "+n.State)
		}
	}
	if strings.Join(paged, ", ") != "schedule:database-oncall sent, user:lead@example.com sent" {
		t.Errorf("pages %v", paged)
	}
	var thread []string
	for _, m := range v.slack.Messages("incidents") {
		for _, r := range m.Replies {
			thread = append(thread, r.Text)
		}
	}
	all := strings.Join(thread, "\n")
	for _, want := range []string{"calling the team lead", "paged user:lead@example.com through opsgenie"} {
		if !strings.Contains(all, want) {
			t.Errorf("the thread never said %q:\n%s", want, all)
		}
	}

	e.doWant(http.MethodPost, base+"/resolve", tokWrite, `{"by":"maria"}`, http.StatusOK)
	e.flush()
	if closes := v.og.Closes(); len(closes) != 1 || closes[0].Identifier != alias {
		t.Errorf("closes %+v, want the alert %q closed", closes, alias)
	}
	r = e.do(http.MethodPost, base+"/page", tokWrite, []byte(`{"responder":"team:x","reason":"x","by":"maria"}`))
	if r.status != http.StatusConflict {
		t.Errorf("resolved: %d %s", r.status, r.body)
	}
}

// Without a pager nobody can be paged, and a drill pages nobody: both say
// so, and the page offers no page form without a pager.
func TestPageRefused(t *testing.T) {
	e := newEnv(t)
	id := e.declareS("S2")
	r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/page", tokWrite, []byte(`{"responder":"team:x","reason":"x","by":"a"}`))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.errorText(t), "no pager is configured") {
		t.Errorf("no pager: %d %s", r.status, r.body)
	}
	b := newBrowser(e)
	b.login(tokAll)
	if p := b.get("/incidents/" + id); strings.Contains(p.body, `id="page-form"`) {
		t.Error("the page offers to page without a pager")
	}

	var v vendors
	e = newEnv(t, withVendors(t, &v, false), withScenario())
	var drill view
	e.doWant(http.MethodPost, "/api/v1/drills", tokWrite, `{"scenario":"database-failover","by":"ann"}`, http.StatusCreated).json(t, &drill)
	r = e.do(http.MethodPost, "/api/v1/incidents/"+drill.ID+"/page", tokWrite, []byte(`{"responder":"team:x","reason":"x","by":"a"}`))
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.errorText(t), "drills page nobody") {
		t.Errorf("drill: %d %s", r.status, r.body)
	}
	b = newBrowser(e)
	b.login(tokAll)
	b.get("/incidents/" + drill.ID)
	p := b.post("/incidents/"+drill.ID+"/page", url.Values{"responder": {"team:x"}, "reason": {"x"}, "by": {"a"}})
	wantStatus(t, "drill page form", p, http.StatusUnprocessableEntity)
	wantBody(t, "drill page form", p, `id="page-error"`, "drills page nobody")
}
