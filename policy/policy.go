package policy

import (
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/alertmanager/timeinterval"
)

// Rule maps alerts whose labels satisfy every matcher to a severity.
type Rule struct {
	Name       string
	Matchers   labels.Matchers
	Severity   Severity
	Team       string
	RunbookURL string
	// CustomerImpact marks incidents of matching alerts as affecting
	// customers.
	CustomerImpact bool
}

// Matches reports whether every matcher of the rule accepts lbls. A label
// that is absent counts as the empty string, as in Alertmanager.
func (r Rule) Matches(lbls map[string]string) bool { return matchAll(r.Matchers, lbls) }

// matchAll reports whether every matcher accepts lbls; a label that is
// absent counts as the empty string.
func matchAll(ms labels.Matchers, lbls map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(lbls[m.Name]) {
			return false
		}
	}
	return true
}

// Process is what the incident process does for one severity.
type Process struct {
	Zoom           bool          // open a bridge and put its link in the announcement
	PageOutOfHours bool          // add a responder to the pager alert outside business hours
	Channels       []string      // notification channels to announce on (slack, email)
	UpdateInterval time.Duration // progress update expected this often; 0 means none
	AutoResolve    bool          // resolve when every alert of the incident is resolved
}

// BusinessHours is a set of Alertmanager time intervals. Intervals without
// their own location are read in Location.
type BusinessHours struct {
	Location  *time.Location
	Intervals []timeinterval.TimeInterval
}

// InHours reports whether now falls inside any interval. With no intervals
// there are no business hours, so every moment is out of hours.
func (b BusinessHours) InHours(now time.Time) bool {
	loc := b.Location
	if loc == nil {
		loc = time.UTC
	}
	for _, ti := range b.Intervals {
		t := now
		if ti.Location == nil {
			// ContainsTime converts to the interval's own location when it has
			// one; otherwise it reads t in t's location.
			t = now.In(loc)
		}
		if ti.ContainsTime(t) {
			return true
		}
	}
	return false
}

// OutOfHours is the negation of InHours.
func (b BusinessHours) OutOfHours(now time.Time) bool { return !b.InHours(now) }

// Policy is the whole validated rule set. Build it with configs; the zero
// value classifies everything as S4.
type Policy struct {
	Rules              []Rule
	DefaultSeverity    Severity
	OpsGeniePriorities map[string]Severity
	BusinessHours      BusinessHours
	Process            map[Severity]Process
	ReopenWithin       time.Duration
	// ETAWithin is how long after opening an incident without an ETA for
	// recovery gets asked for one; 0 never asks.
	ETAWithin time.Duration
	// CustomerImpactLabel is the label that, set to "true", says customers
	// are affected (default customer_impact).
	CustomerImpactLabel string
	// KindLabel is the label whose value makes an Alertmanager incident's
	// kind, for post-mortems (default alertname).
	KindLabel string
	// Heartbeats are the dead-man's switch: see Heartbeat.
	Heartbeats []Heartbeat
	// Runbooks are the checklists attached to incidents: see Runbook.
	Runbooks []Runbook
}

// AlertKind is the post-mortem kind of an Alertmanager incident with these
// labels: the kind label's value, else fallback.
func (p *Policy) AlertKind(lbls map[string]string, fallback string) string {
	label := p.KindLabel
	if label == "" {
		label = "alertname"
	}
	if v := lbls[label]; v != "" {
		return v
	}
	return fallback
}

// CustomerImpact reports whether an alert with these labels affects
// customers: its customer-impact label says "true", or the rule that
// classifies it says so.
func (p *Policy) CustomerImpact(lbls map[string]string) bool {
	label := p.CustomerImpactLabel
	if label == "" {
		label = "customer_impact"
	}
	if lbls[label] == "true" {
		return true
	}
	r, ok := p.match(lbls)
	return ok && r.CustomerImpact
}

// Classification is the outcome of classifying one alert.
type Classification struct {
	Severity   Severity
	Rule       string // name of the rule that matched; empty when none did
	Team       string
	RunbookURL string
}

// Classify applies the rules in order; the first match wins. Without a
// match the default severity applies.
func (p *Policy) Classify(lbls map[string]string) Classification {
	if r, ok := p.match(lbls); ok {
		return Classification{Severity: r.Severity, Rule: r.Name, Team: r.Team, RunbookURL: r.RunbookURL}
	}
	return Classification{Severity: p.defaultSeverity()}
}

// ClassifyOpsGenie classifies an OpsGenie alert: a matching rule wins, then
// the priority mapping (P1..P5), then the default severity.
func (p *Policy) ClassifyOpsGenie(priority string, lbls map[string]string) Classification {
	if r, ok := p.match(lbls); ok {
		return Classification{Severity: r.Severity, Rule: r.Name, Team: r.Team, RunbookURL: r.RunbookURL}
	}
	if s, ok := p.OpsGeniePriorities[priority]; ok {
		return Classification{Severity: s}
	}
	return Classification{Severity: p.defaultSeverity()}
}

func (p *Policy) match(lbls map[string]string) (Rule, bool) {
	for _, r := range p.Rules {
		if r.Matches(lbls) {
			return r, true
		}
	}
	return Rule{}, false
}

func (p *Policy) defaultSeverity() Severity {
	if p.DefaultSeverity.Valid() {
		return p.DefaultSeverity
	}
	return S4
}

// ProcessFor returns the process settings of a severity (zero value when
// the severity has none configured).
func (p *Policy) ProcessFor(s Severity) Process { return p.Process[s] }

// OutOfHours reports whether an incident opened at now is out of business hours.
func (p *Policy) OutOfHours(now time.Time) bool { return p.BusinessHours.OutOfHours(now) }

// Reopens reports whether an incident resolved at resolvedAt reopens when its
// alerts fire again at now, instead of a new incident being opened.
func (p *Policy) Reopens(resolvedAt, now time.Time) bool {
	return p.ReopenWithin > 0 && !resolvedAt.IsZero() && now.Sub(resolvedAt) <= p.ReopenWithin
}
