package handlers

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store/bolt"
)

// benchBody is an Alertmanager webhook with 2 new alerts (numbered n),
// in one of 50 groups.
func benchBody(n int64) []byte {
	start := time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC).Format(time.RFC3339)
	return fmt.Appendf(nil, `{"version":"4","groupKey":"{}:{alertname=\"Bench%d\"}","status":"firing","receiver":"r",`+
		`"groupLabels":{"alertname":"Bench%d"},"commonLabels":{"alertname":"Bench%d","severity":"warning"},"commonAnnotations":{},"externalURL":"http://am",`+
		`"alerts":[{"status":"firing","labels":{"alertname":"Bench%d","severity":"warning","instance":"a%d"},"annotations":{},"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z","fingerprint":"a%015x"},`+
		`{"status":"firing","labels":{"alertname":"Bench%d","severity":"warning","instance":"b%d"},"annotations":{},"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z","fingerprint":"b%015x"}]}`,
		n%50, n%50, n%50, n%50, n, start, n, n%50, n, start, n)
}

// postBodies posts benchBody from concurrent clients until b.N requests
// are done and reports alerts/s; any answer but 202 fails the benchmark.
func postBodies(b *testing.B, h http.Handler, posters int) {
	ts := httptest.NewServer(h)
	defer ts.Close()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: posters}}
	var seq, failed atomic.Int64
	b.SetParallelism((posters + 1) / 2) // GOMAXPROCS is 2 on the reference machine
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(ts.URL+"/api/v1/alerts/alertmanager", "application/json", bytes.NewReader(benchBody(seq.Add(1))))
			if err != nil {
				failed.Add(1)
				continue
			}
			// Read to the end, so that the connection is reused: a closed
			// unread body costs a new connection per request.
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, b.N)
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "alerts/s")
}

// BenchmarkIngestAlertmanager posts Alertmanager webhooks (2 new alerts
// each, spread over 50 groups) from concurrent clients over loopback HTTP
// into a real bbolt file with fsync: the whole durable ingest path.
func BenchmarkIngestAlertmanager(b *testing.B) {
	for _, posters := range []int{1, 64} {
		b.Run(fmt.Sprintf("posters=%d", posters), func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "responder.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = db.Close() }()
			// The daemon's default attaches the basic incident process's
			// checklist to every incident: so does the benchmark.
			pol := testPolicy(b)
			pol.Runbooks = defaultRunbooks(b)
			svc := incident.New(incident.Config{ExternalURL: "http://127.0.0.1"}, incident.Deps{Store: db, Policy: pol, Log: zerolog.Nop()})
			srv := New(Config{BodyLimit: 1 << 20, RetryAfter: time.Second}, Deps{Incidents: svc, Log: zerolog.Nop()})
			postBodies(b, srv.Handler(), posters)
		})
	}
}

// BenchmarkBaselineAlertmanager is the same load against NewBaseline, which
// decodes the same bodies with the same decoder and stores nothing: the
// ceiling BenchmarkIngestAlertmanager is compared with.
func BenchmarkBaselineAlertmanager(b *testing.B) {
	for _, posters := range []int{1, 64} {
		b.Run(fmt.Sprintf("posters=%d", posters), func(b *testing.B) {
			postBodies(b, NewBaseline(Config{BodyLimit: 1 << 20, RetryAfter: time.Second}, zerolog.Nop()), posters)
		})
	}
}

// The baseline takes what the daemon takes and refuses what it refuses,
// with the same auth; it writes nothing.
func TestBaseline(t *testing.T) {
	h := NewBaseline(Config{BodyLimit: 4096, RetryAfter: time.Second,
		Tokens: []Token{{Name: "am", Value: "ingest-token-0123456789", Scopes: []string{ScopeIngest}}}}, zerolog.Nop())
	for _, c := range []struct {
		name, token, ctype string
		body               []byte
		want               int
	}{
		{"a webhook", "ingest-token-0123456789", "application/json", benchBody(1), http.StatusAccepted},
		{"the sample", "ingest-token-0123456789", "application/json", readTestdata(t, "am_firing_v034.json"), http.StatusAccepted},
		{"no token", "", "application/json", benchBody(1), http.StatusUnauthorized},
		{"wrong version", "ingest-token-0123456789", "application/json", bytes.Replace(benchBody(1), []byte(`"version":"4"`), []byte(`"version":"5"`), 1), http.StatusBadRequest},
		{"too large", "ingest-token-0123456789", "application/json", bytes.Repeat([]byte(" "), 5000), http.StatusRequestEntityTooLarge},
		{"not JSON", "ingest-token-0123456789", "text/plain", benchBody(1), http.StatusUnsupportedMediaType},
	} {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/alerts/alertmanager", bytes.NewReader(c.body))
		req.Header.Set("Content-Type", c.ctype)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.name, rec.Code, c.want, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("readyz: %d", rec.Code)
	}
}

// defaultRunbooks are the runbooks of the embedded default configuration.
func defaultRunbooks(tb testing.TB) []policy.Runbook {
	tb.Helper()
	cfg, err := configs.Parse(configs.Default)
	if err != nil {
		tb.Fatal(err)
	}
	pol, err := cfg.BuildPolicy()
	if err != nil {
		tb.Fatal(err)
	}
	return pol.Runbooks
}
