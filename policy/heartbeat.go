package policy

import (
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
)

// Heartbeat is one heartbeat of the dead-man's switch: something that
// must ping at least every Interval (a monitoring pipeline's Watchdog
// alert, a backup job's curl). Missing for Interval + Grace, it opens an
// incident of Severity for Team. Alertmanager alerts that match Matchers
// are its pings, never incidents.
type Heartbeat struct {
	Name     string
	Interval time.Duration
	Grace    time.Duration
	Severity Severity
	Team     string
	Matchers labels.Matchers // none: pinged only through the API
}

// Matches reports whether an alert with these labels is a ping of h.
func (h Heartbeat) Matches(lbls map[string]string) bool {
	return len(h.Matchers) > 0 && matchAll(h.Matchers, lbls)
}

// Silent reports whether h is missing at now: no ping for Interval +
// Grace since its last one, or, before any ping (and right after a start,
// when the pings missed while the daemon was down are not known), since
// since. It returns when it falls or fell silent.
func (h Heartbeat) Silent(lastPing, since, now time.Time) (bool, time.Time) {
	from := since
	if lastPing.After(from) {
		from = lastPing
	}
	at := from.Add(h.Interval + h.Grace)
	return !now.Before(at), at
}

// HeartbeatFor is the heartbeat an alert with these labels pings, if any.
func (p *Policy) HeartbeatFor(lbls map[string]string) (Heartbeat, bool) {
	for _, h := range p.Heartbeats {
		if h.Matches(lbls) {
			return h, true
		}
	}
	return Heartbeat{}, false
}
