package zoomtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
