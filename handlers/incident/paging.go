package incident

import (
	"fmt"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// PagingRoutes chooses the pager an incident pages through: its team's,
// else its severity's, else the default. A cutover from one pager to
// another can so go team by team.
type PagingRoutes struct {
	Pager      string            // the default pager: opsgenie, jsm or pagerduty
	ByTeam     map[string]string // team -> pager
	BySeverity map[string]string // S1..S4 -> pager
	// Responders are whom each configured pager pages by default, as the
	// target of its pages ("team:sre-oncall").
	Responders map[string]string
}

// pagerFor is the pager a new page of inc goes through.
func (p *PagingRoutes) pagerFor(inc *store.Incident) string {
	if c := p.ByTeam[inc.Team]; inc.Team != "" && c != "" {
		return c
	}
	if c := p.BySeverity[inc.Severity]; c != "" {
		return c
	}
	return p.Pager
}

// pagerOf is the pager holding inc's alert: the pager the incident came
// from (its own alert), else the one that paged it (paged_via), so that
// acknowledging and closing reach it even after the routes changed; empty
// when nothing was paged.
func (s *Service) pagerOf(inc *store.Incident) string {
	if src := string(inc.Source); integrations.IsPager(src) && s.configuredPager(src) {
		return src
	}
	return inc.PagedVia
}

func (s *Service) configuredPager(name string) bool {
	p := s.cfg.Routes.Paging
	_, ok := p.responders()[name]
	return p != nil && ok
}

func (p *PagingRoutes) responders() map[string]string {
	if p == nil {
		return nil
	}
	return p.Responders
}

// ownAlert reports whether inc came from a pager, whose alert is its own:
// Responder adds responders to it but leaves its lifecycle to the pager.
func ownAlert(inc *store.Incident) bool { return integrations.IsPager(string(inc.Source)) }

// planPaging queues the pager's part of an event: the policy's page (out
// of business hours, for a severity that pages), a page a person asked
// for, and the acknowledgement and close of the alert Responder raised.
func (s *Service) planPaging(ch *change, ev event, proc policy.Process, announce bool, bridge uint64, enqueue enqueueFunc) error {
	inc, r := ch.inc, s.cfg.Routes
	if ev.page != "" {
		// A person asked for someone to be paged now, whatever the hour.
		_, _, err := s.planPage(ch, ev.page, ev.text, 0, enqueue)
		return err
	}
	// Out of hours when it opened, or, for a severity raise, now.
	outOfHours := inc.OutOfHours
	if ev.name == integrations.EventSeverityRaised {
		outOfHours = s.policy.OutOfHours(ch.now)
	}
	policyPage := inc.PagedAt == nil && proc.PageOutOfHours && outOfHours && inc.Status != store.StatusResolved && announce
	switch {
	case policyPage && r.Paging == nil && r.Log && !inc.Drill:
		// Nobody can be paged, and the log says so: the page that a pager
		// would have carried.
		_, err := enqueue(integrations.ChannelLog, "on-call", integrations.EventPage,
			fmt.Sprintf("%s out of business hours: this would page the on-call, but no pager is configured", inc.Severity), 0)
		return err
	case policyPage && r.Paging != nil && (!inc.Drill || r.PageDrills):
		t := ch.now
		inc.PagedAt = &t
		// The page waits (briefly, outbox.Config.DependencyWait) for the
		// bridge asked for with it, so that the person woken up gets the
		// link; if it goes without, the link follows as a note on the alert.
		pager, target, err := s.planPage(ch, "", ev.text, bridge, enqueue)
		if err != nil {
			return err
		}
		return ch.record(store.KindAction, fmt.Sprintf("paging %s through %s: %s out of business hours", target, pager, inc.Severity), "responder")
	}
	pager := s.pagerOf(inc)
	if pager == "" || ownAlert(inc) || (!inc.PagerAlert && inc.PagedAt == nil) {
		return nil // no alert of Responder's to acknowledge or close
	}
	switch ev.name {
	case integrations.EventAcknowledged:
		_, err := enqueue(pager, r.Paging.responders()[pager], integrations.EventAcknowledged, ev.text, 0)
		return err
	case integrations.EventResolved:
		reached, err := ch.cancelPages()
		if err != nil || !reached {
			return err // nothing reached the pager: nothing to close
		}
		_, err = enqueue(pager, r.Paging.responders()[pager], integrations.EventClose, ev.text, 0)
		return err
	}
	return nil
}

// cancelPages cancels the incident's pages that have not gone yet, now
// that it is resolved: a page that never went needs no close after it. It
// reports whether any page may have reached the pager (sent, or tried at
// least once), so that the alert is closed. The dispatcher claims a page
// in a transaction before it calls the pager, so a page is either claimed
// (and closed after) or cancelled here, never both.
func (ch *change) cancelPages() (reached bool, err error) {
	intents, err := ch.tx.IncidentIntents(ch.inc.ID)
	if err != nil {
		return false, err
	}
	for i := range intents {
		in := &intents[i]
		if !integrations.IsPager(in.Channel) || !integrations.IsPage(in.Event) {
			continue
		}
		// Sent, going now, or tried before (a timeout may have landed).
		reached = reached || in.State == store.IntentSent ||
			(in.State == store.IntentPending && (in.Attempts > 0 || in.AttemptAt != nil))
		if in.State != store.IntentPending || in.AttemptAt != nil {
			continue // gone, or going now
		}
		in.State = store.IntentCancelled
		if err := ch.tx.PutIntent(in); err != nil {
			return false, err
		}
		if err := ch.record(store.KindAction, fmt.Sprintf("page to %s through %s cancelled: %s was resolved before it went",
			in.Target, in.Channel, ch.inc.ID), "responder"); err != nil {
			return false, err
		}
	}
	return reached, nil
}

// enqueueFunc queues one intent of a change (see plan).
type enqueueFunc func(channel, target, name, text string, after uint64) (uint64, error)

// planPage pages target ("team:sre"; empty: the pager's configured
// responder) for inc: on the incident's own alert in the pager it came
// from, else on an alert Responder raises in the pager its routes choose
// (recorded as paged_via), or, once that exists, as a responder added to it.
func (s *Service) planPage(ch *change, target, text string, after uint64, enqueue enqueueFunc) (pager, to string, err error) {
	inc, routes := ch.inc, s.cfg.Routes.Paging
	pager, name := s.pagerOf(inc), integrations.EventPage
	switch {
	case ownAlert(inc) && pager != "":
	case pager != "" && inc.PagerAlert:
		name = integrations.EventAddResponder
	default:
		pager = routes.pagerFor(inc)
		inc.PagedVia, inc.PagerAlert = pager, true
	}
	if target == "" {
		target = routes.responders()[pager]
	}
	if s.cfg.Routes.Log {
		// The log's target names the pager too, so that its preview shows
		// what that pager would receive.
		if _, err := enqueue(integrations.ChannelLog, integrations.LogPageTarget(pager, target), name, text, 0); err != nil {
			return "", "", err
		}
	}
	_, err = enqueue(pager, target, name, text, after)
	return pager, target, err
}

// pageableTypes are the responder types a pager can page for an
// incident, given whether its alert exists already; nil: any. OpsGenie adds
// only a user or a team to an alert that exists; PagerDuty asks a user or
// an escalation policy (by ID) to join, always.
func pageableTypes(pager string, alertExists bool) []string {
	switch {
	case pager == integrations.ChannelOpsGenie && alertExists:
		return []string{"user", "team"}
	case pager == integrations.ChannelPagerDuty:
		return []string{"user", "escalation"}
	}
	return nil
}
