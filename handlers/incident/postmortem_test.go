package incident

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/responder-sre/responder/store"
)

func TestBuildReport(t *testing.T) {
	t0 := time.Date(2026, 11, 17, 3, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	tests := []struct {
		name string
		inc  *store.Incident
		want string
	}{
		{"nil incident", nil, `null`},
		{"nothing happened yet", &store.Incident{CreatedAt: t0}, `{}`},
		{"acknowledged only", &store.Incident{CreatedAt: t0, AcknowledgedAt: at(90 * time.Second)},
			`{"time_to_acknowledge":{"duration":"1m30s","seconds":90}}`},
		{"every step, rounded to the second",
			&store.Incident{CreatedAt: t0, AcknowledgedAt: at(4*time.Minute + 400*time.Millisecond), RolesAssignedAt: at(12*time.Minute + 30*time.Second),
				FirstUpdateAt: at(time.Hour + 600*time.Millisecond), ResolvedAt: at(26 * time.Hour)},
			`{"time_to_acknowledge":{"duration":"4m0s","seconds":240},"time_to_roles":{"duration":"12m30s","seconds":750},` +
				`"time_to_first_update":{"duration":"1h0m1s","seconds":3601},"time_to_resolve":{"duration":"26h0m0s","seconds":93600}}`},
		{"resolved without the other steps", &store.Incident{CreatedAt: t0, ResolvedAt: at(0)},
			`{"time_to_resolve":{"duration":"0s","seconds":0}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(buildReport(tc.inc, nil))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMarkdownCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", "—"},
		{"  \n ", "—"},
		{"a | b", `a \| b`},
		{"line one\nline two\r\nline three\rfour", "line one<br>line two<br>line three<br>four"},
		{"*stays* `as` [is](x)", "*stays* `as` [is](x)"},
	}
	for _, tc := range tests {
		if got := cell(tc.in); got != tc.want {
			t.Errorf("cell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := inline("Disk\nfull  on\tdb-1 "); got != "Disk full on db-1" {
		t.Errorf("inline: %q", got)
	}
}
