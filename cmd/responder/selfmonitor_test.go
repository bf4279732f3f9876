package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// rulesMetricNames are the responder_* metric names the expressions of
// configs/prometheus/responder-rules.yml read, sorted.
func rulesMetricNames(t *testing.T) []string {
	t.Helper()
	path := filepath.Join("..", "..", "configs", "prometheus", "responder-rules.yml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// A metric name starts where no name character precedes it.
	name := regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:])(responder_[a-zA-Z0-9_:]+)`)
	var names []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			for _, m := range name.FindAllStringSubmatch(r.Expr, -1) {
				names = append(names, m[1])
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Every responder_* metric the alerting rules read is one the daemon
// really serves on /metrics: a renamed metric would leave its alert silent
// for ever. The daemon runs with a heartbeat (its metrics exist only for
// configured heartbeats); nothing else has to happen first.
func TestRulesReadRealMetrics(t *testing.T) {
	want := rulesMetricNames(t)
	if len(want) < 5 {
		t.Fatalf("the rules read %d responder_* metrics (%q): the expression parsing is broken", len(want), want)
	}
	d := startDaemon(t, `notifications:
  log: true
heartbeats:
  - name: watchdog
    interval: 4h
    grace: 15m
    matchers: ['alertname="Watchdog"']
`, nil, "http")

	// The names served, with a histogram's or summary's series under its
	// own name (_bucket, _sum and _count are its parts).
	served := func() map[string]bool {
		t.Helper()
		resp, err := d.client.Get(d.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: %d %v\n%s", resp.StatusCode, err, body)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("/metrics does not parse: %v", err)
		}
		names := map[string]bool{}
		for name, f := range families {
			if len(f.GetMetric()) == 0 {
				continue
			}
			names[name] = true
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[name+suffix] = true
			}
		}
		return names
	}
	// Every series a rule reads exists from the start, before anything
	// happened: a counter that first appears at 1 shows rate() no increase.
	got := served()
	if missing := slices.DeleteFunc(slices.Clone(want), func(n string) bool { return got[n] }); len(missing) > 0 {
		t.Fatalf("the rules read %q, which the daemon's /metrics does not serve before anything happened (it serves %d names)\n%s",
			missing, len(got), d.logs.String())
	}
}
