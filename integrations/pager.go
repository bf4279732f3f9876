package integrations

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Pagers: the channels that get a person's phone to ring. Each keeps one
// alert per incident.
const (
	ChannelJSM       = "jsm"       // Jira Service Management Operations
	ChannelPagerDuty = "pagerduty" // PagerDuty Events API v2
)

// PagerChannels are the pagers Responder can page through.
var PagerChannels = []string{ChannelOpsGenie, ChannelJSM, ChannelPagerDuty}

// IsPager reports whether channel is a pager's.
func IsPager(channel string) bool { return slices.Contains(PagerChannels, channel) }

// LogPageTarget is the log's target for a page through pager to whom:
// "pagerduty user:PLEAD01", so that the log's previews can show what that
// pager would receive. PageTargetOf reads it back.
func LogPageTarget(pager, whom string) string { return pager + " " + whom }

// PageTargetOf splits a log page target into the pager and whom it pages.
func PageTargetOf(target string) (pager, whom string) {
	pager, whom, _ = strings.Cut(target, " ")
	return pager, whom
}

// Pager is what a paging service does for Responder, one alert per
// incident. Every call gets the message the outbox delivers: the incident's
// snapshot (its id, source, dedup key, link and bridge), whom the call is
// about in Target (a Responder, "type:name", or the pager's configured
// one), the text and who acted. Like a Notifier, each call tries once and
// says whether trying again may help.
type Pager interface {
	// Name is the pager's channel: opsgenie, jsm, pagerduty.
	Name() string
	// Page gets Target's phone to ring: it raises the incident's alert for
	// them, or, for an incident that came from this pager, adds them to the
	// pager's own alert. Retrying it must not page twice.
	Page(ctx context.Context, m Message) error
	// AddResponder adds Target to the alert that Page raised.
	AddResponder(ctx context.Context, m Message) error
	// Note adds m.Text to the incident's alert (the bridge's link, say).
	Note(ctx context.Context, m Message) error
	// Acknowledge marks the incident's alert acknowledged, by m.By.
	Acknowledge(ctx context.Context, m Message) error
	// Close resolves the alert that Page raised.
	Close(ctx context.Context, m Message) error
}

// NotifyPager delivers an outbox message to p: the event picks the call.
// A pager's Notify is this.
func NotifyPager(ctx context.Context, p Pager, m Message) (Receipt, error) {
	var err error
	switch m.Event {
	case EventPage:
		err = p.Page(ctx, m)
	case EventAddResponder:
		err = p.AddResponder(ctx, m)
	case EventNote:
		err = p.Note(ctx, m)
	case EventAcknowledged:
		err = p.Acknowledge(ctx, m)
	case EventClose:
		err = p.Close(ctx, m)
	default:
		err = Permanent(fmt.Errorf("%s: a pager does not take %q", p.Name(), m.Event))
	}
	return Receipt{}, err
}
