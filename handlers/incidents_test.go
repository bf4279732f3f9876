package handlers

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
)

func TestDeclareAckResolve(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, body, wantSeverity string
	}{
		{"explicit severity", `{"title":"Checkout is down","severity":"S2","description":"500s everywhere","declared_by":"maria","customer_impact":true}`, "S2"},
		{"classified from labels", `{"title":"Payments failing","labels":{"severity":"critical","env":"production"}}`, "S1"},
		{"no severity, no labels", `{"title":"Something odd"}`, "S4"},
		{"lower-case severity", `{"title":"Minor","severity":"s3"}`, "S3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/api/v1/incidents", tokWrite, []byte(tc.body))
			if r.status != http.StatusCreated {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var v view
			r.json(t, &v)
			if v.Severity != tc.wantSeverity || v.Status != store.StatusOpen || v.Source != store.SourceManual {
				t.Errorf("got severity %s status %s source %s", v.Severity, v.Status, v.Source)
			}
			if !strings.HasPrefix(v.ID, "INC-") || len(v.Timeline) != 1 || v.Timeline[0].Kind != store.KindDeclared {
				t.Errorf("id %q timeline %+v", v.ID, v.Timeline)
			}
			if v.Notifications == nil || v.Alerts == nil {
				t.Errorf("alerts and notifications must be arrays, not null")
			}
		})
	}
	first := e.incident("INC-1")
	if first.DeclaredBy != "maria" || !first.CustomerImpact || first.Description != "500s everywhere" {
		t.Errorf("declared_by %q customer_impact %v description %q", first.DeclaredBy, first.CustomerImpact, first.Description)
	}
	if got := e.incident("INC-3").DeclaredBy; got != "oncall" {
		t.Errorf("declared_by without the field: %q, want the token's name", got)
	}

	// Acknowledge, then the forbidden transitions.
	r := e.do(http.MethodPost, "/api/v1/incidents/INC-1/ack", tokWrite, []byte(`{"by":"dev"}`))
	if r.status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	var v view
	r.json(t, &v)
	if v.Status != store.StatusAcknowledged || v.AcknowledgedBy != "dev" || v.AcknowledgedAt == nil {
		t.Errorf("after ack: %s by %q at %v", v.Status, v.AcknowledgedBy, v.AcknowledgedAt)
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/INC-1/ack", tokWrite, nil); r.status != http.StatusConflict || !strings.Contains(r.errorText(t), "already acknowledged by dev") {
		t.Errorf("second ack: %d %s, want 409 naming who acknowledged", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/api/v1/incidents/INC-1/resolve", tokWrite, []byte(`{"by":"dev","summary":"rolled back"}`))
	if r.status != http.StatusOK {
		t.Fatalf("resolve: %d %s", r.status, r.body)
	}
	r.json(t, &v)
	if v.Status != store.StatusResolved || v.Summary != "rolled back" || v.ResolvedBy != "dev" {
		t.Errorf("after resolve: %+v", v.Incident)
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/INC-1/resolve", tokWrite, nil); r.status != http.StatusConflict {
		t.Errorf("second resolve: %d, want 409", r.status)
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/INC-1/ack", tokWrite, nil); r.status != http.StatusConflict {
		t.Errorf("ack after resolve: %d, want 409", r.status)
	}
	// Resolve straight from open, with no body at all.
	if r := e.do(http.MethodPost, "/api/v1/incidents/INC-2/resolve", tokWrite, nil); r.status != http.StatusOK {
		t.Errorf("resolve with empty body: %d %s", r.status, r.body)
	}
	want := []string{"declared", "acknowledged", "resolved", "postmortem"}
	if got := kinds(e.incident("INC-1").Timeline); !equalStrings(got, want) {
		t.Errorf("timeline %v, want %v", got, want)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{`{"title":"a","severity":"S1"}`, `{"title":"b","severity":"S3"}`, `{"title":"c","severity":"S3"}`} {
		if r := e.do(http.MethodPost, "/api/v1/incidents", tokWrite, []byte(body)); r.status != http.StatusCreated {
			t.Fatalf("declare: %d %s", r.status, r.body)
		}
	}
	e.do(http.MethodPost, "/api/v1/incidents/INC-2/ack", tokWrite, nil)
	e.do(http.MethodPost, "/api/v1/incidents/INC-3/resolve", tokWrite, nil)
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"INC-3", "INC-2", "INC-1"}},
		{"?limit=2", []string{"INC-3", "INC-2"}},
		{"?status=open", []string{"INC-1"}},
		{"?status=acknowledged", []string{"INC-2"}},
		{"?status=resolved", []string{"INC-3"}},
		{"?severity=S3", []string{"INC-3", "INC-2"}},
		{"?severity=S3&status=resolved", []string{"INC-3"}},
		{"?severity=S2", nil},
		{"?before=INC-3", []string{"INC-2", "INC-1"}},
		{"?before=INC-2&limit=1", []string{"INC-1"}},
	}
	for _, tc := range tests {
		var got []string
		for _, inc := range e.list(tc.query) {
			got = append(got, inc.ID)
		}
		if !equalStrings(got, tc.want) {
			t.Errorf("list%s: %v, want %v", tc.query, got, tc.want)
		}
	}
	r := e.do(http.MethodGet, "/api/v1/incidents?limit=2", tokRead, nil)
	var page struct {
		Incidents []store.Incident `json:"incidents"`
		Next      string           `json:"next"`
	}
	r.json(t, &page)
	if len(page.Incidents) != 2 || page.Next != "INC-2" {
		t.Errorf("limit=2: %d incidents, next %q; want 2 and INC-2", len(page.Incidents), page.Next)
	}
	if r := e.do(http.MethodGet, "/api/v1/incidents?before=INC-02", tokRead, nil); r.status != http.StatusBadRequest {
		t.Errorf("before=INC-02: %d, want 400", r.status)
	}
}

// TestBadInput sends every kind of bad request and checks the status, that
// the error names the problem, and that nothing was written.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.postAM(readTestdata(t, "am_firing_v034.json"))
	big := `{"title":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name, method, path, token, contentType, body string
		wantStatus                                   int
		wantError                                    string
	}{
		{"not JSON", "POST", "/api/v1/incidents", tokWrite, "", `title: x`, 400, "malformed JSON"},
		{"truncated JSON", "POST", "/api/v1/incidents", tokWrite, "", `{"title":"x"`, 400, "malformed JSON"},
		{"two values", "POST", "/api/v1/incidents", tokWrite, "", `{"title":"x"}{"title":"y"}`, 400, "more than one value"},
		{"wrong type", "POST", "/api/v1/incidents", tokWrite, "", `{"title":5}`, 400, "title: got JSON number, want a string"},
		{"wrong type in labels", "POST", "/api/v1/incidents", tokWrite, "", `{"title":"x","labels":{"a":1}}`, 400, "labels: got JSON number, want a string"},
		{"array body", "POST", "/api/v1/incidents", tokWrite, "", `[]`, 400, "want a JSON object"},
		{"missing title", "POST", "/api/v1/incidents", tokWrite, "", `{"severity":"S1"}`, 400, "title: required"},
		{"blank title", "POST", "/api/v1/incidents", tokWrite, "", `{"title":"  "}`, 400, "title: required"},
		{"empty body", "POST", "/api/v1/incidents", tokWrite, "", ``, 400, "request body is empty"},
		{"unknown field", "POST", "/api/v1/incidents", tokWrite, "", `{"title":"x","sevrity":"S1"}`, 400, `unknown field "sevrity"`},
		{"unknown severity", "POST", "/api/v1/incidents", tokWrite, "", `{"title":"x","severity":"S9"}`, 400, `severity: unknown severity "S9"`},
		{"invalid UTF-8", "POST", "/api/v1/incidents", tokWrite, "", "{\"title\":\"\xff\xfe\"}", 400, "body: not valid UTF-8"},
		{"body over the limit", "POST", "/api/v1/incidents", tokWrite, "", big, 413, "over the limit"},
		{"wrong content type", "POST", "/api/v1/incidents", tokWrite, "text/plain", `{"title":"x"}`, 415, "send application/json"},
		{"no token", "POST", "/api/v1/incidents", "", "", `{"title":"x"}`, 401, "missing bearer token"},
		{"wrong token", "POST", "/api/v1/incidents", "not-a-real-token-at-all", "", `{"title":"x"}`, 401, "invalid bearer token"},
		{"wrong scope", "POST", "/api/v1/incidents", tokRead, "", `{"title":"x"}`, 403, `lacks the "write" scope`},
		{"ingest token cannot read", "GET", "/api/v1/incidents", tokIngest, "", ``, 403, `lacks the "read" scope`},
		{"unknown incident", "GET", "/api/v1/incidents/INC-999", tokRead, "", ``, 404, `unknown incident "INC-999"`},
		{"malformed id", "GET", "/api/v1/incidents/..%2f..%2fetc", tokRead, "", ``, 404, "unknown incident"},
		{"ack unknown incident", "POST", "/api/v1/incidents/INC-999/ack", tokWrite, "", `{}`, 404, "unknown incident"},
		{"ack unknown field", "POST", "/api/v1/incidents/INC-1/ack", tokWrite, "", `{"who":"x"}`, 400, `unknown field "who"`},
		{"am wrong time", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `{"version":"4","groupKey":"g","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"yesterday"}]}`, 400, `alerts[0].startsAt: "yesterday" is not an RFC 3339 time`},
		{"am negative truncatedAlerts", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `{"version":"4","groupKey":"g","truncatedAlerts":-1,"alerts":[]}`, 400, "truncatedAlerts: got JSON number -1, want a whole number, 0 or more"},
		{"og details not an object", "POST", "/api/v1/alerts/opsgenie", tokIngest, "", `{"action":"Create","alert":{"alias":"a","message":"m","details":[1]}}`, 400, "alert.details: want an object"},
		{"bad status filter", "GET", "/api/v1/incidents?status=closed", tokRead, "", ``, 400, "status:"},
		{"bad severity filter", "GET", "/api/v1/incidents?severity=S9", tokRead, "", ``, 400, "severity:"},
		{"bad limit", "GET", "/api/v1/incidents?limit=0", tokRead, "", ``, 400, "limit:"},
		{"am not JSON", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `<xml/>`, 400, "malformed JSON"},
		{"am wrong version", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `{"version":"3","groupKey":"g","alerts":[]}`, 400, `version: got "3"`},
		{"am no groupKey", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `{"version":"4","alerts":[]}`, 400, "groupKey: required"},
		{"am no alerts", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `{"version":"4","groupKey":"g","alerts":[]}`, 400, "alerts: must hold"},
		{"am bad status", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `{"version":"4","groupKey":"g","alerts":[{"status":"burning","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z"}]}`, 400, "alerts[0].status"},
		{"am no labels", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `{"version":"4","groupKey":"g","alerts":[{"status":"firing","startsAt":"2026-01-01T00:00:00Z"}]}`, 400, "alerts[0].labels: required"},
		{"am no startsAt", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `{"version":"4","groupKey":"g","alerts":[{"status":"firing","labels":{"a":"b"}}]}`, 400, "alerts[0].startsAt: required"},
		{"am wrong type", "POST", "/api/v1/alerts/alertmanager", tokIngest, "", `{"version":"4","groupKey":"g","alerts":{"a":1}}`, 400, "alerts: got JSON object, want an array"},
		{"am write token", "POST", "/api/v1/alerts/alertmanager", tokWrite, "", `{}`, 403, `lacks the "ingest" scope`},
		{"og no action", "POST", "/api/v1/alerts/opsgenie", tokIngest, "", `{"alert":{"alias":"a"}}`, 400, "action: required"},
		{"og no alias", "POST", "/api/v1/alerts/opsgenie", tokIngest, "", `{"action":"Create","alert":{"message":"m"}}`, 400, "alert.alias: required"},
		{"og create without message", "POST", "/api/v1/alerts/opsgenie", tokIngest, "", `{"action":"Create","alert":{"alias":"a"}}`, 400, "alert.message: required"},
		{"og bad priority", "POST", "/api/v1/alerts/opsgenie", tokIngest, "", `{"action":"Create","alert":{"alias":"a","message":"m","priority":{"x":1}}}`, 400, "alert.priority"},
		{"unknown route", "GET", "/api/v1/nothing", tokRead, "", ``, 404, "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			} else if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			e.srv.Handler().ServeHTTP(rec, req)
			r := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.body)
			}
			if msg := r.errorText(t); !strings.Contains(msg, tc.wantError) {
				t.Errorf("error %q does not say %q", msg, tc.wantError)
			}
			if tc.wantStatus == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if after := e.snapshot(); after != before {
				t.Errorf("a refused request changed the store")
			}
			if strings.Contains(string(r.body), tc.token) && tc.token != "" {
				t.Errorf("response echoes the token")
			}
		})
	}
}

func TestBusyStoreAnswers503(t *testing.T) {
	var busy atomic.Bool
	busy.Store(true)
	e := newEnv(t, func(s envSetup) { s.store.Busy = busy.Load })
	before := e.snapshot()
	r := e.do(http.MethodPost, "/api/v1/alerts/alertmanager", tokIngest, readTestdata(t, "am_firing_v034.json"))
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "2" {
		t.Fatalf("busy: status %d Retry-After %q, want 503 and 2", r.status, r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.errorText(t), "retry later") {
		t.Errorf("busy error %q", r.body)
	}
	if e.snapshot() != before {
		t.Errorf("a refused webhook was written")
	}
	if got := e.do(http.MethodGet, "/metrics", "", nil); !strings.Contains(string(got.body), `responder_alerts_rejected_total{reason="busy",source="alertmanager"} 1`) {
		t.Errorf("busy rejection not counted:\n%s", got.body)
	}
	busy.Store(false)
	if res := e.postAM(readTestdata(t, "am_firing_v034.json")); len(res) != 1 || !res[0].Created {
		t.Errorf("after busy: %+v, want the incident created", res)
	}
}

func TestNoTokensConfigured(t *testing.T) {
	e := newEnv(t, withoutTokens())
	r := e.do(http.MethodPost, "/api/v1/incidents", "", []byte(`{"title":"x"}`))
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), "declared_by: required") {
		t.Fatalf("declare without a name or token: %d %s, want 400 asking for declared_by", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/api/v1/incidents", "", []byte(`{"title":"x","declared_by":"maria"}`))
	if r.status != http.StatusCreated {
		t.Fatalf("declare without tokens configured: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/INC-1/ack", "", nil); r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), "by: required") {
		t.Errorf("ack without by: %d %s, want 400", r.status, r.body)
	}
	if r := e.do(http.MethodPost, "/api/v1/incidents/INC-1/ack", "", []byte(`{"by":"dev"}`)); r.status != http.StatusOK {
		t.Errorf("ack with by: %d %s", r.status, r.body)
	}
	// curl -d without -H sends a form content type, as a cross-site form
	// does: refused, the JSON API takes JSON only.
	req := httptest.NewRequest(http.MethodPost, "/api/v1/incidents/INC-1/resolve", strings.NewReader(`{"by":"dev"}`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnsupportedMediaType || !strings.Contains(rec.Body.String(), "send application/json") {
		t.Errorf("resolve sent like curl -d: %d %s, want 415 asking for application/json", rec.Code, rec.Body)
	}
	if v := e.incident("INC-1"); v.Status == store.StatusResolved {
		t.Errorf("a refused resolve resolved the incident")
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := e.do(http.MethodGet, p, "", nil); r.status != http.StatusOK {
			t.Errorf("%s: %d %s", p, r.status, r.body)
		}
	}
	e.postAM(readTestdata(t, "am_firing_v034.json"))
	e.do(http.MethodPost, "/api/v1/alerts/alertmanager", tokIngest, []byte(`{"version":"3"}`))
	r := e.do(http.MethodGet, "/metrics", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("/metrics: %d", r.status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	value := func(name string, lbls map[string]string) float64 {
		f := families[name]
		if f == nil {
			t.Fatalf("metric %s missing", name)
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := lbls[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
		return 0
	}
	if v := value("responder_alerts_ingested_total", map[string]string{"source": "alertmanager"}); v != 2 {
		t.Errorf("alerts ingested %v, want 2", v)
	}
	if v := value("responder_alerts_rejected_total", map[string]string{"source": "alertmanager", "reason": "invalid"}); v != 1 {
		t.Errorf("alerts rejected %v, want 1", v)
	}
	if v := value("responder_incidents_opened_total", map[string]string{"severity": "S1", "source": "alertmanager"}); v != 1 {
		t.Errorf("incidents opened %v, want 1", v)
	}
	_ = e.db.Close()
	if r := e.do(http.MethodGet, "/readyz", "", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("/readyz after the store closed: %d, want 503", r.status)
	}
}

func TestAuthSchemeIsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		header string
		want   int
	}{
		{"bearer " + tokRead, http.StatusOK},
		{"BEARER  " + tokRead, http.StatusOK},
		{"Bearer " + tokRead + " ", http.StatusOK},
		{"Basic " + tokRead, http.StatusUnauthorized},
		{tokRead, http.StatusUnauthorized},
		{"Bearer", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/incidents", nil)
		req.Header.Set("Authorization", tc.header)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Authorization %q: %d, want %d", strings.Replace(tc.header, tokRead, "<token>", 1), rec.Code, tc.want)
		}
	}
}

// The first resolved incident of a kind owes a post-mortem; the next of
// the same kind does not, and a reopened first one still does.
func TestPostmortemRequired(t *testing.T) {
	e := newEnv(t)
	for i, want := range []bool{true, false} {
		r := e.do(http.MethodPost, "/api/v1/incidents", tokWrite, []byte(`{"title":"Disk full on db-1","severity":"S3"}`))
		var v view
		r.json(t, &v)
		r = e.do(http.MethodPost, "/api/v1/incidents/"+v.ID+"/resolve", tokWrite, nil)
		r.json(t, &v)
		if v.PostmortemRequired != want {
			t.Errorf("incident %d of the kind: postmortem_required %v, want %v", i+1, v.PostmortemRequired, want)
		}
		if v.Kind != "manual:Disk full on db-1" {
			t.Errorf("kind %q", v.Kind)
		}
	}
	r := e.do(http.MethodPost, "/api/v1/incidents", tokWrite, []byte(`{"title":"Another kind","severity":"S3"}`))
	var v view
	r.json(t, &v)
	e.do(http.MethodPost, "/api/v1/incidents/"+v.ID+"/resolve", tokWrite, nil)
	if inc := e.incident(v.ID); !inc.PostmortemRequired {
		t.Errorf("a new kind does not owe a post-mortem")
	}
}

// The process metrics move as incidents are handled, drills labelled apart.
func TestProcessMetrics(t *testing.T) {
	e := newEnv(t, withScenario())
	id := e.postAM(readTestdata(t, "am_firing_v034.json"))[0].ID
	r := e.do(http.MethodPost, "/api/v1/drills", tokWrite, []byte(`{"scenario":"database-failover","by":"maria"}`))
	var drill view
	r.json(t, &drill)
	e.advance(5 * time.Minute)
	e.do(http.MethodPost, "/api/v1/incidents/"+id+"/ack", tokWrite, []byte(`{"by":"maria"}`))
	e.do(http.MethodPost, "/api/v1/incidents/"+drill.ID+"/ack", tokWrite, []byte(`{"by":"maria"}`))
	e.advance(25 * time.Minute)
	e.do(http.MethodPost, "/api/v1/incidents/"+drill.ID+"/resolve", tokWrite, []byte(`{"by":"maria"}`))
	e.flush()

	body := e.do(http.MethodGet, "/metrics", "", nil).body
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	find := func(name string, lbls map[string]string) *dto.Metric {
		t.Helper()
		f := families[name]
		if f == nil {
			t.Fatalf("metric %s missing", name)
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := lbls[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			return m
		}
		t.Fatalf("%s%v missing", name, lbls)
		return nil
	}
	if h := find("responder_time_to_acknowledge_seconds", map[string]string{"severity": "S1", "drill": "false"}).GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 300 {
		t.Errorf("time to acknowledge (real): count %d sum %v, want 1 and 300", h.GetSampleCount(), h.GetSampleSum())
	}
	if h := find("responder_time_to_resolve_seconds", map[string]string{"severity": "S1", "drill": "true"}).GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 1800 {
		t.Errorf("time to resolve (drill): count %d sum %v, want 1 and 1800", h.GetSampleCount(), h.GetSampleSum())
	}
	if g := find("responder_open_incidents", map[string]string{"severity": "S1", "drill": "false"}).GetGauge().GetValue(); g != 1 {
		t.Errorf("open S1 incidents %v, want 1", g)
	}
	if c := find("responder_notifications_total", map[string]string{"channel": "log", "state": "sent"}).GetCounter().GetValue(); c < 4 {
		t.Errorf("log notifications sent %v, want at least 4", c)
	}
	if c := find("responder_incidents_opened_total", map[string]string{"severity": "S1", "source": "drill"}).GetCounter().GetValue(); c != 1 {
		t.Errorf("drills opened %v, want 1", c)
	}
	find("responder_outbox_oldest_pending_seconds", nil)
	find("responder_http_requests_total", map[string]string{"url": "/api/v1/incidents/:id/ack", "code": "200"})
}

// A declaration retried with the same Idempotency-Key (its answer lost)
// gets the incident the first one opened; the key is per token and path,
// a key reused for another request is refused, and a bad key is a 400.
func TestDeclareIdempotencyKey(t *testing.T) {
	e := newEnv(t, withScenario())
	key := func(k ...string) http.Header { return http.Header{"Idempotency-Key": k} }
	body := []byte(`{"title":"Checkout is down","severity":"S2","declared_by":"maria"}`)
	first := e.doWith(http.MethodPost, "/api/v1/incidents", tokWrite, body, key("9b1deb4d-3b7d"))
	if first.status != http.StatusCreated || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: status %d replayed %q: %s", first.status, first.header.Get("Idempotent-Replayed"), first.body)
	}
	var v1 view
	first.json(t, &v1)
	before := e.snapshot()
	again := e.doWith(http.MethodPost, "/api/v1/incidents", tokWrite, body, key("9b1deb4d-3b7d"))
	var v2 view
	again.json(t, &v2)
	if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" || v2.ID != v1.ID {
		t.Fatalf("retry: status %d replayed %q id %s, want 201 true %s", again.status, again.header.Get("Idempotent-Replayed"), v2.ID, v1.ID)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("the retry wrote:\nbefore %s\nafter  %s", before, after)
	}

	other := e.doWith(http.MethodPost, "/api/v1/incidents", tokWrite, []byte(`{"title":"Search is slow","declared_by":"maria"}`), key("9b1deb4d-3b7d"))
	if other.status != http.StatusUnprocessableEntity || !strings.Contains(other.errorText(t), v1.ID) {
		t.Errorf("key reused for another request: status %d %s, want 422 naming %s", other.status, other.body, v1.ID)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("the refused request wrote")
	}

	// Without a key, or with a new one, the same body opens a new incident.
	for _, h := range []http.Header{nil, key("another-key")} {
		r := e.doWith(http.MethodPost, "/api/v1/incidents", tokWrite, body, h)
		var v view
		r.json(t, &v)
		if r.status != http.StatusCreated || v.ID == v1.ID {
			t.Errorf("header %v: status %d id %s, want a new incident", h, r.status, v.ID)
		}
	}

	for _, bad := range [][]string{{""}, {"has space"}, {strings.Repeat("k", 256)}, {"a", "b"}, {"ключ"}} {
		r := e.doWith(http.MethodPost, "/api/v1/incidents", tokWrite, body, key(bad...))
		if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), "Idempotency-Key") {
			t.Errorf("key %q: status %d %s, want 400 naming the header", bad, r.status, r.body)
		}
	}

	// The key is remembered for a day; after that it opens a new incident.
	e.advance(incident.IdempotencyWindow + time.Minute)
	late := e.doWith(http.MethodPost, "/api/v1/incidents", tokWrite, body, key("9b1deb4d-3b7d"))
	var v3 view
	late.json(t, &v3)
	if late.status != http.StatusCreated || late.header.Get("Idempotent-Replayed") != "" || v3.ID == v1.ID {
		t.Errorf("after the window: status %d replayed %q id %s, want a new incident", late.status, late.header.Get("Idempotent-Replayed"), v3.ID)
	}

	// Drills go through the same path.
	d1 := e.doWith(http.MethodPost, "/api/v1/drills", tokWrite, []byte(`{"scenario":"database-failover","by":"maria"}`), key("drill-1"))
	d2 := e.doWith(http.MethodPost, "/api/v1/drills", tokWrite, []byte(`{"scenario":"database-failover","by":"maria"}`), key("drill-1"))
	var dv1, dv2 view
	d1.json(t, &dv1)
	d2.json(t, &dv2)
	if d1.status != http.StatusCreated || d2.header.Get("Idempotent-Replayed") != "true" || dv1.ID != dv2.ID {
		t.Errorf("drill retry: statuses %d %d ids %s %s, want one drill", d1.status, d2.status, dv1.ID, dv2.ID)
	}
}
