package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/handlers"
	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// webhook is the body as Alertmanager defines it, to read ours back.
type webhook struct {
	template.Data
	Version            string            `json:"version"`
	GroupKey           string            `json:"groupKey"`
	TruncatedAlerts    uint64            `json:"truncatedAlerts"`
	NotificationReason string            `json:"notification_reason"`
	RouteLabels        map[string]string `json:"routeLabels"`
}

func decodeBody(t *testing.T, b []byte) webhook {
	t.Helper()
	var w webhook
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("body does not decode as an Alertmanager webhook: %v\n%s", err, b)
	}
	return w
}

func TestBodiesHaveTheShapeOfTheSampleWebhook(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("..", "..", "handlers", "testdata", "am_firing_v034.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPayloads(2, 5, 0, "critical", "", time.Date(2026, 11, 12, 14, 3, 27, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	body, g := p.Body(nil, 7)
	if g != 2 {
		t.Errorf("request 7 of 5 groups: group %d, want 2", g)
	}
	var ours, theirs map[string]json.RawMessage
	if err := json.Unmarshal(body, &ours); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sample, &theirs); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys(ours), keys(theirs)) {
		t.Errorf("top-level keys %v, the sample's %v", keys(ours), keys(theirs))
	}
	w := decodeBody(t, body)
	if w.Version != "4" || w.Status != "firing" || len(w.Alerts) != 2 || w.RouteLabels["team"] != "team-03" {
		t.Errorf("decoded %+v", w)
	}
	for _, a := range w.Alerts {
		ls := model.LabelSet{}
		for k, v := range a.Labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		if a.Fingerprint != ls.Fingerprint().String() {
			t.Errorf("fingerprint %s, Alertmanager's of %v is %s", a.Fingerprint, ls, ls.Fingerprint())
		}
		if !a.StartsAt.Equal(time.Date(2026, 11, 12, 14, 3, 27, 0, time.UTC)) || !a.EndsAt.IsZero() || a.GeneratorURL == "" {
			t.Errorf("alert %+v", a)
		}
		for k, v := range w.CommonLabels {
			if a.Labels[k] != v {
				t.Errorf("common label %s=%s, the alert has %q", k, v, a.Labels[k])
			}
		}
	}
	want := fmt.Sprintf(`{}/{env="production"}:{alertname="%s", service="%s"}`, w.GroupLabels["alertname"], w.GroupLabels["service"])
	if w.GroupKey != want {
		t.Errorf("groupKey %s, want %s", w.GroupKey, want)
	}
}

func keys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// fingerprintsOf sends requests 0..n-1 and collects the fingerprints by
// group.
func fingerprintsOf(t *testing.T, p *payloads, n int64) map[string]map[string]int {
	t.Helper()
	byGroup := map[string]map[string]int{}
	var buf []byte
	for r := range n {
		var g int
		buf, g = p.Body(buf[:0], r)
		w := decodeBody(t, buf)
		if w.GroupKey != p.group[g].key {
			t.Fatalf("request %d: groupKey %s, group %d's is %s", r, w.GroupKey, g, p.group[g].key)
		}
		if byGroup[w.GroupKey] == nil {
			byGroup[w.GroupKey] = map[string]int{}
		}
		for _, a := range w.Alerts {
			byGroup[w.GroupKey][a.Fingerprint]++
		}
	}
	return byGroup
}

func TestFingerprints(t *testing.T) {
	start := time.Now()
	every, err := newPayloads(3, 4, 0, "warning", "a", start)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, fps := range fingerprintsOf(t, every, 400) {
		for fp, n := range fps {
			if n != 1 || seen[fp] {
				t.Fatalf("fingerprint %s sent %d times or in two groups, want every alert new", fp, n)
			}
			seen[fp] = true
		}
	}
	if len(seen) != 1200 {
		t.Errorf("%d distinct alerts in 400 bodies of 3, want 1200", len(seen))
	}

	pooled, err := newPayloads(3, 4, 40, "warning", "a", start)
	if err != nil {
		t.Fatal(err)
	}
	groups := fingerprintsOf(t, pooled, 400)
	if len(groups) != 4 {
		t.Fatalf("%d groups, want 4", len(groups))
	}
	for key, fps := range groups {
		if len(fps) != 10 {
			t.Errorf("group %s: %d distinct alerts, want 40/4 = 10", key, len(fps))
		}
	}

	other, err := newPayloads(3, 4, 0, "warning", "b", start)
	if err != nil {
		t.Fatal(err)
	}
	for key := range fingerprintsOf(t, other, 4) {
		if _, ok := groups[key]; ok {
			t.Errorf("runs a and b share the group %s", key)
		}
	}
}

func TestPayloadFlagsAreChecked(t *testing.T) {
	for _, c := range []struct{ perBody, groups, fps int }{{0, 1, 0}, {1, 0, 0}, {1, 10, 5}, {1, 1, -1}} {
		if _, err := newPayloads(c.perBody, c.groups, c.fps, "warning", "", time.Now()); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := newPayloads(1, 1, 0, `bad"quote`, "", time.Now()); err == nil {
		t.Error("a quote in the severity accepted")
	}
}

// The daemon's real ingest path takes the bodies: every request is
// accepted, every group becomes one incident holding its alerts.
func TestTheDaemonIngestsTheBodies(t *testing.T) {
	cfg, err := configs.Load("", configs.Overrides{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := cfg.BuildPolicy()
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(cfg.DataDir, "responder.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	svc := incident.New(incident.Config{ExternalURL: "http://127.0.0.1"}, incident.Deps{Store: db, Policy: pol, Log: zerolog.Nop()})
	srv := handlers.New(handlers.Config{BodyLimit: 1 << 20, RetryAfter: time.Second},
		handlers.Deps{Incidents: svc, Log: zerolog.Nop()})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	p, err := newPayloads(4, 3, 0, "warning", "", time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runLoad(context.Background(), loadConfig{url: ts.URL, connections: 4, duration: time.Minute,
		alerts: 120, alertsPerBody: 4, groups: 3, timeout: 10 * time.Second}, p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AcceptedAlerts != 120 || rep.Status["202"] != 30 || rep.Requests != 30 || len(rep.FirstSent) != 3 {
		t.Fatalf("report: %+v", rep)
	}
	err = db.View(context.Background(), func(tx store.Tx) error {
		open, err := tx.OpenIncidents()
		if err != nil {
			return err
		}
		if len(open) != 3 {
			return fmt.Errorf("%d open incidents, want 3", len(open))
		}
		for _, inc := range open {
			if _, ok := rep.FirstSent[inc.DedupKey]; !ok || inc.AlertsTotal != 40 || inc.AlertsFiring != 40 || inc.Team == "" {
				return fmt.Errorf("incident %s: dedup key %s, %d alerts (%d firing), team %q; want one of the groups with 40",
					inc.ID, inc.DedupKey, inc.AlertsTotal, inc.AlertsFiring, inc.Team)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// The baseline decodes with the daemon's decoder: it takes our bodies and
// refuses what the daemon refuses.
func TestBaselineDecodesLikeTheDaemon(t *testing.T) {
	ts := httptest.NewServer(handlers.NewBaseline(handlers.Config{BodyLimit: 4096, RetryAfter: time.Second}, zerolog.Nop()))
	defer ts.Close()
	p, err := newPayloads(2, 1, 0, "warning", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good, _ := p.Body(nil, 0)
	many, err := newPayloads(20, 1, 0, "warning", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	big, _ := many.Body(nil, 0)
	for _, c := range []struct {
		name string
		body []byte
		want int
	}{
		{"generated", good, http.StatusAccepted},
		{"wrong version", bytes.Replace(good, []byte(`"version":"4"`), []byte(`"version":"3"`), 1), http.StatusBadRequest},
		{"over the body limit", big, http.StatusRequestEntityTooLarge},
		{"not JSON", []byte("{"), http.StatusBadRequest},
	} {
		resp, err := http.Post(ts.URL+ingestPath, "application/json", bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
}

// The bodies for Alertmanager's own API carry the webhook bodies' alerts,
// field for field, in the shape of its postable alerts (a JSON array).
func TestPostableBodiesCarryTheSameAlerts(t *testing.T) {
	p, err := newPayloads(3, 4, 0, "critical", "r1", time.Date(2026, 11, 12, 14, 3, 27, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	type postable struct {
		Labels       model.LabelSet    `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
	}
	for _, r := range []int64{0, 5, 13} {
		hook, g := p.Body(nil, r)
		raw, pg := p.PostableBody(nil, r)
		if pg != g {
			t.Errorf("request %d: group %d, webhook's %d", r, pg, g)
		}
		var got []postable
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("request %d: %v\n%s", r, err, raw)
		}
		want := decodeBody(t, hook).Alerts
		if len(got) != len(want) {
			t.Fatalf("request %d: %d alerts, webhook has %d", r, len(got), len(want))
		}
		for i, a := range got {
			w := want[i]
			if a.Labels.Fingerprint().String() != w.Fingerprint || !maps.Equal(map[string]string(w.Annotations), a.Annotations) ||
				!a.StartsAt.Equal(w.StartsAt) || !a.EndsAt.IsZero() || a.GeneratorURL != w.GeneratorURL {
				t.Errorf("request %d alert %d: %+v, webhook's %+v", r, i, a, w)
			}
		}
	}
}
