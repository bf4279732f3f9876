package policy

import (
	"slices"

	"github.com/prometheus/alertmanager/pkg/labels"
)

// Step roles: who of the incident's two leads a runbook step is for.
const (
	RoleRecovery = "recovery"
	RoleComms    = "comms"
)

// Runbook is a named, ordered checklist (a disaster-recovery procedure, the
// basic incident process). It is attached to an incident when the incident
// opens, by EveryIncident, by Matchers on the incident's labels, or by the
// drill scenario the incident was started from; people attach the others
// by hand.
type Runbook struct {
	Name  string
	Title string
	Steps []RunbookStep
	// EveryIncident attaches it to every incident, drills included.
	EveryIncident bool
	// Matchers attach it to an incident whose labels satisfy all of them
	// (the syntax of severity rules); none: never by labels.
	Matchers labels.Matchers
	// Scenarios attach it to drills of these scenarios.
	Scenarios []string
}

// RunbookStep is one step of a runbook.
type RunbookStep struct {
	Text string
	Role string // RoleRecovery, RoleComms, or "" for anyone
	Link string // a URL with the details (a wiki page, a dashboard)
}

// Attaches reports whether r is attached to an incident with these labels,
// started from this drill scenario ("" for a real incident).
func (r Runbook) Attaches(lbls map[string]string, scenario string) bool {
	if r.EveryIncident || scenario != "" && slices.Contains(r.Scenarios, scenario) {
		return true
	}
	return len(r.Matchers) > 0 && matchAll(r.Matchers, lbls)
}

// RunbooksFor are the runbooks attached to a new incident with these
// labels and drill scenario, in the order of the configuration.
func (p *Policy) RunbooksFor(lbls map[string]string, scenario string) []Runbook {
	var out []Runbook
	for _, r := range p.Runbooks {
		if r.Attaches(lbls, scenario) {
			out = append(out, r)
		}
	}
	return out
}

// Runbook is the configured runbook name.
func (p *Policy) Runbook(name string) (Runbook, bool) {
	for _, r := range p.Runbooks {
		if r.Name == name {
			return r, true
		}
	}
	return Runbook{}, false
}
