package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A server that refuses the first requests: with a Retry-After of 0 on
// every odd one, without on the even ones; accepts the rest.
func refusingServer(t *testing.T, refuse int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ingestPath || r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		i := n.Add(1)
		if i <= refuse {
			if i%2 == 1 {
				w.Header().Set("Retry-After", "0")
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(ts.Close)
	return ts, &n
}

func TestLoadCountsRefusals(t *testing.T) {
	ts, _ := refusingServer(t, 4)
	p, err := newPayloads(2, 2, 0, "warning", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runLoad(context.Background(), loadConfig{url: ts.URL, token: "tok", connections: 1, duration: time.Minute,
		alerts: 20, alertsPerBody: 2, groups: 2, timeout: 5 * time.Second}, p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 10 || rep.Status503 != 4 || rep.Rejected503Retry != 2 || rep.Rejected503NoHint != 2 ||
		rep.AcceptedAlerts != 12 || rep.GaveUp != 4 || rep.Retries != 0 || rep.Status5xx != 4 || rep.OtherStatus != 0 {
		t.Errorf("report %+v", rep)
	}
	if rep.Rejected.Count != 4 || rep.Accepted.Count != 6 || rep.Latency.Count != 10 {
		t.Errorf("latency counts: all %d, accepted %d, rejected %d", rep.Latency.Count, rep.Accepted.Count, rep.Rejected.Count)
	}
}

// With --retry a refused request is sent again after its Retry-After,
// as Alertmanager does, until it is accepted: nothing is given up.
func TestLoadRetriesRefusals(t *testing.T) {
	ts, n := refusingServer(t, 1)
	p, err := newPayloads(1, 1, 0, "warning", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runLoad(context.Background(), loadConfig{url: ts.URL, token: "tok", connections: 1, rate: 1000,
		duration: time.Minute, alerts: 5, alertsPerBody: 1, groups: 1, timeout: 5 * time.Second, retry: true}, p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AcceptedAlerts != 5 || rep.Retries != 1 || rep.GaveUp != 0 || rep.Requests != 6 || n.Load() != 6 || rep.Mode != "open" {
		t.Errorf("report %+v, server saw %d", rep, n.Load())
	}
	if rep.SendLag.Count != 5 {
		t.Errorf("send lag recorded %d times, want once per request (5)", rep.SendLag.Count)
	}
}

func TestLoadCountsConnectionErrors(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there now
	p, err := newPayloads(1, 1, 0, "warning", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runLoad(context.Background(), loadConfig{url: url, connections: 2, duration: time.Minute,
		alerts: 3, alertsPerBody: 1, groups: 1, timeout: time.Second}, p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 3 || rep.AcceptedAlerts != 0 || rep.ErrorSample == "" {
		t.Errorf("report %+v", rep)
	}
}

func TestLoadCommandWritesJSON(t *testing.T) {
	ts, _ := refusingServer(t, 0)
	out := filepath.Join(t.TempDir(), "run.json")
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"run", "--url", ts.URL, "--token", "tok", "--alerts", "10", "--groups", "2",
		"--connections", "2", "--pid", "0", "--json-out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "accepted   10 alerts") {
		t.Errorf("text report:\n%s", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fieldValue(b, "accepted_alerts")
	if err != nil || v != 10 {
		t.Errorf("accepted_alerts in the JSON: %v %v", v, err)
	}
	if code := run(context.Background(), []string{"run", "--connections", "0"}, &stdout, &stderr); code != 2 {
		t.Errorf("--connections 0: exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"frobnicate"}, &stdout, &stderr); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
