package incident

import (
	"fmt"
	"slices"
	"strings"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// Routes says where notifications go. A nil vendor is not configured;
// cmd builds Routes from the configuration.
type Routes struct {
	Log   bool // every event also goes to the daemon's log
	Slack *SlackRoutes
	Email *EmailRoutes
	Zoom  *ZoomRoutes
	// Paging chooses the pager and whom it pages; nil when no pager is
	// configured.
	Paging *PagingRoutes
	// PageDrills pages for drills too (drills.page); by default a drill
	// runs the whole process but nobody's phone rings.
	PageDrills bool
}

// SlackRoutes chooses an incident's channel: by team, else by severity,
// else the default.
type SlackRoutes struct {
	Channel    string
	BySeverity map[string]string
	ByTeam     map[string]string
	Customer   string // customer engineering's channel; empty for none
}

// EmailRoutes chooses who is mailed.
type EmailRoutes struct {
	Recipients map[string][]string // by severity
	Customer   []string            // customer engineering's list
	Events     []string            // which events are mailed
}

// ZoomRoutes chooses the bridge: a static URL (per team, else the
// default), or a meeting created through the Zoom API.
type ZoomRoutes struct {
	BridgeURL   string
	TeamBridges map[string]string
	API         bool
}

// plan turns one event of a change into outbox intents, in the change's
// transaction, and records on the incident what it queued (the Slack
// channel, the page) so that nothing is announced or paged twice.
func (s *Service) plan(ch *change, ev event) error {
	inc, r := ch.inc, s.cfg.Routes
	if ev.customersOnly && !inc.CustomerImpact {
		return nil // nobody to tell
	}
	proc := s.policy.ProcessFor(storedSeverity(inc.Severity))
	enqueue := func(channel, target, name, text string, after uint64) (uint64, error) {
		in := &store.Intent{
			IncidentID: inc.ID, Channel: channel, Target: target, Event: name, Text: text, By: ev.by,
			After: after, CreatedAt: ch.now, NextAt: ch.now,
		}
		if channel == integrations.ChannelSlack && name == ev.name {
			in.Mention = ev.mention
		}
		if err := ch.tx.Enqueue(in); err != nil {
			return 0, err
		}
		return in.Seq, nil
	}
	if r.Log && !ev.customersOnly {
		if _, err := enqueue(integrations.ChannelLog, integrations.ChannelLog, ev.name, ev.text, 0); err != nil {
			return err
		}
	}
	if ev.customersOnly {
		// Customer engineering hears how it goes on, not only that it
		// began: an ETA, the resolution.
		return s.planCustomer(ch, ev.text, enqueue)
	}
	// An incident is announced when it opens and when it first reaches a
	// severity that wants more (a bridge, a channel, a list, a page).
	announce := ev.name == integrations.EventOpened || ev.name == integrations.EventSeverityRaised
	var bridge uint64
	if announce && inc.Status != store.StatusResolved {
		var err error
		if bridge, err = s.planBridge(ch, proc, enqueue); err != nil {
			return err
		}
	}
	slackOn := r.Slack != nil && slices.Contains(proc.Channels, "slack")
	switch {
	case inc.SlackTarget != "" && ev.name != integrations.EventOpened:
		name := ev.name
		if name == integrations.EventCustomer {
			name = "customer_impact" // a reply in the thread; customer engineering is told below
		}
		if _, err := enqueue(integrations.ChannelSlack, inc.SlackTarget, name, ev.text, 0); err != nil {
			return err
		}
		switch {
		case ev.stateChanged, ev.name == integrations.EventResolved, ev.name == integrations.EventReopened, ev.name == integrations.EventAcknowledged,
			ev.name == integrations.EventSeverityRaised, ev.name == integrations.EventSeverityLowered,
			ev.name == integrations.EventCustomer, ev.name == eventRoles:
			// The root shows the state: acknowledged, resolved or open
			// again, the severity, whether customers are affected, the
			// roles, the ETA (and its buttons follow the state).
			if _, err := enqueue(integrations.ChannelSlack, inc.SlackTarget, integrations.EventRootUpdate, ev.text, 0); err != nil {
				return err
			}
		}
		if ev.name == integrations.EventSeverityRaised && slackOn {
			// Raised to a severity routed elsewhere (#sev1): that channel
			// is told, with a link to the thread where it goes on.
			if to := r.Slack.channelFor(inc); to != inc.SlackTarget {
				if _, err := enqueue(integrations.ChannelSlack, to, integrations.EventEscalated, ev.text, 0); err != nil {
					return err
				}
			}
		}
	case inc.SlackTarget == "" && slackOn && inc.Status != store.StatusResolved:
		// The root announcement: when the incident opens, or when it first
		// reaches a severity that is announced. It waits (briefly) for the
		// bridge, so that it carries the link.
		inc.SlackTarget = r.Slack.channelFor(inc)
		text := ev.text
		if ev.name != integrations.EventOpened {
			text = fmt.Sprintf("%s incident: %s (%s)", inc.Severity, inc.Title, ev.text)
		}
		if _, err := enqueue(integrations.ChannelSlack, inc.SlackTarget, integrations.EventOpened, text, bridge); err != nil {
			return err
		}
	}
	if r.Email != nil && slices.Contains(proc.Channels, "email") &&
		(slices.Contains(r.Email.Events, ev.name) ||
			// A list that is mailed when an incident opens is also mailed when
			// one reaches its severity.
			(ev.name == integrations.EventSeverityRaised && slices.Contains(r.Email.Events, integrations.EventOpened))) {
		if to := r.Email.Recipients[inc.Severity]; len(to) > 0 {
			if _, err := enqueue(integrations.ChannelEmail, strings.Join(to, ", "), ev.name, ev.text, bridge); err != nil {
				return err
			}
		}
	}
	if (ev.name == integrations.EventOpened && inc.CustomerImpact) || ev.name == integrations.EventCustomer {
		if err := s.planCustomer(ch, "Customers are affected: "+inc.Title, enqueue); err != nil {
			return err
		}
	}
	return s.planPaging(ch, ev, proc, announce, bridge, enqueue)
}

// planBridge gives the incident its Zoom bridge when its severity wants
// one: a static URL at once, or a meeting intent whose sequence the
// announcement waits for (0 when there is none).
func (s *Service) planBridge(ch *change, proc policy.Process, enqueue func(channel, target, name, text string, after uint64) (uint64, error)) (uint64, error) {
	z := s.cfg.Routes.Zoom
	if z == nil || !proc.Zoom || ch.inc.ZoomURL != "" || ch.inc.BridgeQueued {
		return 0, nil
	}
	if url := firstNonEmpty(z.TeamBridges[ch.inc.Team], z.BridgeURL); url != "" && !z.API {
		ch.inc.ZoomURL = url
		return 0, ch.record(store.KindAction, "Zoom bridge: "+url, "responder")
	}
	if !z.API {
		return 0, nil
	}
	ch.inc.BridgeQueued = true
	return enqueue(integrations.ChannelZoom, "meeting", integrations.EventBridge, "create the incident's Zoom meeting", 0)
}

// planCustomer tells customer engineering text: their channel and their
// list.
func (s *Service) planCustomer(ch *change, text string, enqueue func(channel, target, name, text string, after uint64) (uint64, error)) error {
	r := s.cfg.Routes
	if r.Log {
		if _, err := enqueue(integrations.ChannelLog, "customer-engineering", integrations.EventCustomer, text, 0); err != nil {
			return err
		}
	}
	if r.Slack != nil && r.Slack.Customer != "" {
		if _, err := enqueue(integrations.ChannelSlack, r.Slack.Customer, integrations.EventCustomer, text, 0); err != nil {
			return err
		}
	}
	if r.Email != nil && len(r.Email.Customer) > 0 {
		if _, err := enqueue(integrations.ChannelEmail, strings.Join(r.Email.Customer, ", "), integrations.EventCustomer, text, 0); err != nil {
			return err
		}
	}
	return nil
}

// channelFor picks the incident's Slack channel: its team's, else its
// severity's, else the default.
func (r *SlackRoutes) channelFor(inc *store.Incident) string {
	if c := r.ByTeam[inc.Team]; inc.Team != "" && c != "" {
		return c
	}
	if c := r.BySeverity[inc.Severity]; c != "" {
		return c
	}
	return r.Channel
}
