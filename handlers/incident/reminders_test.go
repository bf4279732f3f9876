package incident

import (
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

// The text helpers: UTC first, the local zone beside, dates when the day
// differs.
func TestReminderClockText(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tokyo := time.FixedZone("JST", 9*3600)
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
		display *time.Location // display.time_zone, over the business hours' zone
		at, now string
		want    string
	}{
		{"display zone first", time.UTC, tokyo, "2026-11-17T02:00:00Z", "2026-11-17T03:00:00Z", "02:00 UTC (11:00 JST)"},
		{"display zone over business hours", loc, tokyo, "2026-11-17T02:00:00Z", "2026-11-17T03:00:00Z", "02:00 UTC (11:00 JST)"},
		{"no zone", nil, nil, "2026-11-17T02:00:00Z", "2026-11-17T03:00:00Z", "02:00 UTC"},
		{"UTC zone", time.UTC, nil, "2026-11-17T02:00:00Z", "2026-11-17T03:00:00Z", "02:00 UTC"},
		{"winter", loc, nil, "2026-11-17T02:00:00Z", "2026-11-17T03:00:00Z", "02:00 UTC (03:00 CET)"},
		{"summer", loc, nil, "2026-07-01T02:00:00Z", "2026-07-01T03:00:00Z", "02:00 UTC (04:00 CEST)"},
		{"local day differs", loc, nil, "2026-11-16T23:30:00Z", "2026-11-17T01:00:00Z", "2026-11-16 23:30 UTC (00:30 CET)"},
		{"only the local day differs", loc, nil, "2026-11-16T22:30:00Z", "2026-11-16T23:30:00Z", "22:30 UTC (2026-11-16 23:30 CET)"},
		{"days ago", loc, nil, "2026-11-15T10:00:00Z", "2026-11-17T03:00:00Z", "2026-11-15 10:00 UTC (2026-11-15 11:00 CET)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Service{policy: &policy.Policy{BusinessHours: policy.BusinessHours{Location: tt.loc}}, cfg: Config{TimeZone: tt.display}}
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

// RunReminders posts what is due when it starts and on every pass after,
// each reminder once however many passes see it, and stops with its
// context. Inside a synctest bubble its ticker runs on virtual time.
func TestRunReminders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "responder.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		s := newService(t, db, nil)
		s.now = func() time.Time { return time.Now().UTC() } // the bubble's clock
		s.policy.Process[policy.S1] = policy.Process{UpdateInterval: time.Hour}
		ctx := context.Background()
		v, _, err := s.Declare(ctx, DeclareRequest{Title: "Checkout down", Severity: "S1"}, "oncall", Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		reminders := func() int {
			got, err := s.Get(ctx, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range got.Timeline {
				if e.Kind == store.KindReminder {
					n++
				}
			}
			return n
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { s.RunReminders(rctx, 30*time.Second); close(done) }()
		for _, step := range []struct {
			after time.Duration
			want  int
		}{
			{59 * time.Minute, 0}, // not due yet
			{2 * time.Minute, 1},  // due at 1h: one pass posts it
			{30 * time.Minute, 1}, // sixty more passes: still one
			{30 * time.Minute, 2}, // an hour after the first reminder
		} {
			time.Sleep(step.after) // virtual
			synctest.Wait()
			if got := reminders(); got != step.want {
				t.Fatalf("after %s more: %d reminders, want %d", step.after, got, step.want)
			}
		}
		cancel()
		<-done // synctest reports a deadlock if RunReminders does not stop
	})
}
