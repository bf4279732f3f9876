package handlers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/store"
)

// logSink collects the server's log lines; safe for concurrent writes.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// withHostileLimits gives the env the production defaults that matter to
// hostile input (1 MiB bodies, 1000 alerts per webhook) and logs into sink.
func withHostileLimits(sink io.Writer) envOption {
	return func(s envSetup) {
		s.cfg.BodyLimit = 1 << 20
		s.cfg.MaxAlerts = 1000
		s.deps.Log = zerolog.New(sink)
	}
}

// realServer serves e over loopback TCP with the limits run() gives
// net/http, so that header limits are net/http's own.
func realServer(t *testing.T, e *testEnv) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(e.srv.Handler())
	srv.Config.MaxHeaderBytes = 64 << 10
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Config.ReadTimeout = 30 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// sendRaw writes req on a new TCP connection (while reading, so that a
// server answering before the request is all written is still heard) and
// reads the response.
func sendRaw(t *testing.T, addr string, req *http.Request) (status int, header http.Header, body []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	go func() { _ = req.Write(conn) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp.StatusCode, resp.Header, body
}

// floodAlerts is an Alertmanager webhook of n distinct firing alerts.
func floodAlerts(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"version":"4","groupKey":"{}:{alertname=\"Flood\"}","status":"firing","receiver":"r","groupLabels":{"alertname":"Flood"},"commonLabels":{"alertname":"Flood"},"alerts":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"status":"firing","labels":{"alertname":"Flood","i":"%d"},"startsAt":"2026-11-17T02:00:00Z"}`, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func amWith(labels string) []byte {
	return []byte(`{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":` + labels + `,"startsAt":"2026-11-17T02:00:00Z"}]}`)
}

// TestHostileRequests sends hostile requests over TCP to the real server
// on a real store: each gets its status and, when the server answered
// (not net/http before it), an {"error"} naming the problem. A refused
// request writes nothing; the few accepted rows check what was stored.
func TestHostileRequests(t *testing.T) {
	logs := &logSink{}
	e := newEnv(t, withHostileLimits(logs))
	addr := realServer(t, e)
	seeded := e.do(http.MethodPost, "/api/v1/incidents", tokWrite, []byte(`{"title":"seed","severity":"S3"}`))
	if seeded.status != http.StatusCreated {
		t.Fatalf("seed: %d %s", seeded.status, seeded.body)
	}

	nest := func(open, close string, n int) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	sqlHTML := map[string]string{
		"q":    `'; DROP TABLE incidents; --`,
		"html": `<script>alert("x")</script>`,
		"tmpl": `{{.Secret}} ${jndi:ldap://x}`,
	}
	sqlHTMLJSON, _ := json.Marshal(sqlHTML)
	manyHeaders := http.Header{}
	for i := range 2000 {
		manyHeaders.Set(fmt.Sprintf("X-Flood-%d", i), strings.Repeat("v", 40))
	}

	type row struct {
		name        string
		method      string
		path        string
		token       string
		contentType string // "" = application/json when there is a body
		header      http.Header
		body        []byte
		chunked     bool // send the body without a Content-Length
		wantStatus  int
		wantError   string // "" = net/http answered, not JSON
		// accepted checks what an accepted request stored (nil: refused,
		// the store must not change).
		accepted func(t *testing.T, body []byte)
	}
	rows := []row{
		// Deeply nested JSON.
		{name: "declare nested 20000 deep", method: "POST", path: "/api/v1/incidents", token: tokWrite,
			body: []byte(`{"title":"x","labels":` + nest("[", "]", 20000) + `}`), wantStatus: 400, wantError: "nested more than 32 levels"},
		{name: "alertmanager nested in annotations", method: "POST", path: "/api/v1/alerts/alertmanager", token: tokIngest,
			body:       []byte(`{"version":"4","groupKey":"g","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-11-17T02:00:00Z","annotations":{"x":` + nest("[", "]", 5000) + `}}]}`),
			wantStatus: 400, wantError: "nested more than 32 levels"},
		{name: "opsgenie details nested 9000 deep", method: "POST", path: "/api/v1/alerts/opsgenie", token: tokIngest,
			body:       []byte(`{"action":"Create","alert":{"alias":"deep","message":"m","details":{"x":` + strings.Repeat(`{"a":`, 9000) + "1" + strings.Repeat("}", 9000) + `}}}`),
			wantStatus: 400, wantError: "nested more than 32 levels"},
		{name: "brackets inside strings do not count", method: "POST", path: "/api/v1/incidents", token: tokWrite,
			body: []byte(`{"title":"` + strings.Repeat("[{", 200) + `","severity":"S4"}`), wantStatus: 201,
			accepted: func(t *testing.T, body []byte) {
				var v view
				if err := json.Unmarshal(body, &v); err != nil || v.Title != strings.Repeat("[{", 200) {
					t.Errorf("title stored as %q (%v)", v.Title, err)
				}
			}},

		// Huge strings.
		{name: "declare title of 100 KiB", method: "POST", path: "/api/v1/incidents", token: tokWrite,
			body: []byte(`{"title":"` + strings.Repeat("t", 100<<10) + `"}`), wantStatus: 400, wantError: "title: 102400 bytes, at most 500 allowed"},
		{name: "declare label value of 2 KiB", method: "POST", path: "/api/v1/incidents", token: tokWrite,
			body: []byte(`{"title":"x","labels":{"service":"` + strings.Repeat("v", 2048) + `"}}`), wantStatus: 400, wantError: "labels.service: 2048 bytes, at most 1024 allowed"},
		{name: "declare 1000 labels", method: "POST", path: "/api/v1/incidents", token: tokWrite,
			body: func() []byte {
				m := map[string]any{"title": "x"}
				l := map[string]string{}
				for i := range 1000 {
					l["l"+strconv.Itoa(i)] = "v"
				}
				m["labels"] = l
				b, _ := json.Marshal(m)
				return b
			}(), wantStatus: 400, wantError: "labels: 1000 labels, at most 64 allowed"},
		{name: "alertmanager groupKey of 20 KiB", method: "POST", path: "/api/v1/alerts/alertmanager", token: tokIngest,
			body:       []byte(`{"version":"4","groupKey":"` + strings.Repeat("k", 20<<10) + `","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-11-17T02:00:00Z"}]}`),
			wantStatus: 400, wantError: "groupKey: 20480 bytes, at most 16384 allowed"},
		{name: "alertmanager label value of 512 KiB is kept whole", method: "POST", path: "/api/v1/alerts/alertmanager", token: tokIngest,
			body: amWith(`{"alertname":"Big","blob":"` + strings.Repeat("b", 512<<10) + `"}`), wantStatus: 202,
			accepted: func(t *testing.T, body []byte) {
				var out ingestResponse
				if err := json.Unmarshal(body, &out); err != nil || len(out.Incidents) != 1 {
					t.Fatalf("answer %s: %v", body, err)
				}
				v := e.incident(out.Incidents[0].ID)
				if len(v.Alerts) != 1 || len(v.Alerts[0].Labels["blob"]) != 512<<10 {
					t.Errorf("the big label was not stored whole")
				}
			}},
		{name: "body of 2 MiB", method: "POST", path: "/api/v1/alerts/alertmanager", token: tokIngest,
			body: amWith(`{"blob":"` + strings.Repeat("b", 2<<20) + `"}`), wantStatus: 413, wantError: "over the limit of 1048576"},
		{name: "chunked body of 2 MiB", method: "POST", path: "/api/v1/incidents", token: tokWrite, chunked: true,
			body: []byte(`{"title":"` + strings.Repeat("c", 2<<20) + `"}`), wantStatus: 413, wantError: "over the limit of 1048576"},
		{name: "URL of 60 KiB", method: "GET", path: "/api/v1/incidents/INC-" + strings.Repeat("9", 60<<10), token: tokRead,
			wantStatus: 404, wantError: "… (61444 bytes)"},

		// Many alerts in one body: accepted, capped, and said so.
		{name: "10,000 alerts in one webhook", method: "POST", path: "/api/v1/alerts/alertmanager", token: tokIngest,
			body: floodAlerts(10000), wantStatus: 202,
			accepted: func(t *testing.T, body []byte) {
				var out ingestResponse
				if err := json.Unmarshal(body, &out); err != nil || len(out.Incidents) != 1 {
					t.Fatalf("answer %s: %v", body, err)
				}
				want := truncation{Received: 10000, Kept: 1000, LeftOut: 9000, MaxAlerts: 1000}
				if out.Truncated == nil || *out.Truncated != want {
					t.Errorf("truncated = %+v, want %+v", out.Truncated, want)
				}
				if !strings.Contains(out.Warning, "kept the first 1000 of 10000 alerts") || !strings.Contains(out.Warning, "will not auto-resolve") {
					t.Errorf("warning %q does not say what was kept", out.Warning)
				}
				v := e.incident(out.Incidents[0].ID)
				if v.AlertsTotal != 1000 || v.AlertsFiring != 1000 || v.AlertsTruncated != 9000 || len(v.Alerts) != 1000 {
					t.Errorf("stored %d alerts (total %d, firing %d), truncated %d; want 1000 and 9000", len(v.Alerts), v.AlertsTotal, v.AlertsFiring, v.AlertsTruncated)
				}
				for _, a := range v.Alerts {
					if n, _ := strconv.Atoi(a.Labels["i"]); n >= 1000 {
						t.Fatalf("alert %s was stored: only the first 1000 are kept", a.Labels["i"])
					}
				}
				note := false
				for _, en := range v.Timeline {
					note = note || (en.Kind == store.KindNote && strings.Contains(en.Text, "first 1000 of 10000 alerts") && strings.Contains(en.Text, "9000"))
				}
				if !note {
					t.Errorf("no timeline note of the truncation: %v", kinds(v.Timeline))
				}
			}},

		// Invalid UTF-8.
		{name: "declare title not UTF-8", method: "POST", path: "/api/v1/incidents", token: tokWrite,
			body: []byte("{\"title\":\"caf\xe9\"}"), wantStatus: 400, wantError: "body: not valid UTF-8"},
		{name: "alertmanager label not UTF-8", method: "POST", path: "/api/v1/alerts/alertmanager", token: tokIngest,
			body: amWith("{\"alertname\":\"\xc3\x28\"}"), wantStatus: 400, wantError: "body: not valid UTF-8"},
		{name: "id not UTF-8", method: "GET", path: "/api/v1/incidents/INC-%ff%fe", token: tokRead,
			wantStatus: 404, wantError: "unknown incident"},

		// Content types.
		{name: "text/plain", method: "POST", path: "/api/v1/incidents", token: tokWrite, contentType: "text/plain",
			body: []byte(`{"title":"x"}`), wantStatus: 415, wantError: `content type "text/plain": send application/json`},
		{name: "multipart", method: "POST", path: "/api/v1/alerts/alertmanager", token: tokIngest, contentType: "multipart/form-data; boundary=x",
			body: []byte("--x\r\n\r\n{}\r\n--x--"), wantStatus: 415, wantError: "send application/json"},
		{name: "unparsable content type", method: "POST", path: "/api/v1/incidents", token: tokWrite, contentType: "application/json;;=",
			body: []byte(`{"title":"x"}`), wantStatus: 415, wantError: "send application/json"},
		{name: "XML", method: "POST", path: "/api/v1/alerts/opsgenie", token: tokIngest, contentType: "application/xml",
			body: []byte(`<alert/>`), wantStatus: 415, wantError: "send application/json"},

		// Header floods: net/http refuses them before any handler runs,
		// with its own plain-text 431.
		{name: "2000 headers", method: "GET", path: "/api/v1/incidents", token: tokRead, header: manyHeaders, wantStatus: 431},
		{name: "one header of 100 KiB", method: "GET", path: "/api/v1/incidents", token: tokRead,
			header: http.Header{"X-Big": {strings.Repeat("h", 100<<10)}}, wantStatus: 431},
		{name: "bearer token of 60 KiB", method: "GET", path: "/api/v1/incidents", token: strings.Repeat("A", 60<<10),
			wantStatus: 401, wantError: "invalid bearer token"},

		// Path traversal in ids, plain and encoded.
		{name: "traversal encoded", method: "GET", path: "/api/v1/incidents/..%2F..%2F..%2Fetc%2Fpasswd", token: tokRead,
			wantStatus: 404, wantError: `unknown incident "..%2F..%2F..%2Fetc%2Fpasswd"`},
		{name: "traversal double encoded", method: "GET", path: "/api/v1/incidents/%252e%252e%252fmetrics", token: tokRead,
			wantStatus: 404, wantError: "unknown incident"},
		{name: "traversal to another incident", method: "GET", path: "/api/v1/incidents/INC-2%2F..%2FINC-1", token: tokRead,
			wantStatus: 404, wantError: "unknown incident"},
		{name: "traversal in a write", method: "POST", path: "/api/v1/incidents/..%2FINC-1/ack", token: tokWrite,
			body: []byte(`{"by":"x"}`), wantStatus: 404, wantError: "unknown incident"},
		{name: "dot segments", method: "POST", path: "/api/v1/incidents/../incidents/INC-1/resolve", token: tokWrite,
			body: []byte(`{"by":"x"}`), wantStatus: 404, wantError: "not found"},
		{name: "NUL in id", method: "GET", path: "/api/v1/incidents/INC-1%00", token: tokRead,
			wantStatus: 404, wantError: "unknown incident"},
		{name: "traversal in the post-mortem path", method: "GET", path: "/api/v1/incidents/%2e%2e/postmortem", token: tokRead,
			wantStatus: 404, wantError: "unknown incident"},
		{name: "traversal in before", method: "GET", path: "/api/v1/incidents?before=..%2FINC-1", token: tokRead,
			wantStatus: 400, wantError: "before:"},

		// SQL, HTML and template text in labels: stored verbatim, answered
		// as escaped JSON, never interpreted.
		{name: "SQL and HTML in declared labels", method: "POST", path: "/api/v1/incidents", token: tokWrite,
			body:       []byte(`{"title":"<img src=x onerror=alert(1)>","severity":"S4","labels":` + string(sqlHTMLJSON) + `}`),
			wantStatus: 201,
			accepted: func(t *testing.T, body []byte) {
				checkVerbatim(t, e, body, sqlHTML, "<img src=x onerror=alert(1)>")
			}},
		{name: "SQL and HTML in alert labels", method: "POST", path: "/api/v1/alerts/alertmanager", token: tokIngest,
			body: amWith(string(sqlHTMLJSON)), wantStatus: 202,
			accepted: func(t *testing.T, body []byte) {
				var out ingestResponse
				if err := json.Unmarshal(body, &out); err != nil || len(out.Incidents) != 1 {
					t.Fatalf("answer %s: %v", body, err)
				}
				r := e.do(http.MethodGet, "/api/v1/incidents/"+out.Incidents[0].ID, tokRead, nil)
				var v view
				r.json(t, &v)
				if len(v.Alerts) == 0 {
					t.Fatal("no alert stored")
				}
				for k, want := range sqlHTML {
					if got := v.Alerts[0].Labels[k]; got != want {
						t.Errorf("label %s = %q, want %q verbatim", k, got, want)
					}
				}
				if bytes.Contains(r.body, []byte("<script>")) {
					t.Errorf("answer carries raw <script>: not escaped as JSON")
				}
			}},

		// Credentials in the query string: refused, named, never echoed.
		{name: "token in the query", method: "GET", path: "/api/v1/incidents?token=" + tokRead, wantStatus: 400,
			wantError: `the query string carries "token"`},
		{name: "access_token in the query beside a header", method: "GET", path: "/api/v1/incidents?status=open&access_token=" + tokRead, token: tokRead,
			wantStatus: 400, wantError: `"access_token": credentials are refused in URLs`},
		{name: "api_key on a webhook", method: "POST", path: "/api/v1/alerts/alertmanager?API_KEY=" + tokIngest, token: tokIngest,
			body: amWith(`{"a":"b"}`), wantStatus: 400, wantError: `"API_KEY"`},
		{name: "token in the query of an unknown path", method: "GET", path: "/no/such/path?access_token=" + tokAll, wantStatus: 400,
			wantError: "send Authorization: Bearer <token> instead"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			var rd io.Reader
			if tc.body != nil {
				rd = bytes.NewReader(tc.body)
				if tc.chunked {
					rd = io.MultiReader(rd) // no length: sent chunked
				}
			}
			req, err := http.NewRequest(tc.method, "http://"+addr+tc.path, rd)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tc.header {
				req.Header[k] = vs
			}
			switch {
			case tc.contentType != "":
				req.Header.Set("Content-Type", tc.contentType)
			case tc.body != nil:
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			status, header, body := sendRaw(t, addr, req)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %.300s", status, tc.wantStatus, body)
			}
			if tc.accepted != nil {
				tc.accepted(t, body)
				return
			}
			if tc.wantError != "" {
				if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("content type %q, want JSON", ct)
				}
				var out struct {
					Error string `json:"error"`
				}
				if err := json.Unmarshal(body, &out); err != nil || !strings.Contains(out.Error, tc.wantError) {
					t.Errorf("error %q (%v) does not say %q", out.Error, err, tc.wantError)
				}
				if len(body) > 4096 {
					t.Errorf("error answer of %d bytes: it should name the problem, not repeat the input", len(body))
				}
			}
			if tc.token != "" && len(tc.token) >= 16 && bytes.Contains(body, []byte(tc.token)) {
				t.Errorf("the answer echoes the token")
			}
			if e.snapshot() != before {
				t.Errorf("a refused request changed the store")
			}
		})
	}
	for _, tok := range []string{tokRead, tokIngest, tokAll, tokWrite} {
		if strings.Contains(logs.String(), tok) {
			t.Errorf("the log holds the token %s", tok)
		}
	}
}

// checkVerbatim checks that an incident answer holds the labels and title
// as sent, and that its raw JSON escapes HTML.
func checkVerbatim(t *testing.T, e *testEnv, body []byte, labels map[string]string, title string) {
	t.Helper()
	var v view
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Title != title {
		t.Errorf("title %q, want %q verbatim", v.Title, title)
	}
	for k, want := range labels {
		if got := v.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q verbatim", k, got, want)
		}
	}
	// The post-mortem draft is Markdown, sent as such: a browser must not
	// take the HTML an alert put in it for a page.
	pm := e.do(http.MethodGet, "/api/v1/incidents/"+v.ID+"/postmortem", tokRead, nil)
	if pm.status != http.StatusOK || !strings.HasPrefix(pm.header.Get("Content-Type"), "text/markdown") || pm.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("post-mortem: %d, Content-Type %q, X-Content-Type-Options %q", pm.status, pm.header.Get("Content-Type"), pm.header.Get("X-Content-Type-Options"))
	}
	for _, raw := range [][]byte{body, e.do(http.MethodGet, "/api/v1/incidents/"+v.ID, tokRead, nil).body, e.do(http.MethodGet, "/api/v1/incidents", tokRead, nil).body} {
		if bytes.Contains(raw, []byte("<script>")) || bytes.Contains(raw, []byte("<img")) {
			t.Errorf("an answer carries raw HTML: %.200s", raw)
		}
	}
}

// TestTokenRateLimit: a token over its rate gets 429 with Retry-After and
// an error naming it (not its value), writes nothing, and is let through
// again once the bucket refills; other tokens are not affected.
func TestTokenRateLimit(t *testing.T) {
	e := newEnv(t, func(s envSetup) {
		for i := range s.cfg.Tokens {
			if s.cfg.Tokens[i].Name == "oncall" {
				s.cfg.Tokens[i].RatePerSecond, s.cfg.Tokens[i].Burst = 0.5, 2
			}
		}
	})
	declare := func(tok string) response {
		return e.do(http.MethodPost, "/api/v1/incidents", tok, []byte(`{"title":"rate","severity":"S4","declared_by":"t"}`))
	}
	for i := range 2 {
		if r := declare(tokWrite); r.status != http.StatusCreated {
			t.Fatalf("request %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	before := e.snapshot()
	r := declare(tokWrite)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d %s", r.status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2 (one request per 2s)", got)
	}
	msg := r.errorText(t)
	if !strings.Contains(msg, `token "oncall"`) || !strings.Contains(msg, "0.5 requests per second (burst 2)") {
		t.Errorf("error %q does not name the token and its limit", msg)
	}
	if strings.Contains(string(r.body), tokWrite) {
		t.Errorf("429 echoes the token's value")
	}
	if e.snapshot() != before {
		t.Errorf("a rate-limited request changed the store")
	}
	// A refused request does not spend: one second on, still empty; two
	// seconds on, one request again.
	e.advance(time.Second)
	if r := declare(tokWrite); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Errorf("after 1s: %d Retry-After %q, want 429 and 1", r.status, r.header.Get("Retry-After"))
	}
	e.advance(time.Second)
	if r := declare(tokWrite); r.status != http.StatusCreated {
		t.Errorf("after 2s: %d, want 201", r.status)
	}
	// Another token is not limited by this one, and a wrong token never
	// reaches a bucket.
	for i := range 5 {
		if r := declare(tokAll); r.status != http.StatusCreated {
			t.Fatalf("unlimited token, request %d: %d", i, r.status)
		}
		if r := declare("not-a-token-of-this-server"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d", r.status)
		}
	}
	// Reads with the limited token count too (every request does).
	if r := e.do(http.MethodGet, "/api/v1/incidents", tokWrite, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("the limited token's next request: %d, want 429", r.status)
	}
}

// holdIngestSlot starts a webhook whose body arrives through the pipe it
// returns, and returns once the handler has read the first byte: until the
// rest of body is written, that webhook holds its ingest slot. Its status
// arrives on first.
func holdIngestSlot(t *testing.T, e *testEnv, body []byte) (*io.PipeWriter, chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/alerts/alertmanager", pr)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokIngest)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		first <- rec.Code
	}()
	if _, err := pw.Write(body[:1]); err != nil { // returns once the handler reads
		t.Fatal(err)
	}
	return pw, first
}

// Beyond http.max_ingest_in_flight, a webhook is refused with 503 and
// Retry-After before its body is read, and nothing is written; once a slot
// is free again webhooks are taken.
func TestIngestInFlightLimit(t *testing.T) {
	e := newEnv(t, func(s envSetup) { s.cfg.MaxIngestInFlight = 1 })
	body := readTestdata(t, "am_firing_v034.json")
	pw, first := holdIngestSlot(t, e, body)
	before := e.snapshot()
	r := e.do(http.MethodPost, "/api/v1/alerts/alertmanager", tokIngest, body)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
		!strings.Contains(r.errorText(t), "http.max_ingest_in_flight") {
		t.Errorf("second webhook while the slot is held: %d Retry-After %q %s, want 503 naming the limit",
			r.status, r.header.Get("Retry-After"), r.body)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("the refused webhook wrote")
	}
	// People's requests do not take webhook slots.
	if r := e.do(http.MethodGet, "/api/v1/incidents", tokRead, nil); r.status != http.StatusOK {
		t.Errorf("list while the webhook slot is held: %d", r.status)
	}
	if _, err := pw.Write(body[1:]); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("first webhook: %d, want 202", code)
	}
	if r := e.do(http.MethodPost, "/api/v1/alerts/alertmanager", tokIngest, body); r.status != http.StatusAccepted {
		t.Errorf("webhook after the slot was freed: %d %s", r.status, r.body)
	}
}
