package handlers

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// amWebhook is Alertmanager's webhook body (version 4). It is decoded
// leniently: newer senders add fields (notification_reason in v0.32,
// routeLabels in v0.34) and older ones lack them.
type amWebhook struct {
	template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// ingestResult is one incident touched by a webhook.
type ingestResult struct {
	ID       string `json:"id"`
	Created  bool   `json:"created"`
	Severity string `json:"severity"`
}

type ingestResponse struct {
	Incidents []ingestResult `json:"incidents"`
}

// decodeAlertmanager decodes and checks a webhook body; every problem names
// its field. It fills in fingerprints that very old senders leave out.
func decodeAlertmanager(body []byte) (*amWebhook, error) {
	var msg amWebhook
	if err := decodeJSON(body, &msg, false, false); err != nil {
		return nil, err
	}
	if msg.Version != "4" {
		return nil, badRequest("version: got %q, want \"4\" (Alertmanager webhook format)", msg.Version)
	}
	if strings.TrimSpace(msg.GroupKey) == "" {
		return nil, badRequest("groupKey: required")
	}
	if err := checkText("groupKey", msg.GroupKey, maxText, true); err != nil {
		return nil, err
	}
	if len(msg.Alerts) == 0 {
		return nil, badRequest("alerts: must hold at least one alert")
	}
	for i := range msg.Alerts {
		a := &msg.Alerts[i]
		field := fmt.Sprintf("alerts[%d]", i)
		if a.Status != store.AlertFiring && a.Status != store.AlertResolved {
			return nil, badRequest("%s.status: got %q, want firing or resolved", field, a.Status)
		}
		if len(a.Labels) == 0 {
			return nil, badRequest("%s.labels: required", field)
		}
		if err := checkLabels(field+".labels", a.Labels); err != nil {
			return nil, err
		}
		if a.StartsAt.IsZero() {
			return nil, badRequest("%s.startsAt: required", field)
		}
		if a.Fingerprint == "" {
			ls := make(model.LabelSet, len(a.Labels))
			for k, v := range a.Labels {
				ls[model.LabelName(k)] = model.LabelValue(v)
			}
			a.Fingerprint = ls.Fingerprint().String()
		}
		if err := checkText(field+".fingerprint", a.Fingerprint, maxLabelName, true); err != nil {
			return nil, err
		}
	}
	return &msg, nil
}

func (s *Server) postAlertmanager(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		s.metrics.alertsRejected.WithLabelValues("alertmanager", "body").Inc()
		return err
	}
	msg, err := decodeAlertmanager(body)
	if err != nil {
		s.metrics.alertsRejected.WithLabelValues("alertmanager", "invalid").Inc()
		return err
	}
	var res []ingestResult
	err = s.write(c, func(tx store.Tx) ([]integrations.Message, error) {
		res = nil
		ch, err := s.ingestAlertmanager(tx, s.now(), msg)
		if err != nil || ch == nil {
			return nil, err
		}
		res = append(res, ingestResult{ID: ch.inc.ID, Created: ch.created, Severity: ch.inc.Severity})
		return ch.msgs, nil
	})
	if err != nil {
		return err
	}
	s.metrics.alertsIngested.WithLabelValues("alertmanager").Add(float64(len(msg.Alerts)))
	for _, r := range res {
		if r.Created {
			s.metrics.incidentsOpened.WithLabelValues(r.Severity, string(store.SourceAlertmanager)).Inc()
		}
	}
	if res == nil {
		res = []ingestResult{}
	}
	return c.JSON(http.StatusAccepted, ingestResponse{Incidents: res})
}

// ingestAlertmanager applies one webhook: the group is one incident. It
// returns nil when the webhook opened or touched no incident (a resolved
// group never seen firing is recorded as unmatched).
func (s *Server) ingestAlertmanager(tx store.Tx, now time.Time, msg *amWebhook) (*change, error) {
	firing := msg.Alerts.Firing()
	inc, err := tx.LatestByDedupKey(store.SourceAlertmanager, msg.GroupKey)
	var ch *change
	switch {
	case err == nil && inc.Status != store.StatusResolved:
		ch = &change{tx: tx, inc: inc, now: now}
	case err == nil && s.policy.Reopens(*inc.ResolvedAt, now):
		ch = &change{tx: tx, inc: inc, now: now}
	case err != nil && !isNotFound(err):
		return nil, err
	}
	// A resolved incident (or none) only matters when something new fires.
	if ch == nil || ch.inc.Status == store.StatusResolved {
		if !s.hasNewFiring(tx, inc, firing) {
			reason := "resolved alerts for a group never seen firing"
			if inc != nil {
				reason = fmt.Sprintf("alerts for group of %s, resolved at %s, with nothing new firing", inc.ID, inc.ResolvedAt.Format(timeFormat))
			}
			return nil, tx.RecordUnmatched(store.Unmatched{At: now, Source: store.SourceAlertmanager, DedupKey: msg.GroupKey, Reason: reason, Detail: fingerprints(msg.Alerts)})
		}
	}
	if ch == nil {
		if ch, err = s.openAlertmanager(tx, now, msg); err != nil {
			return nil, err
		}
	}
	changed, err := s.applyAlerts(ch, msg)
	if err != nil {
		return nil, err
	}
	if !changed && !ch.created {
		return ch, nil // a duplicate: nothing to write
	}
	if msg.TruncatedAlerts > 0 {
		if err := ch.record(store.KindNote, fmt.Sprintf("Alertmanager left out %d alerts of this group (max_alerts)", msg.TruncatedAlerts), "alertmanager"); err != nil {
			return nil, err
		}
	}
	if ch.created {
		if err := ch.opened(store.KindOpened, "alertmanager"); err != nil {
			return nil, err
		}
	}
	if ch.inc.Status != store.StatusResolved && ch.inc.AlertsFiring == 0 && s.policy.ProcessFor(mustSeverity(ch.inc.Severity)).AutoResolve {
		if err := ch.resolve("alertmanager", "every alert of the group is resolved"); err != nil {
			return nil, err
		}
	}
	return ch, ch.save()
}

// hasNewFiring reports whether any firing alert is not already stored as
// firing with the same start (a re-send of a known alert is not new).
func (s *Server) hasNewFiring(tx store.Tx, inc *store.Incident, firing []template.Alert) bool {
	for _, a := range firing {
		if inc == nil {
			return true
		}
		prev, err := tx.Alert(inc.ID, a.Fingerprint)
		if err != nil || a.StartsAt.After(prev.StartsAt) {
			return true
		}
	}
	return false
}

func (s *Server) openAlertmanager(tx store.Tx, now time.Time, msg *amWebhook) (*change, error) {
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
		Team:        lbls["team"],
	})
	if err != nil {
		return nil, err
	}
	cls := s.policy.Classify(lbls)
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
func groupTitle(msg *amWebhook) string {
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
func (s *Server) applyAlerts(ch *change, msg *amWebhook) (bool, error) {
	changed := false
	for _, a := range msg.Alerts {
		prev, err := ch.tx.Alert(ch.inc.ID, a.Fingerprint)
		if err != nil && !isNotFound(err) {
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
		if prev == nil {
			ch.inc.AlertsTotal++
		}
		name := alertName(a)
		switch {
		case a.Status == store.AlertFiring && !wasFiring:
			ch.inc.AlertsFiring++
			if ch.inc.Status == store.StatusResolved {
				if err := ch.reopen(fmt.Sprintf("%s fired again within %s of resolution", name, s.policy.ReopenWithin), "alertmanager"); err != nil {
					return false, err
				}
			}
			if ch.created {
				err = ch.record(store.KindAlertFiring, name+" firing", "alertmanager")
			} else {
				err = ch.announce("alert_joined", store.KindAlertFiring, name+" firing", "alertmanager")
			}
			if err != nil {
				return false, err
			}
			if err := ch.raise(cls.Severity, name+" is "+cls.Severity.String(), "alertmanager"); err != nil {
				return false, err
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
	return changed, nil
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

// mustSeverity parses a stored severity; stored values were validated.
func mustSeverity(s string) policy.Severity {
	sev, err := policy.ParseSeverity(s)
	if err != nil {
		return policy.S4
	}
	return sev
}
