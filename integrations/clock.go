package integrations

import "time"

// Clock writes times for people: in UTC, which is what is stored and what
// every team member can compare, with the local time of Zone beside it
// (display.time_zone) so that nobody converts in their head at 3 a.m.
// The zero Clock writes UTC only.
type Clock struct {
	Zone *time.Location
}

// Format writes t in UTC with layout (which should say "UTC" or "Z"),
// then the local time beside it: "2026-11-22 03:04 UTC (04:04 CET)".
func (c Clock) Format(t time.Time, layout string) string {
	out := t.UTC().Format(layout)
	if local := c.Local(t); local != "" {
		out += " (" + local + ")"
	}
	return out
}

// Local is t's clock time and zone in Zone, with its date when that is not
// the UTC date (past midnight on one side): "04:04 CET", "2026-11-23 00:30
// AEDT". It is empty when Zone is unset or is UTC.
func (c Clock) Local(t time.Time) string {
	if c.Zone == nil || c.Zone == time.UTC || c.Zone.String() == "UTC" {
		return ""
	}
	lt, ut := t.In(c.Zone), t.UTC()
	if ly, lm, ld := lt.Date(); ly != ut.Year() || lm != ut.Month() || ld != ut.Day() {
		return lt.Format("2006-01-02 15:04 MST")
	}
	return lt.Format("15:04 MST")
}
