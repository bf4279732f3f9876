package handlers

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads GET /metrics as Prometheus would.
func (e *testEnv) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	r := e.do(http.MethodGet, "/metrics", "", nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		e.t.Fatalf("exposition does not parse: %v", err)
	}
	return families
}

// rejected is responder_alerts_rejected_total{source, reason} in families,
// and whether the series exists.
func rejected(families map[string]*dto.MetricFamily, source, reason string) (float64, bool) {
	f := families["responder_alerts_rejected_total"]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		lbls := map[string]string{}
		for _, lp := range m.GetLabel() {
			lbls[lp.GetName()] = lp.GetValue()
		}
		if lbls["source"] == source && lbls["reason"] == reason {
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// A webhook shed by admission (http.max_ingest_in_flight) counts in
// responder_alerts_rejected_total{reason="in_flight"} under its source, and
// the shedding series of every alert source are there at zero before the
// first shed, so that rate() sees the first one.
func TestAdmissionShedsAreCounted(t *testing.T) {
	e := newEnv(t, func(s envSetup) { s.cfg.MaxIngestInFlight = 1 })
	before := e.scrape()
	for _, src := range []string{"alertmanager", "opsgenie", "jsm", "pagerduty"} {
		for _, reason := range []string{"busy", "in_flight"} {
			if v, ok := rejected(before, src, reason); !ok || v != 0 {
				t.Errorf("before any request, %s/%s: %v (present %v), want a series at 0", src, reason, v, ok)
			}
		}
	}

	// The first webhook holds the only slot until its body is complete.
	body := readTestdata(t, "am_firing_v034.json")
	pw, first := holdIngestSlot(t, e, body)
	tests := []struct {
		path, token, source string
	}{
		{"/api/v1/alerts/alertmanager", tokIngest, "alertmanager"},
		{"/api/v1/alerts/alertmanager", tokIngest, "alertmanager"},
		{"/api/v1/alerts/opsgenie", tokIngest, "opsgenie"},
		{"/api/v1/alerts/jsm", tokIngest, "jsm"},
		{"/api/v1/alerts/pagerduty", "", "pagerduty"}, // signed, no bearer token
		{"/api/v1/heartbeats/watchdog", tokIngest, "heartbeat"},
	}
	want := map[string]float64{}
	for _, tc := range tests {
		if r := e.do(http.MethodPost, tc.path, tc.token, []byte(`{}`)); r.status != http.StatusServiceUnavailable {
			t.Fatalf("%s while the slot is held: %d %s, want 503", tc.path, r.status, r.body)
		}
		want[tc.source]++
	}
	after := e.scrape()
	for src, n := range want {
		if v, _ := rejected(after, src, "in_flight"); v != n {
			t.Errorf("%s/in_flight after the sheds: %v, want %v", src, v, n)
		}
		if v, _ := rejected(after, src, "busy"); v != 0 {
			t.Errorf("%s/busy after admission sheds: %v, want 0 (the store refused nothing)", src, v)
		}
	}

	// A webhook that was let in is not counted as shed.
	if _, err := pw.Write(body[1:]); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("first webhook: %d, want 202", code)
	}
	if v, _ := rejected(e.scrape(), "alertmanager", "in_flight"); v != want["alertmanager"] {
		t.Errorf("alertmanager/in_flight after the admitted webhook: %v, want %v", v, want["alertmanager"])
	}
}

func TestSourceOfRoute(t *testing.T) {
	tests := []struct{ route, want string }{
		{"/api/v1/alerts/alertmanager", "alertmanager"},
		{"/api/v1/alerts/opsgenie", "opsgenie"},
		{"/api/v1/alerts/jsm", "jsm"},
		{"/api/v1/alerts/pagerduty", "pagerduty"},
		{"/api/v1/heartbeats/:name", "heartbeat"},
		{"/api/v1/slack/commands", "slack"},
		{"/api/v1/slack/interactivity", "slack"},
		{"/api/v1/incidents", "other"},
	}
	for _, tc := range tests {
		if got := sourceOfRoute(tc.route); got != tc.want {
			t.Errorf("sourceOfRoute(%q) = %q, want %q", tc.route, got, tc.want)
		}
	}
}

// responder_ready says what /readyz says, at every scrape: 1 while both
// the store and the dispatcher work, 0 once either stops.
func TestReadyGaugeFollowsReadyz(t *testing.T) {
	tests := []struct {
		name string
		stop func(e *testEnv)
	}{
		{"dispatcher stopped", func(e *testEnv) { e.stopDispatcher() }},
		{"store closed", func(e *testEnv) { _ = e.db.Close() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			e := newEnv(t, func(s envSetup) { s.deps.Registry = reg })
			ready := func() float64 {
				t.Helper()
				families, _ := reg.Gather() // partial on error; the gauge is always there
				for _, f := range families {
					if f.GetName() == "responder_ready" && len(f.GetMetric()) == 1 {
						return f.GetMetric()[0].GetGauge().GetValue()
					}
				}
				t.Fatal("responder_ready is not registered")
				return 0
			}
			if r := e.do(http.MethodGet, "/readyz", "", nil); r.status != http.StatusOK || ready() != 1 {
				t.Fatalf("healthy: /readyz %d, responder_ready %v; want 200 and 1", r.status, ready())
			}
			if !strings.Contains(string(e.do(http.MethodGet, "/metrics", "", nil).body), "\nresponder_ready 1\n") {
				t.Errorf("/metrics does not show responder_ready 1")
			}
			tc.stop(e)
			if r := e.do(http.MethodGet, "/readyz", "", nil); r.status != http.StatusServiceUnavailable || ready() != 0 {
				t.Errorf("%s: /readyz %d, responder_ready %v; want 503 and 0", tc.name, r.status, ready())
			}
			// A collector that cannot read the closed store leaves its own
			// metrics out, not the scrape: the gauge still says 0.
			if r := e.do(http.MethodGet, "/metrics", "", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "\nresponder_ready 0\n") {
				t.Errorf("%s: /metrics %d, want 200 with responder_ready 0:\n%s", tc.name, r.status, r.body)
			}
		})
	}
}
