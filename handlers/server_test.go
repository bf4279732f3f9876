package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/integrations/outbox"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// Tokens used by the tests; each carries a different set of scopes.
const (
	tokIngest = "ingest-token-0123456789"
	tokRead   = "read-token-0123456789"
	tokWrite  = "write-token-0123456789"
	tokAll    = "all-scopes-token-0123456789"
)

// testPolicy is the default policy as configs builds it.
func testPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	rule := func(name string, sev policy.Severity, ms ...string) policy.Rule {
		r := policy.Rule{Name: name, Severity: sev}
		for _, m := range ms {
			pm, err := labels.ParseMatcher(m)
			if err != nil {
				t.Fatalf("matcher %s: %v", m, err)
			}
			r.Matchers = append(r.Matchers, pm)
		}
		return r
	}
	proc := map[policy.Severity]policy.Process{}
	for _, s := range policy.Severities() {
		proc[s] = policy.Process{AutoResolve: true}
	}
	return &policy.Policy{
		Rules: []policy.Rule{
			rule("critical-in-production", policy.S1, `severity=~"critical|page"`, `env=~"prod|production"`),
			rule("critical", policy.S2, `severity=~"critical|page"`),
			rule("warning", policy.S3, `severity=~"warning|error"`),
		},
		DefaultSeverity:    policy.S4,
		OpsGeniePriorities: map[string]policy.Severity{"P1": policy.S1, "P2": policy.S2, "P3": policy.S3, "P4": policy.S4, "P5": policy.S4},
		Process:            proc,
		ReopenWithin:       30 * time.Minute,
	}
}

// recorder is a notifier that keeps what it was told. It stands in for the
// log channel, which every event reaches.
type recorder struct {
	mu   sync.Mutex
	msgs []integrations.Message
}

func (r *recorder) Name() string { return "log" }

func (r *recorder) Notify(_ context.Context, m integrations.Message) (integrations.Receipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return integrations.Receipt{}, nil
}

// events lists "INC-n:event" for every message delivered so far, once the
// outbox is empty.
func (e *testEnv) events() []string {
	e.t.Helper()
	e.flush()
	r := e.notes
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		out = append(out, m.Incident.ID+":"+m.Event)
	}
	return out
}

// perIncident orders events ("INC-n:event") by incident, keeping each
// incident's own order.
func perIncident(events []string) []string {
	out := slices.Clone(events)
	slices.SortStableFunc(out, func(a, b string) int {
		ia, _, _ := strings.Cut(a, ":")
		ib, _, _ := strings.Cut(b, ":")
		return strings.Compare(ia, ib)
	})
	return out
}

// flush waits until no intent is pending (bounded).
func (e *testEnv) flush() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pending []store.Intent
		err := e.db.View(context.Background(), func(tx store.Tx) error {
			var err error
			pending, err = tx.PendingIntents(0, 0)
			return err
		})
		if err != nil {
			e.t.Fatalf("read outbox: %v", err)
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d intents still pending after 10s: %+v", len(pending), pending[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type testEnv struct {
	t       *testing.T
	srv     *Server
	svc     *incident.Service
	outbox  incident.Kicker // nil without a dispatcher
	db      *bolt.DB
	path    string
	notes   *recorder
	mu      sync.Mutex
	now     time.Time
	started time.Time
	tokens  bool
	// stopDispatcher stops the env's dispatcher and waits for it.
	stopDispatcher func()
}

// envSetup is what an envOption may change before the server is built.
type envSetup struct {
	path      *string // the store file; a new one in a temp dir by default
	cfg       *Config
	deps      *Deps
	inc       *incident.Config
	incDeps   *incident.Deps
	store     *bolt.Options
	dispatch  *outbox.Config
	notifiers *[]integrations.Notifier
	// dispatchClock is the dispatcher's clock: e.dispatchClock unless an
	// option gives another (a virtual clock that a test moves itself).
	dispatchClock *func() time.Time
	// now is the env's clock, which an option may set before the service
	// starts (the time it started).
	now *time.Time
	// backup serves the store's backups (GET /api/v1/admin/backup).
	backup *bool
}

type envOption func(envSetup)

func withoutTokens() envOption {
	return func(s envSetup) { s.cfg.Tokens = nil }
}

func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	e := &testEnv{t: t, notes: &recorder{}, now: time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC), tokens: true, started: time.Now()}
	cfg := Config{
		BodyLimit:  64 << 10,
		RetryAfter: 2 * time.Second,
		// httptest.NewRequest sends Host: example.com.
		AllowedHosts: []string{"example.com"},
		Tokens: []Token{
			{Name: "alertmanager", Value: tokIngest, Scopes: []string{ScopeIngest}},
			{Name: "viewer", Value: tokRead, Scopes: []string{ScopeRead}},
			{Name: "oncall", Value: tokWrite, Scopes: []string{ScopeWrite}},
			{Name: "admin", Value: tokAll, Scopes: []string{ScopeIngest, ScopeRead, ScopeWrite}},
		},
	}
	inc := incident.Config{ExternalURL: "http://127.0.0.1:9095", Routes: incident.Routes{Log: true}}
	incDeps := incident.Deps{Policy: testPolicy(t)}
	deps := Deps{Log: zerolog.Nop(), Now: e.clock}
	var so bolt.Options
	var dc outbox.Config
	notifiers := []integrations.Notifier{e.notes}
	dclock := e.dispatchClock
	e.path = filepath.Join(t.TempDir(), "responder.db")
	backup := false
	for _, o := range opts {
		o(envSetup{path: &e.path, cfg: &cfg, deps: &deps, inc: &inc, incDeps: &incDeps, store: &so, dispatch: &dc, notifiers: &notifiers,
			dispatchClock: &dclock, now: &e.now, backup: &backup})
	}
	e.tokens = len(cfg.Tokens) > 0
	db, err := bolt.Open(e.path, so)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e.db = db
	if backup {
		deps.Backup = db
	}
	e.stopDispatcher = func() {}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if dc.Redactor == nil {
		dc.Redactor = integrations.NewRedactor(cfg.Secrets)
	}
	if deps.Outbox == nil {
		d := outbox.New(dc, db, notifiers, deps.Log, dclock, func(id string) string { return incident.URL(inc.ExternalURL, id) }, deps.Registry)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		var once sync.Once
		e.stopDispatcher = func() { once.Do(func() { cancel(); <-done }) }
		t.Cleanup(e.stopDispatcher)
		for deadline := time.Now().Add(5 * time.Second); !d.Running(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("dispatcher did not start")
			}
		}
		deps.Outbox = d
	}
	incDeps.Store, incDeps.Log, incDeps.Now, incDeps.Registry = db, deps.Log, deps.Now, deps.Registry
	if k, ok := deps.Outbox.(incident.Kicker); ok {
		incDeps.Outbox, e.outbox = k, k
	}
	e.svc = incident.New(inc, incDeps)
	deps.Incidents = e.svc
	e.srv = New(cfg, deps)
	return e
}

// kick tells the env's dispatcher that intents were committed.
func (e *testEnv) kick() {
	if e.outbox != nil {
		e.outbox.Kick()
	}
}

// dispatchClock runs on from the test clock in real time, so that retry
// delays pass while intents carry the test clock's times.
func (e *testEnv) dispatchClock() time.Time {
	return e.clock().Add(time.Since(e.started))
}

func (e *testEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *testEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode response %q: %v", r.body, err)
	}
}

func (r response) errorText(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("error response without error text: %s", r.body)
	}
	return e.Error
}

// do sends a request with the token (none when empty) and a JSON body.
func (e *testEnv) do(method, path, token string, body []byte) response {
	e.t.Helper()
	return e.doWith(method, path, token, body, nil)
}

// doWith is do with extra request headers.
func (e *testEnv) doWith(method, path, token string, body []byte, header http.Header) response {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func (e *testEnv) tok(t string) string {
	if !e.tokens {
		return ""
	}
	return t
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

// postAM posts an Alertmanager body and returns the incidents it touched.
func (e *testEnv) postAM(body []byte) []ingestResult {
	e.t.Helper()
	return e.postWebhook("/api/v1/alerts/alertmanager", body)
}

// postOG posts an OpsGenie body and returns the incidents it touched.
func (e *testEnv) postOG(body []byte) []ingestResult {
	e.t.Helper()
	return e.postWebhook("/api/v1/alerts/opsgenie", body)
}

func (e *testEnv) postWebhook(path string, body []byte) []ingestResult {
	e.t.Helper()
	r := e.do(http.MethodPost, path, e.tok(tokIngest), body)
	if r.status != http.StatusAccepted {
		e.t.Fatalf("%s: status %d: %s", path, r.status, r.body)
	}
	var out ingestResponse
	r.json(e.t, &out)
	return out.Incidents
}

// view is the decoded incident JSON.
type view struct {
	store.Incident
	Alerts        []store.Alert               `json:"alerts"`
	Timeline      []store.Entry               `json:"timeline"`
	Notifications []store.Intent              `json:"notifications"`
	ActionItems   []incident.ActionItemView   `json:"action_items"`
	Postmortem    *incident.PostmortemSummary `json:"postmortem"`
}

func (e *testEnv) incident(id string) view {
	e.t.Helper()
	r := e.do(http.MethodGet, "/api/v1/incidents/"+id, e.tok(tokRead), nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("get %s: status %d: %s", id, r.status, r.body)
	}
	var v view
	r.json(e.t, &v)
	return v
}

func (e *testEnv) list(query string) []store.Incident {
	e.t.Helper()
	r := e.do(http.MethodGet, "/api/v1/incidents"+query, e.tok(tokRead), nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("list %s: status %d: %s", query, r.status, r.body)
	}
	var out struct {
		Incidents []store.Incident `json:"incidents"`
	}
	r.json(e.t, &out)
	return out.Incidents
}

// snapshot is everything in the store, as text, to prove that a refused
// request wrote nothing.
func (e *testEnv) snapshot() string {
	e.t.Helper()
	e.flush() // deliveries of earlier requests change intents; let them finish
	var b strings.Builder
	err := e.db.View(context.Background(), func(tx store.Tx) error {
		page, err := tx.ListIncidents(store.Filter{})
		if err != nil {
			return err
		}
		for _, inc := range page.Incidents {
			alerts, err := tx.Alerts(inc.ID)
			if err != nil {
				return err
			}
			timeline, err := tx.Timeline(inc.ID)
			if err != nil {
				return err
			}
			intents, err := tx.IncidentIntents(inc.ID)
			if err != nil {
				return err
			}
			enc, _ := json.Marshal([]any{inc, alerts, timeline, intents})
			b.Write(enc)
		}
		un, err := tx.Unmatched(0)
		if err != nil {
			return err
		}
		enc, _ := json.Marshal(un)
		b.Write(enc)
		return nil
	})
	if err != nil {
		e.t.Fatalf("snapshot: %v", err)
	}
	return b.String()
}

func kinds(entries []store.Entry) []string {
	out := make([]string, 0, len(entries))
	for _, en := range entries {
		out = append(out, en.Kind)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
