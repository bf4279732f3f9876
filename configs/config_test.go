package configs_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/policy"
)

// problemPaths returns the path of every problem in err (the text before the
// first ": "), sorted, and fails the test when err is not Problems.
func problemPaths(t *testing.T, err error) []string {
	t.Helper()
	var p configs.Problems
	if !errors.As(err, &p) {
		t.Fatalf("error %v (%T) is not configs.Problems", err, err)
	}
	paths := make([]string, 0, len(p))
	for _, line := range p {
		path, _, _ := strings.Cut(line, ": ")
		paths = append(paths, path)
	}
	sort.Strings(paths)
	return paths
}

func check[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// writeConfig writes a config file into a temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, path string, o configs.Overrides) (*configs.Config, *policy.Policy) {
	t.Helper()
	cfg, err := configs.Load(path, o)
	if err != nil {
		t.Fatalf("Load(%q): %v", path, err)
	}
	pol, err := cfg.BuildPolicy()
	if err != nil {
		t.Fatalf("BuildPolicy of %q: %v", path, err)
	}
	return cfg, pol
}

// badFiles lists every invalid file in testdata with the paths of the
// problems Load must report (sorted).
var badFiles = []struct {
	file string
	want []string
}{
	{file: "bad-unknown-keys.yml", want: []string{
		"auth.tokens[0].scope",
		"auth.tokens[0].scopes", // lost to the misspelling
		"listn",
		"policy.business_hours.time_intervals[0].weekday",
		"policy.rules[1].severity", // lost to the misspelling
		"policy.rules[1].severty",
		"policy.severities.S1.zoom_link",
	}},
	{file: "bad-types.yml", want: []string{
		"http.body_limit_bytes",
		"http.read_timeout",
		"notifications.log",
		"policy.rules",
		"store.queue_size",
	}},
	{file: "bad-matcher.yml", want: []string{
		"policy.rules[0].matchers[0]",
		"policy.rules[1].matchers[1]",
	}},
	{file: "bad-rules.yml", want: []string{
		"policy.rules[0].matchers",
		"policy.rules[1].runbook_url",
		"policy.rules[2].name",
	}},
	{file: "bad-severity.yml", want: []string{
		"policy.default_severity",
		"policy.opsgenie_priorities.P2",
		"policy.rules[0].severity",
		"policy.rules[1].severity",
		"policy.severities.S9",
		"policy.severities.s1",
	}},
	{file: "bad-severity-key-space.yml", want: []string{
		"policy.severities. S2",
	}},
	{file: "bad-priority.yml", want: []string{
		"policy.opsgenie_priorities.P7",
		"policy.opsgenie_priorities.p2",
	}},
	{file: "bad-customer-template.yml", want: []string{
		"display.time_zone",
		"notifications.email.customer_engineering.template_file",
	}},
	{file: "bad-customer-engineering.yml", want: []string{
		"notifications.email.customer_engineering",
	}},
	{file: "bad-customer-template-alone.yml", want: []string{
		"notifications.email.customer_engineering.template_file",
	}},
	{file: "bad-pagers.yml", want: []string{
		"notifications.jsm",
		"notifications.jsm.rest",
		"notifications.pagerduty.responder",
		"notifications.paging.pager",
	}},
	{file: "bad-pagerduty-webhook.yml", want: []string{
		"notifications.pagerduty",
		"notifications.pagerduty.webhook_secrets[0]",
	}},
	{file: "bad-heartbeats.yml", want: []string{
		"heartbeats[1].name",
		"heartbeats[2].interval",
		"heartbeats[2].matchers[0]",
		"heartbeats[2].name",
		"heartbeats[2].severity",
	}},
	{file: "bad-drill-schedule.yml", want: []string{
		"drills.schedule[0].cron",
		"drills.schedule[1].cron",
		"drills.schedule[1].name",
		"drills.schedule[1].organiser",
		"drills.schedule[1].scenario",
		"drills.schedule[1].time_zone",
	}},
	{file: "bad-slack-interactivity.yml", want: []string{
		"notifications.slack.interactivity.allowed_channels[0]",
		"notifications.slack.interactivity.allowed_teams",
		"notifications.slack.interactivity.allowed_user_groups[0]",
		"notifications.slack.interactivity.command",
		"notifications.slack.interactivity.mode",
	}},
	{file: "bad-slack-socket-token.yml", want: []string{
		"notifications.slack.interactivity.allowed_teams[0]",
		"notifications.slack.interactivity.app_token",
	}},
	{file: "bad-runbooks.yml", want: []string{
		"runbooks[0].matchers[0]",
		"runbooks[0].scenarios[0]",
		"runbooks[0].steps[0].role",
		"runbooks[0].steps[1].text",
		"runbooks[0].steps[2].link",
		"runbooks[1].name",
		"runbooks[2].name",
		"runbooks[2].steps",
	}},
	{file: "bad-paging.yml", want: []string{
		"notifications.paging.pager",
		"notifications.paging.severity_pagers.S9",
		"notifications.paging.team_pagers.payments",
	}},
	{file: "bad-timezone.yml", want: []string{
		"policy.business_hours.location",
	}},
	{file: "bad-interval-location.yml", want: []string{
		"log.level",
		"policy.business_hours.time_intervals[0].location",
	}},
	{file: "bad-time-intervals.yml", want: []string{
		"policy.business_hours.time_intervals[0].times[0]",
		"policy.business_hours.time_intervals[0].weekdays[0]",
		"store.max_batch",
	}},
	{file: "bad-listen-no-tokens.yml", want: []string{
		"auth.tokens",
	}},
	{file: "bad-public-url.yml", want: []string{
		"http.public_url",
	}},
	{file: "bad-allowed-hosts.yml", want: []string{
		"http.allowed_hosts[1]",
		"http.allowed_hosts[2]",
		"http.allowed_hosts[3]",
	}},
	{file: "bad-listen.yml", want: []string{
		"external_url",
		"listen",
	}},
	{file: "bad-duplicate-tokens.yml", want: []string{
		"auth.tokens[1].name",
		"auth.tokens[2].token",
	}},
	{file: "bad-short-token.yml", want: []string{
		"auth.tokens[0].token",
	}},
	{file: "bad-scope.yml", want: []string{
		"auth.tokens[0].scopes[1]",
		"auth.tokens[1].scopes",
	}},
	{file: "bad-token-and-file.yml", want: []string{
		"auth.tokens[0]",
	}},
	{file: "bad-token-file-missing.yml", want: []string{
		"auth.tokens[0].token_file",
		"auth.tokens[1]",
		"auth.tokens[2].name",
	}},
	{file: "bad-token-file-empty.yml", want: []string{
		"auth.tokens[0].token_file",
	}},
	{file: "bad-channel.yml", want: []string{
		"policy.severities.S2.channels[1]",
		"policy.severities.S3.channels[0]",
	}},
	{file: "bad-durations.yml", want: []string{
		"http.read_timeout",
		"http.shutdown_timeout",
		"policy.reopen_within",
		"policy.severities.S1.update_interval",
		"policy.severities.S2.update_interval",
		"store.lock_timeout",
		"store.retry_after",
	}},
	{file: "bad-five-problems.yml", want: []string{
		"external_url",
		"http.body_limit_bytes",
		"log.level",
		"policy.rules[0].severity",
		"store.queue_size",
	}},
	{file: "bad-token-rates.yml", want: []string{
		"auth.tokens[0].rate_per_second",
		"auth.tokens[1].rate_per_second",
		"auth.tokens[2].burst",
		"auth.tokens[3].burst",
	}},
	{file: "bad-tls-half.yml", want: []string{
		"alertmanager.max_alerts",
		"http.tls",
	}},
	{file: "bad-limits.yml", want: []string{
		"http.max_ingest_in_flight",
	}},
	{file: "bad-tls-files.yml", want: []string{
		"http.tls",
	}},
	{file: "bad-multi-document.yml", want: []string{
		"yaml",
	}},
	{file: "bad-yaml-syntax.yml", want: []string{
		"yaml",
	}},
	{file: "bad-notifications.yml", want: []string{
		"notifications.email.events[1]",
		"notifications.email.from",
		"notifications.email.password",
		"notifications.email.recipients.S1[0]",
		"notifications.email.recipients.S9",
		"notifications.email.tls",
		"notifications.opsgenie.api_url",
		"notifications.opsgenie.responder",
		"notifications.opsgenie.responder.type",
		"notifications.retry_max",
		"notifications.slack",
		"notifications.slack.channel",
		"notifications.slack.rate_per_second",
		"notifications.zoom",
	}},
}

func TestLoadBadFiles(t *testing.T) {
	for _, tc := range badFiles {
		t.Run(tc.file, func(t *testing.T) {
			cfg, err := configs.Load(filepath.Join("testdata", tc.file), configs.Overrides{})
			if err == nil {
				t.Fatal("Load accepted the file")
			}
			if cfg != nil {
				t.Errorf("Load returned a config beside its error")
			}
			if got := problemPaths(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("problem paths = %q, want %q; problems:\n%v", got, tc.want, err)
			}
		})
	}
}

// TestBadFilesAllListed keeps the table and testdata in step.
func TestBadFilesAllListed(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, tc := range badFiles {
		listed = append(listed, filepath.Join("testdata", tc.file))
	}
	sort.Strings(listed)
	check(t, "testdata/bad-*.yml", files, listed)
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := configs.Load("testdata/bad-five-problems.yml", configs.Overrides{})
	var p configs.Problems
	if !errors.As(err, &p) {
		t.Fatalf("error %v is not Problems", err)
	}
	check(t, "len(problems)", len(p), 5)
	check(t, "problems", []string(p), []string{
		`external_url: "/responder" is not an absolute http(s) URL, such as https://responder.example.com`,
		`log.level: "verbose": want debug, info, warn or error`,
		`http.body_limit_bytes: must be at least 1024, got 100`,
		`store.queue_size: must be at least 1, got -1`,
		`policy.rules[0].severity: unknown severity "S5": want one of S1, S2, S3, S4`,
	})
	if want := "invalid config (5 problems):\n  external_url: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want it to start with %q", err.Error(), want)
	}
	check(t, "lines of Error()", strings.Count(err.Error(), "\n"), 5)

	_, err = configs.Load("testdata/bad-timezone.yml", configs.Overrides{})
	check(t, "Error() of one problem", fmt.Sprint(err),
		`invalid config: policy.business_hours.location: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons`)
}

func TestLoadGoodFiles(t *testing.T) {
	for _, file := range []string{"good-minimal.yml", "good-full.yml", "good-empty-lists.yml", "../example.yml", "../default.yml"} {
		t.Run(file, func(t *testing.T) {
			mustLoad(t, filepath.Join("testdata", file), configs.Overrides{})
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := configs.Load("testdata/no-such-config.yml", configs.Overrides{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestLoadEmbeddedDefault(t *testing.T) {
	cfg, pol := mustLoad(t, "", configs.Overrides{})
	check(t, "listen", cfg.Listen, "127.0.0.1:9095")
	check(t, "data_dir", cfg.DataDir, "./data")
	check(t, "external_url", cfg.ExternalURL, "http://127.0.0.1:9095")
	check(t, "notifications.log", cfg.Notifications.Log, true)
	check(t, "log", cfg.Log, configs.LogConfig{Level: "info", Format: "console"})
	check(t, "auth.tokens", len(cfg.Auth.Tokens), 0)
	check(t, "http", cfg.HTTP, configs.HTTPConfig{
		BodyLimitBytes:    1 << 20,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ShutdownTimeout:   30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		MaxIngestInFlight: 512,
	})
	check(t, "store", cfg.Store, configs.StoreConfig{QueueSize: 1024, MaxBatch: 256, LockTimeout: 0, RetryAfter: time.Second})
	check(t, "policy.rules", cfg.Policy.Rules, []configs.RuleConfig{
		{Name: "critical-in-production", Matchers: []string{`severity=~"critical|page"`, `env=~"prod|production"`}, Severity: "S1"},
		{Name: "critical", Matchers: []string{`severity=~"critical|page"`}, Severity: "S2"},
		{Name: "warning", Matchers: []string{`severity=~"warning|error"`}, Severity: "S3"},
	})
	check(t, "default severity", pol.DefaultSeverity, policy.S4)
	check(t, "reopen within", pol.ReopenWithin, 30*time.Minute)
	// The basic incident process is the checklist of every incident.
	check(t, "runbooks", len(pol.Runbooks), 1)
	basic := pol.Runbooks[0]
	check(t, "basic runbook", []any{basic.Name, basic.EveryIncident, len(basic.Steps)}, []any{"incident-process", true, 8})
	check(t, "attached to any incident", len(pol.RunbooksFor(map[string]string{"alertname": "X"}, "")), 1)
}

// A file with nothing in it is all defaults; unlike the embedded default it
// leaves notifications.log off and logs JSON.
func TestLoadEmptyFile(t *testing.T) {
	cfg, _ := mustLoad(t, writeConfig(t, "# nothing\n"), configs.Overrides{})
	check(t, "notifications.log", cfg.Notifications.Log, false)
	check(t, "log.format", cfg.Log.Format, "json")
	check(t, "listen", cfg.Listen, "127.0.0.1:9095")
}

func TestLoadGoodFull(t *testing.T) {
	cfg, pol := mustLoad(t, "testdata/good-full.yml", configs.Overrides{})
	check(t, "listen", cfg.Listen, "0.0.0.0:8443")
	check(t, "data_dir", cfg.DataDir, "/var/lib/responder")
	check(t, "external_url", cfg.ExternalURL, "https://responder.example.com/")
	check(t, "log", cfg.Log, configs.LogConfig{Level: "debug", Format: "console"})
	check(t, "http", cfg.HTTP, configs.HTTPConfig{
		BodyLimitBytes:    2048,
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       time.Minute,
		ShutdownTimeout:   5 * time.Second,
		MaxHeaderBytes:    8192,
		MaxIngestInFlight: 64,
	})
	check(t, "store", cfg.Store, configs.StoreConfig{QueueSize: 16, MaxBatch: 4, LockTimeout: 250 * time.Millisecond, RetryAfter: 3 * time.Second})
	check(t, "notifications.log", cfg.Notifications.Log, true)

	check(t, "len(tokens)", len(cfg.Auth.Tokens), 2)
	check(t, "tokens[0].name", cfg.Auth.Tokens[0].Name, "alertmanager")
	check(t, "tokens[0].token", cfg.Auth.Tokens[0].Token.Value(), "good-full-ingest-token-0001")
	check(t, "tokens[0].scopes", cfg.Auth.Tokens[0].Scopes, []string{"ingest"})
	check(t, "tokens[1].name", cfg.Auth.Tokens[1].Name, "from-file")
	check(t, "tokens[1].token (read from token_file, newline trimmed)", cfg.Auth.Tokens[1].Token.Value(), "testdata-token-from-file-0123456789")
	check(t, "tokens[1].scopes", cfg.Auth.Tokens[1].Scopes, []string{"read", "write", "ingest"})

	check(t, "default severity (lower case accepted)", pol.DefaultSeverity, policy.S3)
	check(t, "len(rules)", len(pol.Rules), 2)
	check(t, "rules[0]", fmt.Sprint(pol.Rules[0].Name, " ", pol.Rules[0].Matchers, " ", pol.Rules[0].Severity, " ", pol.Rules[0].Team, " ", pol.Rules[0].RunbookURL),
		`db-down {service="db",severity="critical"} S1 data https://runbooks.example.com/db-down`)
	check(t, "rules[1].name (unnamed rule)", pol.Rules[1].Name, "rule-1")
	check(t, "rules[1].severity", pol.Rules[1].Severity, policy.S2)
	check(t, "opsgenie priorities", pol.OpsGeniePriorities, map[string]policy.Severity{"P1": policy.S2, "P2": policy.S3})
	check(t, "P3 falls back to default_severity", pol.ClassifyOpsGenie("P3", nil).Severity, policy.S3)
	check(t, "reopen within", pol.ReopenWithin, time.Duration(0))

	check(t, "process S1", pol.ProcessFor(policy.S1), policy.Process{
		Zoom: false, PageOutOfHours: true, Channels: []string{"slack", "email"}, UpdateInterval: time.Hour, AutoResolve: true,
	})
	check(t, "process S2", pol.ProcessFor(policy.S2), policy.Process{
		Zoom: true, PageOutOfHours: true, Channels: []string{"slack", "email"}, UpdateInterval: time.Hour, AutoResolve: true,
	})
	check(t, "process S3", pol.ProcessFor(policy.S3), policy.Process{
		PageOutOfHours: true, Channels: []string{"email"}, UpdateInterval: 0, AutoResolve: false,
	})
	check(t, "process S4", pol.ProcessFor(policy.S4), policy.Process{
		Channels: []string{"slack"}, UpdateInterval: 24 * time.Hour, AutoResolve: true,
	})

	check(t, "business hours location", pol.BusinessHours.Location.String(), "Europe/Berlin")
	for _, tc := range []struct {
		utc     string
		inHours bool
	}{
		{"2025-01-06T07:59:00Z", false}, // Monday 08:59 in Berlin (CET)
		{"2025-01-06T08:00:00Z", true},  // Monday 09:00 in Berlin
		{"2025-01-06T15:59:00Z", true},  // Monday 16:59 in Berlin
		{"2025-01-06T16:00:00Z", false}, // Monday 17:00 in Berlin: the end is exclusive
		{"2025-07-07T07:30:00Z", true},  // Monday 09:30 in Berlin (CEST)
		{"2025-01-04T15:30:00Z", true},  // Saturday 4 January 10:30 in New York: second interval
		{"2025-01-11T15:30:00Z", false}, // Saturday 11 January: outside days_of_month 1:7
		{"2025-04-05T14:30:00Z", false}, // Saturday 5 April: outside months january:march
		{"2025-01-04T10:30:00Z", false}, // Saturday 10:30 in Berlin, 05:30 in New York
	} {
		now, err := time.Parse(time.RFC3339, tc.utc)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "out of hours at "+tc.utc, pol.OutOfHours(now), !tc.inHours)
	}
}

func TestLoadGoodEmptyLists(t *testing.T) {
	_, pol := mustLoad(t, "testdata/good-empty-lists.yml", configs.Overrides{})
	check(t, "len(rules)", len(pol.Rules), 0)
	check(t, "classify critical", pol.Classify(map[string]string{"severity": "critical"}).Severity, policy.S4)
	check(t, "len(opsgenie priorities)", len(pol.OpsGeniePriorities), 0)
	check(t, "P1 falls back to default_severity", pol.ClassifyOpsGenie("P1", nil).Severity, policy.S4)
	check(t, "out of hours on a Wednesday noon", pol.OutOfHours(time.Date(2025, 1, 8, 12, 0, 0, 0, time.UTC)), true)
	check(t, "S1 channels", pol.ProcessFor(policy.S1).Channels, []string{})
	check(t, "S1 zoom (default kept)", pol.ProcessFor(policy.S1).Zoom, true)
	check(t, "len(runbooks)", len(pol.Runbooks), 0)
}

func TestBuildPolicyDefaults(t *testing.T) {
	_, pol := mustLoad(t, "", configs.Overrides{})

	var names []string
	var severities []policy.Severity
	for _, r := range pol.Rules {
		names = append(names, r.Name)
		severities = append(severities, r.Severity)
	}
	check(t, "rule names, in order", names, []string{"critical-in-production", "critical", "warning"})
	check(t, "rule severities, in order", severities, []policy.Severity{policy.S1, policy.S2, policy.S3})

	for _, tc := range []struct {
		labels map[string]string
		want   policy.Classification
	}{
		{map[string]string{"severity": "critical", "env": "prod"}, policy.Classification{Severity: policy.S1, Rule: "critical-in-production"}},
		{map[string]string{"severity": "page", "env": "production"}, policy.Classification{Severity: policy.S1, Rule: "critical-in-production"}},
		{map[string]string{"severity": "critical", "env": "staging"}, policy.Classification{Severity: policy.S2, Rule: "critical"}},
		{map[string]string{"severity": "page"}, policy.Classification{Severity: policy.S2, Rule: "critical"}},
		{map[string]string{"severity": "error", "env": "prod"}, policy.Classification{Severity: policy.S3, Rule: "warning"}},
		{map[string]string{"severity": "warning"}, policy.Classification{Severity: policy.S3, Rule: "warning"}},
		{map[string]string{"severity": "critical-ish"}, policy.Classification{Severity: policy.S4}}, // regexes are anchored
		{map[string]string{"severity": "info"}, policy.Classification{Severity: policy.S4}},
		{nil, policy.Classification{Severity: policy.S4}},
	} {
		check(t, fmt.Sprintf("Classify(%v)", tc.labels), pol.Classify(tc.labels), tc.want)
	}

	check(t, "opsgenie priorities", pol.OpsGeniePriorities, map[string]policy.Severity{
		"P1": policy.S1, "P2": policy.S2, "P3": policy.S3, "P4": policy.S4, "P5": policy.S4,
	})
	for prio, want := range map[string]policy.Severity{"P1": policy.S1, "P2": policy.S2, "P3": policy.S3, "P4": policy.S4, "P5": policy.S4, "P9": policy.S4} {
		check(t, "ClassifyOpsGenie("+prio+")", pol.ClassifyOpsGenie(prio, nil).Severity, want)
	}

	bridge := policy.Process{Zoom: true, PageOutOfHours: true, Channels: []string{"slack", "email"}, UpdateInterval: time.Hour, AutoResolve: true}
	check(t, "process S1", pol.ProcessFor(policy.S1), bridge)
	check(t, "process S2", pol.ProcessFor(policy.S2), bridge)
	check(t, "process S3", pol.ProcessFor(policy.S3), policy.Process{Channels: []string{"slack"}, UpdateInterval: 4 * time.Hour, AutoResolve: true})
	check(t, "process S4", pol.ProcessFor(policy.S4), policy.Process{AutoResolve: true})

	check(t, "business hours location", pol.BusinessHours.Location, time.UTC)
	for _, tc := range []struct {
		utc       string
		outOfHour bool
	}{
		{"2025-01-08T08:59:00Z", true},  // Wednesday
		{"2025-01-08T09:00:00Z", false}, // Wednesday
		{"2025-01-08T16:59:00Z", false}, // Wednesday
		{"2025-01-08T17:00:00Z", true},  // Wednesday, end exclusive
		{"2025-01-11T12:00:00Z", true},  // Saturday
		{"2025-01-12T12:00:00Z", true},  // Sunday
	} {
		now, _ := time.Parse(time.RFC3339, tc.utc)
		check(t, "out of hours at "+tc.utc, pol.OutOfHours(now), tc.outOfHour)
	}
}

func TestBuildPolicyProcessOverrides(t *testing.T) {
	_, pol := mustLoad(t, writeConfig(t, `
policy:
  severities:
    S2:
      zoom: false
      update_interval: 30m
    S3:
      page_out_of_hours: true
      auto_resolve: false
    S4:
      channels: [email]
      update_interval: 8h
`), configs.Overrides{})
	check(t, "process S1 (untouched)", pol.ProcessFor(policy.S1), policy.Process{
		Zoom: true, PageOutOfHours: true, Channels: []string{"slack", "email"}, UpdateInterval: time.Hour, AutoResolve: true,
	})
	check(t, "process S2", pol.ProcessFor(policy.S2), policy.Process{
		Zoom: false, PageOutOfHours: true, Channels: []string{"slack", "email"}, UpdateInterval: 30 * time.Minute, AutoResolve: true,
	})
	check(t, "process S3", pol.ProcessFor(policy.S3), policy.Process{
		PageOutOfHours: true, Channels: []string{"slack"}, UpdateInterval: 4 * time.Hour, AutoResolve: false,
	})
	check(t, "process S4", pol.ProcessFor(policy.S4), policy.Process{
		Channels: []string{"email"}, UpdateInterval: 8 * time.Hour, AutoResolve: true,
	})
}

// Rules come out in file order, whatever their severities: the first match
// wins.
func TestBuildPolicyRuleOrder(t *testing.T) {
	_, pol := mustLoad(t, writeConfig(t, `
policy:
  rules:
    - {name: c, matchers: ['x="1"'], severity: S4}
    - {name: a, matchers: ['x=~".+"'], severity: S1}
    - {name: b, matchers: ['y="1"'], severity: S2}
`), configs.Overrides{})
	var names []string
	for _, r := range pol.Rules {
		names = append(names, r.Name)
	}
	check(t, "rule names", names, []string{"c", "a", "b"})
	check(t, "first match wins", pol.Classify(map[string]string{"x": "1", "y": "1"}).Rule, "c")
}

func TestOverrides(t *testing.T) {
	t.Run("win over the file", func(t *testing.T) {
		cfg, _ := mustLoad(t, "testdata/good-full.yml", configs.Overrides{Listen: "127.0.0.1:19095", DataDir: "/srv/responder"})
		check(t, "listen", cfg.Listen, "127.0.0.1:19095")
		check(t, "data_dir", cfg.DataDir, "/srv/responder")
	})
	t.Run("empty overrides keep the file", func(t *testing.T) {
		cfg, _ := mustLoad(t, "testdata/good-full.yml", configs.Overrides{})
		check(t, "listen", cfg.Listen, "0.0.0.0:8443")
	})
	t.Run("non-loopback listen without tokens fails", func(t *testing.T) {
		for _, path := range []string{"", "testdata/good-minimal.yml"} {
			_, err := configs.Load(path, configs.Overrides{Listen: "0.0.0.0:9095"})
			check(t, "problem paths of "+path, problemPaths(t, err), []string{"auth.tokens"})
		}
	})
	t.Run("all interfaces without tokens fails", func(t *testing.T) {
		_, err := configs.Load("", configs.Overrides{Listen: ":9095"})
		check(t, "problem paths", problemPaths(t, err), []string{"auth.tokens"})
	})
	t.Run("loopback listens need no tokens", func(t *testing.T) {
		for _, listen := range []string{"127.0.0.2:9095", "[::1]:9095", "localhost:9095"} {
			if _, err := configs.Load("", configs.Overrides{Listen: listen}); err != nil {
				t.Errorf("listen %s: %v", listen, err)
			}
		}
	})
	t.Run("bad listen override fails", func(t *testing.T) {
		_, err := configs.Load("", configs.Overrides{Listen: "nonsense"})
		check(t, "problem paths", problemPaths(t, err), []string{"listen"})
	})
	t.Run("blank data_dir override keeps the file", func(t *testing.T) {
		cfg, _ := mustLoad(t, "", configs.Overrides{DataDir: ""})
		check(t, "data_dir", cfg.DataDir, "./data")
	})
	t.Run("problems of the file are reported with the override's", func(t *testing.T) {
		_, err := configs.Load("testdata/bad-five-problems.yml", configs.Overrides{Listen: "0.0.0.0:1"})
		check(t, "number of problems", len(problemPaths(t, err)), 6)
	})
	t.Run("external_url follows the listen override", func(t *testing.T) {
		cfg, _ := mustLoad(t, "", configs.Overrides{Listen: "127.0.0.1:19095"})
		if cfg.ExternalURL != "http://127.0.0.1:19095" {
			t.Errorf("external_url %s, want it derived from the listen override", cfg.ExternalURL)
		}
	})
}

// Validate may be called again on a loaded config (e.g. by a reload) and must
// give the same answer.
func TestValidateTwice(t *testing.T) {
	cfg, _ := mustLoad(t, "testdata/good-full.yml", configs.Overrides{})
	if err := cfg.Validate(); err != nil {
		t.Errorf("second Validate: %v", err)
	}
}

// Anchors may be referenced many times; a small file must not turn into a
// huge list of problems (or a long walk).
func TestAliasesDoNotMultiplyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("x: &rule {")
	for i := range 300 {
		fmt.Fprintf(&b, "k%d: 1, ", i)
	}
	b.WriteString("}\npolicy:\n  rules: [")
	for range 300 {
		b.WriteString("*rule, ")
	}
	b.WriteString("]\n")
	_, err := configs.Load(writeConfig(t, b.String()), configs.Overrides{})
	var p configs.Problems
	if !errors.As(err, &p) {
		t.Fatalf("error %v is not Problems", err)
	}
	if len(p) > 1000 {
		t.Errorf("the unknown-key walk expanded aliases: %d problems from a %d-byte file", len(p), b.Len())
	}
}

func TestSecretNeverPrints(t *testing.T) {
	cfg, _ := mustLoad(t, "testdata/good-full.yml", configs.Overrides{})
	values := []string{"good-full-ingest-token-0001", "testdata-token-from-file-0123456789"}
	tok := cfg.Auth.Tokens[0].Token
	check(t, "Value()", tok.Value(), values[0])

	yamlOut, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	jsonOut, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	text, err := tok.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, out, want string }{
		{"MarshalText", string(text), "<secret>"},
		{"json.Marshal of Config", string(jsonOut), `"Token":"\u003csecret\u003e"`},
		{"yaml.Marshal of Config", string(yamlOut), "token: <secret>"},
	}
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x"} {
		cases = append(cases,
			struct{ name, out, want string }{verb + " of Secret", fmt.Sprintf(verb, tok), ""},
			struct{ name, out, want string }{verb + " of Config", fmt.Sprintf(verb, cfg), ""},
			struct{ name, out, want string }{verb + " of *Config", fmt.Sprintf(verb, &cfg), ""},
			struct{ name, out, want string }{verb + " of tokens", fmt.Sprintf(verb, cfg.Auth.Tokens), ""},
		)
	}
	check(t, "%s of Secret", fmt.Sprint(tok), "<secret>")
	check(t, "%#v of Secret", fmt.Sprintf("%#v", tok), "<secret>")
	check(t, "%q of Secret", fmt.Sprintf("%q", tok), `"<secret>"`)
	if want := "Token:<secret>"; !strings.Contains(fmt.Sprintf("%+v", cfg), want) {
		t.Errorf("%%+v of Config does not contain %s", want)
	}
	for _, tc := range cases {
		if !strings.Contains(tc.out, tc.want) {
			t.Errorf("%s: %s does not contain %s", tc.name, tc.out, tc.want)
		}
		for _, v := range values {
			if strings.Contains(tc.out, v) || strings.Contains(tc.out, hex.EncodeToString([]byte(v))) {
				t.Errorf("%s: output contains the token %q:\n%s", tc.name, v, tc.out)
			}
		}
	}
	check(t, "secret count in yaml", strings.Count(string(yamlOut), "token: <secret>"), 2)

	// An unset secret stays visibly unset.
	var empty configs.Secret
	emptyJSON, _ := json.Marshal(empty)
	check(t, "json of empty secret", string(emptyJSON), `""`)
	emptyYAML, _ := yaml.Marshal(struct{ S configs.Secret }{})
	check(t, "yaml of empty secret", string(emptyYAML), "s: \"\"\n")
}

// No problem text may contain a token, nor the first seven characters yaml.v3
// quotes of a long value it cannot decode.
func TestProblemsNeverContainTokens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		path   string
		tokens []string
	}{
		{name: "duplicates", path: "testdata/bad-duplicate-tokens.yml", tokens: []string{"duplicate-token-value-0001", "duplicate-token-value-0002"}},
		{name: "short", path: "testdata/bad-short-token.yml", tokens: []string{"short-secret"}},
		{name: "scopes", path: "testdata/bad-scope.yml", tokens: []string{"bad-scope-token-value-0001", "bad-scope-token-value-0002"}},
		{name: "token and file", path: "testdata/bad-token-and-file.yml", tokens: []string{"bad-token-and-file-value-01", "testdata-token-from-file-0123456789"}},
		{name: "unknown keys", path: "testdata/bad-unknown-keys.yml", tokens: []string{"bad-unknown-keys-token-0001"}},
		{name: "token missing its name", path: "testdata/bad-token-file-missing.yml", tokens: []string{"bad-token-file-missing-0003"}},
		{name: "token of the wrong type", path: writeConfig(t, `
auth:
  tokens:
    - name: map
      token: {value: Qm9vTXapQn7sYd2LkW5e}
      scopes: [read]
`), tokens: []string{"Qm9vTXapQn7sYd2LkW5e"}},
		{name: "tokens listed as strings", path: writeConfig(t, `
listen: 0.0.0.0:9095
auth:
  tokens:
    - Zq8vN3xKp2LmT7wR4yHs
`), tokens: []string{"Zq8vN3xKp2LmT7wR4yHs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configs.Load(tc.path, configs.Overrides{})
			if err == nil {
				t.Fatal("Load accepted the file")
			}
			msg := err.Error()
			for _, tok := range tc.tokens {
				if strings.Contains(msg, tok) {
					t.Fatalf("problems contain the token %q:\n%s", tok, msg)
				}
				if strings.Contains(msg, tok[:7]) {
					t.Fatalf("problems contain the start of the token %q:\n%s", tok, msg)
				}
			}
		})
	}
}

func TestExampleLoads(t *testing.T) {
	cfg, pol := mustLoad(t, "example.yml", configs.Overrides{})
	def, defPol := mustLoad(t, "", configs.Overrides{})

	// The example spells the defaults out; where it says "Default: X" and
	// sets X, the loaded value is the default.
	// public_url is the example's own, not the default.
	exampleHTTP := cfg.HTTP
	exampleHTTP.PublicURL = def.HTTP.PublicURL
	check(t, "http", exampleHTTP, def.HTTP)
	// The example shows PostgreSQL; the default is the bbolt file.
	exampleStore := cfg.Store
	if exampleStore.Postgres == nil || exampleStore.Postgres.MaxConns != 16 {
		t.Errorf("store.postgres = %+v, want the example's, max_conns 16", exampleStore.Postgres)
	}
	exampleStore.Postgres = nil
	check(t, "store", exampleStore, def.Store)
	check(t, "listen", cfg.Listen, def.Listen)
	check(t, "data_dir", cfg.DataDir, def.DataDir)
	check(t, "default severity", pol.DefaultSeverity, defPol.DefaultSeverity)
	check(t, "opsgenie priorities", pol.OpsGeniePriorities, defPol.OpsGeniePriorities)
	for _, s := range policy.Severities() {
		got, want := pol.ProcessFor(s), defPol.ProcessFor(s)
		// channels: [] in the example is the default's "no channels".
		if len(got.Channels) == 0 && len(want.Channels) == 0 {
			got.Channels, want.Channels = nil, nil
		}
		check(t, "process "+s.String(), got, want)
	}
	check(t, "reopen within", pol.ReopenWithin, defPol.ReopenWithin)
	check(t, "business hours location", pol.BusinessHours.Location.String(), "Europe/Berlin")
	check(t, "business hours intervals", pol.BusinessHours.Intervals, defPol.BusinessHours.Intervals)
	check(t, "number of rules", len(pol.Rules), len(defPol.Rules))
	for i := range pol.Rules {
		check(t, fmt.Sprintf("rules[%d]", i), fmt.Sprint(pol.Rules[i].Name, pol.Rules[i].Matchers, pol.Rules[i].Severity),
			fmt.Sprint(defPol.Rules[i].Name, defPol.Rules[i].Matchers, defPol.Rules[i].Severity))
	}

	var scopes []string
	for _, tok := range cfg.Auth.Tokens {
		scopes = append(scopes, tok.Scopes...)
	}
	sort.Strings(scopes)
	check(t, "scopes used", slices.Compact(scopes), []string{"admin", "ingest", "read", "write"})
}

// TestExampleShowsEveryOption compares the keys of example.yml with the
// fields of Config: a new option must be added to the example.
func TestExampleShowsEveryOption(t *testing.T) {
	data, err := os.ReadFile("example.yml")
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	inExample := map[string]bool{}
	exampleKeys(root.Content[0], "", inExample)

	// token_file cannot be active in an example that CI checks from any
	// directory; it is shown in a comment.
	// Nor can one of two exclusive keys (token and token_file, name and id,
	// static bridges and the Zoom API): those are shown in comments.
	commented := map[string]bool{"auth.tokens[].token_file": true,
		"notifications.slack.token_file": true, "notifications.email.password_file": true,
		"notifications.opsgenie.api_key_file": true, "notifications.opsgenie.responder.id": true,
		"notifications.pagerduty.routing_key_file": true, "notifications.pagerduty.rest.token_file": true,
		"notifications.pagerduty.webhook_secret_file": true, "store.postgres.dsn_file": true,
		"notifications.slack.interactivity.app_token_file": true, "notifications.slack.interactivity.signing_secret": true,
		"notifications.slack.interactivity.signing_secret_file": true,
		"notifications.jsm.api_key_file":                        true, "notifications.jsm.responder.id": true, "notifications.jsm.rest.api_token_file": true,
		"notifications.zoom.api": true, "notifications.zoom.api.account_id": true,
		"notifications.zoom.api.client_id": true, "notifications.zoom.api.client_secret": true,
		"notifications.zoom.api.client_secret_file": true, "notifications.zoom.api.token_url": true,
		"notifications.zoom.api.api_url": true, "notifications.zoom.api.user": true,
		// The old name of http.public_url.
		"external_url": true,
		// TLS needs files that exist.
		"http.tls": true, "http.tls.cert_file": true, "http.tls.key_file": true,
	}
	for _, key := range configKeys(reflect.TypeFor[configs.Config](), "") {
		if commented[key] {
			last := key[strings.LastIndex(key, ".")+1:]
			if !strings.Contains(string(data), last+":") {
				t.Errorf("example.yml does not show %s, even in a comment", key)
			}
			continue
		}
		if !inExample[key] {
			t.Errorf("example.yml does not set %s", key)
		}
	}
	for _, s := range []string{"S1", "S2", "S3", "S4"} {
		if !inExample["policy.severities."+s] {
			t.Errorf("example.yml does not show policy.severities.%s", s)
		}
	}
	for _, p := range []string{"P1", "P2", "P3", "P4", "P5"} {
		if !inExample["policy.opsgenie_priorities."+p] {
			t.Errorf("example.yml does not show policy.opsgenie_priorities.%s", p)
		}
	}
}

// exampleKeys records every key path of a YAML tree, writing list elements
// as [] and keeping map keys as they are.
func exampleKeys(n *yaml.Node, path string, out map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p, any := n.Content[i].Value, "*"
			if path != "" {
				p, any = path+"."+p, path+".*"
			}
			out[p] = true
			exampleKeys(n.Content[i+1], p, out)
			// Any key of a map stands for all of them (a scenario's name).
			out[any] = true
			exampleKeys(n.Content[i+1], any, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			exampleKeys(c, path+"[]", out)
		}
	}
}

// configKeys lists the key paths of a config type, lists written as [] and
// the keys of maps by example (S1 for severities). Types from other modules
// (Alertmanager's time intervals) are not entered.
func configKeys(t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		return configKeys(t.Elem(), path+"[]")
	case reflect.Map:
		return configKeys(t.Elem(), path+".*")
	case reflect.Struct:
		if t.PkgPath() != reflect.TypeFor[configs.Config]().PkgPath() {
			return nil
		}
		var keys []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "" || name == "-" {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			keys = append(keys, p)
			keys = append(keys, configKeys(f.Type, p)...)
		}
		return keys
	}
	return nil
}
