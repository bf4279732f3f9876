package opsgenie_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/responder-sre/responder/integrations/opsgenie"
	"github.com/responder-sre/responder/integrations/opsgenie/opsgenietest"
	"github.com/responder-sre/responder/integrations/pagertest"
)

// These tests do not run in parallel: the SDK's client constructor writes a
// package variable (client.UserAgentHeader) that every request reads.

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const apiKey = "9a8b7c6d-1e2f-4a5b-8c7d-0e1f2a3b4c5d"

// groupKey is an Alertmanager group key of a nested route: it has a "/".
const groupKey = `{}/{team="payments"}:{alertname="CheckoutDown"}`

// pageAlias is the alias of the alert paged for the test incident: one per
// incident and installation, never the group key.
const pageAlias = "responder/responder.example/INC-4"

func message(event string) integrations.Message {
	at := time.Date(2026, 3, 14, 2, 7, 0, 0, time.UTC)
	resolved := at.Add(40 * time.Minute)
	return integrations.Message{
		Key:   "INC-4/" + event,
		Event: event,
		Text:  "paging",
		At:    at,
		By:    "",
		Incident: integrations.Incident{
			ID:          "INC-4",
			Title:       "Checkout is down",
			Description: "Checkout answers 503 to every request.",
			Severity:    "S1",
			Status:      "open",
			Source:      "alertmanager",
			DedupKey:    groupKey,
			Team:        "payments",
			Labels:      map[string]string{"alertname": "CheckoutDown", "team": "payments", "severity": "critical"},
			RunbookURL:  "https://runbooks.example/checkout",
			SourceURL:   "http://prometheus.example/graph?g0.expr=up",
			ZoomURL:     "https://zoom.example/j/85746065400",
			URL:         "https://responder.example/incidents/INC-4",
			CreatedAt:   at.Add(-2 * time.Minute),
			OutOfHours:  true,
			ResolvedAt:  &resolved,
			ResolvedBy:  "maria",
			Summary:     "bad deploy rolled back",
		},
	}
}

var team = opsgenie.Responder{Type: "team", Name: "sre"}

func newNotifier(t *testing.T, cfg opsgenie.Config) *opsgenie.Notifier {
	t.Helper()
	n, err := opsgenie.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

func fakeConfig(srv *opsgenietest.Server) opsgenie.Config {
	return opsgenie.Config{APIKey: apiKey, APIURL: srv.Host(), Responder: team}
}

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
	valid := opsgenie.Config{APIKey: apiKey, Responder: team}
	tests := []struct {
		name   string
		mutate func(*opsgenie.Config)
		want   []string
	}{
		{name: "defaults", mutate: func(*opsgenie.Config) {}},
		{name: "eu", mutate: func(c *opsgenie.Config) { c.APIURL = opsgenie.EUAPIURL }},
		{name: "loopback", mutate: func(c *opsgenie.Config) { c.APIURL = "127.0.0.1:8080" }},
		{name: "user by username", mutate: func(c *opsgenie.Config) { c.Responder = opsgenie.Responder{Type: "user", Name: "maria@example.com"} }},
		{name: "escalation by id", mutate: func(c *opsgenie.Config) {
			c.Responder = opsgenie.Responder{Type: "escalation", ID: "4513b7ea-3b91-438f-b7e4-e3e54af9147c"}
		}},
		{name: "nothing", mutate: func(c *opsgenie.Config) { *c = opsgenie.Config{} },
			want: []string{"api_key: required", "responder.type: required", "responder.name: name or id required"}},
		{name: "url with scheme", mutate: func(c *opsgenie.Config) { c.APIURL = "https://api.opsgenie.com" }, want: []string{"api_url:", "a host only"}},
		{name: "url with path", mutate: func(c *opsgenie.Config) { c.APIURL = "api.opsgenie.com/v2" }, want: []string{"api_url:"}},
		{name: "host without api", mutate: func(c *opsgenie.Config) { c.APIURL = "opsgenie-proxy.internal" }, want: []string{"api_url:", "plain http"}},
		{name: "bad type", mutate: func(c *opsgenie.Config) { c.Responder.Type = "group" }, want: []string{`responder.type: "group"`}},
		{name: "name and id", mutate: func(c *opsgenie.Config) { c.Responder.ID = "x" }, want: []string{"responder.id: give name or id, not both"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mutate(&cfg)
			n, err := opsgenie.New(cfg)
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
			if strings.Contains(err.Error(), apiKey) {
				t.Errorf("error shows the API key: %v", err)
			}
		})
	}
}

func TestNewMakesNoRequestPrintsNothingAndLeavesTheClientAlone(t *testing.T) {
	srv := opsgenietest.New(apiKey)
	defer srv.Close()
	hc := &http.Client{}
	cfg := fakeConfig(srv)
	cfg.HTTPClient = hc
	var n *opsgenie.Notifier
	out := captureOutput(t, func() { n = newNotifier(t, cfg) })
	if out != "" {
		t.Errorf("New printed %q (the SDK logs on creation unless silenced)", out)
	}
	if got := len(srv.Requests()); got != 0 {
		t.Errorf("New made %d requests", got)
	}
	if hc.Timeout != 0 || hc.Transport != nil {
		t.Errorf("New changed the caller's client: timeout %v transport %v", hc.Timeout, hc.Transport)
	}
	if n.Name() != "opsgenie" {
		t.Errorf("Name = %q", n.Name())
	}
}

func TestPageCreatesAnAlert(t *testing.T) {
	srv := opsgenietest.New(apiKey)
	defer srv.Close()
	n := newNotifier(t, fakeConfig(srv))
	if _, err := n.Notify(context.Background(), message(integrations.EventPage)); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	cs := srv.Creates()
	if len(cs) != 1 || len(srv.AddResponders()) != 0 {
		t.Fatalf("creates %d, add-responders %d; want 1 and 0", len(cs), len(srv.AddResponders()))
	}
	golden(t, "create.golden.json", cs[0].Raw)

	got := cs[0].Request
	if got.Alias != pageAlias || got.Priority != "P1" || got.Message != "[S1] Checkout is down" || got.Source != "responder" {
		t.Errorf("alias %q priority %q message %q source %q", got.Alias, got.Priority, got.Message, got.Source)
	}
	if want := []opsgenietest.Responder{{Type: "team", Name: "sre"}}; !reflect.DeepEqual(got.Responders, want) {
		t.Errorf("responders = %+v, want %+v", got.Responders, want)
	}
	wantDetails := map[string]string{"incident_id": "INC-4", "severity": "S1", "source": "alertmanager",
		"url": "https://responder.example/incidents/INC-4", "team": "payments"}
	if !reflect.DeepEqual(got.Details, wantDetails) {
		t.Errorf("details = %v, want %v", got.Details, wantDetails)
	}
	for _, s := range []string{"https://responder.example/incidents/INC-4", "Runbook: https://runbooks.example/checkout",
		"Zoom: https://zoom.example/j/85746065400", "alertname=CheckoutDown", "Source: alertmanager http://prometheus.example"} {
		if !strings.Contains(got.Description, s) {
			t.Errorf("description lacks %q:\n%s", s, got.Description)
		}
	}
	if a, ok := srv.Alert(pageAlias); !ok || a.Status != "open" || a.Count != 1 {
		t.Errorf("alert state = %+v, %v", a, ok)
	}
}

func TestPageVariants(t *testing.T) {
	tests := []struct {
		name      string
		responder opsgenie.Responder
		mutate    func(*integrations.Message)
		check     func(t *testing.T, c opsgenietest.CreateRequest)
	}{
		{name: "S2 is P2", mutate: func(m *integrations.Message) { m.Incident.Severity = "S2" },
			check: func(t *testing.T, c opsgenietest.CreateRequest) { wantEq(t, "priority", c.Priority, "P2") }},
		{name: "S3 is P3", mutate: func(m *integrations.Message) { m.Incident.Severity = "S3" },
			check: func(t *testing.T, c opsgenietest.CreateRequest) { wantEq(t, "priority", c.Priority, "P3") }},
		{name: "S4 is P4", mutate: func(m *integrations.Message) { m.Incident.Severity = "S4" },
			check: func(t *testing.T, c opsgenietest.CreateRequest) {
				wantEq(t, "priority", c.Priority, "P4")
				wantEq(t, "tags", strings.Join(c.Tags, ","), "responder,S4")
			}},
		{name: "drill", mutate: func(m *integrations.Message) { m.Incident.Drill = true; m.Incident.Source = "drill" },
			check: func(t *testing.T, c opsgenietest.CreateRequest) {
				wantEq(t, "message", c.Message, "[DRILL] [S1] Checkout is down")
				wantEq(t, "tags", strings.Join(c.Tags, ","), "responder,S1,drill")
				if !strings.HasPrefix(c.Description, "DRILL:") {
					t.Errorf("description = %q", c.Description)
				}
			}},
		{name: "long title is cut to 130 characters", mutate: func(m *integrations.Message) { m.Incident.Title = strings.Repeat("ß", 200) },
			check: func(t *testing.T, c opsgenietest.CreateRequest) {
				if n := len([]rune(c.Message)); n != 130 || !strings.HasSuffix(c.Message, "…") {
					t.Errorf("message has %d characters: %q", n, c.Message)
				}
			}},
		{name: "user by username", responder: opsgenie.Responder{Type: "user", Name: "maria@example.com"},
			check: func(t *testing.T, c opsgenietest.CreateRequest) {
				wantEq(t, "responder", fmt.Sprint(c.Responders), "[{user   maria@example.com}]")
			}},
		{name: "escalation by id", responder: opsgenie.Responder{Type: "escalation", ID: "esc-1"},
			check: func(t *testing.T, c opsgenietest.CreateRequest) {
				wantEq(t, "responder", fmt.Sprint(c.Responders), "[{escalation esc-1  }]")
			}},
		{name: "target is only a label", responder: opsgenie.Responder{Type: "team", ID: "team-uuid-1"},
			mutate: func(m *integrations.Message) { m.Target = "team:team-uuid-1" },
			check: func(t *testing.T, c opsgenietest.CreateRequest) {
				wantEq(t, "responder", fmt.Sprint(c.Responders), "[{team team-uuid-1  }]")
			}},
		{name: "manual incident without dedup key", mutate: func(m *integrations.Message) { m.Incident.DedupKey = ""; m.Incident.Source = "manual" },
			check: func(t *testing.T, c opsgenietest.CreateRequest) { wantEq(t, "alias", c.Alias, pageAlias) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := opsgenietest.New(apiKey)
			defer srv.Close()
			cfg := fakeConfig(srv)
			if tt.responder != (opsgenie.Responder{}) {
				cfg.Responder = tt.responder
			}
			n := newNotifier(t, cfg)
			m := message(integrations.EventPage)
			if tt.mutate != nil {
				tt.mutate(&m)
			}
			if _, err := n.Notify(context.Background(), m); err != nil {
				t.Fatalf("Notify: %v", err)
			}
			cs := srv.Creates()
			if len(cs) != 1 {
				t.Fatalf("creates = %d", len(cs))
			}
			tt.check(t, cs[0].Request)
		})
	}
}

func wantEq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestPageForAnOpsGenieIncidentAddsTheResponder(t *testing.T) {
	srv := opsgenietest.New(apiKey)
	defer srv.Close()
	n := newNotifier(t, fakeConfig(srv))
	m := message(integrations.EventPage)
	m.Incident.Source = "opsgenie"
	m.Incident.DedupKey = "payments/checkout-down" // an OpsGenie alias, "/" and all
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if len(srv.Creates()) != 0 {
		t.Errorf("created %d alerts for an incident that came from OpsGenie", len(srv.Creates()))
	}
	as := srv.AddResponders()
	if len(as) != 1 {
		t.Fatalf("add-responders = %d, want 1 (requests: %+v)", len(as), srv.Requests())
	}
	if as[0].Identifier != "payments/checkout-down" || as[0].IdentifierType != "alias" {
		t.Errorf("identifier %q type %q", as[0].Identifier, as[0].IdentifierType)
	}
	if as[0].Responder != (opsgenietest.Responder{Type: "team", Name: "sre"}) {
		t.Errorf("responder = %+v", as[0].Responder)
	}
	golden(t, "add_responder.golden.json", as[0].Raw)
}

func TestCloseByAlias(t *testing.T) {
	long := strings.Repeat("k", 600)
	sum := sha256.Sum256([]byte(long))
	for key, want := range map[string]string{strings.Repeat("k", 512): strings.Repeat("k", 512), long: hex.EncodeToString(sum[:])} {
		if got := opsgenie.Alias(key); got != want {
			t.Errorf("Alias(%d bytes) = %q, want %q", len(key), got, want)
		}
	}
	longHost := strings.Repeat("h", 600) + ".example"
	longSum := sha256.Sum256([]byte("responder/" + longHost + "/INC-4"))
	tests := []struct {
		name      string
		url       string
		wantAlias string
		by        string
	}{
		{name: "alias with slashes", url: "https://responder.example/incidents/INC-4", wantAlias: pageAlias, by: "maria"},
		{name: "long alias is hashed", url: "https://" + longHost + "/incidents/INC-4", wantAlias: hex.EncodeToString(longSum[:])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := opsgenietest.New(apiKey)
			defer srv.Close()
			n := newNotifier(t, fakeConfig(srv))
			page, closing := message(integrations.EventPage), message(integrations.EventClose)
			page.Incident.URL, closing.Incident.URL = tt.url, tt.url
			closing.By = tt.by
			closing.Incident.Status = "resolved"
			for _, m := range []integrations.Message{page, closing} {
				if _, err := n.Notify(context.Background(), m); err != nil {
					t.Fatalf("Notify %s: %v", m.Event, err)
				}
			}
			if got := srv.Creates()[0].Request.Alias; got != tt.wantAlias {
				t.Errorf("created with alias %q, want %q", got, tt.wantAlias)
			}
			cl := srv.Closes()
			if len(cl) != 1 || cl[0].Identifier != tt.wantAlias || cl[0].IdentifierType != "alias" {
				t.Fatalf("closes = %+v (requests: %+v)", cl, srv.Requests())
			}
			if a, ok := srv.Alert(tt.wantAlias); !ok || a.Status != "closed" {
				t.Errorf("alert = %+v, %v; want closed", a, ok)
			}
			// By falls back to the incident's ResolvedBy, also maria.
			wantEq(t, "note", cl[0].Note, "resolved in Responder by maria: bad deploy rolled back")
			if tt.wantAlias == pageAlias {
				golden(t, "close.golden.json", cl[0].Raw)
			}
		})
	}
}

// The fake refuses an identifier split over several path segments, as
// OpsGenie routes them: without the escaping, TestCloseByAlias would fail.
func TestFakeRefusesAnUnescapedSlash(t *testing.T) {
	srv := opsgenietest.New(apiKey)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Host()+"/v2/alerts/a/b/close?identifierType=alias", strings.NewReader("{}"))
	req.Header.Set("Authorization", "GenieKey "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || len(srv.Closes()) != 0 {
		t.Errorf("status %d, closes %d; want 404 and none", resp.StatusCode, len(srv.Closes()))
	}
}

func TestFailuresAreClassified(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(srv *opsgenietest.Server, cfg *opsgenie.Config, m *integrations.Message)
		retry     bool
		after     time.Duration
		errSubstr string
	}{
		{name: "unsupported event", setup: func(_ *opsgenietest.Server, _ *opsgenie.Config, m *integrations.Message) {
			m.Event = integrations.EventOpened
		},
			errSubstr: "opsgenie: a pager does not take"},
		{name: "500", setup: func(s *opsgenietest.Server, _ *opsgenie.Config, _ *integrations.Message) { s.FailNext(1, 500) },
			retry: true, errSubstr: "opsgenie: create alert: HTTP 500 Internal Server Error"},
		{name: "503 on close", setup: func(s *opsgenietest.Server, _ *opsgenie.Config, m *integrations.Message) {
			s.FailNext(1, 503)
			m.Event = integrations.EventClose
		}, retry: true, errSubstr: "opsgenie: close alert: HTTP 503"},
		{name: "429 with Retry-After", setup: func(s *opsgenietest.Server, _ *opsgenie.Config, _ *integrations.Message) {
			s.RateLimitNext(1, 5*time.Second)
		},
			retry: true, after: 5 * time.Second, errSubstr: "HTTP 429 Too Many Requests: You are making too many requests"},
		{name: "429 without Retry-After", setup: func(s *opsgenietest.Server, _ *opsgenie.Config, _ *integrations.Message) { s.RateLimitNext(1, 0) },
			retry: true, errSubstr: "HTTP 429"},
		{name: "401 bad key", setup: func(_ *opsgenietest.Server, c *opsgenie.Config, _ *integrations.Message) { c.APIKey = "not-the-key" },
			errSubstr: "HTTP 401 Unauthorized: Could not authenticate"},
		{name: "422 invalid responder", setup: func(s *opsgenietest.Server, _ *opsgenie.Config, _ *integrations.Message) { s.FailNext(1, 422) },
			errSubstr: "HTTP 422 Unprocessable Entity: Request body is not processable. Please check the errors.; responders: Responder [team:nosuchteam] does not exist"},
		{name: "422 from add responder", setup: func(s *opsgenietest.Server, _ *opsgenie.Config, m *integrations.Message) {
			s.FailNext(1, 422)
			m.Incident.Source = "opsgenie"
		}, errSubstr: "opsgenie: add responder: HTTP 422"},
		{name: "connection refused", setup: func(_ *opsgenietest.Server, c *opsgenie.Config, _ *integrations.Message) { c.APIURL = closedAddr(t) },
			retry: true, errSubstr: "opsgenie: create alert:"},
		{name: "escalation cannot be added to an OpsGenie alert", setup: func(_ *opsgenietest.Server, c *opsgenie.Config, m *integrations.Message) {
			c.Responder = opsgenie.Responder{Type: "escalation", Name: "sre_escalation"}
			m.Incident.Source = "opsgenie"
		}, errSubstr: "only a user or a team"},
		{name: "OpsGenie incident without alias", setup: func(_ *opsgenietest.Server, _ *opsgenie.Config, m *integrations.Message) {
			m.Incident.Source = "opsgenie"
			m.Incident.DedupKey = ""
		}, errSubstr: "has no alias"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := opsgenietest.New(apiKey)
			defer srv.Close()
			cfg := fakeConfig(srv)
			m := message(integrations.EventPage)
			tt.setup(srv, &cfg, &m)
			var err error
			// The notifier is made inside: the SDK's logger takes
			// os.Stderr when it is created.
			out := captureOutput(t, func() {
				n := newNotifier(t, cfg)
				_, err = n.Notify(context.Background(), m)
			})
			if err == nil {
				t.Fatalf("Notify succeeded; want an error")
			}
			retry, after := integrations.Retryable(err)
			if retry != tt.retry || after != tt.after {
				t.Errorf("Retryable = %v, %v; want %v, %v (err: %v)", retry, after, tt.retry, tt.after, err)
			}
			if !strings.Contains(err.Error(), tt.errSubstr) {
				t.Errorf("error %q lacks %q", err, tt.errSubstr)
			}
			if strings.Contains(err.Error(), apiKey) || strings.Contains(out, apiKey) {
				t.Errorf("the API key shows in %q or %q", err, out)
			}
			if out != "" {
				t.Errorf("printed %q", out)
			}
			if got := len(srv.Requests()); got > 1 {
				t.Errorf("%d requests: the SDK retried", got)
			}
		})
	}
}

func TestTheSDKDoesNotRetry(t *testing.T) {
	srv := opsgenietest.New(apiKey)
	defer srv.Close()
	n := newNotifier(t, fakeConfig(srv))
	srv.FailNext(1, 502)
	if _, err := n.Notify(context.Background(), message(integrations.EventPage)); err == nil {
		t.Fatal("Notify succeeded through a 502")
	}
	if got := len(srv.Requests()); got != 1 {
		t.Fatalf("requests after a 502 = %d, want 1", got)
	}
	// The outbox's retry: the alias folds it into one alert.
	for range 2 {
		if _, err := n.Notify(context.Background(), message(integrations.EventPage)); err != nil {
			t.Fatalf("retry: %v", err)
		}
	}
	if a, _ := srv.Alert(pageAlias); a.Count != 2 || len(srv.Creates()) != 2 {
		t.Errorf("alert %+v after two accepted creates", a)
	}
}

// go-retryablehttp v0.5.1 (what go.sum resolves) keeps the SDK's context;
// a later version drops it, and then only the client's timeout ends a call.
func TestContextEndsTheCall(t *testing.T) {
	srv := opsgenietest.New(apiKey)
	defer srv.Close()
	n := newNotifier(t, fakeConfig(srv))
	arrived := srv.StallNext(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-arrived
		cancel()
	}()
	_, err := n.Notify(ctx, message(integrations.EventPage))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled (does the SDK drop the context?)", err)
	}
	if retry, _ := integrations.Retryable(err); !retry {
		t.Errorf("not retryable: %v", err)
	}
}

func TestClientTimeoutEndsTheCall(t *testing.T) {
	srv := opsgenietest.New(apiKey)
	defer srv.Close()
	cfg := fakeConfig(srv)
	cfg.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond}
	n := newNotifier(t, cfg)
	srv.StallNext(1)
	_, err := n.Notify(context.Background(), message(integrations.EventPage))
	if retry, _ := integrations.Retryable(err); err == nil || !retry {
		t.Fatalf("err = %v (retryable %v); want a temporary timeout", err, retry)
	}
}

// A broken or hostile server that echoes the key in its error body does not
// get it into our error.
func TestKeyStaysOutOfErrors(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = fmt.Fprintf(w, `{"message":"bad %s","errors":{"auth":%q},"took":0.01,"requestId":"r-1"}`, auth, auth)
	}))
	defer echo.Close()
	var err error
	out := captureOutput(t, func() {
		n := newNotifier(t, opsgenie.Config{APIKey: apiKey, APIURL: strings.TrimPrefix(echo.URL, "http://"), Responder: team})
		_, err = n.Notify(context.Background(), message(integrations.EventPage))
	})
	if err == nil {
		t.Fatal("Notify succeeded")
	}
	if strings.Contains(err.Error(), apiKey) || !strings.Contains(err.Error(), "<redacted>") {
		t.Errorf("error = %q; want the key replaced by <redacted>", err)
	}
	if out != "" {
		t.Errorf("printed %q", out)
	}
}

// golden compares body with testdata/name by meaning, or rewrites the file
// with -update. What the SDK adds that OpsGenie does not read is left out
// of both: the untagged IdentifierType and IdentifierValue fields, and the
// empty strings of its responders ("username":"").
func golden(t *testing.T, name string, body []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, body)
	}
	normalise(got)
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
	var want map[string]any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	normalise(want)
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		t.Errorf("body differs from %s (go test -update rewrites it)\ngot:  %s\nwant: %s", path, g, raw)
	}
}

func normalise(body map[string]any) {
	delete(body, "IdentifierType")
	delete(body, "IdentifierValue")
	dropEmpty := func(v any) {
		if r, ok := v.(map[string]any); ok {
			for k, s := range r {
				if s == "" {
					delete(r, k)
				}
			}
		}
	}
	if rs, ok := body["responders"].([]any); ok {
		for _, r := range rs {
			dropEmpty(r)
		}
	}
	dropEmpty(body["responder"])
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
	defer func() { os.Stdout, os.Stderr = stdout, stderr }()
	f()
	os.Stdout, os.Stderr = stdout, stderr
	_ = w.Close()
	return <-done
}

// A note goes to the alert the incident paged: the one Responder created
// (its own alias), or the OpsGenie alert the incident came from.
func TestNoteOnThePagedAlert(t *testing.T) {
	srv := opsgenietest.New(apiKey)
	defer srv.Close()
	n := newNotifier(t, fakeConfig(srv))
	created := message(integrations.EventNote)
	created.Text = "Zoom bridge: https://zoom.example/j/123"
	fromOpsGenie := created
	fromOpsGenie.Incident.Source, fromOpsGenie.Incident.DedupKey = "opsgenie", "payments/checkout-down"
	for _, m := range []integrations.Message{created, fromOpsGenie} {
		if _, err := n.Notify(context.Background(), m); err != nil {
			t.Fatalf("Notify: %v", err)
		}
	}
	notes := srv.Notes()
	if len(notes) != 2 {
		t.Fatalf("notes = %+v, want 2 (requests: %+v)", notes, srv.Requests())
	}
	for i, want := range []string{pageAlias, "payments/checkout-down"} {
		if notes[i].Identifier != want || notes[i].IdentifierType != "alias" || notes[i].Note != created.Text || notes[i].Source != "responder" {
			t.Errorf("note %d = %+v, want on %s", i, notes[i], want)
		}
	}
}

// A page's target names whom it rings: the configured responder by its
// label (by ID too), else anyone written type:name; EventAddResponder adds
// them to the alert Responder created (its alias), and a target that names
// nobody fails for good.
func TestPageTargetNamesTheResponder(t *testing.T) {
	srv := opsgenietest.New(apiKey)
	defer srv.Close()
	byID := fakeConfig(srv)
	byID.Responder = opsgenie.Responder{Type: "team", ID: "4513b7ea-3b91-438f-b7e4-e3e54af9147c"}
	for _, tc := range []struct {
		name   string
		cfg    opsgenie.Config
		target string
		want   opsgenietest.Responder
	}{
		{"configured by name", fakeConfig(srv), "team:sre", opsgenietest.Responder{Type: "team", Name: "sre"}},
		{"configured by id", byID, byID.Responder.Label(), opsgenietest.Responder{Type: "team", ID: byID.Responder.ID}},
		{"a schedule asked for", fakeConfig(srv), "schedule:database-oncall", opsgenietest.Responder{Type: "schedule", Name: "database-oncall"}},
		{"a user asked for", fakeConfig(srv), "user:lead@example.com", opsgenietest.Responder{Type: "user", Username: "lead@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(srv.Creates())
			m := message(integrations.EventPage)
			m.Target = tc.target
			if _, err := newNotifier(t, tc.cfg).Notify(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			cs := srv.Creates()
			if len(cs) != before+1 || len(cs[before].Request.Responders) != 1 || cs[before].Request.Responders[0] != tc.want {
				t.Errorf("created %+v, want one alert for %+v", cs[before:], tc.want)
			}
		})
	}

	n := newNotifier(t, fakeConfig(srv))
	m := message(integrations.EventAddResponder)
	m.Target = "user:lead@example.com"
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	as, alias := srv.AddResponders(), srv.Creates()[0].Request.Alias
	if len(as) != 1 || as[0].Identifier != alias || as[0].Responder.Username != "lead@example.com" {
		t.Errorf("add-responders %+v, want lead@example.com on the alert created, %q", as, alias)
	}

	m.Target = "nobody"
	_, err := n.Notify(context.Background(), m)
	if retry, _ := integrations.Retryable(err); err == nil || retry || !strings.Contains(err.Error(), "type:name") {
		t.Errorf("a target naming nobody: %v (retryable %v)", err, retry)
	}
}

// OpsGenie passes the pager conformance suite against its fake, and so
// does Jira Service Management Operations (the same alert API under its
// own path, responders added through its REST API).
func TestConformance(t *testing.T) {
	account := opsgenietest.JSMAccount{CloudID: "cloud-1", Email: "responder@example.com", APIToken: "atlassian-token-example"}
	for _, pager := range []string{integrations.ChannelOpsGenie, integrations.ChannelJSM} {
		t.Run(pager, func(t *testing.T) {
			pagertest.RunSuite(t, func(t *testing.T) pagertest.Harness {
				var srv *opsgenietest.Server
				var n *opsgenie.Notifier
				if pager == integrations.ChannelJSM {
					srv = opsgenietest.NewJSM(apiKey, account)
					var err error
					n, err = opsgenie.NewJSM(opsgenie.JSMConfig{APIKey: apiKey, APIURL: srv.Host(), Responder: team,
						REST: &opsgenie.JSMREST{URL: srv.URL(), CloudID: account.CloudID, Email: account.Email, APIToken: account.APIToken}})
					if err != nil {
						t.Fatal(err)
					}
				} else {
					srv = opsgenietest.New(apiKey)
					n = newNotifier(t, fakeConfig(srv))
				}
				t.Cleanup(srv.Close)
				return fakeHarness(t, pager, srv, n)
			})
		})
	}
}

// fakeHarness connects the pager conformance suite to n and its fake.
func fakeHarness(t *testing.T, pager string, srv *opsgenietest.Server, n *opsgenie.Notifier) pagertest.Harness {
	prefix := ""
	if pager == integrations.ChannelJSM {
		prefix = opsgenietest.JSMIntegrationPrefix
	}
	return pagertest.Harness{
		Pager:      n,
		Configured: "team:sre", Responder: "user:lead@example.com", ResponderShown: "user:lead@example.com",
		Alert: func(inc integrations.Incident) (pagertest.Alert, bool) {
			alias, err := opsgenie.AlertAlias(pager, inc)
			if err != nil {
				t.Fatal(err)
			}
			a, ok := srv.Alert(alias)
			if !ok {
				return pagertest.Alert{}, false
			}
			out := pagertest.Alert{Open: a.Status == "open", Acknowledged: a.Acknowledged, Text: a.Message}
			for _, r := range a.Responders {
				out.Responders = append(out.Responders, r.Type+":"+r.Name+r.Username+r.ID)
			}
			raised := map[string]bool{} // distinct alerts about the incident: a create is folded into the open alert with its alias
			for _, c := range srv.Creates() {
				if c.Request.Alias == alias && !raised[alias] {
					out.Text += "\n" + c.Request.Description
				}
				if strings.Contains(c.Request.Description, inc.URL) {
					raised[c.Request.Alias] = true
				}
			}
			out.Raised = len(raised)
			for _, n := range srv.Notes() {
				if n.Identifier == alias {
					out.Text += "\n" + n.Note
				}
			}
			return out, true
		},
		Sourced: func(t *testing.T) integrations.Incident {
			req, err := http.NewRequest(http.MethodPost, "http://"+srv.Host()+prefix+"/v2/alerts",
				strings.NewReader(`{"message":"Checkout is down","alias":"checkout-down","responders":[{"type":"team","name":"payments"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "GenieKey "+apiKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("the fake refused the alert: %d", resp.StatusCode)
			}
			inc := pagertest.Incident("INC-9")
			inc.Source, inc.DedupKey = pager, "checkout-down"
			return inc
		},
		Refuse: func(status int, retryAfter time.Duration) {
			if status == http.StatusTooManyRequests {
				srv.RateLimitNext(1, retryAfter)
				return
			}
			srv.FailNext(1, status)
		},
	}
}

// JSM without REST access pages whom an alert is raised for, and says
// exactly why it cannot add anyone to an alert that exists; the API token
// never shows in an error.
func TestJSMWithoutRESTCannotAddResponders(t *testing.T) {
	account := opsgenietest.JSMAccount{CloudID: "cloud-1", Email: "responder@example.com", APIToken: "atlassian-token-example"}
	srv := opsgenietest.NewJSM(apiKey, account)
	defer srv.Close()
	n, err := opsgenie.NewJSM(opsgenie.JSMConfig{APIKey: apiKey, APIURL: srv.Host(), Responder: team})
	if err != nil {
		t.Fatal(err)
	}
	m := message(integrations.EventPage)
	m.Target = "team:sre"
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if cs := srv.Creates(); len(cs) != 1 || !strings.HasPrefix(srv.Requests()[0].EscapedPath, "/jsm/ops/integration/v2/alerts") {
		t.Fatalf("creates %+v, requests %+v", cs, srv.Requests())
	}
	m.Event, m.Target = integrations.EventAddResponder, "user:lead@example.com"
	_, err = n.Notify(context.Background(), m)
	if retry, _ := integrations.Retryable(err); err == nil || retry || !strings.Contains(err.Error(), "notifications.jsm.rest") {
		t.Errorf("add responder without REST: %v (retry %v)", err, retry)
	}

	// With a wrong token, the REST API refuses: for good, and the token
	// stays out of the error.
	bad, err := opsgenie.NewJSM(opsgenie.JSMConfig{APIKey: apiKey, APIURL: srv.Host(), Responder: team,
		REST: &opsgenie.JSMREST{URL: srv.URL(), CloudID: account.CloudID, Email: account.Email, APIToken: "wrong-token-example"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Notify(context.Background(), m)
	if retry, _ := integrations.Retryable(err); err == nil || retry || strings.Contains(err.Error(), "wrong-token-example") || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong token: %v (retry %v)", err, retry)
	}
}

// NewJSM checks its settings like New, naming each key.
func TestNewJSMValidates(t *testing.T) {
	_, err := opsgenie.NewJSM(opsgenie.JSMConfig{APIURL: "https://api.atlassian.com/jsm", Responder: opsgenie.Responder{Type: "team"},
		REST: &opsgenie.JSMREST{URL: "http://jira.example.com", CloudID: "a/b"}})
	if err == nil {
		t.Fatal("NewJSM accepted an empty config")
	}
	for _, want := range []string{"api_key:", "api_url:", "responder.name:", "rest.url:", "rest.cloud_id:", "rest.email:", "rest.api_token:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := opsgenie.NewJSM(opsgenie.JSMConfig{APIKey: apiKey, Responder: team}); err != nil {
		t.Errorf("the defaults (api.atlassian.com): %v", err)
	}
}

// The log shows what OpsGenie or JSM would be asked for a page through
// them, and nothing for another pager's.
func TestPreview(t *testing.T) {
	p := opsgenie.Preview()
	m := message(integrations.EventPage)
	for _, pager := range []string{"opsgenie", "jsm"} {
		m.Target = pager + " team:sre"
		if got := p.Render(m); !strings.HasPrefix(got, pager+": alert P1 for team:sre: [S1] Checkout is down") {
			t.Errorf("%s preview:\n%s", pager, got)
		}
	}
	m.Target = "pagerduty user:PLEAD01"
	if got := p.Render(m); got != "" {
		t.Errorf("a page through PagerDuty previewed as OpsGenie's:\n%s", got)
	}
}
