package handlers

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/store"
)

// BenchmarkIngestAlertmanager posts Alertmanager webhooks (2 new alerts
// each, spread over 50 groups) from concurrent clients over loopback HTTP
// into a real bbolt file with fsync: the whole durable ingest path.
func BenchmarkIngestAlertmanager(b *testing.B) {
	for _, posters := range []int{1, 64} {
		b.Run(fmt.Sprintf("posters=%d", posters), func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "responder.db"), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = db.Close() }()
			srv := New(Config{BodyLimit: 1 << 20, RetryAfter: time.Second, ExternalURL: "http://127.0.0.1"},
				Deps{Store: db, Policy: testPolicy(b), Log: zerolog.Nop()})
			ts := httptest.NewServer(srv.Handler())
			defer ts.Close()
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: posters}}

			var seq atomic.Int64
			var failed atomic.Int64
			start := time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC).Format(time.RFC3339)
			b.SetParallelism((posters + 1) / 2) // GOMAXPROCS is 2 on the reference machine
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					body := fmt.Appendf(nil, `{"version":"4","groupKey":"{}:{alertname=\"Bench%d\"}","status":"firing","receiver":"r",`+
						`"groupLabels":{"alertname":"Bench%d"},"commonLabels":{"alertname":"Bench%d","severity":"warning"},"commonAnnotations":{},"externalURL":"http://am",`+
						`"alerts":[{"status":"firing","labels":{"alertname":"Bench%d","severity":"warning","instance":"a%d"},"annotations":{},"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z","fingerprint":"a%015x"},`+
						`{"status":"firing","labels":{"alertname":"Bench%d","severity":"warning","instance":"b%d"},"annotations":{},"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z","fingerprint":"b%015x"}]}`,
						n%50, n%50, n%50, n%50, n, start, n, n%50, n, start, n)
					resp, err := client.Post(ts.URL+"/api/v1/alerts/alertmanager", "application/json", bytes.NewReader(body))
					if err != nil {
						failed.Add(1)
						continue
					}
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
		})
	}
}
