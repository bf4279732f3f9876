package incident

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// The moves a responder makes during an incident, besides acknowledging,
// staffing, updating and resolving: each names who made it and why, in the
// timeline and in the incident's thread, in one transaction with its
// notifications.

// explained makes a change that carries a text of its own (a note, a
// reason): the text is required and bounded, the person acting is named,
// and do gets both, trimmed, inside the incident's transaction.
func (s *Service) explained(ctx context.Context, id, field, text, by, actor string, do func(ch *change, by, text string) error) (*View, error) {
	if err := CheckText(field, text, MaxText, true); err != nil {
		return nil, err
	}
	person, err := who("by", by, actor)
	if err != nil {
		return nil, err
	}
	text = strings.TrimSpace(text)
	return s.changeIncident(ctx, id, func(ch *change) error { return do(ch, person, text) })
}

// NoteRequest adds a note to the timeline (and the thread).
type NoteRequest struct {
	Text string `json:"text"`
	By   string `json:"by"`
}

// AddNote adds a note to the incident id's timeline and posts it in its
// thread. A resolved incident takes notes too (what was found after).
func (s *Service) AddNote(ctx context.Context, id string, req NoteRequest, actor string) (*View, error) {
	return s.explained(ctx, id, "text", req.Text, req.By, actor, func(ch *change, by, text string) error {
		return ch.announce(integrations.EventNote, store.KindNote, "note from "+by+": "+text, by)
	})
}

// SeverityRequest changes an incident's severity, up or down, for a
// reason.
type SeverityRequest struct {
	Severity string `json:"severity"`
	Reason   string `json:"reason"`
	By       string `json:"by"`
}

// SetSeverity changes the severity of the incident id. Raising it runs
// what the new severity asks for that has not happened (the bridge, the
// announcement where it is routed, a page out of business hours); lowering
// it is said in the thread and pages nobody back. Either way the reason is
// recorded with who gave it.
func (s *Service) SetSeverity(ctx context.Context, id string, req SeverityRequest, actor string) (*View, error) {
	sev, err := policy.ParseSeverity(strings.TrimSpace(req.Severity))
	if err != nil {
		return nil, invalid("severity", "%v", err)
	}
	return s.explained(ctx, id, "reason", req.Reason, req.By, actor, func(ch *change, by, reason string) error {
		cur := storedSeverity(ch.inc.Severity)
		switch {
		case ch.inc.Status == store.StatusResolved:
			return conflict("%s is resolved: reopen it first to change its severity", ch.inc.ID)
		case sev == cur:
			return conflict("%s is already %s", ch.inc.ID, sev)
		case sev.MoreSevereThan(cur):
			return ch.raise(sev, reason+" (set by "+by+")", by)
		}
		old := ch.inc.Severity
		ch.inc.Severity = sev.String()
		return ch.announce(integrations.EventSeverityLowered, store.KindSeverityLowered,
			fmt.Sprintf("severity lowered from %s to %s by %s: %s", old, sev, by, reason), by)
	})
}

// CustomerImpactRequest says whether customers are affected, and why.
type CustomerImpactRequest struct {
	CustomerImpact *bool  `json:"customer_impact"`
	Reason         string `json:"reason"`
	By             string `json:"by"`
}

// SetCustomerImpact sets or clears customer impact on the incident id.
// Setting it tells customer engineering (once per incident, as at
// declaration); clearing it is recorded and said in the thread.
func (s *Service) SetCustomerImpact(ctx context.Context, id string, req CustomerImpactRequest, actor string) (*View, error) {
	if req.CustomerImpact == nil {
		return nil, invalid("customer_impact", "required: true when customers are affected, false when they are not")
	}
	affected := *req.CustomerImpact
	return s.explained(ctx, id, "reason", req.Reason, req.By, actor, func(ch *change, by, reason string) error {
		switch {
		case ch.inc.CustomerImpact == affected && affected:
			return conflict("%s already affects customers", ch.inc.ID)
		case ch.inc.CustomerImpact == affected:
			return conflict("%s is not marked as affecting customers", ch.inc.ID)
		case affected:
			return ch.markCustomerImpact(reason+" (set by "+by+")", by)
		}
		ch.inc.CustomerImpact = false
		return ch.announce(integrations.EventNote, store.KindCustomerImpact,
			fmt.Sprintf("customer impact cleared by %s: %s", by, reason), by)
	})
}

// ReopenRequest reopens a resolved incident, for a reason.
type ReopenRequest struct {
	Reason string `json:"reason"`
	By     string `json:"by"`
}

// Reopen reopens the resolved incident id: open again, unacknowledged, its
// thread told, and its reminders running again.
func (s *Service) Reopen(ctx context.Context, id string, req ReopenRequest, actor string) (*View, error) {
	return s.explained(ctx, id, "reason", req.Reason, req.By, actor, func(ch *change, by, reason string) error {
		if ch.inc.Status != store.StatusResolved {
			return conflict("%s is %s: only a resolved incident can be reopened", ch.inc.ID, ch.inc.Status)
		}
		return ch.reopen(reason+" (by "+by+")", by)
	})
}

// PageRequest pages a person or a team now, whatever the hour: the team
// lead called in, a database expert for a second opinion.
type PageRequest struct {
	// Responder is "type:name": user:maria@example.com, team:database,
	// schedule:sre-oncall or escalation:platform.
	Responder string `json:"responder"`
	Reason    string `json:"reason"`
	By        string `json:"by"`
}

// Page pages req.Responder through the pager for the incident id. The page
// carries the incident (its link, its bridge) like the policy's page; it is
// recorded with who asked and why, and said in the incident's thread, as
// its delivery will be.
func (s *Service) Page(ctx context.Context, id string, req PageRequest, actor string) (*View, error) {
	r, err := integrations.ParseResponder(req.Responder)
	if err != nil {
		return nil, invalid("responder", "%v", err)
	}
	if s.cfg.Routes.Paging == nil {
		return nil, unprocessable("responder", "no pager is configured (notifications.opsgenie, jsm or pagerduty): nobody can be paged")
	}
	return s.explained(ctx, id, "reason", req.Reason, req.By, actor, func(ch *change, by, reason string) error {
		inc := ch.inc
		switch {
		case inc.Status == store.StatusResolved:
			return conflict("%s is resolved: reopen it first to page someone", inc.ID)
		case inc.Drill && !s.cfg.Routes.PageDrills:
			return unprocessable("responder", "%s is a drill, and drills page nobody (drills.page is off)", inc.ID)
		}
		pager := s.pagerOf(inc)
		exists := pager != "" && (ownAlert(inc) || inc.PagerAlert)
		if pager == "" {
			pager = s.cfg.Routes.Paging.pagerFor(inc)
		}
		if types := pageableTypes(pager, exists); types != nil && !slices.Contains(types, r.Type) {
			why := "pages"
			if exists {
				why = "adds to the alert " + inc.ID + " has"
			}
			return invalid("responder", "%s %s only a %s, not a %s", pager, why, strings.Join(types, " or a "), r.Type)
		}
		text := fmt.Sprintf("paging %s now, asked by %s: %s", r, by, reason)
		if err := ch.record(store.KindAction, text, by); err != nil {
			return err
		}
		ch.events = append(ch.events, event{name: integrations.EventNote, text: text, by: by, page: r.String()})
		return nil
	})
}

// CanPage reports whether a pager is configured, so that Page can page.
func (s *Service) CanPage() bool { return s.cfg.Routes.Paging != nil }
