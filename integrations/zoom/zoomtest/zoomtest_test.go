package zoomtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations/zoom/zoomtest"
)

// The fake refuses what Zoom refuses, with Zoom's status and error body.
func TestFakeAnswersLikeZoom(t *testing.T) {
	srv := zoomtest.New("acct", "id", "secret")
	defer srv.Close()

	form := func(grant, account string) *http.Request {
		v := url.Values{"grant_type": {grant}, "account_id": {account}}
		req, _ := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("id", "secret")
		return req
	}
	token := func() string {
		resp, err := http.DefaultClient.Do(form("account_credentials", "acct"))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var tok struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int    `json:"expires_in"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" || tok.ExpiresIn != 3600 {
			t.Fatalf("token answer %+v, %v", tok, err)
		}
		return tok.AccessToken
	}
	meeting := func(bearer, user, body string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, srv.APIURL()+"/users/"+user+"/meetings", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		return req
	}
	tok := token()

	tests := []struct {
		name     string
		req      *http.Request
		status   int
		wantBody string
	}{
		{"client credentials grant", form("client_credentials", "acct"), 400, "unsupported_grant_type"},
		{"other account", form("account_credentials", "other"), 400, "invalid_request"},
		{"unknown token", meeting("nope", "me", `{"topic":"x","type":2}`), 401, `"code":124`},
		{"unknown user", meeting(tok, "ghost", `{"topic":"x","type":2}`), 404, `"code":1001`},
		{"long topic", meeting(tok, "me", `{"topic":"`+strings.Repeat("x", 201)+`","type":2}`), 400, "topic"},
		{"bad type", meeting(tok, "me", `{"topic":"x","type":7}`), 400, "type"},
		{"bad start", meeting(tok, "me", `{"topic":"x","type":2,"start_time":"tomorrow"}`), 400, "start_time"},
		{"created", meeting(tok, "me", `{"topic":"x","type":2,"start_time":"2026-03-14T02:07:00Z"}`), 201, `"join_url":"https://zoom.example/j/`},
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
		})
	}
	if ms := srv.Meetings(); len(ms) != 6 || ms[5].Status != 201 || ms[5].Request.Topic != "x" {
		t.Errorf("recorded %d meetings, last %+v", len(ms), ms[len(ms)-1])
	}
}

// Down fails every request, token and meeting alike, with the status and
// Retry-After given, until Up; the refused requests are recorded.
func TestDownUntilUp(t *testing.T) {
	srv := zoomtest.New("acct", "id", "secret")
	defer srv.Close()
	tokenReq := func() *http.Request {
		v := url.Values{"grant_type": {"account_credentials"}, "account_id": {"acct"}}
		req, _ := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("id", "secret")
		return req
	}
	meetingReq := func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, srv.APIURL()+"/users/me/meetings", strings.NewReader(`{"topic":"x","type":2}`))
		req.Header.Set("Authorization", "Bearer whatever")
		return req
	}
	do := func(req *http.Request) (int, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}

	srv.Down(http.StatusServiceUnavailable, 0)
	srv.FailNext(1, http.StatusBadRequest) // waits for the outage to end
	for _, req := range []*http.Request{tokenReq(), meetingReq(), tokenReq()} {
		if status, ra := do(req); status != 503 || ra != "" {
			t.Errorf("during the outage: %d Retry-After %q, want 503 without", status, ra)
		}
	}
	srv.Down(http.StatusTooManyRequests, 90*time.Second)
	if status, ra := do(meetingReq()); status != 429 || ra != "90" {
		t.Errorf("rate limited: %d Retry-After %q, want 429 and 90", status, ra)
	}
	srv.Up()
	if status, _ := do(meetingReq()); status != 400 {
		t.Errorf("first request after Up: %d, want the queued 400", status)
	}
	if status, _ := do(tokenReq()); status != 200 {
		t.Errorf("token after Up: %d, want 200", status)
	}
	ms := srv.Meetings()
	if len(ms) != 3 || ms[0].Status != 503 || ms[1].Status != 429 || ms[2].Status != 400 {
		t.Errorf("meetings recorded %+v", ms)
	}
	if tr := srv.TokenRequests(); len(tr) != 3 || tr[0].Status != 503 || tr[2].Status != 200 {
		t.Errorf("token requests recorded %+v", tr)
	}
}
