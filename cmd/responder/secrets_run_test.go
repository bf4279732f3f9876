package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations/email/smtptest"
)

// Distinctive secrets of the full-run test: none may ever reach the log.
const (
	secretIngest   = "BEARER-ingest-7hQ2mZk9Lw4x"
	secretOncall   = "BEARER-oncall-Vd83nPq0Ty6s"
	secretSlack    = "xoxb-1111-2222-SLACKSECRETqZ8w"
	secretSMTP     = "SMTP-PASSWORD-r5Ux0cYb"
	secretZoom     = "ZOOM-CLIENT-SECRET-k2Jf7Hn"
	secretOpsGenie = "OPSGENIE-KEY-5e1b8c4d-aa77"
	// Handed out at run time, not configured: the Zoom access token and the
	// passcode in a join link.
	secretZoomAccess = "ZOOM-ACCESS-TOKEN-p0Qw3Er"
	secretPasscode   = "ZOOMPASSCODE9x8y"
)

// echoVendors are fake Slack, Zoom and OpsGenie APIs that fail the way a
// careless vendor or proxy does: by echoing the credentials they were sent
// in their error answers. Zoom fails once, then works.
type echoVendors struct {
	srv       *httptest.Server
	mu        sync.Mutex
	calls     map[string]int
	zoomToken int
	zoomMeet  int
}

func startEchoVendors(t *testing.T) *echoVendors {
	t.Helper()
	v := &echoVendors{calls: map[string]int{}}
	v.srv = httptest.NewServer(http.HandlerFunc(v.serve))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *echoVendors) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	echo := r.Header.Get("Authorization") + " " + string(body)
	v.mu.Lock()
	v.calls[r.URL.Path]++
	v.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	answer := func(status int, v any) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/slack/api/"):
		// Slack answers 200 with ok:false; this one puts the request in
		// its error.
		answer(http.StatusOK, map[string]any{"ok": false, "error": "invalid_auth: " + echo})
	case r.URL.Path == "/zoom/oauth/token":
		v.mu.Lock()
		v.zoomToken++
		first := v.zoomToken == 1
		v.mu.Unlock()
		if first {
			user, pass, _ := r.BasicAuth()
			answer(http.StatusInternalServerError, map[string]string{"error": "server_error", "reason": "could not check " + user + ":" + pass + " " + echo})
			return
		}
		answer(http.StatusOK, map[string]any{"access_token": secretZoomAccess, "token_type": "bearer", "expires_in": 3600})
	case strings.HasPrefix(r.URL.Path, "/zoom/v2/users/"):
		v.mu.Lock()
		v.zoomMeet++
		first := v.zoomMeet == 1
		v.mu.Unlock()
		if first {
			answer(http.StatusServiceUnavailable, map[string]any{"code": 503, "message": "overloaded, request was: " + echo})
			return
		}
		answer(http.StatusCreated, map[string]any{"id": 123, "join_url": "https://zoom.example/j/123?pwd=" + secretPasscode})
	case strings.HasPrefix(r.URL.Path, "/v2/alerts"):
		// OpsGenie: a 422 quoting the GenieKey it was given.
		answer(http.StatusUnprocessableEntity, map[string]any{"message": "Key is invalid: " + echo, "took": 0.001, "requestId": "r-1"})
	default:
		answer(http.StatusNotFound, map[string]string{"message": "no route " + r.URL.Path})
	}
}

// TestLogsHoldNoSecret runs the real run() with a secret for every vendor
// and two bearer tokens, drives it with good requests, bad tokens, tokens
// in query strings and paths, and vendors that echo the credentials in
// their failures, then checks that no secret is in the log (or in the API's
// answers). It also checks that the echoes did reach the log, redacted, so
// that the test cannot pass by the failures never happening.
func TestLogsHoldNoSecret(t *testing.T) {
	vendors := startEchoVendors(t)
	mail := smtptest.Start(t, smtptest.WithAuth("responder", secretSMTP))
	mail.RejectNext(1, 451, "4.3.0 try again; you sent password "+secretSMTP)
	mailHost, mailPort := mail.Addr()
	vendorHost := strings.TrimPrefix(vendors.srv.URL, "http://")

	cfg := fmt.Sprintf(`log:
  level: debug
auth:
  tokens:
    - {name: alertmanager, token: %s, scopes: [ingest]}
    - {name: oncall, token: %s, scopes: [read, write]}
policy:
  business_hours:
    time_intervals: []
notifications:
  log: true
  retry_base: 100ms
  retry_max: 500ms
  timeout: 5s
  slack:
    token: %s
    api_url: %s/slack/api/
    channel: "#incidents"
  email:
    host: %s
    port: %d
    tls: none
    username: responder
    password: %s
    from: responder@example.com
    recipients:
      S1: [oncall@example.com]
  zoom:
    api:
      account_id: acct-1
      client_id: zoom-client
      client_secret: %s
      token_url: %s/zoom/oauth/token
      api_url: %s/zoom/v2
  opsgenie:
    api_key: %s
    api_url: %s
    responder: {type: team, name: sre}
`, secretIngest, secretOncall, secretSlack, vendors.srv.URL, mailHost, mailPort, secretSMTP,
		secretZoom, vendors.srv.URL, vendors.srv.URL, secretOpsGenie, vendorHost)
	d := startDaemon(t, cfg, nil, "http")

	do := func(method, path, auth, body string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, d.base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("oncall:"+secretOncall))
	steps := []struct {
		method, path, auth, body string
		want                     int
	}{
		{"POST", "/api/v1/incidents", "Bearer " + secretOncall, `{"title":"Checkout down","severity":"S1","customer_impact":true}`, 201},
		{"POST", "/api/v1/alerts/alertmanager", "Bearer " + secretIngest,
			`{"version":"4","groupKey":"g1","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"DiskFull","severity":"warning"},"startsAt":"2026-11-17T02:00:00Z"}]}`, 202},
		{"GET", "/api/v1/incidents", "Bearer " + secretIngest + "x", "", 401},
		{"GET", "/api/v1/incidents", "Bearer " + secretSlack, "", 401},
		{"GET", "/api/v1/incidents", "Bearer " + secretOpsGenie, "", 401},
		{"GET", "/api/v1/incidents", basic, "", 401},
		{"GET", "/api/v1/incidents", "Bearer", "", 401},
		{"GET", "/api/v1/incidents?token=" + secretOncall, "", "", 400},
		{"GET", "/api/v1/incidents?status=open&access_token=" + secretOncall, "Bearer " + secretOncall, "", 400},
		{"POST", "/api/v1/alerts/alertmanager?api_key=" + secretIngest, "Bearer " + secretIngest, `{}`, 400},
		{"GET", "/healthz?password=" + secretSMTP, "", "", 400},
		// A token pasted into the path: a 404 whose path is logged.
		{"GET", "/api/v1/incidents/" + secretOncall, "Bearer " + secretOncall, "", 404},
		{"GET", "/" + secretZoom, "", "", 404},
	}
	for i, s := range steps {
		if got, body := do(s.method, s.path, s.auth, s.body); got != s.want {
			t.Fatalf("step %d %s %s: %d, want %d: %s", i, s.method, s.path, got, s.want, body)
		}
	}

	// Let every notification reach its final state (the failures above
	// are permanent; Zoom and the mail are retried and then delivered).
	var final string
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, final = do("GET", "/api/v1/incidents/INC-1", "Bearer "+secretOncall, "")
		if !strings.Contains(final, `"state":"pending"`) && strings.Contains(final, secretPasscode[:4]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notifications still pending after 30s:\n%s", final)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(mail.Messages()) == 0 {
		t.Errorf("no mail delivered after the refusal")
	}
	vendors.mu.Lock()
	calls := fmt.Sprint(vendors.calls)
	vendors.mu.Unlock()
	for _, path := range []string{"/slack/api/chat.postMessage", "/zoom/oauth/token", "/v2/alerts"} {
		if !strings.Contains(calls, path+":") {
			t.Errorf("the fake vendors never saw %s (calls %s): the test did not exercise it", path, calls)
		}
	}

	logs := d.logs.String()
	secrets := map[string]string{
		"ingest bearer token": secretIngest, "oncall bearer token": secretOncall, "slack token": secretSlack,
		"smtp password": secretSMTP, "zoom client secret": secretZoom, "opsgenie api key": secretOpsGenie,
		"zoom passcode": secretPasscode,
	}
	// Encoded as a client or vendor would carry them: Basic credentials,
	// SMTP AUTH PLAIN, base64.
	encoded := map[string]string{
		"zoom basic credentials":   base64.StdEncoding.EncodeToString([]byte("zoom-client:" + secretZoom)),
		"oncall basic credentials": base64.StdEncoding.EncodeToString([]byte("oncall:" + secretOncall)),
		"smtp auth plain":          base64.StdEncoding.EncodeToString([]byte("\x00responder\x00" + secretSMTP)),
	}
	for what, s := range secrets {
		encoded[what+" in base64"] = base64.StdEncoding.EncodeToString([]byte(s))
	}
	for what, s := range encoded {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds the %s", what)
		}
	}
	for what, s := range secrets {
		if i := strings.Index(logs, s); i >= 0 {
			t.Errorf("the log holds the %s: …%s…", what, logs[max(0, i-200):min(len(logs), i+len(s)+50)])
		}
		// The parts of a secret that identify it are not in the log either.
		if strings.Contains(logs, s[len(s)-8:]) {
			t.Errorf("the log holds the end of the %s", what)
		}
	}
	if !strings.Contains(logs, "<secret>") {
		t.Errorf("no redacted secret in the log: the echoing failures were never logged, the test proves nothing:\n%s", logs)
	}
	// The API shows delivery errors (last_error); it must not show secrets
	// either.
	for what, s := range secrets {
		if what == "zoom passcode" {
			continue // the join link is the incident's, shown on purpose
		}
		if strings.Contains(final, s) {
			t.Errorf("the incident's JSON holds the %s", what)
		}
	}
	for what, s := range encoded {
		if strings.Contains(final, s) {
			t.Errorf("the incident's JSON holds the %s", what)
		}
	}
	if strings.Contains(logs, secretZoomAccess) {
		t.Errorf("the log holds the Zoom access token")
	}
}
