package incident

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// Events of the incident process beyond the fan-out's own.
const (
	eventRoles  = "roles"
	eventUpdate = "update"
)

// AckRequest acknowledges an incident.
type AckRequest struct {
	By string `json:"by"`
}

// Acknowledge acknowledges the incident id.
func (s *Service) Acknowledge(ctx context.Context, id string, req AckRequest, actor string) (*View, error) {
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	return s.changeIncident(ctx, id, func(ch *change) error {
		switch ch.inc.Status {
		case store.StatusAcknowledged:
			return conflict("%s was already acknowledged by %s at %s", ch.inc.ID, ch.inc.AcknowledgedBy, ch.inc.AcknowledgedAt.Format(timeFormat))
		case store.StatusResolved:
			return conflict("%s is resolved: a resolved incident cannot be acknowledged", ch.inc.ID)
		}
		return ch.acknowledge(by)
	})
}

// ResolveRequest resolves an incident, with a summary of what happened.
type ResolveRequest struct {
	By      string `json:"by"`
	Summary string `json:"summary"`
}

// Resolve resolves the incident id.
func (s *Service) Resolve(ctx context.Context, id string, req ResolveRequest, actor string) (*View, error) {
	if err := CheckText("summary", req.Summary, MaxText, false); err != nil {
		return nil, err
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	return s.changeIncident(ctx, id, func(ch *change) error {
		if ch.inc.Status == store.StatusResolved {
			return conflict("%s was already resolved by %s at %s", ch.inc.ID, ch.inc.ResolvedBy, ch.inc.ResolvedAt.Format(timeFormat))
		}
		return ch.resolve(by, req.Summary)
	})
}

// RolesRequest sets an incident's roles; a field left out (nil) keeps its
// current holder.
type RolesRequest struct {
	RecoveryLead *string `json:"recovery_lead"`
	CommsLead    *string `json:"comms_lead"`
	By           string  `json:"by"`
}

// SetRoles sets the Recovery Lead and the Communications Lead of the
// incident id. A field left out keeps its current holder; the two must be
// different people.
func (s *Service) SetRoles(ctx context.Context, id string, req RolesRequest, actor string) (*View, error) {
	if req.RecoveryLead == nil && req.CommsLead == nil {
		return nil, invalid("recovery_lead, comms_lead", "give at least one")
	}
	for field, v := range map[string]*string{"recovery_lead": req.RecoveryLead, "comms_lead": req.CommsLead} {
		if v != nil {
			if err := CheckText(field, *v, MaxLabelName, false); err != nil {
				return nil, err
			}
			*v = strings.TrimSpace(*v)
		}
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	return s.changeIncident(ctx, id, func(ch *change) error {
		if ch.inc.Status == store.StatusResolved {
			return conflict("%s is resolved: roles can no longer change", ch.inc.ID)
		}
		roles := ch.inc.Roles
		if req.RecoveryLead != nil {
			roles.RecoveryLead = *req.RecoveryLead
		}
		if req.CommsLead != nil {
			roles.CommsLead = *req.CommsLead
		}
		if roles.RecoveryLead != "" && strings.EqualFold(roles.RecoveryLead, roles.CommsLead) {
			return unprocessable("recovery_lead, comms_lead",
				"recovery_lead and comms_lead are both %q: they must be different people, one to run the fix and one to keep everyone informed", roles.RecoveryLead)
		}
		if roles == ch.inc.Roles {
			return nil // nothing changes
		}
		ch.inc.Roles = roles
		if roles.RecoveryLead != "" && roles.CommsLead != "" && ch.inc.RolesAssignedAt == nil {
			t := ch.now
			ch.inc.RolesAssignedAt = &t
		}
		text := fmt.Sprintf("roles: recovery lead %s, comms lead %s (set by %s)", orNobody(roles.RecoveryLead), orNobody(roles.CommsLead), by)
		return ch.announce(eventRoles, store.KindRoles, text, by)
	})
}

func orNobody(name string) string {
	if name == "" {
		return "nobody yet"
	}
	return name
}

// UpdateRequest is a progress update, with an ETA for recovery when one
// is known.
type UpdateRequest struct {
	Text string     `json:"text"`
	ETA  *time.Time `json:"eta"`
	By   string     `json:"by"`
}

// PostUpdate records a progress update on the incident id: in the
// timeline, in the incident's thread (and mail when policy lists
// "update"), the ETA on the incident, and the update reminder's clock
// reset.
func (s *Service) PostUpdate(ctx context.Context, id string, req UpdateRequest, actor string) (*View, error) {
	if err := CheckText("text", req.Text, MaxText, true); err != nil {
		return nil, err
	}
	now := s.now()
	if req.ETA != nil {
		eta := req.ETA.UTC()
		if _, ok := storable(eta); !ok {
			return nil, invalid("eta", "%s is not a time this daemon can keep (the years 0000 to 9999 in UTC): give one like %s",
				req.ETA.Format(time.RFC3339), now.Add(time.Hour).Truncate(time.Minute).Format(time.RFC3339))
		}
		if !eta.After(now) {
			return nil, invalid("eta", "%s is not in the future (now is %s)", eta.Format(timeFormat), now.Format(timeFormat))
		}
		req.ETA = &eta
	}
	by, err := who("by", req.By, actor)
	if err != nil {
		return nil, err
	}
	return s.changeIncident(ctx, id, func(ch *change) error {
		if ch.inc.Status == store.StatusResolved {
			return conflict("%s is resolved: post a note in the post-mortem instead", ch.inc.ID)
		}
		t := ch.now
		ch.inc.LastUpdateAt = &t
		if ch.inc.FirstUpdateAt == nil {
			ch.inc.FirstUpdateAt = &t
		}
		text := strings.TrimSpace(req.Text)
		if req.ETA != nil {
			ch.inc.ETA = req.ETA
			text += " (ETA " + integrations.Clock{Zone: s.zone()}.Format(*req.ETA, timeFormat) + ")"
		}
		if err := ch.tx.AppendTimeline(ch.inc.ID, store.Entry{At: t, Kind: store.KindUpdate, Text: strings.TrimSpace(req.Text), By: by, ETA: req.ETA}); err != nil {
			return err
		}
		ch.events = append(ch.events, event{name: eventUpdate, text: "update from " + by + ": " + text, by: by, stateChanged: req.ETA != nil})
		if req.ETA != nil {
			ch.tellCustomers("Expected recovery: "+integrations.Clock{Zone: s.zone()}.Format(*req.ETA, "2006-01-02 15:04 UTC")+": "+ch.inc.Title, by)
		}
		return nil
	})
}

// markCustomerImpact records that customers are affected. Customer
// engineering is told once per incident: at the opening announcement when
// known then, else now.
func (ch *change) markCustomerImpact(why, by string) error {
	if ch.inc.CustomerImpact {
		return nil
	}
	ch.inc.CustomerImpact = true
	if err := ch.record(store.KindCustomerImpact, "customer impact: "+why, by); err != nil {
		return err
	}
	if !ch.created {
		ch.notify(integrations.EventCustomer, "customer impact: "+why, by)
	}
	return nil
}
