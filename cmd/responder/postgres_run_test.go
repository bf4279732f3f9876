package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/store/postgres/pgtest"
)

// The daemon on PostgreSQL (store.postgres) serves the same API; while the
// database is down, writes answer 503 with Retry-After and /readyz says so,
// nothing else is a 5xx, and it recovers once the database is back,
// without a restart; nothing accepted is lost.
func TestServeOnPostgres(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	dsn := pg.NewDatabase(t)
	d := startDaemon(t, fmt.Sprintf("store:\n  postgres:\n    dsn: %q\n", dsn), nil, "http")

	declare := func(title string) *http.Response {
		t.Helper()
		resp, err := d.client.Post(d.base+"/api/v1/incidents", "application/json",
			strings.NewReader(fmt.Sprintf(`{"title":%q,"severity":"S2","declared_by":"maria"}`, title)))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	if r := declare("before the crash"); r.StatusCode != http.StatusCreated {
		t.Fatalf("declare on PostgreSQL: %d", r.StatusCode)
	}

	if err := pg.Crash(); err != nil {
		t.Fatal(err)
	}
	if r := declare("while down"); r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("declare while the database is down: %d, Retry-After %q; want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	for _, path := range []string{"/readyz", "/api/v1/incidents/INC-1"} {
		resp, err := d.client.Get(d.base + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s while the database is down: %d, want 503", path, resp.StatusCode)
		}
	}

	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	if r := declare("after the restart"); r.StatusCode != http.StatusCreated {
		t.Fatalf("declare after the database came back: %d", r.StatusCode)
	}
	resp, err := d.client.Get(d.base + "/api/v1/incidents?limit=10")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	list := string(b)
	if !strings.Contains(list, "before the crash") || !strings.Contains(list, "after the restart") || strings.Contains(list, "while down") {
		t.Errorf("incidents after the restart:\n%s", list)
	}
	if strings.Contains(d.logs.String(), dsn) {
		t.Error("the DSN reached the log")
	}
}

// Two replicas on one database behind one name (a load balancer): a login
// on one works on the other, and a logout on either ends the session on
// both, even for a copy of the cookie.
func TestReplicasShareWebSessions(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	dsn := pg.NewDatabase(t)
	const token = "web-token-0123456789-example"
	cfg := fmt.Sprintf("store:\n  postgres:\n    dsn: %q\nauth:\n  tokens:\n    - name: web\n      token: %s\n      scopes: [read, write]\n", dsn, token)
	a := startDaemon(t, cfg, nil, "http")
	b := startDaemon(t, cfg, nil, "http")
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var cookie *http.Cookie
	do := func(method, url string, form url.Values) (int, string, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		for _, c := range resp.Cookies() {
			if c.Name == "responder_session" && c.Value != "" {
				cookie = c
			}
		}
		page, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Location"), string(page)
	}
	csrf := func(page string) string {
		t.Helper()
		_, rest, ok := strings.Cut(page, `name="csrf" value="`)
		if !ok {
			t.Fatalf("no CSRF field in:\n%s", page)
		}
		v, _, _ := strings.Cut(rest, `"`)
		return v
	}

	_, _, page := do(http.MethodGet, a.base+"/login", nil)
	if status, loc, _ := do(http.MethodPost, a.base+"/login", url.Values{"token": {token}, "csrf": {csrf(page)}, "next": {"/"}}); status != http.StatusSeeOther || loc != "/" {
		t.Fatalf("login on a: %d to %q", status, loc)
	}
	loggedIn := *cookie
	status, loc, page := do(http.MethodGet, b.base+"/", nil)
	if status != http.StatusOK {
		t.Fatalf("the list on b with a's login: %d to %q", status, loc)
	}
	if status, _, _ := do(http.MethodPost, b.base+"/logout", url.Values{"csrf": {csrf(page)}}); status != http.StatusSeeOther {
		t.Fatalf("logout on b: %d", status)
	}
	cookie = &loggedIn // a copy of the cookie from before the logout
	if status, loc, _ := do(http.MethodGet, a.base+"/", nil); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Errorf("a took a session logged out on b: %d to %q", status, loc)
	}
}
