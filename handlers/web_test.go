package handlers

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// browser drives the pages like a browser does: it keeps the session
// cookie and sends back the CSRF token of the last page it read.
type browser struct {
	e      *testEnv
	remote string // the peer address the server sees
	cookie *http.Cookie
	csrf   string
}

type page struct {
	status int
	header http.Header
	body   string
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newBrowser(e *testEnv) *browser { return &browser{e: e, remote: "192.0.2.1:1234"} }

func (b *browser) send(req *http.Request) page {
	b.e.t.Helper()
	req.RemoteAddr = b.remote
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8") // as a browser asks for a page
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	rec := httptest.NewRecorder()
	b.e.srv.Handler().ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie {
			if c.MaxAge < 0 {
				b.cookie = nil
			} else {
				b.cookie = c
			}
		}
	}
	p := page{status: rec.Code, header: rec.Header(), body: rec.Body.String()}
	if m := csrfInput.FindStringSubmatch(p.body); m != nil {
		b.csrf = m[1]
	}
	return p
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	return b.send(httptest.NewRequest(http.MethodGet, path, nil))
}

// post sends a form with the CSRF token of the last page read.
func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	if form.Get(csrfField) == "" && b.csrf != "" {
		form.Set(csrfField, b.csrf)
	}
	return b.postRaw(path, form, nil)
}

// postRaw sends the form as given, with extra headers.
func (b *browser) postRaw(path string, form url.Values, header http.Header) page {
	b.e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range header {
		req.Header[k] = vs
	}
	return b.send(req)
}

func (b *browser) login(token string) {
	b.e.t.Helper()
	b.get("/login")
	p := b.post("/login", url.Values{"token": {token}})
	if p.status != http.StatusSeeOther {
		b.e.t.Fatalf("login: status %d: %s", p.status, p.body)
	}
}

func wantStatus(t *testing.T, what string, p page, status int) {
	t.Helper()
	if p.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, p.status, status, p.body)
	}
}

func wantBody(t *testing.T, what string, p page, parts ...string) {
	t.Helper()
	for _, s := range parts {
		if !strings.Contains(p.body, s) {
			t.Errorf("%s: page lacks %q:\n%s", what, s, p.body)
		}
	}
}

func TestWebLogin(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(e)

	p := b.get("/")
	wantStatus(t, "list before login", p, http.StatusSeeOther)
	if loc := p.header.Get("Location"); loc != "/login?next=%2F" {
		t.Errorf("redirect to %q, want the login page", loc)
	}
	p = b.get("/login?next=/new")
	wantStatus(t, "login page", p, http.StatusOK)
	wantBody(t, "login page over plain HTTP from another host", p, `id="plain-http"`, `name="next" value="/new"`)

	p = b.post("/login", url.Values{"token": {"not-a-token"}, "next": {"/new"}})
	wantStatus(t, "bad token", p, http.StatusUnauthorized)
	wantBody(t, "bad token", p, `id="login-error"`, "invalid token")

	p = b.post("/login", url.Values{"token": {tokIngest}})
	wantStatus(t, "ingest-only token", p, http.StatusForbidden)
	wantBody(t, "ingest-only token", p, `token &#34;alertmanager&#34; lacks the &#34;read&#34; scope`)

	p = b.post("/login", url.Values{"token": {tokAll}, "next": {"/new"}})
	wantStatus(t, "good token", p, http.StatusSeeOther)
	if loc := p.header.Get("Location"); loc != "/new" {
		t.Errorf("after login to %q, want /new", loc)
	}
	c := b.cookie
	switch {
	case c == nil:
		t.Fatal("no session cookie after login")
	case !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode:
		t.Errorf("cookie HttpOnly=%v Secure=%v SameSite=%v, want HttpOnly, Secure, Strict", c.HttpOnly, c.Secure, c.SameSite)
	case c.MaxAge != int(sessionTTL.Seconds()) || c.Expires.IsZero():
		t.Errorf("cookie Max-Age=%d Expires=%v, want %v from now", c.MaxAge, c.Expires, sessionTTL)
	case strings.Contains(c.Value, tokAll):
		t.Errorf("cookie %q carries the token", c.Value)
	}
	p = b.get("/new")
	wantStatus(t, "declare page after login", p, http.StatusOK)
	wantBody(t, "declare page after login", p, `id="declare-form"`, `<span id="user">admin</span>`)

	// The session reads the API (the post-mortem link), but never writes.
	req := httptest.NewRequest(http.MethodGet, "/api/v1/incidents", nil)
	wantStatus(t, "API read with the session", b.send(req), http.StatusOK)
	req = httptest.NewRequest(http.MethodPost, "/api/v1/incidents", strings.NewReader(`{"title":"x","declared_by":"a"}`))
	req.Header.Set("Content-Type", "application/json")
	wantStatus(t, "API write with the session", b.send(req), http.StatusUnauthorized)

	// A forged or tampered cookie is no session.
	forged := *b.cookie
	forged.Value = strings.Replace(forged.Value, "v1.", "v1.x", 1)
	b2 := newBrowser(e)
	b2.cookie = &forged
	wantStatus(t, "tampered cookie", b2.get("/"), http.StatusSeeOther)

	wantStatus(t, "logout", b.post("/logout", url.Values{}), http.StatusSeeOther)
	wantStatus(t, "list after logout", b.get("/"), http.StatusSeeOther)

	// A read-only token sees the pages but cannot declare.
	ro := newBrowser(e)
	ro.login(tokRead)
	wantStatus(t, "list as viewer", ro.get("/"), http.StatusOK)
	p = ro.post("/incidents", url.Values{"title": {"x"}, "declared_by": {"ann"}})
	wantStatus(t, "declare as viewer", p, http.StatusForbidden)
	wantBody(t, "declare as viewer", p, "lacks the &#34;write&#34; scope")
}

func TestWebCookieOverPlainLoopback(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(e)
	b.remote = "127.0.0.1:40000"
	if p := b.get("/login"); strings.Contains(p.body, `id="plain-http"`) {
		t.Error("the plain-HTTP warning shows on loopback")
	}
	b.login(tokAll)
	if b.cookie == nil || b.cookie.Secure || !b.cookie.HttpOnly || b.cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie over plain HTTP from loopback: %+v, want HttpOnly, Strict, not Secure", b.cookie)
	}
}

func TestWebRefusesFormsWithoutCSRF(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(e)
	b.login(tokAll)
	b.get("/new")
	declare := func() url.Values { return url.Values{"title": {"Checkout down"}, "declared_by": {"ann"}} }
	cases := []struct {
		name   string
		form   url.Values
		header http.Header
		want   string
	}{
		{name: "no token", form: declare(), want: "security token is missing"},
		{name: "wrong token", form: func() url.Values { v := declare(); v.Set(csrfField, "AAAA"); return v }(), want: "does not match your session"},
		{name: "other session's token", form: func() url.Values {
			other := newBrowser(e)
			other.get("/login")
			v := declare()
			v.Set(csrfField, other.csrf)
			return v
		}(), want: "does not match your session"},
		{name: "cross-site", form: func() url.Values { v := declare(); v.Set(csrfField, b.csrf); return v }(),
			header: http.Header{"Sec-Fetch-Site": {"cross-site"}}, want: "write from another site refused"},
		{name: "other origin", form: func() url.Values { v := declare(); v.Set(csrfField, b.csrf); return v }(),
			header: http.Header{"Origin": {"https://evil.example"}}, want: "write from another origin refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := b.postRaw("/incidents", tc.form, tc.header)
			wantStatus(t, tc.name, p, http.StatusForbidden)
			wantBody(t, tc.name, p, `id="error-message"`, tc.want)
		})
	}
	if got := e.list(""); len(got) != 0 {
		t.Fatalf("a refused form opened %d incidents", len(got))
	}
	// The same form with its token, from this origin, goes through.
	p := b.postRaw("/incidents", func() url.Values { v := declare(); v.Set(csrfField, b.csrf); return v }(),
		http.Header{"Origin": {"http://example.com"}, "Sec-Fetch-Site": {"same-origin"}})
	wantStatus(t, "declare with the token", p, http.StatusSeeOther)
}

func TestWebIncidentFlow(t *testing.T) {
	e := newEnv(t, func(s envSetup) {
		s.inc.Scenarios = map[string]incident.Scenario{"database-failover": {Title: "Primary database lost", Severity: policy.S2}}
	})
	b := newBrowser(e)
	b.login(tokAll)

	b.get("/new")
	p := b.post("/incidents", url.Values{"title": {"Checkout returns 500"}, "severity": {"S1"},
		"labels": {"service=checkout\nenv=production"}, "declared_by": {"ann"}})
	wantStatus(t, "declare", p, http.StatusSeeOther)
	if loc := p.header.Get("Location"); loc != "/incidents/INC-1" {
		t.Fatalf("declare went to %q, want /incidents/INC-1", loc)
	}
	p = b.post("/incidents", url.Values{"title": {"no labels"}, "labels": {"service checkout"}, "declared_by": {"ann"}})
	wantStatus(t, "declare with a bad label line", p, http.StatusBadRequest)
	wantBody(t, "declare with a bad label line", p, `id="declare-error"`, "write name=value", `value="no labels"`)

	p = b.post("/drills", url.Values{"scenario": {"database-failover"}, "by": {"bob"}})
	wantStatus(t, "drill", p, http.StatusSeeOther)
	p = b.post("/drills", url.Values{"scenario": {"nope"}, "severity": {"S3"}, "by": {"bob"}})
	wantStatus(t, "unknown drill", p, http.StatusUnprocessableEntity)
	wantBody(t, "unknown drill", p, `id="drill-error"`, "is not configured", `<option value="S3" selected>`, `value="bob"`)
	if strings.Contains(p.body, `id="declare-error"`) || strings.Count(p.body, " selected>") != 1 {
		t.Errorf("the drill's error or values leak into the declare form:\n%s", p.body)
	}

	e.flush()
	p = b.get("/")
	wantStatus(t, "list", p, http.StatusOK)
	wantBody(t, "list", p, `id="row-INC-1"`, "Checkout returns 500", `class="sev sev-s1"`, `id="row-INC-2"`, `<span class="drill">DRILL</span>`,
		`<time datetime="2026-11-17T03:00:00Z">2026-11-17 03:00 UTC</time>`, `data-refresh="15"`)
	p = b.get("/?severity=S2")
	wantBody(t, "filtered list", p, `id="row-INC-2"`)
	if strings.Contains(p.body, `id="row-INC-1"`) {
		t.Errorf("severity=S2 lists the S1 incident:\n%s", p.body)
	}
	wantStatus(t, "bad filter", b.get("/?status=sleeping"), http.StatusBadRequest)

	p = b.get("/incidents/INC-1")
	wantStatus(t, "incident page", p, http.StatusOK)
	wantBody(t, "incident page", p, `id="incident-title">Checkout returns 500`, `id="ack-form"`, `id="roles-form"`,
		`id="update-form"`, `id="resolve-form"`, `href="/incidents/INC-1/postmortem"`, "service", "checkout")

	p = b.post("/incidents/INC-1/roles", url.Values{"recovery_lead": {"Ann"}, "comms_lead": {"ann"}, "by": {"ann"}})
	wantStatus(t, "same person in both roles", p, http.StatusUnprocessableEntity)
	wantBody(t, "same person in both roles", p, `id="roles-error"`, "they must be different people", `value="Ann"`)

	wantStatus(t, "ack", b.post("/incidents/INC-1/ack", url.Values{"by": {"ann"}}), http.StatusSeeOther)
	wantStatus(t, "roles", b.post("/incidents/INC-1/roles", url.Values{"recovery_lead": {"ann"}, "comms_lead": {"bob"}}), http.StatusSeeOther)
	p = b.post("/incidents/INC-1/updates", url.Values{"text": {"rolled back the deploy"}, "eta": {"2026-11-17 04:30"}, "by": {"bob"}})
	wantStatus(t, "update", p, http.StatusSeeOther)
	p = b.post("/incidents/INC-1/updates", url.Values{"text": {"late"}, "eta": {"2026-11-17 02:00"}})
	wantStatus(t, "update with a past ETA", p, http.StatusBadRequest)
	wantBody(t, "update with a past ETA", p, `id="update-error"`, "is not in the future")

	p = b.get("/incidents/INC-1")
	wantBody(t, "after the changes", p, `id="incident-status" class="status-acknowledged"`,
		`id="recovery-lead">ann`, `id="comms-lead">bob`, `<time datetime="2026-11-17T04:30:00Z">2026-11-17 04:30 UTC</time>`,
		"acknowledged by ann", "roles: recovery lead ann, comms lead bob (set by admin)", "rolled back the deploy")

	wantStatus(t, "resolve", b.post("/incidents/INC-1/resolve", url.Values{"summary": {"bad deploy"}, "by": {"ann"}}), http.StatusSeeOther)
	p = b.get("/incidents/INC-1")
	wantBody(t, "resolved", p, `class="status-resolved">resolved`, "resolved by ann: bad deploy", `id="incident-summary">bad deploy`)
	if strings.Contains(p.body, `id="resolve-form"`) {
		t.Error("a resolved incident still shows the resolve form")
	}
	// The same 409 the API gives, on the page.
	p = b.post("/incidents/INC-1/resolve", url.Values{"by": {"ann"}})
	wantStatus(t, "resolve twice", p, http.StatusConflict)
	wantBody(t, "resolve twice", p, "was already resolved by ann")

	// The timeline holds every step, in order; the page shows it.
	got := kinds(e.incident("INC-1").Timeline)
	want := []string{store.KindDeclared, store.KindAcknowledged, store.KindRoles, store.KindUpdate, store.KindResolved}
	if !equalStrings(got[:min(len(got), len(want))], want) {
		t.Fatalf("timeline kinds %v, want them to start %v", got, want)
	}
	for _, k := range want {
		wantBody(t, "timeline", p, `class="entry kind-`+k+`"`)
	}

	// The post-mortem link is readable with the session alone.
	pm := b.get("/api/v1/incidents/INC-1/postmortem")
	wantStatus(t, "post-mortem with the session", pm, http.StatusOK)
	wantBody(t, "post-mortem", pm, "Checkout returns 500")

	wantStatus(t, "unknown incident", b.get("/incidents/INC-99"), http.StatusNotFound)

	// Open incidents come first: a newer resolved one lists after the
	// older open drill.
	b.get("/new")
	wantStatus(t, "declare INC-3", b.post("/incidents", url.Values{"title": {"short blip"}, "declared_by": {"ann"}}), http.StatusSeeOther)
	b.get("/incidents/INC-3")
	wantStatus(t, "resolve INC-3", b.post("/incidents/INC-3/resolve", url.Values{"by": {"ann"}}), http.StatusSeeOther)
	p = b.get("/")
	i1, i2, i3 := strings.Index(p.body, `id="row-INC-1"`), strings.Index(p.body, `id="row-INC-2"`), strings.Index(p.body, `id="row-INC-3"`)
	if i1 < 0 || i2 < 0 || i3 < 0 || i2 > i3 || i3 > i1 {
		t.Errorf("list order INC-1 at %d, INC-2 at %d, INC-3 at %d: want INC-2 (open), then INC-3, then INC-1 (resolved, newest first)", i1, i2, i3)
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                 "0s",
		45 * time.Second:             "45s",
		12*time.Minute + time.Second: "12m",
		3*time.Hour + 4*time.Minute:  "3h 4m",
		53 * time.Hour:               "2d 5h",
	} {
		if got := age(d); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestWebShowsFailedNotifications(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(e)
	b.login(tokAll)
	b.get("/new")
	wantStatus(t, "declare", b.post("/incidents", url.Values{"title": {"x"}, "declared_by": {"ann"}}), http.StatusSeeOther)
	e.flush()
	// Mark one delivery failed, as the dispatcher does when a vendor refuses.
	err := e.db.Update(context.Background(), func(tx store.Tx) error {
		ins, err := tx.IncidentIntents("INC-1")
		if err != nil || len(ins) == 0 {
			t.Fatalf("intents of INC-1: %v (%d)", err, len(ins))
		}
		in := ins[0]
		in.State, in.LastError = store.IntentFailed, "slack: channel_not_found"
		return tx.PutIntent(&in)
	})
	if err != nil {
		t.Fatalf("mark failed: %v", err)
	}
	p := b.get("/incidents/INC-1")
	wantBody(t, "failed notification", p, `id="failed-count" class="failed">1 failed`, `class="state-failed"`, "slack: channel_not_found")
}

func TestWebEscapesAlertText(t *testing.T) {
	e := newEnv(t)
	const evil = `<script>alert(1)</script>`
	body := bytes.ReplaceAll(readTestdata(t, "am_firing_v034.json"), []byte(`"job": "checkout-api"`), []byte(`"job": "`+evil+`"`))
	body = bytes.ReplaceAll(body, []byte(`"summary": "checkout-api 5xx error rate above 5%"`), []byte(`"summary": "`+evil+`"`))
	res := e.postAM(body)
	b := newBrowser(e)
	b.login(tokAll)
	for _, path := range []string{"/", "/incidents/" + res[0].ID} {
		p := b.get(path)
		wantStatus(t, path, p, http.StatusOK)
		if strings.Contains(p.body, evil) || strings.Contains(p.body, "<script>alert") {
			t.Errorf("%s: the alert's text reached the page as HTML:\n%s", path, p.body)
		}
		if path != "/" {
			wantBody(t, path, p, "&lt;script&gt;alert(1)&lt;/script&gt;")
		}
	}
}

func TestWebSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(e)
	b.login(tokAll)
	b.get("/new")
	b.post("/incidents", url.Values{"title": {"x"}, "declared_by": {"ann"}})
	for _, path := range []string{"/", "/login", "/new", "/incidents/INC-1", "/incidents/INC-9", "/static/app.js", "/static/app.css"} {
		p := b.get(path)
		for h, want := range map[string]string{
			"Content-Security-Policy": "default-src 'self'",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "same-origin",
			"X-Content-Type-Options":  "nosniff",
		} {
			if got := p.header.Get(h); !strings.Contains(got, want) {
				t.Errorf("%s: %s is %q, want %q", path, h, got, want)
			}
		}
		if strings.HasPrefix(path, "/static/") {
			continue
		}
		wantBody(t, path, p, `<meta name="viewport" content="width=device-width, initial-scale=1">`)
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, " style=") {
			t.Errorf("%s: inline script or style breaks the CSP:\n%s", path, p.body)
		}
	}
}

func TestWebWithoutTokens(t *testing.T) {
	e := newEnv(t, withoutTokens())
	b := newBrowser(e)
	b.remote = "127.0.0.1:40000"
	p := b.get("/")
	wantStatus(t, "list without tokens", p, http.StatusOK)
	wantStatus(t, "declare page without tokens", b.get("/new"), http.StatusOK)
	wantStatus(t, "declare without the CSRF token", b.postRaw("/incidents", url.Values{"title": {"x"}, "declared_by": {"ann"}}, nil), http.StatusForbidden)
	p = b.post("/incidents", url.Values{"title": {"x"}})
	wantStatus(t, "declare without a name", p, http.StatusBadRequest)
	wantBody(t, "declare without a name", p, "declared_by: required")
	wantStatus(t, "declare", b.post("/incidents", url.Values{"title": {"x"}, "declared_by": {"ann"}}), http.StatusSeeOther)
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "/",
		"/incidents/INC-1":     "/incidents/INC-1",
		"/?status=open":        "/?status=open",
		"//evil.example/x":     "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"javascript:alert(1)":  "/",
		"/\t/evil.example":     "/",
		"/\n/evil.example":     "/",
		"/\r\n//evil.example":  "/",
		" //evil.example":      "/",
		"/%2F/evil.example":    "/",
		"/%5Cevil.example":     "/",
		"///evil.example":      "/",
		"/\x00/evil.example":   "/",
		"/\u00a0/evil.example": "/",
		"/incidents/INC-1#top": "/incidents/INC-1",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// Logging out ends the session on the server: a copy of the cookie taken
// before (another tab, a stolen cookie) no longer opens a page or posts a
// form.
func TestLogoutRevokesTheSession(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(e)
	b.login(tokAll)
	wantStatus(t, "list while logged in", b.get("/"), http.StatusOK)
	copied := *b.cookie
	csrf := b.csrf
	if p := b.post("/logout", url.Values{}); p.status != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", p.status, p.body)
	}
	thief := newBrowser(e)
	thief.cookie = &copied
	if p := thief.get("/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/login") {
		t.Errorf("the copied cookie after logout: %d to %q, want sent to the login page", p.status, p.header.Get("Location"))
	}
	p := thief.postRaw("/incidents", url.Values{"title": {"after logout"}, "declared_by": {"x"}, csrfField: {csrf}}, nil)
	if p.status != http.StatusForbidden && p.status != http.StatusUnauthorized {
		t.Errorf("a form posted with the copied cookie: %d, want refused", p.status)
	}
	if got := e.list(""); len(got) != 0 {
		t.Errorf("the copied cookie opened %d incidents", len(got))
	}
}

// Every link to an incident in a message opens its page: a browser gets
// the page, after logging in when tokens are configured, never JSON.
func TestIncidentLinksOpenThePage(t *testing.T) {
	e := newEnv(t)
	id := e.declareS("S2")
	e.flush()
	e.notes.mu.Lock()
	link := e.notes.msgs[0].Incident.URL
	e.notes.mu.Unlock()
	if want := "http://127.0.0.1:9095/incidents/" + id; link != want {
		t.Fatalf("messages link %q, want the page %q", link, want)
	}
	path := strings.TrimPrefix(link, "http://127.0.0.1:9095")
	b := newBrowser(e)
	p := b.get(path)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login?next="+url.QueryEscape(path) {
		t.Fatalf("the link before login: %d to %q, want the login page coming back to it", p.status, p.header.Get("Location"))
	}
	b.login(tokRead)
	p = b.get(path)
	wantStatus(t, "the link after login", p, http.StatusOK)
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("the link answers %q, want a page", ct)
	}
	wantBody(t, "the link after login", p, id)
}

// The update form's ETA: the page's script sends the typed time read in the
// viewer's zone as eta_utc, which wins; without the script the typed time
// is UTC.
func TestUpdateFormETA(t *testing.T) {
	e := newEnv(t)
	id := e.declareS("S2")
	b := newBrowser(e)
	b.login(tokAll)
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"text": {"x"}, "by": {"ann"}, "eta": {"2026-11-22 03:04"}, "eta_utc": {"2026-11-21T21:34:00Z"}}, "2026-11-21T21:34:00Z"},
		{url.Values{"text": {"x"}, "by": {"ann"}, "eta": {"2026-11-22 03:04"}, "eta_utc": {""}}, "2026-11-22T03:04:00Z"},
	} {
		b.get("/incidents/" + id)
		if p := b.post("/incidents/"+id+"/updates", tc.form); p.status != http.StatusSeeOther {
			t.Fatalf("update %v: %d %s", tc.form, p.status, p.body)
		}
		if v := e.incident(id); v.ETA == nil || v.ETA.Format(time.RFC3339) != tc.want {
			t.Errorf("form %v: eta %v, want %s", tc.form, v.ETA, tc.want)
		}
	}
}
