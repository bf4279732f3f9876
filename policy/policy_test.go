package policy_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin and America/New_York without relying on the host's zoneinfo

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/alertmanager/timeinterval"
	"gopkg.in/yaml.v3"

	"github.com/responder-sre/responder/policy"
)

func TestParseSeverity(t *testing.T) {
	tests := []struct {
		in      string
		want    policy.Severity
		wantErr bool
	}{
		{in: "S1", want: policy.S1},
		{in: "S2", want: policy.S2},
		{in: "S3", want: policy.S3},
		{in: "S4", want: policy.S4},
		{in: "s1", want: policy.S1},
		{in: " S3 ", want: policy.S3},
		{in: "S0", wantErr: true},
		{in: "S5", wantErr: true},
		{in: "S9", wantErr: true},
		{in: "", wantErr: true},
		{in: "1", wantErr: true},
		{in: "S01", wantErr: true},
		{in: "S-1", wantErr: true},
		{in: "SEV1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := policy.ParseSeverity(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSeverity(%q) error = %v, want error %t", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseSeverity(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestSeverityString(t *testing.T) {
	tests := []struct {
		s    policy.Severity
		want string
	}{
		{policy.S1, "S1"},
		{policy.S2, "S2"},
		{policy.S3, "S3"},
		{policy.S4, "S4"},
		{policy.Severity(0), "Severity(0)"},
		{policy.Severity(5), "Severity(5)"},
		{policy.Severity(-1), "Severity(-1)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Severity(%d).String() = %q, want %q", int(tt.s), got, tt.want)
		}
	}
}

func TestSeverityTextRoundTrip(t *testing.T) {
	want := []policy.Severity{policy.S1, policy.S2, policy.S3, policy.S4}
	if len(policy.Severities()) != len(want) {
		t.Fatalf("Severities = %v, want %v", policy.Severities(), want)
	}
	for i, s := range policy.Severities() {
		if s != want[i] {
			t.Errorf("Severities[%d] = %v, want %v (most severe first)", i, s, want[i])
		}
		if !s.Valid() {
			t.Errorf("%v.Valid() = false, want true", s)
		}
		b, err := s.MarshalText()
		if err != nil {
			t.Errorf("%v.MarshalText() error = %v", s, err)
			continue
		}
		if string(b) != s.String() {
			t.Errorf("%v.MarshalText() = %q, want %q", s, b, s.String())
		}
		var back policy.Severity
		if err := back.UnmarshalText(b); err != nil {
			t.Errorf("UnmarshalText(%q) error = %v", b, err)
		}
		if back != s {
			t.Errorf("UnmarshalText(MarshalText(%v)) = %v", s, back)
		}
		parsed, err := policy.ParseSeverity(s.String())
		if err != nil || parsed != s {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v, nil", s.String(), parsed, err, s)
		}
	}
}

func TestSeverityRejectsInvalid(t *testing.T) {
	for _, s := range []policy.Severity{0, 5, 9, -1} {
		if s.Valid() {
			t.Errorf("Severity(%d).Valid() = true, want false", int(s))
		}
		if b, err := s.MarshalText(); err == nil {
			t.Errorf("Severity(%d).MarshalText() = %q, nil; want an error", int(s), b)
		}
	}
	for _, in := range []string{"S0", "S5", "S9", "", "P1"} {
		got := policy.S2
		if err := got.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("UnmarshalText(%q) = nil error, want an error", in)
		}
		if got != policy.S2 {
			t.Errorf("UnmarshalText(%q) changed the value to %v on error", in, got)
		}
	}
}

// Severity travels through JSON as text, also as a map key.
func TestSeverityJSON(t *testing.T) {
	type doc struct {
		Severity policy.Severity         `json:"severity"`
		Counts   map[policy.Severity]int `json:"counts"`
	}
	in := doc{Severity: policy.S2, Counts: map[policy.Severity]int{policy.S1: 3, policy.S4: 1}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if want := `{"severity":"S2","counts":{"S1":3,"S4":1}}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if out.Severity != in.Severity || len(out.Counts) != 2 || out.Counts[policy.S1] != 3 || out.Counts[policy.S4] != 1 {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"severity":"S5"}`), &out); err == nil {
		t.Errorf(`Unmarshal {"severity":"S5"} = nil error, want an error`)
	}
	if _, err := json.Marshal(doc{Severity: 0}); err == nil {
		t.Errorf("Marshal of Severity(0) = nil error, want an error")
	}
}

func TestMoreSevereThan(t *testing.T) {
	tests := []struct {
		s, o policy.Severity
		want bool
	}{
		{policy.S1, policy.S2, true},
		{policy.S1, policy.S4, true},
		{policy.S3, policy.S4, true},
		{policy.S2, policy.S1, false},
		{policy.S4, policy.S3, false},
		{policy.S1, policy.S1, false},
		{policy.S4, policy.S4, false},
		{policy.S4, policy.Severity(0), true}, // any valid severity outranks an invalid one
		{policy.S4, policy.Severity(5), true},
		{policy.Severity(0), policy.S4, false}, // 0 is not "more severe than S1"
		{policy.Severity(0), policy.S1, false},
		{policy.Severity(5), policy.S4, false},
		{policy.Severity(0), policy.Severity(5), false},
	}
	for _, tt := range tests {
		if got := tt.s.MoreSevereThan(tt.o); got != tt.want {
			t.Errorf("%v.MoreSevereThan(%v) = %t, want %t", tt.s, tt.o, got, tt.want)
		}
	}
}

// rule builds a Rule from matchers written as an operator writes them.
func rule(t *testing.T, name string, sev policy.Severity, team, runbook string, matchers ...string) policy.Rule {
	t.Helper()
	r := policy.Rule{Name: name, Severity: sev, Team: team, RunbookURL: runbook}
	for _, s := range matchers {
		m, err := labels.ParseMatcher(s)
		if err != nil {
			t.Fatalf("ParseMatcher(%s): %v", s, err)
		}
		r.Matchers = append(r.Matchers, m)
	}
	return r
}

// defaultPolicy mirrors the default rules that configs applies.
func defaultPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	return &policy.Policy{
		Rules: []policy.Rule{
			rule(t, "critical-in-production", policy.S1, "sre", "https://runbooks.example/critical-prod",
				`severity=~"critical|page"`, `env=~"prod|production"`),
			rule(t, "critical", policy.S2, "sre", "https://runbooks.example/critical", `severity=~"critical|page"`),
			rule(t, "warning", policy.S3, "", "", `severity=~"warning|error"`),
		},
		DefaultSeverity: policy.S4,
		OpsGeniePriorities: map[string]policy.Severity{
			"P1": policy.S1, "P2": policy.S2, "P3": policy.S3, "P4": policy.S4, "P5": policy.S4,
		},
	}
}

func TestClassifyDefaultRules(t *testing.T) {
	p := defaultPolicy(t)
	tests := []struct {
		name   string
		labels map[string]string
		want   policy.Classification
	}{
		{
			name:   "critical in production",
			labels: map[string]string{"alertname": "Down", "severity": "critical", "env": "production"},
			want:   policy.Classification{Severity: policy.S1, Rule: "critical-in-production", Team: "sre", RunbookURL: "https://runbooks.example/critical-prod"},
		},
		{
			name:   "page in prod",
			labels: map[string]string{"severity": "page", "env": "prod"},
			want:   policy.Classification{Severity: policy.S1, Rule: "critical-in-production", Team: "sre", RunbookURL: "https://runbooks.example/critical-prod"},
		},
		{
			name:   "critical without env",
			labels: map[string]string{"severity": "critical"},
			want:   policy.Classification{Severity: policy.S2, Rule: "critical", Team: "sre", RunbookURL: "https://runbooks.example/critical"},
		},
		{
			name:   "critical in staging",
			labels: map[string]string{"severity": "critical", "env": "staging"},
			want:   policy.Classification{Severity: policy.S2, Rule: "critical", Team: "sre", RunbookURL: "https://runbooks.example/critical"},
		},
		{
			name:   "env regex is anchored: prod-eu is not prod",
			labels: map[string]string{"severity": "critical", "env": "prod-eu"},
			want:   policy.Classification{Severity: policy.S2, Rule: "critical", Team: "sre", RunbookURL: "https://runbooks.example/critical"},
		},
		{
			name:   "warning",
			labels: map[string]string{"severity": "warning", "env": "production"},
			want:   policy.Classification{Severity: policy.S3, Rule: "warning"},
		},
		{
			name:   "error",
			labels: map[string]string{"severity": "error"},
			want:   policy.Classification{Severity: policy.S3, Rule: "warning"},
		},
		{
			name:   "info falls to the default",
			labels: map[string]string{"severity": "info", "env": "production"},
			want:   policy.Classification{Severity: policy.S4},
		},
		{
			name:   "severity regex is anchored: crit is not critical",
			labels: map[string]string{"severity": "crit", "env": "production"},
			want:   policy.Classification{Severity: policy.S4},
		},
		{
			name:   "label values are case-sensitive",
			labels: map[string]string{"severity": "CRITICAL", "env": "production"},
			want:   policy.Classification{Severity: policy.S4},
		},
		{
			name:   "empty labels",
			labels: map[string]string{},
			want:   policy.Classification{Severity: policy.S4},
		},
		{
			name:   "nil labels",
			labels: nil,
			want:   policy.Classification{Severity: policy.S4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Classify(tt.labels); got != tt.want {
				t.Errorf("Classify(%v) = %+v, want %+v", tt.labels, got, tt.want)
			}
		})
	}
}

func TestClassifyMatcherSemantics(t *testing.T) {
	tests := []struct {
		name   string
		rules  []string // matchers of one rule "r" that yields S1
		labels map[string]string
		want   policy.Severity
	}{
		{"regex anchored: crit does not match critical", []string{`severity=~"crit"`}, map[string]string{"severity": "critical"}, policy.S4},
		{"regex anchored: crit matches crit", []string{`severity=~"crit"`}, map[string]string{"severity": "crit"}, policy.S1},
		{"explicit wildcard matches critical", []string{`severity=~"crit.*"`}, map[string]string{"severity": "critical"}, policy.S1},
		{"!= on a missing label matches", []string{`env!="staging"`}, map[string]string{"severity": "critical"}, policy.S1},
		{"!= on the excluded value does not match", []string{`env!="staging"`}, map[string]string{"env": "staging"}, policy.S4},
		{"= on a missing label does not match", []string{`env="prod"`}, map[string]string{}, policy.S4},
		{`="" matches a missing label`, []string{`env=""`}, map[string]string{"severity": "critical"}, policy.S1},
		{"!~ on a missing label matches", []string{`env!~"prod|production"`}, nil, policy.S1},
		{"every matcher must match", []string{`severity="critical"`, `env="prod"`}, map[string]string{"severity": "critical"}, policy.S4},
		{"a rule without matchers matches everything", nil, map[string]string{"severity": "info"}, policy.S1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &policy.Policy{Rules: []policy.Rule{rule(t, "r", policy.S1, "", "", tt.rules...)}}
			if got := p.Classify(tt.labels).Severity; got != tt.want {
				t.Errorf("rule %v on %v: severity = %v, want %v", tt.rules, tt.labels, got, tt.want)
			}
		})
	}
}

func TestClassifyFirstMatchWins(t *testing.T) {
	broad := rule(t, "broad", policy.S2, "platform", "", `severity="critical"`)
	narrow := rule(t, "narrow", policy.S1, "payments", "", `severity="critical"`, `service="payments"`)
	lbls := map[string]string{"severity": "critical", "service": "payments"}
	tests := []struct {
		name  string
		rules []policy.Rule
		want  policy.Classification
	}{
		{"broad first", []policy.Rule{broad, narrow}, policy.Classification{Severity: policy.S2, Rule: "broad", Team: "platform"}},
		{"narrow first", []policy.Rule{narrow, broad}, policy.Classification{Severity: policy.S1, Rule: "narrow", Team: "payments"}},
	}
	for _, tt := range tests {
		p := &policy.Policy{Rules: tt.rules}
		if got := p.Classify(lbls); got != tt.want {
			t.Errorf("%s: Classify = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestClassifyDefaultSeverity(t *testing.T) {
	tests := []struct {
		name string
		def  policy.Severity
		want policy.Severity
	}{
		{"zero value is S4", 0, policy.S4},
		{"configured S3", policy.S3, policy.S3},
		{"invalid default falls back to S4", policy.Severity(7), policy.S4},
	}
	for _, tt := range tests {
		p := &policy.Policy{DefaultSeverity: tt.def}
		if got := p.Classify(map[string]string{"severity": "critical"}); got != (policy.Classification{Severity: tt.want}) {
			t.Errorf("%s: Classify = %+v, want severity %v and no rule", tt.name, got, tt.want)
		}
		if got := p.ClassifyOpsGenie("P1", nil); got != (policy.Classification{Severity: tt.want}) {
			t.Errorf("%s: ClassifyOpsGenie without a priority map = %+v, want severity %v", tt.name, got, tt.want)
		}
	}
}

func TestClassifyOpsGenie(t *testing.T) {
	p := defaultPolicy(t)
	tests := []struct {
		name     string
		priority string
		labels   map[string]string
		want     policy.Classification
	}{
		{"P1", "P1", nil, policy.Classification{Severity: policy.S1}},
		{"P2", "P2", nil, policy.Classification{Severity: policy.S2}},
		{"P3", "P3", map[string]string{}, policy.Classification{Severity: policy.S3}},
		{"P4", "P4", map[string]string{"team": "db"}, policy.Classification{Severity: policy.S4}},
		{"P5", "P5", nil, policy.Classification{Severity: policy.S4}},
		{
			"a matching rule beats a lower priority", "P5", map[string]string{"severity": "critical", "env": "prod"},
			policy.Classification{Severity: policy.S1, Rule: "critical-in-production", Team: "sre", RunbookURL: "https://runbooks.example/critical-prod"},
		},
		{
			"a matching rule beats a higher priority", "P1", map[string]string{"severity": "warning"},
			policy.Classification{Severity: policy.S3, Rule: "warning"},
		},
		{"a non-matching label falls through to the priority", "P2", map[string]string{"severity": "info"}, policy.Classification{Severity: policy.S2}},
		{"unknown priority", "P9", nil, policy.Classification{Severity: policy.S4}},
		{"empty priority", "", map[string]string{"severity": "info"}, policy.Classification{Severity: policy.S4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.ClassifyOpsGenie(tt.priority, tt.labels); got != tt.want {
				t.Errorf("ClassifyOpsGenie(%q, %v) = %+v, want %+v", tt.priority, tt.labels, got, tt.want)
			}
		})
	}

	p.DefaultSeverity = policy.S3
	if got := p.ClassifyOpsGenie("P9", nil); got != (policy.Classification{Severity: policy.S3}) {
		t.Errorf("unknown priority with default S3 = %+v, want S3", got)
	}
}

// intervals decodes time intervals written as an operator writes them in the
// configuration file.
func intervals(t *testing.T, doc string) []timeinterval.TimeInterval {
	t.Helper()
	var out []timeinterval.TimeInterval
	if err := yaml.Unmarshal([]byte(doc), &out); err != nil {
		t.Fatalf("decode time intervals: %v\n%s", err, doc)
	}
	return out
}

const weekdaysNineToFive = `
- times: [{start_time: "09:00", end_time: "17:00"}]
  weekdays: ['monday:friday']
`

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load location %s: %v", name, err)
	}
	return loc
}

func TestBusinessHoursBerlin(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	bh := policy.BusinessHours{Location: berlin, Intervals: intervals(t, weekdaysNineToFive)}
	local := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, berlin) }
	utc := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, time.UTC) }

	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		// Wednesday 4 March 2026, Berlin wall clock.
		{"08:59 is before opening", local(2026, time.March, 4, 8, 59), false},
		{"09:00 opens", local(2026, time.March, 4, 9, 0), true},
		{"12:00", local(2026, time.March, 4, 12, 0), true},
		{"16:59 still open", local(2026, time.March, 4, 16, 59), true},
		{"16:59:59.999 still open", time.Date(2026, time.March, 4, 16, 59, 59, 999_999_999, berlin), true},
		{"17:00 is closed (end exclusive)", local(2026, time.March, 4, 17, 0), false},
		{"Saturday noon", local(2026, time.March, 7, 12, 0), false},
		{"Sunday noon", local(2026, time.March, 8, 12, 0), false},
		{"Monday 09:00", local(2026, time.March, 9, 9, 0), true},
		{"Friday 16:59", local(2026, time.March, 6, 16, 59), true},

		// Summer time starts Sunday 29 March 2026: CET (UTC+1) before, CEST (UTC+2) after.
		{"Fri 27 Mar 07:30 UTC is 08:30 CET", utc(2026, time.March, 27, 7, 30), false},
		{"Fri 27 Mar 07:59 UTC is 08:59 CET", utc(2026, time.March, 27, 7, 59), false},
		{"Fri 27 Mar 08:00 UTC is 09:00 CET", utc(2026, time.March, 27, 8, 0), true},
		{"Fri 27 Mar 15:59 UTC is 16:59 CET", utc(2026, time.March, 27, 15, 59), true},
		{"Fri 27 Mar 16:00 UTC is 17:00 CET", utc(2026, time.March, 27, 16, 0), false},
		{"Sat 28 Mar 10:00 UTC is Saturday", utc(2026, time.March, 28, 10, 0), false},
		{"Sun 29 Mar 10:00 UTC is Sunday", utc(2026, time.March, 29, 10, 0), false},
		{"Mon 30 Mar 06:59 UTC is 08:59 CEST", utc(2026, time.March, 30, 6, 59), false},
		{"Mon 30 Mar 07:00 UTC is 09:00 CEST", utc(2026, time.March, 30, 7, 0), true},
		{"Mon 30 Mar 07:30 UTC is 09:30 CEST", utc(2026, time.March, 30, 7, 30), true},
		{"Mon 30 Mar 14:59 UTC is 16:59 CEST", utc(2026, time.March, 30, 14, 59), true},
		{"Mon 30 Mar 15:00 UTC is 17:00 CEST", utc(2026, time.March, 30, 15, 0), false},
		{"Mon 30 Mar 15:30 UTC is 17:30 CEST", utc(2026, time.March, 30, 15, 30), false},

		// Summer time ends Sunday 25 October 2026: CEST before, CET after.
		{"Fri 23 Oct 06:30 UTC is 08:30 CEST", utc(2026, time.October, 23, 6, 30), false},
		{"Fri 23 Oct 07:00 UTC is 09:00 CEST", utc(2026, time.October, 23, 7, 0), true},
		{"Fri 23 Oct 07:30 UTC is 09:30 CEST", utc(2026, time.October, 23, 7, 30), true},
		{"Fri 23 Oct 14:59 UTC is 16:59 CEST", utc(2026, time.October, 23, 14, 59), true},
		{"Fri 23 Oct 15:00 UTC is 17:00 CEST", utc(2026, time.October, 23, 15, 0), false},
		{"Sun 25 Oct 10:00 UTC is Sunday", utc(2026, time.October, 25, 10, 0), false},
		{"Mon 26 Oct 07:30 UTC is 08:30 CET", utc(2026, time.October, 26, 7, 30), false},
		{"Mon 26 Oct 07:59 UTC is 08:59 CET", utc(2026, time.October, 26, 7, 59), false},
		{"Mon 26 Oct 08:00 UTC is 09:00 CET", utc(2026, time.October, 26, 8, 0), true},
		{"Mon 26 Oct 15:59 UTC is 16:59 CET", utc(2026, time.October, 26, 15, 59), true},
		{"Mon 26 Oct 16:00 UTC is 17:00 CET", utc(2026, time.October, 26, 16, 0), false},

		// The weekday is Berlin's, not the caller's: Monday 00:30 CEST is Sunday in UTC.
		{"Sun 22:30 UTC is Mon 00:30 CEST, before opening", utc(2026, time.March, 29, 22, 30), false},
		// The caller's zone does not matter: 03:30 EDT is 09:30 CEST.
		{"Mon 30 Mar 03:30 New York is 09:30 CEST", time.Date(2026, time.March, 30, 3, 30, 0, 0, mustLoad(t, "America/New_York")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bh.InHours(tt.now); got != tt.want {
				t.Errorf("InHours(%s = %s Berlin) = %t, want %t", tt.now.UTC().Format(time.RFC3339), tt.now.In(berlin).Format("Mon 15:04 MST"), got, tt.want)
			}
			if got := bh.OutOfHours(tt.now); got != !tt.want {
				t.Errorf("OutOfHours(%s) = %t, want %t", tt.now.UTC().Format(time.RFC3339), got, !tt.want)
			}
			p := &policy.Policy{BusinessHours: bh}
			if got := p.OutOfHours(tt.now); got != !tt.want {
				t.Errorf("Policy.OutOfHours(%s) = %t, want %t", tt.now.UTC().Format(time.RFC3339), got, !tt.want)
			}
		})
	}
}

func TestBusinessHoursIntervalLocation(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	// New York hours, configured in a policy whose default zone is Berlin.
	bh := policy.BusinessHours{Location: berlin, Intervals: intervals(t, `
- times: [{start_time: "09:00", end_time: "17:00"}]
  weekdays: ['monday:friday']
  location: America/New_York
`)}
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		// Monday 30 March 2026: New York is on EDT (UTC-4), Berlin on CEST (UTC+2).
		{"07:30 UTC is 09:30 Berlin but 03:30 New York", time.Date(2026, time.March, 30, 7, 30, 0, 0, time.UTC), false},
		{"12:59 UTC is 08:59 New York", time.Date(2026, time.March, 30, 12, 59, 0, 0, time.UTC), false},
		{"13:00 UTC is 09:00 New York", time.Date(2026, time.March, 30, 13, 0, 0, 0, time.UTC), true},
		{"16:00 UTC is 18:00 Berlin but 12:00 New York", time.Date(2026, time.March, 30, 16, 0, 0, 0, time.UTC), true},
		{"21:00 UTC is 17:00 New York", time.Date(2026, time.March, 30, 21, 0, 0, 0, time.UTC), false},
		// Friday 23:30 New York is already Saturday in Berlin and UTC.
		{"Sat 03:30 UTC is Fri 23:30 New York, after closing", time.Date(2026, time.April, 4, 3, 30, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		if got := bh.InHours(tt.now); got != tt.want {
			t.Errorf("%s: InHours = %t, want %t", tt.name, got, tt.want)
		}
	}

	// Two intervals: Berlin mornings (default zone) or New York afternoons.
	both := policy.BusinessHours{Location: berlin, Intervals: intervals(t, `
- times: [{start_time: "09:00", end_time: "12:00"}]
  weekdays: ['monday:friday']
- times: [{start_time: "13:00", end_time: "17:00"}]
  weekdays: ['monday:friday']
  location: America/New_York
`)}
	for _, tt := range []struct {
		name string
		now  time.Time
		want bool
	}{
		{"09:30 Berlin", time.Date(2026, time.March, 30, 7, 30, 0, 0, time.UTC), true},
		{"12:30 Berlin, 06:30 New York", time.Date(2026, time.March, 30, 10, 30, 0, 0, time.UTC), false},
		{"14:00 New York", time.Date(2026, time.March, 30, 18, 0, 0, 0, time.UTC), true},
	} {
		if got := both.InHours(tt.now); got != tt.want {
			t.Errorf("two intervals, %s: InHours = %t, want %t", tt.name, got, tt.want)
		}
	}
}

func TestBusinessHoursDefaultLocationIsUTC(t *testing.T) {
	bh := policy.BusinessHours{Intervals: intervals(t, weekdaysNineToFive)}
	berlin := mustLoad(t, "Europe/Berlin")
	tests := []struct {
		now  time.Time
		want bool
	}{
		{time.Date(2026, time.March, 30, 8, 59, 0, 0, time.UTC), false},
		{time.Date(2026, time.March, 30, 9, 0, 0, 0, time.UTC), true},
		{time.Date(2026, time.March, 30, 16, 59, 0, 0, time.UTC), true},
		{time.Date(2026, time.March, 30, 17, 0, 0, 0, time.UTC), false},
		// 10:30 in Berlin is 08:30 UTC: read in UTC, not in the caller's zone.
		{time.Date(2026, time.March, 30, 10, 30, 0, 0, berlin), false},
	}
	for _, tt := range tests {
		if got := bh.InHours(tt.now); got != tt.want {
			t.Errorf("nil Location: InHours(%s) = %t, want %t", tt.now.Format(time.RFC3339), got, tt.want)
		}
	}
}

func TestBusinessHoursNoIntervals(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	for _, bh := range []policy.BusinessHours{{}, {Location: berlin}, {Location: berlin, Intervals: []timeinterval.TimeInterval{}}} {
		for _, now := range []time.Time{
			time.Date(2026, time.March, 30, 10, 0, 0, 0, berlin), // Monday morning
			time.Date(2026, time.March, 28, 10, 0, 0, 0, berlin), // Saturday
			time.Date(2026, time.October, 26, 3, 0, 0, 0, time.UTC),
		} {
			if bh.InHours(now) {
				t.Errorf("no intervals: InHours(%s) = true, want false", now.Format(time.RFC3339))
			}
			p := &policy.Policy{BusinessHours: bh}
			if !p.OutOfHours(now) {
				t.Errorf("no intervals: Policy.OutOfHours(%s) = false, want true", now.Format(time.RFC3339))
			}
		}
	}
}

// An operator's typo fails when the configuration is decoded, not when the
// first alert arrives.
func TestBusinessHoursBadIntervalsFailToDecode(t *testing.T) {
	for _, doc := range []string{
		"- times: [{start_time: \"9:00\", end_time: \"17:00\"}]\n",
		"- weekdays: ['monday:freitag']\n",
		"- times: [{start_time: \"17:00\", end_time: \"09:00\"}]\n",
		"- location: Europe/Berlinn\n",
	} {
		var out []timeinterval.TimeInterval
		if err := yaml.Unmarshal([]byte(doc), &out); err == nil {
			t.Errorf("decode %q = nil error, want an error", doc)
		}
	}
}

func TestReopens(t *testing.T) {
	resolved := time.Date(2026, time.March, 30, 7, 30, 0, 0, time.UTC)
	tests := []struct {
		name     string
		within   time.Duration
		resolved time.Time
		now      time.Time
		want     bool
	}{
		{"just after resolution", 30 * time.Minute, resolved, resolved.Add(time.Second), true},
		{"at the moment of resolution", 30 * time.Minute, resolved, resolved, true},
		{"within the window", 30 * time.Minute, resolved, resolved.Add(29 * time.Minute), true},
		{"exactly at the edge", 30 * time.Minute, resolved, resolved.Add(30 * time.Minute), true},
		{"one nanosecond after the edge", 30 * time.Minute, resolved, resolved.Add(30*time.Minute + time.Nanosecond), false},
		{"long after", 30 * time.Minute, resolved, resolved.Add(24 * time.Hour), false},
		{"zero ReopenWithin disables reopening", 0, resolved, resolved.Add(time.Second), false},
		{"zero ReopenWithin, same instant", 0, resolved, resolved, false},
		{"never resolved", 30 * time.Minute, time.Time{}, resolved, false},
		{"same instant in another zone", 30 * time.Minute, resolved, resolved.Add(10 * time.Minute).In(mustLoad(t, "Europe/Berlin")), true},
	}
	for _, tt := range tests {
		p := &policy.Policy{ReopenWithin: tt.within}
		if got := p.Reopens(tt.resolved, tt.now); got != tt.want {
			t.Errorf("%s: Reopens(%s, %s) with ReopenWithin %s = %t, want %t",
				tt.name, tt.resolved.Format(time.RFC3339Nano), tt.now.Format(time.RFC3339Nano), tt.within, got, tt.want)
		}
	}
}

func TestProcessFor(t *testing.T) {
	p := &policy.Policy{Process: map[policy.Severity]policy.Process{
		policy.S1: {Zoom: true, PageOutOfHours: true, Channels: []string{"slack", "email"}, UpdateInterval: 30 * time.Minute},
	}}
	got := p.ProcessFor(policy.S1)
	if !got.Zoom || !got.PageOutOfHours || len(got.Channels) != 2 || got.UpdateInterval != 30*time.Minute {
		t.Errorf("ProcessFor(S1) = %+v, want the configured S1 process", got)
	}
	got = p.ProcessFor(policy.S4)
	if got.Zoom || got.PageOutOfHours || got.Channels != nil || got.UpdateInterval != 0 || got.AutoResolve {
		t.Errorf("ProcessFor(S4) = %+v, want the zero Process", got)
	}
}

func TestRunbookAttaches(t *testing.T) {
	db, err := labels.ParseMatcher(`service="database"`)
	if err != nil {
		t.Fatal(err)
	}
	p := &policy.Policy{Runbooks: []policy.Runbook{
		{Name: "basic", EveryIncident: true},
		{Name: "db", Matchers: labels.Matchers{db}, Scenarios: []string{"db-failover"}},
		{Name: "by-hand"},
	}}
	for _, tc := range []struct {
		name     string
		lbls     map[string]string
		scenario string
		want     []string
	}{
		{"no labels", nil, "", []string{"basic"}},
		{"matching labels", map[string]string{"service": "database"}, "", []string{"basic", "db"}},
		{"other labels", map[string]string{"service": "kafka"}, "", []string{"basic"}},
		{"drill of the scenario", nil, "db-failover", []string{"basic", "db"}},
		{"drill of another scenario", nil, "checkout", []string{"basic"}},
	} {
		var got []string
		for _, r := range p.RunbooksFor(tc.lbls, tc.scenario) {
			got = append(got, r.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if r, ok := p.Runbook("by-hand"); !ok || r.Name != "by-hand" {
		t.Errorf("Runbook(by-hand) = %+v, %v", r, ok)
	}
	if _, ok := p.Runbook("nope"); ok {
		t.Errorf("Runbook(nope) found")
	}
}
