package incident

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/responder-sre/responder/store"
)

// PagerDutyWebhook is a PagerDuty v3 webhook body: one event about one
// incident. Only what Responder uses is decoded.
type PagerDutyWebhook struct {
	Event PagerDutyEvent `json:"event"`
}

// PagerDutyEvent is the event of a v3 webhook.
type PagerDutyEvent struct {
	ID           string        `json:"id"`
	EventType    string        `json:"event_type"` // incident.triggered, incident.acknowledged, ...
	ResourceType string        `json:"resource_type"`
	OccurredAt   string        `json:"occurred_at"`
	Agent        *pdReference  `json:"agent"`
	Data         PagerDutyData `json:"data"`
}

// PagerDutyData is an incident (incident.* events), or, for
// incident.annotated, a note with the incident it is on.
type PagerDutyData struct {
	ID          string       `json:"id"`
	Type        string       `json:"type"` // incident, incident_note
	Title       string       `json:"title"`
	Number      int          `json:"number"`
	Status      string       `json:"status"`
	IncidentKey string       `json:"incident_key"`
	HTMLURL     string       `json:"html_url"`
	Urgency     string       `json:"urgency"`
	Priority    *pdReference `json:"priority"`
	Service     *pdReference `json:"service"`
	Content     string       `json:"content"`  // incident.annotated: the note
	Incident    *pdReference `json:"incident"` // incident.annotated: the incident
}

type pdReference struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
	HTMLURL string `json:"html_url"`
}

// IncidentID is the PagerDuty incident the event is about.
func (e *PagerDutyEvent) IncidentID() string {
	if e.Data.Type == "incident_note" && e.Data.Incident != nil {
		return e.Data.Incident.ID
	}
	return e.Data.ID
}

// ApplyPagerDuty applies one PagerDuty v3 webhook event to the incident of
// its PagerDuty incident, in one durable transaction, as ApplyOpsGenie
// does: incident.triggered opens (out of business hours the responder is
// asked to join that PagerDuty incident), acknowledged acknowledges,
// resolved resolves, annotated adds the note; other incident events are
// recorded. PagerDuty retries a delivery: repeating one changes nothing.
func (s *Service) ApplyPagerDuty(ctx context.Context, msg *PagerDutyWebhook) ([]Touched, error) {
	return s.ingest(ctx, store.SourcePagerDuty, 1,
		func(tx *txn, now time.Time) (*change, error) { return s.applyPagerDuty(tx, now, msg) })
}

func (s *Service) applyPagerDuty(tx *txn, now time.Time, msg *PagerDutyWebhook) (*change, error) {
	ev := &msg.Event
	by := "pagerduty"
	if ev.Agent != nil && ev.Agent.Summary != "" {
		by = ev.Agent.Summary
	}
	pdID := ev.IncidentID()
	inc, err := tx.LatestByDedupKey(store.SourcePagerDuty, pdID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if inc == nil {
		if ev.EventType != "incident.triggered" {
			return nil, tx.RecordUnmatched(store.Unmatched{At: now, Source: store.SourcePagerDuty, DedupKey: pdID,
				Reason: ev.EventType + " for a PagerDuty incident with no incident", Detail: "event=" + ev.ID})
		}
		return s.openPagerDuty(tx, now, ev, by)
	}
	ch := s.changeOf(tx, inc, now)
	switch ev.EventType {
	case "incident.triggered":
		return ch, nil // a re-delivered trigger
	case "incident.acknowledged":
		return s.applyPagerAction(ch, pagerAcknowledged, "", by)
	case "incident.resolved":
		return s.applyPagerAction(ch, pagerClosed, "resolved in PagerDuty", by)
	case "incident.annotated":
		return s.applyPagerAction(ch, pagerNote, ev.Data.Content, by)
	}
	return s.applyPagerAction(ch, pagerOther, "PagerDuty "+strings.TrimPrefix(ev.EventType, "incident."), by)
}

// pdPriority is the OpsGenie-style priority (P1..P5) a PagerDuty incident
// is classified by: its priority's name when it is one, else its urgency
// (high: P2, low: P4).
func pdPriority(d *PagerDutyData) string {
	if d.Priority != nil {
		if p := strings.ToUpper(strings.TrimSpace(d.Priority.Summary)); len(p) == 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '5' {
			return p
		}
	}
	if d.Urgency == "high" {
		return "P2"
	}
	return "P4"
}

func (s *Service) openPagerDuty(tx *txn, now time.Time, ev *PagerDutyEvent, by string) (*change, error) {
	d := &ev.Data
	lbls := map[string]string{"priority": pdPriority(d)}
	if d.Service != nil && d.Service.Summary != "" {
		lbls["service"] = d.Service.Summary
	}
	if d.Urgency != "" {
		lbls["urgency"] = d.Urgency
	}
	if d.IncidentKey != "" {
		lbls["incident_key"] = d.IncidentKey
	}
	cls := s.policy.ClassifyOpsGenie(lbls["priority"], lbls)
	ch, err := s.open(tx, now, &store.Incident{
		Title:      d.Title,
		Severity:   cls.Severity.String(),
		Source:     store.SourcePagerDuty,
		DedupKey:   d.ID,
		Kind:       "pagerduty:" + firstNonEmpty(lbls["service"], d.Title),
		Labels:     lbls,
		Team:       cls.Team,
		RunbookURL: cls.RunbookURL,
	})
	if err != nil {
		return nil, err
	}
	ch.inc.AlertsTotal, ch.inc.AlertsFiring = 1, 1
	err = tx.PutAlert(ch.inc.ID, &store.Alert{
		Fingerprint: d.ID, Status: store.AlertFiring, StartsAt: now, Labels: lbls,
		Annotations: map[string]string{"title": d.Title, "url": d.HTMLURL}, GeneratorURL: d.HTMLURL,
		Severity: ch.inc.Severity, UpdatedAt: now,
	})
	if err != nil {
		return nil, err
	}
	if s.policy.CustomerImpact(lbls) {
		if err := ch.markCustomerImpact("the PagerDuty incident says customers are affected", by); err != nil {
			return nil, err
		}
	}
	if err := ch.opened(store.KindOpened, by); err != nil {
		return nil, err
	}
	return ch, ch.save()
}
