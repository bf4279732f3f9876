package incident

import (
	"fmt"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// change is one incident being changed inside a transaction: it appends to
// the timeline and collects the events to tell people about, which become
// outbox intents in the same transaction when the change is saved. Every
// state transition of an incident goes through it.
type change struct {
	s       *Service
	tx      *txn
	inc     *store.Incident
	now     time.Time
	events  []event
	planned int // events already turned into intents
	// created is true when this change opened the incident; acknowledged
	// and resolved when it did that (for the metrics, once committed).
	created, acknowledged, resolved bool
	// marked are the checklist steps this change marked, as marked.
	marked []store.Step
	// steps is the incident's checklist once read (stepsRead); a change
	// to it (stepsChanged) is written by save.
	steps                   []store.Step
	stepsRead, stepsChanged bool
}

// event is one thing that happened to an incident that people are told.
type event struct {
	name    string // one of the integrations.Event* names
	text    string
	by      string
	mention string // who a Slack message calls on (see store.Intent.Mention)
	// customersOnly: the event is for customer engineering alone (their
	// channel and list, when customers are affected).
	customersOnly bool
	// stateChanged: the event changes what the Slack root shows (the
	// roles, the ETA), so the root is edited too.
	stateChanged bool
	// page is whom a person asked to page now ("user:maria@example.com").
	page string
}

// tellCustomers queues text for customer engineering, when customers are
// affected by the incident as it is when the change is saved.
func (ch *change) tellCustomers(text, by string) {
	ch.events = append(ch.events, event{name: integrations.EventCustomer, text: text, by: by, customersOnly: true})
}

// changeOf starts a change of an existing incident; the transaction keeps
// it, so that what it did is counted once the transaction commits.
func (s *Service) changeOf(tx *txn, inc *store.Incident, now time.Time) *change {
	ch := &change{s: s, tx: tx, inc: inc, now: now}
	tx.changes = append(tx.changes, ch)
	return ch
}

// open starts a new incident with the next id. The caller fills the rest
// and calls save.
func (s *Service) open(tx *txn, now time.Time, inc *store.Incident) (*change, error) {
	id, err := tx.NextIncidentID()
	if err != nil {
		return nil, err
	}
	inc.ID = id
	inc.Status = store.StatusOpen
	inc.CreatedAt = now
	inc.UpdatedAt = now
	inc.OutOfHours = s.policy.OutOfHours(now)
	if inc.Labels == nil {
		inc.Labels = map[string]string{}
	}
	if inc.DedupKey == "" {
		inc.DedupKey = id
	}
	if inc.Kind == "" {
		inc.Kind = string(inc.Source) + ":" + inc.Title
	}
	ch := s.changeOf(tx, inc, now)
	ch.created = true
	return ch, nil
}

// record appends a timeline entry.
func (ch *change) record(kind, text, by string) error {
	return ch.tx.AppendTimeline(ch.inc.ID, store.Entry{At: ch.now, Kind: kind, Text: text, By: by})
}

// notify queues an event to tell people about, without a timeline entry.
func (ch *change) notify(name, text, by string) {
	ch.events = append(ch.events, event{name: name, text: text, by: by})
}

// announce records a timeline entry and queues an event about it.
func (ch *change) announce(name, kind, text, by string) error {
	if err := ch.record(kind, text, by); err != nil {
		return err
	}
	ch.notify(name, text, by)
	return nil
}

// save turns the events not yet planned into outbox intents and writes the
// incident document (and its indexes). Call it last: events announced
// after the last save would not be sent.
func (ch *change) save() error {
	for ; ch.planned < len(ch.events); ch.planned++ {
		if err := ch.s.plan(ch, ch.events[ch.planned]); err != nil {
			return err
		}
	}
	if err := ch.flushChecklist(); err != nil {
		return err
	}
	ch.inc.UpdatedAt = ch.now
	return ch.tx.PutIncident(ch.inc)
}

// flushChecklist writes the checklist when the change changed it, so that
// what reads it from the transaction sees the change.
func (ch *change) flushChecklist() error {
	if !ch.stepsChanged {
		return nil
	}
	ch.stepsChanged = false
	return ch.tx.PutChecklist(ch.inc.ID, ch.steps)
}

func (ch *change) acknowledge(by string) error {
	t := ch.now
	ch.inc.Status = store.StatusAcknowledged
	ch.inc.AcknowledgedAt = &t
	ch.inc.AcknowledgedBy = by
	ch.acknowledged = true
	return ch.announce(integrations.EventAcknowledged, store.KindAcknowledged, "acknowledged by "+by, by)
}

func (ch *change) resolve(by, summary string) error {
	t := ch.now
	ch.inc.Status = store.StatusResolved
	ch.inc.ResolvedAt = &t
	ch.inc.ResolvedBy = by
	ch.resolved = true
	if summary != "" {
		ch.inc.Summary = summary
	}
	text := "resolved by " + by
	if summary != "" {
		text += ": " + summary
	}
	if err := ch.announce(integrations.EventResolved, store.KindResolved, text, by); err != nil {
		return err
	}
	ch.tellCustomers("Resolved: "+firstNonEmpty(summary, ch.inc.Title), by)
	// A post-mortem is owed when no earlier incident of this kind was
	// resolved: the first time is the one to learn from.
	first, err := ch.tx.ResolvedOfKind(ch.inc.Kind, ch.inc.ID)
	if err != nil {
		return err
	}
	ch.inc.PostmortemRequired = first == ch.inc.ID
	if !ch.inc.PostmortemRequired || ch.inc.PostmortemRemindedAt != nil {
		return nil
	}
	ch.inc.PostmortemRemindedAt = &t
	if err := ch.announce(integrations.EventNote, store.KindPostmortem,
		fmt.Sprintf("a post-mortem is owed: this is the first %q incident; its draft is saved, edit it at %s/postmortem", ch.inc.Kind, ch.s.url(ch.inc.ID)), "responder"); err != nil {
		return err
	}
	return ch.savePostmortemDraft()
}

func (ch *change) reopen(reason, by string) error {
	ch.inc.Status = store.StatusOpen
	ch.inc.ResolvedAt, ch.inc.ResolvedBy = nil, ""
	ch.inc.AcknowledgedAt, ch.inc.AcknowledgedBy = nil, ""
	return ch.announce(integrations.EventReopened, store.KindReopened, "reopened: "+reason, by)
}

// raise lifts the incident's severity to sev when sev is more severe. It
// never lowers it: a fall needs a person to decide.
func (ch *change) raise(sev policy.Severity, reason, by string) error {
	cur, err := policy.ParseSeverity(ch.inc.Severity)
	if err == nil && !sev.MoreSevereThan(cur) {
		return nil
	}
	old := ch.inc.Severity
	ch.inc.Severity = sev.String()
	if ch.created {
		return nil // the opening announcement carries the final severity
	}
	return ch.announce(integrations.EventSeverityRaised, store.KindSeverityRaised, fmt.Sprintf("severity raised from %s to %s: %s", old, sev, reason), by)
}

// opened records and announces the opening of a new incident; call it after
// the incident's fields are final.
func (ch *change) opened(kind, by string) error {
	text := fmt.Sprintf("%s incident opened: %s", ch.inc.Severity, ch.inc.Title)
	if ch.inc.OutOfHours {
		text += " (out of business hours)"
	}
	if ch.inc.Scheduled != "" {
		text += fmt.Sprintf(" (scheduled drill %s, organised by %s)", ch.inc.Scheduled, by)
	}
	if err := ch.announce(integrations.EventOpened, kind, text, by); err != nil {
		return err
	}
	return ch.attachRunbooks()
}
