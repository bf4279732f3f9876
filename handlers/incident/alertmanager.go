package incident

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// AlertmanagerWebhook is Alertmanager's webhook body (version 4). It is decoded
// leniently: newer senders add fields (notification_reason in v0.32,
// routeLabels in v0.34) and older ones lack them.
type AlertmanagerWebhook struct {
	template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`

	// Capped is how many alerts Responder left out itself (max_alerts);
	// they are counted in TruncatedAlerts too.
	Capped int `json:"-"`
}

// ApplyAlertmanager applies one webhook in one durable transaction: the
// group is one incident, opened, joined, reopened or resolved. It lists
// the incident touched; none when the webhook belonged to no incident (a
// resolved group never seen firing is recorded as unmatched).
func (s *Service) ApplyAlertmanager(ctx context.Context, msg *AlertmanagerWebhook) ([]Touched, error) {
	notes := clampAlertTimes(msg)
	return s.ingest(ctx, store.SourceAlertmanager, len(msg.Alerts)+msg.Capped,
		func(tx *txn, now time.Time) (*change, error) { return s.applyAlertmanager(tx, now, msg, notes) })
}

// clampAlertTimes keeps every alert of a webhook whose times cannot be
// stored (valid RFC 3339, but outside the years 0000 to 9999 once in
// UTC): the time is clamped to the nearest storable one, the same on every
// re-send (so a re-sent webhook stays a no-op), and a note says which
// field of which alert. Refusing the webhook would lose the whole group:
// Alertmanager does not retry a 4xx and retries a 5xx forever.
func clampAlertTimes(msg *AlertmanagerWebhook) []string {
	var notes []string
	for i := range msg.Alerts {
		a := &msg.Alerts[i]
		for _, f := range []struct {
			name string
			t    *time.Time
		}{{"startsAt", &a.StartsAt}, {"endsAt", &a.EndsAt}} {
			if kept, ok := storable(*f.t); !ok {
				notes = append(notes, fmt.Sprintf("alerts[%d].%s of %s was %s, outside the years 0000 to 9999 in UTC: kept as %s",
					i, f.name, alertName(*a), f.t.Format(time.RFC3339Nano), kept.Format(time.RFC3339)))
				*f.t = kept
			}
		}
	}
	return notes
}

// The times a store can keep: the years 0000 to 9999 in UTC (RFC 3339).
var (
	minStorable = time.Date(0, time.January, 1, 0, 0, 0, 0, time.UTC)
	maxStorable = time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)
)

// storable is t when it can be stored, else the nearest time that can,
// and false.
func storable(t time.Time) (time.Time, bool) {
	switch u := t.UTC(); {
	case u.Before(minStorable):
		return minStorable, false
	case u.After(maxStorable):
		return maxStorable, false
	}
	return t, true
}

// applyAlertmanager applies one webhook inside a transaction; notes say
// what of it had to be changed to be kept (see clampAlertTimes).
func (s *Service) applyAlertmanager(tx *txn, now time.Time, msg *AlertmanagerWebhook, notes []string) (*change, error) {
	// A heartbeat's alerts (the Watchdog) are its pings when firing, and
	// never an incident.
	msg, pinged := s.heartbeatPings(msg)
	for _, h := range pinged {
		if err := s.ping(tx, h, now, "alertmanager"); err != nil {
			return nil, err
		}
	}
	if len(msg.Alerts) == 0 {
		return nil, nil
	}
	inc, err := tx.LatestByDedupKey(store.SourceAlertmanager, msg.GroupKey)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var ch *change
	switch {
	case inc == nil && len(msg.Alerts.Firing()) == 0:
		return nil, tx.RecordUnmatched(store.Unmatched{At: now, Source: store.SourceAlertmanager, DedupKey: msg.GroupKey,
			Reason: "resolved alerts for a group never seen firing", Detail: fingerprints(msg.Alerts)})
	case inc == nil:
		ch, err = s.openAlertmanager(tx, now, msg)
	case inc.Status != store.StatusResolved:
		ch = s.changeOf(tx, inc, now) // join the open incident
	default:
		// Resolved: with nothing new firing, keep its alerts' states true
		// without reopening it; within the reopen window, join it (and
		// applyAlerts reopens it); after it, open a new incident.
		var fresh bool
		if fresh, err = hasNewFiring(tx, inc, msg.Alerts.Firing()); err != nil {
			return nil, err
		}
		if !fresh || s.policy.Reopens(*inc.ResolvedAt, now) {
			ch = s.changeOf(tx, inc, now)
		} else {
			ch, err = s.openAlertmanager(tx, now, msg)
		}
	}
	if err != nil {
		return nil, err
	}
	if ch.created {
		if err := ch.opened(store.KindOpened, "alertmanager"); err != nil {
			return nil, err
		}
	}
	changed, err := s.applyAlerts(ch, msg)
	if err != nil {
		return nil, err
	}
	if changed || ch.created {
		for _, note := range notes {
			if err := ch.record(store.KindNote, note, "responder"); err != nil {
				return nil, err
			}
		}
	}
	if !changed && !ch.created && ch.inc.AlertsTruncated == msg.TruncatedAlerts {
		return ch, nil // a duplicate: nothing to write
	}
	if ch.inc.AlertsTruncated != msg.TruncatedAlerts {
		ch.inc.AlertsTruncated = msg.TruncatedAlerts
		if msg.TruncatedAlerts > 0 {
			if err := ch.record(store.KindNote, truncationNote(msg), "alertmanager"); err != nil {
				return nil, err
			}
		}
	}
	// Alerts left out by max_alerts may still be firing: only a complete
	// webhook can say that every alert of the group is resolved.
	if ch.inc.Status != store.StatusResolved && ch.inc.AlertsFiring == 0 && msg.TruncatedAlerts == 0 &&
		s.policy.ProcessFor(storedSeverity(ch.inc.Severity)).AutoResolve {
		if err := ch.resolve("alertmanager", "every alert of the group is resolved"); err != nil {
			return nil, err
		}
	}
	return ch, ch.save()
}

// truncationNote says in the timeline which alerts of a webhook are missing
// and who left them out.
func truncationNote(msg *AlertmanagerWebhook) string {
	const after = ": the incident will not auto-resolve until a webhook with every alert arrives"
	if msg.Capped == 0 {
		return fmt.Sprintf("Alertmanager left out %d alerts of this group (its max_alerts)%s", msg.TruncatedAlerts, after)
	}
	text := fmt.Sprintf("Responder stored the first %d of %d alerts of this webhook (alertmanager.max_alerts) and counts the other %d as truncated",
		len(msg.Alerts), len(msg.Alerts)+msg.Capped, msg.Capped)
	if sender := msg.TruncatedAlerts - uint64(msg.Capped); sender > 0 { //nolint:gosec // a count of alerts, never negative
		text += fmt.Sprintf("; Alertmanager left out %d more", sender)
	}
	return text + after
}

// hasNewFiring reports whether any firing alert is not already stored with
// the same or a later start (a re-send of a known alert is not new). A read
// error is returned, never taken for "not stored": on a networked store a
// transient error would otherwise open a duplicate incident.
func hasNewFiring(tx store.Tx, inc *store.Incident, firing []template.Alert) (bool, error) {
	for _, a := range firing {
		prev, err := tx.Alert(inc.ID, a.Fingerprint)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return true, nil
		case err != nil:
			return false, err
		case a.StartsAt.After(prev.StartsAt):
			return true, nil
		}
	}
	return false, nil
}

func (s *Service) openAlertmanager(tx *txn, now time.Time, msg *AlertmanagerWebhook) (*change, error) {
	lbls := map[string]string{}
	for k, v := range msg.CommonLabels {
		lbls[k] = v
	}
	for k, v := range msg.GroupLabels {
		lbls[k] = v
	}
	title := msg.CommonAnnotations["summary"]
	if title == "" {
		title = groupTitle(msg)
	}
	ch, err := s.open(tx, now, &store.Incident{
		Title:       title,
		Description: msg.CommonAnnotations["description"],
		Source:      store.SourceAlertmanager,
		DedupKey:    msg.GroupKey,
		Labels:      lbls,
		RunbookURL:  msg.CommonAnnotations["runbook_url"],
		SourceURL:   firstGeneratorURL(msg.Alerts),
		Kind:        "alertmanager:" + s.policy.AlertKind(lbls, msg.GroupKey),
		Team:        lbls["team"],
	})
	if err != nil {
		return nil, err
	}
	// The incident opens at the severity of its most severe firing alert, so
	// that the opening announcement is right from the start.
	cls := s.policy.Classify(lbls)
	for _, a := range msg.Alerts.Firing() {
		if ac := s.policy.Classify(a.Labels); ac.Severity.MoreSevereThan(cls.Severity) {
			cls.Severity = ac.Severity
		}
	}
	ch.inc.Severity = cls.Severity.String()
	if cls.Team != "" {
		ch.inc.Team = cls.Team
	}
	if cls.RunbookURL != "" && ch.inc.RunbookURL == "" {
		ch.inc.RunbookURL = cls.RunbookURL
	}
	return ch, nil
}

// groupTitle names a group by its group labels, alertname first.
func groupTitle(msg *AlertmanagerWebhook) string {
	lbls := msg.GroupLabels
	if len(lbls) == 0 {
		lbls = msg.CommonLabels
	}
	var parts []string
	if n := lbls["alertname"]; n != "" {
		parts = append(parts, n)
	}
	for _, p := range lbls.SortedPairs() {
		if p.Name != "alertname" {
			parts = append(parts, p.Name+"="+p.Value)
		}
	}
	if len(parts) == 0 {
		return "Alertmanager group " + msg.GroupKey
	}
	return strings.Join(parts, " ")
}

// applyAlerts merges the webhook's alerts into the incident. An alert whose
// fingerprint, start and status are already stored changes nothing, so a
// re-sent webhook is a no-op. It reports whether anything changed.
func (s *Service) applyAlerts(ch *change, msg *AlertmanagerWebhook) (bool, error) {
	changed := false
	var joined []string
	var worst policy.Severity // the most severe alert now firing, and its name
	var worstName string
	for _, a := range msg.Alerts {
		prev, err := ch.tx.Alert(ch.inc.ID, a.Fingerprint)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		if prev != nil && (a.StartsAt.Before(prev.StartsAt) ||
			(a.StartsAt.Equal(prev.StartsAt) && (a.Status == prev.Status || prev.Status == store.AlertResolved))) {
			// Same alert and state, or a stale "firing" for an alert already
			// resolved: nothing to do.
			continue
		}
		changed = true
		cls := s.policy.Classify(a.Labels)
		stored := &store.Alert{
			Fingerprint:  a.Fingerprint,
			Status:       a.Status,
			StartsAt:     a.StartsAt.UTC(),
			Labels:       a.Labels,
			Annotations:  a.Annotations,
			GeneratorURL: a.GeneratorURL,
			Severity:     cls.Severity.String(),
			UpdatedAt:    ch.now,
		}
		if !a.EndsAt.IsZero() && a.Status == store.AlertResolved {
			end := a.EndsAt.UTC()
			stored.EndsAt = &end
		}
		wasFiring := prev != nil && prev.Status == store.AlertFiring
		// A later start is a new episode of the alert, even when the stored
		// state still says firing (its resolution may never have reached us).
		newEpisode := prev == nil || a.StartsAt.After(prev.StartsAt)
		if prev == nil {
			ch.inc.AlertsTotal++
		}
		name := alertName(a)
		switch {
		case a.Status == store.AlertFiring && (!wasFiring || newEpisode):
			if !wasFiring {
				ch.inc.AlertsFiring++
			}
			if ch.inc.Status == store.StatusResolved && newEpisode {
				if err := ch.reopen(fmt.Sprintf("%s fired again within %s of resolution", name, s.policy.ReopenWithin), "alertmanager"); err != nil {
					return false, err
				}
			}
			switch {
			case ch.created:
				err = ch.record(store.KindAlertFiring, name+" firing", "alertmanager")
			case wasFiring:
				err = ch.record(store.KindAlertFiring, name+" firing again since "+a.StartsAt.UTC().Format(timeFormat), "alertmanager")
			default:
				joined = append(joined, name)
				err = ch.record(store.KindAlertFiring, name+" firing", "alertmanager")
			}
			if err != nil {
				return false, err
			}
			if cls.Severity.MoreSevereThan(worst) {
				worst, worstName = cls.Severity, name
			}
			if s.policy.CustomerImpact(a.Labels) {
				if err := ch.markCustomerImpact(name+" affects customers", "alertmanager"); err != nil {
					return false, err
				}
			}
		case a.Status == store.AlertResolved && wasFiring:
			ch.inc.AlertsFiring--
			if err := ch.record(store.KindAlertResolved, name+" resolved", "alertmanager"); err != nil {
				return false, err
			}
		case a.Status == store.AlertResolved && prev == nil:
			if err := ch.record(store.KindAlertResolved, name+" resolved (never seen firing)", "alertmanager"); err != nil {
				return false, err
			}
		}
		if err := ch.tx.PutAlert(ch.inc.ID, stored); err != nil {
			return false, err
		}
	}
	if len(joined) > 0 {
		// One message for the alerts of one webhook, however many joined.
		ch.notify(integrations.EventAlertJoined, joinedText(joined), "alertmanager")
	}
	if worst.Valid() {
		if err := ch.raise(worst, worstName+" is "+worst.String(), "alertmanager"); err != nil {
			return false, err
		}
	}
	return changed, nil
}

// joinedText says which alerts joined, naming at most a few.
func joinedText(names []string) string {
	const show = 5
	text := fmt.Sprintf("%d alerts joined: ", len(names))
	if len(names) == 1 {
		text = "1 alert joined: "
	}
	if len(names) > show {
		return text + strings.Join(names[:show], ", ") + fmt.Sprintf(" and %d more", len(names)-show)
	}
	return text + strings.Join(names, ", ")
}

// alertName is how an alert is named in the timeline: alertname and the
// fingerprint, which tells two alerts of one name apart.
func alertName(a template.Alert) string {
	n := a.Labels["alertname"]
	if n == "" {
		n = "alert"
	}
	if inst := a.Labels["instance"]; inst != "" {
		n += " on " + inst
	}
	return n + " [" + a.Fingerprint + "]"
}

func fingerprints(alerts template.Alerts) string {
	fps := make([]string, 0, len(alerts))
	for _, a := range alerts {
		fps = append(fps, a.Fingerprint+"="+a.Status)
	}
	sort.Strings(fps)
	return strings.Join(fps, ",")
}

// storedSeverity parses an incident's stored severity. Stored values were
// validated when written; one that does not parse (a file edited by hand)
// is taken as the least severe, S4, rather than stopping the incident.
func storedSeverity(s string) policy.Severity {
	sev, err := policy.ParseSeverity(s)
	if err != nil {
		return policy.S4
	}
	return sev
}

func firstGeneratorURL(alerts template.Alerts) string {
	for _, a := range alerts {
		if a.GeneratorURL != "" {
			return a.GeneratorURL
		}
	}
	return ""
}

// heartbeatPings takes a heartbeat's alerts out of msg (a copy; msg is
// left as it is, since a write may run again) and lists the heartbeats
// pinged by those that fire.
func (s *Service) heartbeatPings(msg *AlertmanagerWebhook) (*AlertmanagerWebhook, []policy.Heartbeat) {
	if s.policy == nil || len(s.policy.Heartbeats) == 0 {
		return msg, nil
	}
	out := *msg
	out.Alerts = nil
	var pinged []policy.Heartbeat
	seen := map[string]bool{}
	for _, a := range msg.Alerts {
		h, ok := s.policy.HeartbeatFor(a.Labels)
		if !ok {
			out.Alerts = append(out.Alerts, a)
			continue
		}
		if a.Status == "firing" && !seen[h.Name] {
			seen[h.Name] = true
			pinged = append(pinged, h)
		}
	}
	return &out, pinged
}
