package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// OpsGenieWebhook is an OpsGenie outgoing-webhook body. Only what Responder uses
// is decoded; OpsGenie sends more and varies it by action.
type OpsGenieWebhook struct {
	Action string        `json:"action"`
	Alert  OpsGenieAlert `json:"alert"`
}

type OpsGenieAlert struct {
	AlertID     string     `json:"alertId"`
	Alias       string     `json:"alias"`
	TinyID      string     `json:"tinyId"`
	Message     string     `json:"message"`
	Description string     `json:"description"`
	Entity      string     `json:"entity"`
	Source      string     `json:"source"`
	Tags        []string   `json:"tags"`
	Details     ogDetails  `json:"details"`
	Priority    ogPriority `json:"priority"`
	Username    string     `json:"username"`
	Note        string     `json:"note"`
	Owner       string     `json:"owner"`
	Team        string     `json:"team"`
	CreatedAt   int64      `json:"createdAt"` // epoch milliseconds
}

// ogPriority accepts "P1".."P5" and, from old senders, 1..5.
type ogPriority string

func (p *ogPriority) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = ogPriority(strings.ToUpper(strings.TrimSpace(s)))
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("alert.priority: got %s, want \"P1\"..\"P5\"", b)
	}
	*p = ogPriority("P" + strconv.Itoa(n))
	return nil
}

// ogDetails accepts an object of any scalar values and keeps them as strings.
type ogDetails map[string]string

func (d *ogDetails) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		// No %w: the field path here is better than the decoder's.
		return fmt.Errorf("alert.details: want an object of values, got %.40s", b)
	}
	out := make(ogDetails, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case nil:
		case string:
			out[k] = v
		default:
			enc, _ := json.Marshal(v)
			out[k] = string(enc)
		}
	}
	*d = out
	return nil
}

// Labels turns an OpsGenie alert into labels for the policy: its details,
// "key:value" tags, and priority, entity, team and source.
func (a *OpsGenieAlert) Labels() map[string]string {
	lbls := map[string]string{}
	for _, t := range a.Tags {
		if k, v, ok := strings.Cut(t, ":"); ok && k != "" {
			lbls[k] = v
		}
	}
	for k, v := range a.Details {
		lbls[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			lbls[k] = v
		}
	}
	set("priority", string(a.Priority))
	set("entity", a.Entity)
	set("team", a.Team)
	set("source", a.Source)
	if len(a.Tags) > 0 {
		tags := append([]string(nil), a.Tags...)
		sort.Strings(tags)
		lbls["tags"] = strings.Join(tags, ",")
	}
	return lbls
}

// ApplyOpsGenie applies one OpsGenie action to the incident of its alias,
// in one durable transaction: Create opens, Acknowledge acknowledges, Close
// resolves, AddNote adds to the timeline, anything else is recorded.
// Repeating an action changes nothing. The person acting is the alert's
// username, else "opsgenie".
func (s *Service) ApplyOpsGenie(ctx context.Context, msg *OpsGenieWebhook) ([]Touched, error) {
	return s.applyOpsGenieShaped(ctx, store.SourceOpsGenie, msg)
}

// ApplyJSM applies one action of Jira Service Management Operations'
// outgoing webhook, which has OpsGenie's shape, as ApplyOpsGenie does: its
// incidents are JSM's ("source": "jsm"), paged on JSM's own alert.
func (s *Service) ApplyJSM(ctx context.Context, msg *OpsGenieWebhook) ([]Touched, error) {
	return s.applyOpsGenieShaped(ctx, store.SourceJSM, msg)
}

func (s *Service) applyOpsGenieShaped(ctx context.Context, src store.Source, msg *OpsGenieWebhook) ([]Touched, error) {
	return s.ingest(ctx, src, 1,
		func(tx *txn, now time.Time) (*change, error) { return s.applyOpsGenie(tx, now, src, msg) })
}

// pagerName is how a pager is named in the timeline.
func pagerName(src store.Source) string {
	switch src {
	case store.SourceJSM:
		return "JSM"
	case store.SourcePagerDuty:
		return "PagerDuty"
	}
	return "OpsGenie"
}

func (s *Service) applyOpsGenie(tx *txn, now time.Time, src store.Source, msg *OpsGenieWebhook) (*change, error) {
	a := &msg.Alert
	by := a.Username
	if by == "" {
		by = string(src)
	}
	inc, err := tx.LatestByDedupKey(src, a.Alias)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if inc == nil || (inc.Status == store.StatusResolved && msg.Action == "Create") {
		if msg.Action != "Create" {
			return nil, tx.RecordUnmatched(store.Unmatched{At: now, Source: src, DedupKey: a.Alias,
				Reason: msg.Action + " for an alias with no incident", Detail: "alertId=" + a.AlertID})
		}
		if inc != nil {
			known, err := isKnownAlert(tx, inc.ID, a.key())
			if err != nil {
				return nil, err
			}
			if known {
				return s.changeOf(tx, inc, now), nil // a re-sent Create of the alert that was closed
			}
		}
		return s.openOpsGenie(tx, now, src, msg, by)
	}
	ch := s.changeOf(tx, inc, now)
	switch msg.Action {
	case "Create":
		known, err := isKnownAlert(tx, inc.ID, a.key())
		if err != nil || known {
			return ch, err
		}
		if err := s.putOpsGenieAlert(ch, a); err != nil {
			return nil, err
		}
		if err := ch.announce(integrations.EventAlertJoined, store.KindAlertFiring, pagerName(src)+" alert "+a.AlertID+" joined: "+a.Message, by); err != nil {
			return nil, err
		}
		cls := s.policy.ClassifyOpsGenie(string(a.Priority), a.Labels())
		if err := ch.raise(cls.Severity, pagerName(src)+" priority "+string(a.Priority), by); err != nil {
			return nil, err
		}
	case "Acknowledge":
		return s.applyPagerAction(ch, pagerAcknowledged, "", by)
	case "Close":
		return s.applyPagerAction(ch, pagerClosed, "closed in "+pagerName(src), by)
	case "AddNote":
		return s.applyPagerAction(ch, pagerNote, a.Note, by)
	default:
		text := pagerName(src) + " " + msg.Action
		if a.Owner != "" {
			text += " (owner " + a.Owner + ")"
		}
		return s.applyPagerAction(ch, pagerOther, text, by)
	}
	return ch, ch.save()
}

// pagerAction is what a pager's webhook says happened to its alert.
type pagerAction int

const (
	pagerAcknowledged pagerAction = iota
	pagerClosed                   // resolved there; text is the summary
	pagerNote                     // text is the note
	pagerOther                    // recorded as text
)

// applyPagerAction applies what a pager reported about the alert of the
// incident ch changes, and saves it. Repeating a report changes nothing:
// pagers deliver again when unsure.
func (s *Service) applyPagerAction(ch *change, act pagerAction, text, by string) (*change, error) {
	inc := ch.inc
	switch act {
	case pagerAcknowledged:
		if inc.Status != store.StatusOpen {
			return ch, nil
		}
		if err := ch.acknowledge(by); err != nil {
			return nil, err
		}
	case pagerClosed:
		if inc.Status == store.StatusResolved {
			return ch, nil
		}
		if err := s.closeOpsGenieAlerts(ch); err != nil {
			return nil, err
		}
		if err := ch.resolve(by, text); err != nil {
			return nil, err
		}
	default:
		kind := store.KindAction
		if act == pagerNote {
			kind = store.KindNote
		}
		dup, err := hasEntry(ch.tx, inc.ID, kind, text, by)
		if err != nil || dup {
			return ch, err
		}
		if act == pagerNote {
			err = ch.announce(integrations.EventNote, kind, text, by)
		} else {
			err = ch.record(kind, text, by)
		}
		if err != nil {
			return nil, err
		}
	}
	return ch, ch.save()
}

func (s *Service) openOpsGenie(tx *txn, now time.Time, src store.Source, msg *OpsGenieWebhook, by string) (*change, error) {
	a := &msg.Alert
	lbls := a.Labels()
	cls := s.policy.ClassifyOpsGenie(string(a.Priority), lbls)
	ch, err := s.open(tx, now, &store.Incident{
		Title:       a.Message,
		Description: a.Description,
		Severity:    cls.Severity.String(),
		Source:      src,
		DedupKey:    a.Alias,
		Kind:        string(src) + ":" + a.Alias,
		Labels:      lbls,
		Team:        firstNonEmpty(cls.Team, a.Team),
		RunbookURL:  cls.RunbookURL,
	})
	if err != nil {
		return nil, err
	}
	if err := s.putOpsGenieAlert(ch, a); err != nil {
		return nil, err
	}
	if s.policy.CustomerImpact(lbls) {
		if err := ch.markCustomerImpact("the "+pagerName(src)+" alert says customers are affected", by); err != nil {
			return nil, err
		}
	}
	if err := ch.opened(store.KindOpened, by); err != nil {
		return nil, err
	}
	return ch, ch.save()
}

func (s *Service) putOpsGenieAlert(ch *change, a *OpsGenieAlert) error {
	start := ch.now
	if a.CreatedAt > 0 {
		start = time.UnixMilli(a.CreatedAt).UTC()
		if _, ok := storable(start); !ok {
			// Kept, at the time it was received: one absurd field must
			// not lose the alert.
			start = ch.now
			if err := ch.record(store.KindNote, fmt.Sprintf("alert %s: createdAt %d ms is outside the years 0000 to 9999: its start is the time it was received",
				a.key(), a.CreatedAt), "responder"); err != nil {
				return err
			}
		}
	}
	ch.inc.AlertsTotal++
	ch.inc.AlertsFiring++
	return ch.tx.PutAlert(ch.inc.ID, &store.Alert{
		Fingerprint: a.key(),
		Status:      store.AlertFiring,
		StartsAt:    start,
		Labels:      a.Labels(),
		Annotations: map[string]string{"message": a.Message, "description": a.Description},
		Severity:    ch.inc.Severity,
		UpdatedAt:   ch.now,
	})
}

// closeOpsGenieAlerts marks every alert of the incident resolved.
func (s *Service) closeOpsGenieAlerts(ch *change) error {
	alerts, err := ch.tx.Alerts(ch.inc.ID)
	if err != nil {
		return err
	}
	for i := range alerts {
		if alerts[i].Status != store.AlertFiring {
			continue
		}
		end := ch.now
		alerts[i].Status, alerts[i].EndsAt, alerts[i].UpdatedAt = store.AlertResolved, &end, ch.now
		if err := ch.tx.PutAlert(ch.inc.ID, &alerts[i]); err != nil {
			return err
		}
	}
	ch.inc.AlertsFiring = 0
	return nil
}

// key is what an OpsGenie alert is stored under: its id, or its alias when
// the sender gave no id.
func (a *OpsGenieAlert) key() string { return firstNonEmpty(a.AlertID, a.Alias) }

// isKnownAlert reports whether the incident holds the alert. A read error
// is returned, never taken for "not known".
func isKnownAlert(tx store.Tx, incidentID, key string) (bool, error) {
	_, err := tx.Alert(incidentID, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, err
}

// hasEntry reports whether the timeline already holds this exact entry, so
// that a re-delivered note is not added twice.
func hasEntry(tx store.Tx, incidentID, kind, text, by string) (bool, error) {
	entries, err := tx.Timeline(incidentID)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if e.Kind == kind && e.Text == text && e.By == by {
			return true, nil
		}
	}
	return false, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
