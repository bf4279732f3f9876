package opsgenietest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations/opsgenie/opsgenietest"
)

// The fake refuses what OpsGenie refuses, answers with OpsGenie's headers,
// and folds a create into the open alert with the same alias.
func TestFakeAnswersLikeOpsGenie(t *testing.T) {
	srv := opsgenietest.New("key")
	defer srv.Close()
	post := func(key, path, body string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Host()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "GenieKey "+key)
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	tests := []struct {
		name     string
		req      *http.Request
		status   int
		wantBody string
	}{
		{"wrong key", post("other", "/v2/alerts", `{"message":"x"}`), 401, "Could not authenticate"},
		{"no message", post("key", "/v2/alerts", `{"alias":"a"}`), 422, "Message can not be empty"},
		{"long message", post("key", "/v2/alerts", `{"message":"`+strings.Repeat("m", 131)+`"}`), 422, "130"},
		{"bad priority", post("key", "/v2/alerts", `{"message":"x","priority":"P0"}`), 422, "priority"},
		{"team without name", post("key", "/v2/alerts", `{"message":"x","responders":[{"type":"team","username":""}]}`), 422, "responders"},
		{"created", post("key", "/v2/alerts", `{"message":"x","alias":"a","IdentifierType":0,"responders":[{"type":"team","name":"sre","username":""}]}`), 202, "Request will be processed"},
		{"created again", post("key", "/v2/alerts", `{"message":"x","alias":"a"}`), 202, "Request will be processed"},
		{"escalation added", post("key", "/v2/alerts/a/responders?identifierType=alias", `{"responder":{"type":"escalation","name":"e"}}`), 422, "Invalid responder type"},
		{"user added", post("key", "/v2/alerts/a/responders?identifierType=alias", `{"responder":{"type":"user","username":"maria@example.com"}}`), 202, "Request will be processed"},
		{"unknown action", post("key", "/v2/alerts/a/explode", `{}`), 404, "Could not find"},
		{"closed", post("key", "/v2/alerts/a/close?identifierType=alias", `{"note":"done"}`), 202, "Request will be processed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			var body json.RawMessage
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("%d %s; want %d with %s", resp.StatusCode, body, tt.status, tt.wantBody)
			}
			for _, h := range []string{"X-Request-Id", "X-Response-Time", "X-RateLimit-State"} {
				if resp.Header.Get(h) == "" {
					t.Errorf("no %s header", h)
				}
			}
		})
	}
	a, ok := srv.Alert("a")
	if !ok || a.Count != 2 || a.Status != "closed" || len(a.Responders) != 2 {
		t.Errorf("alert a = %+v, %v; want 2 creates, 2 responders, closed", a, ok)
	}
	if len(srv.Creates()) != 2 || len(srv.AddResponders()) != 1 || len(srv.Closes()) != 1 || len(srv.Requests()) != len(tests) {
		t.Errorf("recorded %d creates, %d add-responders, %d closes, %d requests",
			len(srv.Creates()), len(srv.AddResponders()), len(srv.Closes()), len(srv.Requests()))
	}
	if r := srv.Requests()[0]; r.AuthOK || r.Status != 401 {
		t.Errorf("first request recorded as %+v", r)
	}
}

// Down answers every request with the status until Up, as OpsGenie does
// when it is down or throttles; nothing is accepted meanwhile.
func TestDownUntilUp(t *testing.T) {
	srv := opsgenietest.New("key")
	defer srv.Close()
	create := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Host()+"/v2/alerts", strings.NewReader(`{"message":"x","alias":"a"}`))
		req.Header.Set("Authorization", "GenieKey key")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	srv.Down(http.StatusServiceUnavailable, 0)
	if r := create(); r.StatusCode != 503 || r.Header.Get("X-Request-Id") == "" {
		t.Errorf("down: %d, request id %q", r.StatusCode, r.Header.Get("X-Request-Id"))
	}
	srv.Down(http.StatusTooManyRequests, 2*time.Minute)
	if r := create(); r.StatusCode != 429 || r.Header.Get("Retry-After") != "120" || r.Header.Get("X-RateLimit-State") != "THROTTLED" {
		t.Errorf("throttled: %d, Retry-After %q, state %q", r.StatusCode, r.Header.Get("Retry-After"), r.Header.Get("X-RateLimit-State"))
	}
	if n := len(srv.Creates()); n != 0 {
		t.Errorf("%d creates accepted during the outage", n)
	}
	srv.Up()
	if r := create(); r.StatusCode != 202 {
		t.Errorf("after Up: %d, want 202", r.StatusCode)
	}
	reqs := srv.Requests()
	if len(srv.Creates()) != 1 || len(reqs) != 3 || reqs[0].Status != 503 || reqs[1].Status != 429 || reqs[2].Status != 202 {
		t.Errorf("%d creates; requests recorded %+v", len(srv.Creates()), reqs)
	}
}
