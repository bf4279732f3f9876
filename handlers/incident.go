package handlers

import (
	"fmt"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// change is one incident being changed inside a transaction: it appends to
// the timeline and collects the messages to send once the transaction is
// durable. Every state transition of an incident goes through it.
type change struct {
	tx   store.Tx
	inc  *store.Incident
	now  time.Time
	msgs []integrations.Message
	// created is true when this change opened the incident.
	created bool
}

// open starts a new incident with the next id. The caller fills the rest
// and calls save.
func (s *Server) open(tx store.Tx, now time.Time, inc *store.Incident) (*change, error) {
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
	return &change{tx: tx, inc: inc, now: now, created: true}, nil
}

// record appends a timeline entry.
func (ch *change) record(kind, text, by string) error {
	return ch.tx.AppendTimeline(ch.inc.ID, store.Entry{At: ch.now, Kind: kind, Text: text, By: by})
}

// announce records a timeline entry and queues a message about it.
func (ch *change) announce(event, kind, text, by string) error {
	if err := ch.record(kind, text, by); err != nil {
		return err
	}
	ch.msgs = append(ch.msgs, integrations.Message{
		IncidentID: ch.inc.ID,
		Event:      event,
		Severity:   ch.inc.Severity,
		Status:     string(ch.inc.Status),
		Title:      ch.inc.Title,
		Text:       text,
		Labels:     ch.inc.Labels,
		Drill:      ch.inc.Drill,
		At:         ch.now,
	})
	return nil
}

// save writes the incident document (and its indexes).
func (ch *change) save() error {
	ch.inc.UpdatedAt = ch.now
	return ch.tx.PutIncident(ch.inc)
}

func (ch *change) acknowledge(by string) error {
	t := ch.now
	ch.inc.Status = store.StatusAcknowledged
	ch.inc.AcknowledgedAt = &t
	ch.inc.AcknowledgedBy = by
	return ch.announce("acknowledged", store.KindAcknowledged, "acknowledged by "+by, by)
}

func (ch *change) resolve(by, summary string) error {
	t := ch.now
	ch.inc.Status = store.StatusResolved
	ch.inc.ResolvedAt = &t
	ch.inc.ResolvedBy = by
	if summary != "" {
		ch.inc.Summary = summary
	}
	text := "resolved by " + by
	if summary != "" {
		text += ": " + summary
	}
	return ch.announce("resolved", store.KindResolved, text, by)
}

func (ch *change) reopen(reason, by string) error {
	ch.inc.Status = store.StatusOpen
	ch.inc.ResolvedAt, ch.inc.ResolvedBy = nil, ""
	ch.inc.AcknowledgedAt, ch.inc.AcknowledgedBy = nil, ""
	return ch.announce("reopened", store.KindReopened, "reopened: "+reason, by)
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
	return ch.announce("severity_raised", store.KindSeverityRaised, fmt.Sprintf("severity raised from %s to %s: %s", old, sev, reason), by)
}

// opened records and announces the opening of a new incident; call it after
// the incident's fields are final.
func (ch *change) opened(kind, by string) error {
	text := fmt.Sprintf("%s incident opened: %s", ch.inc.Severity, ch.inc.Title)
	if ch.inc.OutOfHours {
		text += " (out of business hours)"
	}
	return ch.announce("opened", kind, text, by)
}
