package zoom_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/zoom"
	"github.com/responder-sre/responder/integrations/zoom/zoomtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	accountID = "acct-Qx7"
	clientID  = "client-9f2"
	secret    = "s3cr3t-zoom-client-secret"
)

func message(event string) integrations.Message {
	at := time.Date(2026, 3, 14, 2, 7, 0, 0, time.UTC)
	return integrations.Message{
		Key:   "INC-4/bridge",
		Event: event,
		Text:  "bridge requested",
		At:    at,
		Incident: integrations.Incident{
			ID:         "INC-4",
			Title:      "Checkout is down",
			Severity:   "S1",
			Status:     "open",
			Source:     "alertmanager",
			DedupKey:   `{}/{team="payments"}:{alertname="CheckoutDown"}`,
			Team:       "payments",
			Labels:     map[string]string{"alertname": "CheckoutDown", "team": "payments"},
			RunbookURL: "https://runbooks.example/checkout",
			SourceURL:  "http://prometheus.example/graph?g0.expr=up",
			URL:        "https://responder.example/incidents/INC-4",
			CreatedAt:  at.Add(-2 * time.Minute),
			OutOfHours: true,
		},
	}
}

func newNotifier(t *testing.T, cfg zoom.Config) *zoom.Notifier {
	t.Helper()
	n, err := zoom.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

func fakeConfig(srv *zoomtest.Server) zoom.Config {
	return zoom.Config{AccountID: accountID, ClientID: clientID, ClientSecret: secret, TokenURL: srv.TokenURL(), APIURL: srv.APIURL()}
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestNewValidates(t *testing.T) {
	valid := zoom.Config{AccountID: accountID, ClientID: clientID, ClientSecret: secret}
	tests := []struct {
		name   string
		mutate func(*zoom.Config)
		want   []string // each must appear in the error; none means valid
	}{
		{name: "defaults", mutate: func(*zoom.Config) {}},
		{name: "loopback http", mutate: func(c *zoom.Config) {
			c.TokenURL, c.APIURL = "http://127.0.0.1:9/oauth/token", "http://localhost:9/v2"
		}},
		{name: "nothing", mutate: func(c *zoom.Config) { *c = zoom.Config{} },
			want: []string{"account_id: required", "client_id: required", "client_secret: required"}},
		{name: "blank secret", mutate: func(c *zoom.Config) { c.ClientSecret = "  " }, want: []string{"client_secret: required"}},
		{name: "relative token url", mutate: func(c *zoom.Config) { c.TokenURL = "zoom.us/oauth/token" }, want: []string{"token_url:"}},
		{name: "plain http api", mutate: func(c *zoom.Config) { c.APIURL = "http://api.zoom.us/v2" }, want: []string{"api_url:", "use https"}},
		{name: "ftp token url", mutate: func(c *zoom.Config) { c.TokenURL = "ftp://zoom.us/token" }, want: []string{"token_url:"}},
		{name: "api url with query", mutate: func(c *zoom.Config) { c.APIURL = "https://api.zoom.us/v2?x=1" }, want: []string{"api_url:"}},
		{name: "user with slash", mutate: func(c *zoom.Config) { c.User = "a/b" }, want: []string{"user:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mutate(&cfg)
			n, err := zoom.New(cfg)
			if len(tt.want) == 0 {
				if err != nil || n == nil {
					t.Fatalf("New = %v, %v; want a notifier", n, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded; want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if cfg.ClientSecret != "" && strings.TrimSpace(cfg.ClientSecret) != "" && strings.Contains(err.Error(), cfg.ClientSecret) {
				t.Errorf("error %q shows the client secret", err)
			}
		})
	}
}

func TestNewMakesNoRequest(t *testing.T) {
	srv := zoomtest.New(accountID, clientID, secret)
	defer srv.Close()
	n := newNotifier(t, fakeConfig(srv))
	if n.Name() != "zoom" {
		t.Errorf("Name = %q", n.Name())
	}
	if got := len(srv.TokenRequests()) + len(srv.Meetings()); got != 0 {
		t.Errorf("New made %d requests", got)
	}
}

func TestBridgeFetchesTokenOnceForTwoMeetings(t *testing.T) {
	srv := zoomtest.New(accountID, clientID, secret)
	defer srv.Close()
	n := newNotifier(t, fakeConfig(srv))

	var receipts []integrations.Receipt
	for range 2 {
		r, err := n.Notify(context.Background(), message(integrations.EventBridge))
		if err != nil {
			t.Fatalf("Notify: %v", err)
		}
		receipts = append(receipts, r)
	}

	toks := srv.TokenRequests()
	if len(toks) != 1 {
		t.Fatalf("token requests = %d, want 1 (cached)", len(toks))
	}
	want := zoomtest.TokenRequest{ClientID: clientID, GrantType: "account_credentials", AccountID: accountID, Status: 200, Token: toks[0].Token}
	if toks[0] != want {
		t.Errorf("token request = %+v, want %+v", toks[0], want)
	}
	ms := srv.Meetings()
	if len(ms) != 2 {
		t.Fatalf("meetings = %d, want 2", len(ms))
	}
	for i, m := range ms {
		if m.Status != http.StatusCreated || m.Token != toks[0].Token || m.User != "me" {
			t.Errorf("meeting %d: status %d user %q token reused %v", i, m.Status, m.User, m.Token == toks[0].Token)
		}
		if receipts[i].JoinURL != m.JoinURL || !strings.HasPrefix(m.JoinURL, "https://zoom.example/j/") {
			t.Errorf("receipt %d = %+v, want join URL %q", i, receipts[i], m.JoinURL)
		}
	}
	if receipts[0].JoinURL == receipts[1].JoinURL {
		t.Errorf("both meetings have join URL %q", receipts[0].JoinURL)
	}
}

func TestMeetingBody(t *testing.T) {
	long := strings.Repeat("é", 250)
	tests := []struct {
		name   string
		mutate func(*integrations.Message)
		golden string // compared by meaning; empty skips
		check  func(t *testing.T, m zoomtest.MeetingRequest)
	}{
		{
			name:   "s1",
			mutate: func(*integrations.Message) {},
			golden: "meeting.golden.json",
		},
		{
			name:   "drill",
			mutate: func(m *integrations.Message) { m.Incident.Drill = true; m.Incident.Source = "drill" },
			check: func(t *testing.T, m zoomtest.MeetingRequest) {
				if m.Topic != "[DRILL] [S1] INC-4: Checkout is down" {
					t.Errorf("topic = %q", m.Topic)
				}
				if !strings.HasPrefix(m.Agenda, "DRILL:") {
					t.Errorf("agenda = %q, want a DRILL first line", m.Agenda)
				}
			},
		},
		{
			name:   "long title is cut to 200 characters",
			mutate: func(m *integrations.Message) { m.Incident.Title = long },
			check: func(t *testing.T, m zoomtest.MeetingRequest) {
				if n := len([]rune(m.Topic)); n != 200 || !strings.HasSuffix(m.Topic, "…") {
					t.Errorf("topic has %d characters, ends %q", n, m.Topic[len(m.Topic)-6:])
				}
			},
		},
		{
			name:   "no At falls back to the incident's start",
			mutate: func(m *integrations.Message) { m.At = time.Time{} },
			check: func(t *testing.T, m zoomtest.MeetingRequest) {
				if m.StartTime != "2026-03-14T02:05:00Z" || m.Type != 2 {
					t.Errorf("start_time %q type %d", m.StartTime, m.Type)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := zoomtest.New(accountID, clientID, secret)
			defer srv.Close()
			n := newNotifier(t, fakeConfig(srv))
			m := message(integrations.EventBridge)
			tt.mutate(&m)
			if _, err := n.Notify(context.Background(), m); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			got := srv.Meetings()[0]
			if tt.golden != "" {
				golden(t, tt.golden, got.Raw)
			}
			if tt.check != nil {
				tt.check(t, got.Request)
			}
		})
	}
}

// golden compares body with testdata/name by meaning (both decoded to any),
// or rewrites the file with -update.
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var got any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	if *update {
		out, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	var want any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body differs from %s (go test -update rewrites it)\ngot:  %s\nwant: %s", path, body, raw)
	}
}

func TestFailuresAreClassified(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(srv *zoomtest.Server, cfg *zoom.Config)
		event     string
		retry     bool
		after     time.Duration
		errSubstr string
	}{
		{name: "unsupported event", event: integrations.EventOpened, errSubstr: "zoom: unsupported event"},
		{name: "token 500", setup: func(s *zoomtest.Server, _ *zoom.Config) { s.FailTokenNext(1, 500) },
			retry: true, errSubstr: "zoom: token: HTTP 500"},
		{name: "token 503", setup: func(s *zoomtest.Server, _ *zoom.Config) { s.FailTokenNext(1, 503) },
			retry: true, errSubstr: "HTTP 503"},
		{name: "token 429 with Retry-After", setup: func(s *zoomtest.Server, _ *zoom.Config) { s.RateLimitTokenNext(1, 7*time.Second) },
			retry: true, after: 7 * time.Second, errSubstr: "zoom: token: HTTP 429"},
		{name: "token bad secret 401", setup: func(_ *zoomtest.Server, c *zoom.Config) { c.ClientSecret = "wrong-secret" },
			errSubstr: "HTTP 401 Unauthorized: invalid_client (Invalid client_id or client_secret)"},
		{name: "token bad account 400", setup: func(_ *zoomtest.Server, c *zoom.Config) { c.AccountID = "other" },
			errSubstr: "zoom: token: HTTP 400"},
		{name: "token connection refused", setup: func(_ *zoomtest.Server, c *zoom.Config) { c.TokenURL = "http://" + closedAddr(t) + "/oauth/token" },
			retry: true, errSubstr: "zoom: token:"},
		{name: "api 500", setup: func(s *zoomtest.Server, _ *zoom.Config) { s.FailNext(1, 500) },
			retry: true, errSubstr: "zoom: create meeting: HTTP 500"},
		{name: "api 429 with Retry-After", setup: func(s *zoomtest.Server, _ *zoom.Config) { s.RateLimitNext(1, 3*time.Second) },
			retry: true, after: 3 * time.Second, errSubstr: "HTTP 429 Too Many Requests: You have reached"},
		{name: "api 429 without Retry-After", setup: func(s *zoomtest.Server, _ *zoom.Config) { s.RateLimitNext(1, 0) },
			retry: true, errSubstr: "HTTP 429"},
		{name: "api 401 with a fresh token", setup: func(s *zoomtest.Server, _ *zoom.Config) { s.FailNext(1, 401) },
			errSubstr: "HTTP 401 Unauthorized: Invalid access token."},
		{name: "api 400", setup: func(s *zoomtest.Server, _ *zoom.Config) { s.FailNext(1, 400) },
			errSubstr: "HTTP 400"},
		{name: "api unknown user 404", setup: func(_ *zoomtest.Server, c *zoom.Config) { c.User = "nobody@example.com" },
			errSubstr: "HTTP 404 Not Found: User does not exist: nobody@example.com. (code 1001)"},
		{name: "api connection refused", setup: func(_ *zoomtest.Server, c *zoom.Config) { c.APIURL = "http://" + closedAddr(t) + "/v2" },
			retry: true, errSubstr: "zoom: create meeting:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := zoomtest.New(accountID, clientID, secret)
			defer srv.Close()
			cfg := fakeConfig(srv)
			if tt.setup != nil {
				tt.setup(srv, &cfg)
			}
			event := tt.event
			if event == "" {
				event = integrations.EventBridge
			}
			n := newNotifier(t, cfg)
			r, err := n.Notify(context.Background(), message(event))
			if err == nil {
				t.Fatalf("Notify succeeded with %+v; want an error", r)
			}
			retry, after := integrations.Retryable(err)
			if retry != tt.retry || after != tt.after {
				t.Errorf("Retryable = %v, %v; want %v, %v (err: %v)", retry, after, tt.retry, tt.after, err)
			}
			if !strings.Contains(err.Error(), tt.errSubstr) {
				t.Errorf("error %q lacks %q", err, tt.errSubstr)
			}
			assertNoSecrets(t, err.Error(), srv)
		})
	}
}

// assertNoSecrets fails when s shows the client secret or any token the
// fake issued.
func assertNoSecrets(t *testing.T, s string, srv *zoomtest.Server) {
	t.Helper()
	if strings.Contains(s, secret) {
		t.Errorf("%q shows the client secret", s)
	}
	for _, tr := range srv.TokenRequests() {
		if tr.Token != "" && strings.Contains(s, tr.Token) {
			t.Errorf("%q shows an access token", s)
		}
	}
}

func TestRevokedCachedTokenIsRetriedWithANewOne(t *testing.T) {
	srv := zoomtest.New(accountID, clientID, secret)
	defer srv.Close()
	n := newNotifier(t, fakeConfig(srv))
	if _, err := n.Notify(context.Background(), message(integrations.EventBridge)); err != nil {
		t.Fatal(err)
	}
	srv.RevokeTokens()

	_, err := n.Notify(context.Background(), message(integrations.EventBridge))
	if retry, _ := integrations.Retryable(err); err == nil || !retry {
		t.Fatalf("with a revoked cached token: err %v, retryable %v; want a temporary 401", err, retry)
	}
	r, err := n.Notify(context.Background(), message(integrations.EventBridge))
	if err != nil || r.JoinURL == "" {
		t.Fatalf("after the revoked token: %+v, %v; want a meeting", r, err)
	}
	if got := len(srv.TokenRequests()); got != 2 {
		t.Errorf("token requests = %d, want 2 (the revoked token was dropped)", got)
	}
}

func TestContextEndsTheMeetingRequest(t *testing.T) {
	srv := zoomtest.New(accountID, clientID, secret)
	defer srv.Close()
	n := newNotifier(t, fakeConfig(srv))
	arrived := srv.StallNext(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-arrived
		cancel()
	}()
	_, err := n.Notify(ctx, message(integrations.EventBridge))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	if retry, _ := integrations.Retryable(err); !retry {
		t.Errorf("a cancelled request is not retryable: %v", err)
	}
}

func TestClientTimeoutBoundsTheTokenRequest(t *testing.T) {
	srv := zoomtest.New(accountID, clientID, secret)
	defer srv.Close()
	cfg := fakeConfig(srv)
	cfg.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond}
	n := newNotifier(t, cfg)
	srv.StallTokenNext(1)
	// The token source does not see Notify's context: only the client's
	// timeout ends a hanging token endpoint.
	_, err := n.Notify(context.Background(), message(integrations.EventBridge))
	if retry, _ := integrations.Retryable(err); err == nil || !retry {
		t.Fatalf("err = %v (retryable %v); want a temporary timeout", err, retry)
	}
	if !strings.Contains(err.Error(), "zoom: token:") {
		t.Errorf("err = %v", err)
	}
}

// A hostile or broken Zoom that echoes credentials in its error bodies must
// not get them into our errors, and nothing is printed to stdout or stderr.
func TestSecretsStayOutOfErrorsAndOutput(t *testing.T) {
	const token = "eyJ-echoed-access-token"
	var stage string
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth/token" {
			_, sec, _ := r.BasicAuth()
			if stage == "token" {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = fmt.Fprintf(w, `{"reason":"bad secret %s","error":"invalid_client %s"}`, sec, sec)
				return
			}
			_, _ = fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":3600}`, token)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
		_, _ = fmt.Fprintf(w, `{"code":1,"message":"upstream saw %s"}`, r.Header.Get("Authorization"))
	}))
	defer echo.Close()

	for _, s := range []string{"token", "api"} {
		stage = s
		var err error
		out := captureOutput(t, func() {
			n := newNotifier(t, zoom.Config{AccountID: accountID, ClientID: clientID, ClientSecret: secret,
				TokenURL: echo.URL + "/oauth/token", APIURL: echo.URL + "/v2"})
			_, err = n.Notify(context.Background(), message(integrations.EventBridge))
		})
		if err == nil {
			t.Fatalf("%s: Notify succeeded", s)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), token) {
			t.Errorf("%s: error shows a credential: %v", s, err)
		}
		if !strings.Contains(err.Error(), "<redacted>") {
			t.Errorf("%s: error %q: want the echoed credential replaced by <redacted>", s, err)
		}
		if out != "" {
			t.Errorf("%s: printed %q", s, out)
		}
	}
}

// captureOutput runs f with os.Stdout and os.Stderr sent to a pipe and
// returns what was written.
func captureOutput(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() {
		os.Stdout, os.Stderr = stdout, stderr
	}()
	f()
	os.Stdout, os.Stderr = stdout, stderr
	_ = w.Close()
	return <-done
}
