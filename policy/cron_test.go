package policy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/policy"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestCronNext(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	for _, tc := range []struct {
		spec  string
		after time.Time
		want  []string // the next runs, in UTC
	}{
		{"0 10 * * wed", time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC), // a Wednesday, 10:00 Berlin is 09:00 UTC
			[]string{"2026-12-09T09:00:00Z", "2026-12-16T09:00:00Z"}},
		{"*/20 9-10 * * 1-5", time.Date(2026, 12, 4, 8, 55, 0, 0, time.UTC), // Friday
			[]string{"2026-12-04T09:00:00Z", "2026-12-04T09:20:00Z", "2026-12-04T09:40:00Z", "2026-12-07T08:00:00Z"}},
		{"0 0 1 jan,jul *", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
			[]string{"2026-12-31T23:00:00Z", "2027-06-30T22:00:00Z"}},
		// Both day fields restricted: either matches (the 13th, or a Friday).
		{"0 12 13 * 5", time.Date(2027, 8, 1, 0, 0, 0, 0, time.UTC),
			[]string{"2027-08-06T10:00:00Z", "2027-08-13T10:00:00Z", "2027-08-20T10:00:00Z"}},
		{"0 12 29 2 *", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), []string{"2028-02-29T11:00:00Z"}},
		{"0 12 31 2 *", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), []string{"0001-01-01T00:00:00Z"}},
		{"0 3 * * 7", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), []string{"2026-12-06T02:00:00Z"}}, // 7 is Sunday
		// Spring forward in Berlin (2027-03-28, 02:00 -> 03:00): 02:30 does
		// not exist and runs at 03:30 CEST, once; the day after as usual.
		{"30 2 * * *", time.Date(2027, 3, 27, 12, 0, 0, 0, time.UTC),
			[]string{"2027-03-28T01:30:00Z", "2027-03-29T00:30:00Z"}},
		// Fall back (2026-10-25, 03:00 -> 02:00): 02:30 happens twice and
		// runs once.
		{"30 2 * * *", time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC),
			[]string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
	} {
		after := tc.after
		c, err := policy.ParseCron(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		var got []string
		for range tc.want {
			next := c.Next(after, berlin)
			got = append(got, next.UTC().Format(time.RFC3339))
			after = next
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s after %s: %v, want %v", tc.spec, tc.after.Format(time.RFC3339), got, tc.want)
		}
	}
}

func TestParseCronRefuses(t *testing.T) {
	for spec, says := range map[string]string{
		"0 10 * *":        "want five fields",
		"60 10 * * *":     `minute "60": want 0 to 59`,
		"0 24 * * *":      `hour "24": want 0 to 23`,
		"0 10 0 * *":      `day of month "0": want 1 to 31`,
		"0 10 * 13 *":     `month "13": want 1 to 12 or a name (jan, feb, ...)`,
		"0 10 * * funday": `day of week "funday"`,
		"0 10 * * 5-1":    `day of week "5-1": the range runs backwards`,
		"*/0 10 * * *":    "minute \"*/0\": the step after / must be a positive number",
		"0 10 * * mon,":   `day of week ""`,
	} {
		if _, err := policy.ParseCron(spec); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("ParseCron(%q) = %v, want an error saying %q", spec, err, says)
		}
	}
}

// Any cron line either fails to parse with an error or gives times that
// come after the time asked for, in order, and match the line.
func FuzzParseCron(f *testing.F) {
	for _, seed := range []string{"0 10 * * wed", "*/15 9-17 * * 1-5", "0 0 29 2 *", "30 2 * * *", "0 12 13 * 5", "1,2,3 * * jan-mar sun", "* * * * 7"} {
		f.Add(seed)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := policy.ParseCron(spec)
		if err != nil {
			return
		}
		after := time.Date(2026, 10, 24, 23, 59, 0, 0, time.UTC)
		for range 3 {
			next := c.Next(after, berlin)
			if next.IsZero() {
				return
			}
			if !next.After(after) {
				t.Fatalf("%q: Next(%s) = %s, not after it", spec, after, next)
			}
			after = next
		}
	})
}
