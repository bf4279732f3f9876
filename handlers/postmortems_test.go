package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
)

func (e *testEnv) postmortemState(id string) incident.PostmortemState {
	e.t.Helper()
	var st incident.PostmortemState
	r := e.do(http.MethodGet, "/api/v1/incidents/"+id+"/postmortem/versions", tokRead, nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("post-mortem state of %s: %d %s", id, r.status, r.body)
	}
	r.json(e.t, &st)
	return st
}

// The draft is saved when an incident that owes a post-mortem resolves;
// people save versions (an edit of an older version is refused), the
// review marks it reviewed with who did; every version is kept; its action
// items section follows the real action items.
func TestStoredPostmortem(t *testing.T) {
	e := newEnv(t, func(s envSetup) { s.cfg.BodyLimit = 1 << 20 }) // the daemon's default

	id := e.declareS("S2")
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/action-items", `{"title":"Add protection against cluster deletion","owner":"dev","due":"2026-12-01","by":"maria"}`, http.StatusCreated)
	if r := e.do(http.MethodGet, "/api/v1/incidents/"+id+"/postmortem/versions", tokRead, nil); r.status != http.StatusNotFound ||
		!strings.Contains(r.errorText(t), "has no stored post-mortem") {
		t.Errorf("before resolution: %d %s", r.status, r.body)
	}
	if v := e.incident(id); v.PostmortemRequired {
		t.Fatalf("owed before resolution")
	}
	e.advance(30 * time.Minute)
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/resolve", `{"by":"maria","summary":"rolled back"}`, http.StatusOK)

	st := e.postmortemState(id)
	if r := e.do(http.MethodGet, "/api/v1/incidents/"+id+"/postmortem/versions", tokRead, nil); strings.Contains(string(r.body), "markdown") {
		t.Errorf("the state carries the text: %.300s", r.body)
	}
	if r := e.do(http.MethodGet, "/api/v1/incidents/"+id, tokRead, nil); strings.Contains(string(r.body), `"markdown"`) {
		t.Errorf("the incident's JSON carries the post-mortem's text")
	}
	if st.State != store.PostmortemOwed || st.Version != 1 || st.EditedBy != "responder" || len(st.Versions) != 1 ||
		st.Versions[0].Note != "the draft made from the record at resolution" {
		t.Fatalf("saved at resolution: %+v", st)
	}
	draft := e.markdown(id)
	for _, want := range []string{"Draft made by Responder at 2026-11-17 03:30:00 UTC", "rolled back",
		"- [ ] **AI-1** Add protection against cluster deletion — dev, due 2026-12-01"} {
		if !strings.Contains(draft, want) {
			t.Errorf("the saved draft lacks %q:\n%s", want, draft)
		}
	}
	// Nothing written yet: it cannot be reviewed.
	if r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/postmortem/review", tokWrite, []byte(`{"by":"lead"}`)); r.status != http.StatusConflict ||
		!strings.Contains(r.errorText(t), "is owed: nobody has written it yet") {
		t.Errorf("review of the bare draft: %d %s", r.status, r.body)
	}

	// A person writes the lessons learned.
	edited := strings.Replace(draft, "_What went well, what went badly, where we were lucky._", "Rollback took 4 minutes; nobody knew the runbook.", 1)
	body := func(md string, version int, note string) []byte {
		return []byte(fmt.Sprintf(`{"markdown":%q,"version":%d,"note":%q,"by":"maria"}`, md, version, note))
	}
	r := e.do(http.MethodPut, "/api/v1/incidents/"+id+"/postmortem", tokWrite, body(edited, 1, "lessons learned"))
	if r.status != http.StatusOK {
		t.Fatalf("edit: %d %s", r.status, r.body)
	}
	r.json(t, &st)
	if st.State != store.PostmortemDrafted || st.Version != 2 || st.EditedBy != "maria" || len(st.Versions) != 2 {
		t.Errorf("after the edit: %+v", st)
	}
	for _, tc := range []struct {
		body   []byte
		status int
		says   string
	}{
		{body("another text", 1, ""), http.StatusConflict, "is at version 2 (saved by maria); you edited version 1"},
		{body(edited, 2, ""), http.StatusConflict, "already this text"},
		{[]byte(`{"markdown":"x","by":"maria"}`), http.StatusBadRequest, "version: required"},
		{[]byte(`{"version":2,"by":"maria"}`), http.StatusBadRequest, "markdown: required"},
		{body(strings.Repeat("x", incident.MaxPostmortem+1), 2, ""), http.StatusBadRequest, "markdown:"},
	} {
		r := e.do(http.MethodPut, "/api/v1/incidents/"+id+"/postmortem", tokWrite, tc.body)
		if r.status != tc.status || !strings.Contains(r.errorText(t), tc.says) {
			t.Errorf("%.60s: %d %.200s, want %d saying %q", tc.body, r.status, r.body, tc.status, tc.says)
		}
	}
	if r := e.do(http.MethodPut, "/api/v1/incidents/INC-9/postmortem", tokWrite, body("x", 0, "")); r.status != http.StatusNotFound {
		t.Errorf("unknown incident: %d", r.status)
	}

	// The action items section follows the items, in the stored text too.
	e.post(http.MethodPatch, "/api/v1/action-items/AI-1", `{"state":"done","by":"dev"}`, http.StatusOK)
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/action-items", `{"title":"Practise the restore","owner":"maria"}`, http.StatusCreated)
	md := e.markdown(id)
	for _, want := range []string{"Rollback took 4 minutes", "- [x] **AI-1** Add protection against cluster deletion — dev, due 2026-12-01 (done)",
		"- [ ] **AI-2** Practise the restore — maria\n"} {
		if !strings.Contains(md, want) {
			t.Errorf("the stored post-mortem lacks %q:\n%s", want, md)
		}
	}

	e.advance(time.Hour)
	r = e.do(http.MethodPost, "/api/v1/incidents/"+id+"/postmortem/review", tokWrite, []byte(`{"by":"lead","note":"review meeting of 2026-11-18"}`))
	r.json(t, &st)
	if r.status != http.StatusOK || st.State != store.PostmortemReviewed || st.ReviewedBy != "lead" || st.ReviewedAt == nil {
		t.Errorf("review: %d %+v", r.status, st)
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/"+id+"/postmortem/review", tokWrite, []byte(`{"by":"lead"}`)); r.status != http.StatusConflict {
		t.Errorf("a second review: %d %s", r.status, r.body)
	}
	// An edit after the review asks for another.
	e.post(http.MethodPut, "/api/v1/incidents/"+id+"/postmortem", string(body(edited+"\nAddendum.\n", 2, "addendum")), http.StatusOK)
	v := e.incident(id)
	if v.Postmortem == nil || v.Postmortem.State != store.PostmortemDrafted || v.Postmortem.Version != 3 || v.Postmortem.ReviewedBy != "" {
		t.Errorf("the incident's post-mortem after an edit of the reviewed one: %+v", v.Postmortem)
	}
	// Every version is kept as it was saved.
	r = e.do(http.MethodGet, "/api/v1/incidents/"+id+"/postmortem/versions/1", tokRead, nil)
	if r.status != http.StatusOK || string(r.body) != draft {
		t.Errorf("version 1: %d %.200s", r.status, r.body)
	}
	for path, status := range map[string]int{"/versions/9": http.StatusNotFound, "/versions/zero": http.StatusBadRequest, "/versions/0": http.StatusBadRequest} {
		if r := e.do(http.MethodGet, "/api/v1/incidents/"+id+"/postmortem"+path, tokRead, nil); r.status != status {
			t.Errorf("%s: %d, want %d", path, r.status, status)
		}
	}
	var texts []string
	for _, en := range v.Timeline {
		if en.Kind == store.KindPostmortem {
			texts = append(texts, en.Text)
		}
	}
	want := []string{
		`a post-mortem is owed: this is the first "manual:Checkout down (S2)" incident; its draft is saved, edit it at http://127.0.0.1:9095/incidents/` + id + `/postmortem`,
		"post-mortem version 2 saved by maria: lessons learned",
		"post-mortem version 2 reviewed by lead: review meeting of 2026-11-18",
		"post-mortem version 3 saved by maria: addendum",
	}
	if !equalStrings(texts, want) {
		t.Errorf("timeline:\n%s", strings.Join(texts, "\n"))
	}
}

// An incident that owes no post-mortem has none stored; a person may
// still write one, from version 0.
func TestPostmortemNotOwed(t *testing.T) {
	e := newEnv(t)
	first := e.declareS("S3")
	e.post(http.MethodPost, "/api/v1/incidents/"+first+"/resolve", `{"by":"maria"}`, http.StatusOK)
	second := e.declareS("S3") // the same kind: no post-mortem owed
	e.post(http.MethodPost, "/api/v1/incidents/"+second+"/resolve", `{"by":"maria"}`, http.StatusOK)
	if v := e.incident(second); v.PostmortemRequired || v.Postmortem != nil {
		t.Fatalf("second of its kind: required %v, stored %+v", v.PostmortemRequired, v.Postmortem)
	}
	e.post(http.MethodPut, "/api/v1/incidents/"+second+"/postmortem", `{"markdown":"# Short one\n","version":0,"by":"dev"}`, http.StatusOK)
	if st := e.postmortemState(second); st.State != store.PostmortemDrafted || st.Version != 1 {
		t.Errorf("written by hand: %+v", st)
	}
}

// The editor page shows the stored text, saves a version, refuses a stale
// one with the text typed kept, and marks it reviewed.
func TestWebPostmortemEditor(t *testing.T) {
	e := newEnv(t)
	id := e.declareS("S2")
	e.post(http.MethodPost, "/api/v1/incidents/"+id+"/resolve", `{"by":"maria"}`, http.StatusOK)
	b := newBrowser(e)
	b.login(tokAll)
	p := b.get("/incidents/" + id)
	wantBody(t, "incident page", p, `id="postmortem-link" href="/incidents/`+id+`/postmortem">owed, version 1`)
	p = b.get("/incidents/" + id + "/postmortem")
	wantStatus(t, "editor", p, http.StatusOK)
	wantBody(t, "editor", p, `id="pm-state" class="pm-owed">owed`, `id="pm-base" name="version" value="1"`, "## Lessons learned", "version 1</a> by responder")

	// The person keeps the draft's action items section, and so its binding.
	draft := e.markdown(id)
	text := "# Post-mortem\n\nWe learned to test restores.\n\n" + draft[strings.Index(draft, "## Action items"):]
	p = b.post("/incidents/"+id+"/postmortem", url.Values{"markdown": {text}, "version": {"1"}, "note": {"lessons"}, "by": {"maria"}})
	wantStatus(t, "save", p, http.StatusSeeOther)
	p = b.post("/incidents/"+id+"/postmortem", url.Values{"markdown": {"# Mine\n"}, "version": {"1"}, "by": {"dev"}})
	wantStatus(t, "stale save", p, http.StatusConflict)
	wantBody(t, "stale save", p, `id="pm-error"`, "you edited version 1", "# Mine", `name="version" value="1"`)
	// An action item decided in the review is added from the editor, and
	// shows in the post-mortem's action items section.
	p = b.post("/incidents/"+id+"/action-items", url.Values{"title": {"Test restores monthly"}, "owner": {"dev"}, "back": {"postmortem"}})
	wantStatus(t, "add an action item from the post-mortem", p, http.StatusSeeOther)
	if loc := p.header.Get("Location"); loc != "/incidents/"+id+"/postmortem" {
		t.Errorf("after adding an action item from the post-mortem, went to %q", loc)
	}
	p = b.post("/incidents/"+id+"/action-items", url.Values{"owner": {"dev"}, "back": {"postmortem"}})
	wantStatus(t, "add an action item without a title", p, http.StatusBadRequest)
	wantBody(t, "add an action item without a title", p, `id="action-error"`, "title: required", `id="pm-form"`)
	if !strings.Contains(e.markdown(id), "- [ ] **AI-1** Test restores monthly — dev") {
		t.Errorf("the post-mortem does not list the action item added from it:\n%s", e.markdown(id))
	}
	wantStatus(t, "review", b.post("/incidents/"+id+"/postmortem/review", url.Values{"by": {"lead"}}), http.StatusSeeOther)
	p = b.get("/incidents/" + id + "/postmortem")
	wantBody(t, "reviewed", p, `class="pm-reviewed">reviewed`, `id="pm-reviewed">by lead`, "We learned to test restores.", "version 2</a> by maria")
}
