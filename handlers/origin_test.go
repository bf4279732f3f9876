package handlers

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// send is one request to the env's server as built here: host is its Host
// header, header the rest.
func (e *testEnv) send(method, host, path, body string, header http.Header) response {
	e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = host
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// A request sent to a name the daemon does not answer to (a DNS-rebinding
// page's own name) is refused on every route, reads included; loopback
// addresses, localhost and configured names are served. Any IP address
// only when the daemon listens on every interface: an address is never an
// attacker's DNS name.
func TestHostHeaderIsChecked(t *testing.T) {
	e := newEnv(t, withoutTokens(), func(s envSetup) { s.cfg.AllowedHosts = append(s.cfg.AllowedHosts, "responder.internal.example.com") })
	for _, tc := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:9095", http.StatusOK},
		{"127.0.0.2", http.StatusOK},
		{"[::1]:9095", http.StatusOK},
		{"localhost:9095", http.StatusOK},
		{"LocalHost.", http.StatusOK},
		{"app.localhost:9095", http.StatusOK},
		{"responder.internal.example.com", http.StatusOK},
		{"RESPONDER.internal.example.com:443", http.StatusOK},
		{"rebind.attacker.example:9095", http.StatusMisdirectedRequest},
		{"127.0.0.1.attacker.example", http.StatusMisdirectedRequest},
		{"10.0.0.5:9095", http.StatusMisdirectedRequest},
		{"", http.StatusMisdirectedRequest},
	} {
		for _, path := range []string{"/api/v1/incidents", "/healthz", "/", "/metrics"} {
			r := e.send(http.MethodGet, tc.host, path, "", nil)
			if tc.want == http.StatusOK && r.status == http.StatusMisdirectedRequest {
				t.Errorf("Host %q %s: refused: %s", tc.host, path, r.body)
			}
			if tc.want != http.StatusOK && (r.status != tc.want || !strings.Contains(string(r.body), "allowed_hosts")) {
				t.Errorf("Host %q %s: %d %s, want %d saying how to allow it", tc.host, path, r.status, r.body, tc.want)
			}
		}
	}
	if r := e.send(http.MethodPost, "rebind.attacker.example", "/api/v1/incidents", `{"title":"x","declared_by":"a"}`,
		http.Header{"Content-Type": {"application/json"}}); r.status != http.StatusMisdirectedRequest {
		t.Errorf("write to a rebinding name: %d %s", r.status, r.body)
	}
	if got := e.list(""); len(got) != 0 {
		t.Errorf("a refused request opened %d incidents", len(got))
	}

	// With tokens, a request that presents one may use any name (a
	// Kubernetes service's): a rebinding page cannot know a token. A
	// presented token that is not configured does not open the door.
	tokens := newEnv(t)
	ingest := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + tokIngest}}
	if r := tokens.send(http.MethodPost, "responder.monitoring.svc:9095", "/api/v1/alerts/alertmanager",
		string(readTestdata(t, "am_firing_old.json")), ingest); r.status != http.StatusAccepted {
		t.Errorf("a webhook with its token under a service name: %d %s", r.status, r.body)
	}
	for _, h := range []http.Header{{}, {"Authorization": {"Bearer not-a-configured-token-0000"}}} {
		if r := tokens.send(http.MethodGet, "responder.monitoring.svc:9095", "/healthz", "", h); r.status != http.StatusMisdirectedRequest {
			t.Errorf("an unconfigured name with %v: %d, want 421", h, r.status)
		}
	}
	if r := e.send(http.MethodGet, "rebind.attacker.example", "/api/v1/incidents", "", http.Header{"Authorization": {"Bearer anything-at-all-0000"}}); r.status != http.StatusMisdirectedRequest {
		t.Errorf("without tokens configured, a made-up bearer under a rebinding name: %d, want 421", r.status)
	}

	every := newEnv(t, withoutTokens(), func(s envSetup) { s.cfg.AnyAddress = true })
	if r := every.send(http.MethodGet, "10.0.0.5:9095", "/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("an IP address when listening on every interface: %d %s", r.status, r.body)
	}
	if r := every.send(http.MethodGet, "rebind.attacker.example", "/healthz", "", nil); r.status != http.StatusMisdirectedRequest {
		t.Errorf("a name when listening on every interface: %d, want 421", r.status)
	}
}

// A write that a browser says another site made is refused, on the API as
// on the forms; programs that send no Origin (curl, Alertmanager) and this
// daemon's own pages go through.
func TestCrossSiteWritesAreRefused(t *testing.T) {
	e := newEnv(t, withoutTokens())
	const host = "127.0.0.1:9095"
	body := `{"title":"Paged by a web page","severity":"S1","declared_by":"mallory"}`
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
		says   string
	}{
		{"cross-site fetch", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}, http.StatusForbidden, "another site"},
		{"same-site", http.Header{"Sec-Fetch-Site": {"same-site"}}, http.StatusForbidden, "another site"},
		{"old browser, other Origin", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden, "another origin"},
		{"opaque Origin", http.Header{"Origin": {"null"}}, http.StatusForbidden, "another origin"},
		{"other Referer", http.Header{"Referer": {"https://evil.example/page"}}, http.StatusForbidden, "another origin"},
		{"same port, other host", http.Header{"Origin": {"http://localhost:9095"}}, http.StatusForbidden, "another origin"},
		{"curl", nil, http.StatusCreated, ""},
		{"this daemon's page", http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {"http://" + host}}, http.StatusCreated, ""},
		{"typed by the user", http.Header{"Sec-Fetch-Site": {"none"}}, http.StatusCreated, ""},
	} {
		h := http.Header{"Content-Type": {"application/json"}}
		for k, v := range tc.header {
			h[k] = v
		}
		before := len(e.list(""))
		r := e.send(http.MethodPost, host, "/api/v1/incidents", body, h)
		if r.status != tc.want || (tc.says != "" && !strings.Contains(r.errorText(t), tc.says)) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, r.status, r.body, tc.want, tc.says)
		}
		if after := len(e.list("")); tc.want != http.StatusCreated && after != before {
			t.Errorf("%s: a refused write opened an incident", tc.name)
		}
	}
	// Reads are not refused: a cross-site read gets no answer it can see
	// (no CORS), and links from elsewhere must open.
	if r := e.send(http.MethodGet, host, "/api/v1/incidents", "", http.Header{"Sec-Fetch-Site": {"cross-site"}}); r.status != http.StatusOK {
		t.Errorf("cross-site read: %d", r.status)
	}
}

// The JSON API takes JSON only: a form, text/plain (what a page can send
// to another site without asking) or a body with no type is 415, and so is
// a compressed body, named.
func TestJSONAPITakesJSONOnly(t *testing.T) {
	e := newEnv(t, withoutTokens())
	body := `{"title":"x","severity":"S4","declared_by":"a"}`
	for _, tc := range []struct {
		name   string
		header http.Header
		says   string
	}{
		{"form", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "send application/json"},
		{"multipart", http.Header{"Content-Type": {"multipart/form-data; boundary=x"}}, "send application/json"},
		{"text/plain", http.Header{"Content-Type": {"text/plain"}}, "send application/json"},
		{"no type", nil, "Content-Type: application/json"},
		{"gzip", http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, `content encoding "gzip"`},
	} {
		r := e.send(http.MethodPost, "127.0.0.1:9095", "/api/v1/incidents", body, tc.header)
		if r.status != http.StatusUnsupportedMediaType || !strings.Contains(r.errorText(t), tc.says) {
			t.Errorf("%s: %d %s, want 415 saying %q", tc.name, r.status, r.body, tc.says)
		}
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "application/merge-patch+json"} {
		if r := e.send(http.MethodPost, "127.0.0.1:9095", "/api/v1/incidents", body, http.Header{"Content-Type": {ct}}); r.status != http.StatusCreated {
			t.Errorf("%s: %d %s", ct, r.status, r.body)
		}
	}
	// An empty body needs no type (curl -X POST .../ack).
	id := e.list("")[0].ID
	if r := e.send(http.MethodPost, "127.0.0.1:9095", "/api/v1/incidents/"+id+"/ack", "", nil); r.status != http.StatusBadRequest ||
		!strings.Contains(r.errorText(t), "by: required") {
		t.Errorf("empty ack: %d %s, want the 400 asking who acts", r.status, r.body)
	}
}

// /metrics takes a read token when metrics_requires_token is set.
func TestMetricsToken(t *testing.T) {
	open := newEnv(t)
	if r := open.do(http.MethodGet, "/metrics", "", nil); r.status != http.StatusOK {
		t.Errorf("/metrics without a token, by default: %d", r.status)
	}
	locked := newEnv(t, func(s envSetup) { s.cfg.MetricsRequiresToken = true })
	for token, want := range map[string]int{"": http.StatusUnauthorized, tokIngest: http.StatusForbidden, tokRead: http.StatusOK} {
		if r := locked.do(http.MethodGet, "/metrics", token, nil); r.status != want {
			t.Errorf("/metrics with token %q: %d, want %d", token, r.status, want)
		}
	}
}

// An API answer never shows a configured secret, wherever it came from:
// here a token pasted into a path comes back in the 404's error.
func TestAnswersHoldNoSecret(t *testing.T) {
	e := newEnv(t, func(s envSetup) { s.cfg.Secrets = []string{tokRead, "vendor-key-0123456789"} })
	r := e.do("GET", "/api/v1/incidents/"+tokRead, tokRead, nil)
	if r.status != 404 || strings.Contains(string(r.body), tokRead) || !strings.Contains(r.errorText(t), "<secret>") {
		t.Errorf("404 for a token in the path: %d %s", r.status, r.body)
	}
}
