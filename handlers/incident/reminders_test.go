package incident

import (
	"testing"
	"time"

	"github.com/responder-sre/responder/policy"
)

// The text helpers: UTC first, the local zone beside, dates when the day
// differs.
func TestReminderClockText(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name    string
		loc     *time.Location
		at, now string
		want    string
	}{
		{"no zone", nil, "2026-11-17T02:00:00Z", "2026-11-17T03:00:00Z", "02:00 UTC"},
		{"UTC zone", time.UTC, "2026-11-17T02:00:00Z", "2026-11-17T03:00:00Z", "02:00 UTC"},
		{"winter", loc, "2026-11-17T02:00:00Z", "2026-11-17T03:00:00Z", "02:00 UTC (03:00 CET)"},
		{"summer", loc, "2026-07-01T02:00:00Z", "2026-07-01T03:00:00Z", "02:00 UTC (04:00 CEST)"},
		{"local day differs", loc, "2026-11-16T23:30:00Z", "2026-11-17T01:00:00Z", "2026-11-16 23:30 UTC (00:30 CET)"},
		{"only the local day differs", loc, "2026-11-16T22:30:00Z", "2026-11-16T23:30:00Z", "22:30 UTC (2026-11-16 23:30 CET)"},
		{"days ago", loc, "2026-11-15T10:00:00Z", "2026-11-17T03:00:00Z", "2026-11-15 10:00 UTC (2026-11-15 11:00 CET)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Service{policy: &policy.Policy{BusinessHours: policy.BusinessHours{Location: tt.loc}}}
			if got := s.clockText(at(tt.at), at(tt.now)); got != tt.want {
				t.Errorf("clockText = %q, want %q", got, tt.want)
			}
		})
	}
	for d, want := range map[time.Duration]string{time.Hour: "1h", 4 * time.Hour: "4h", 30 * time.Minute: "30m", 90 * time.Minute: "1h30m", 45 * time.Second: "45s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
