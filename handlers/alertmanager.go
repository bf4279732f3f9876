package handlers

import (
	"encoding/json"
	"errors"
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

	// capped is how many alerts Responder left out itself (MaxAlerts);
	// they are counted in TruncatedAlerts too.
	capped int
}

// ingestResult is one incident touched by a webhook.
type ingestResult struct {
	ID       string `json:"id"`
	Created  bool   `json:"created"`
	Severity string `json:"severity"`
}

type ingestResponse struct {
	Incidents []ingestResult `json:"incidents"`
	// Truncated says which alerts were stored when a webhook held more
	// than max_alerts; Warning says it in words.
	Truncated *truncation `json:"truncated,omitempty"`
	Warning   string      `json:"warning,omitempty"`
}

// truncation is what a webhook over max_alerts kept: the first Kept of
// Received alerts; the LeftOut others count as truncated alerts.
type truncation struct {
	Received  int `json:"received"`
	Kept      int `json:"kept"`
	LeftOut   int `json:"left_out"`
	MaxAlerts int `json:"max_alerts"`
}

// decoded is what a webhook's decoder tells ingest.
type decoded struct {
	alerts    int         // alerts to apply
	truncated *truncation // nil when every alert is applied
}

// Webhooks are not held to the people-facing limits on labels: Alertmanager
// does not retry a 4xx, so refusing a large alert would lose the whole
// group. The body limit bounds them; only keys that become database keys
// are bounded here (bbolt keys must stay under 32 KiB).
const maxKey = 16 << 10

// decodeAlertmanager decodes and checks a webhook body; every problem names
// its field. It fills in fingerprints that very old senders leave out.
func decodeAlertmanager(body []byte) (*amWebhook, error) {
	var msg amWebhook
	if err := decodeJSON(body, &msg, false, false); err != nil {
		return nil, locateAlertError(body, err)
	}
	if msg.Version != "4" {
		return nil, badRequest("version: got %q, want \"4\" (Alertmanager webhook format)", msg.Version)
	}
	if err := checkText("groupKey", msg.GroupKey, maxKey, true); err != nil {
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
		if err := checkText(field+".fingerprint", a.Fingerprint, maxLabelValue, true); err != nil {
			return nil, err
		}
	}
	return &msg, nil
}

// locateAlertError names the field of an error the JSON decoder reports
// without one (a time that does not parse): it decodes the alerts one by one.
func locateAlertError(body []byte, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) || !strings.HasPrefix(ae.msg, "invalid JSON: ") {
		return err
	}
	var raw struct {
		Alerts []struct {
			StartsAt json.RawMessage `json:"startsAt"`
			EndsAt   json.RawMessage `json:"endsAt"`
		} `json:"alerts"`
	}
	if json.Unmarshal(body, &raw) != nil {
		return err
	}
	for i, a := range raw.Alerts {
		for name, v := range map[string]json.RawMessage{"startsAt": a.StartsAt, "endsAt": a.EndsAt} {
			var t time.Time
			if len(v) > 0 && json.Unmarshal(v, &t) != nil {
				return badRequest("alerts[%d].%s: %s is not an RFC 3339 time", i, name, v)
			}
		}
	}
	return err
}

func (s *Server) postAlertmanager(c echo.Context) error {
	var msg *amWebhook
	return s.ingest(c, store.SourceAlertmanager,
		func(body []byte) (decoded, error) {
			var err error
			if msg, err = decodeAlertmanager(body); err != nil {
				return decoded{}, err
			}
			return decoded{alerts: len(msg.Alerts), truncated: capAlerts(msg, s.cfg.MaxAlerts)}, nil
		},
		func(tx store.Tx, now time.Time) (*change, error) { return s.ingestAlertmanager(tx, now, msg) })
}

// capAlerts keeps the first max alerts of msg (all when max is 0) and
// counts the others as truncated, as Alertmanager's own max_alerts does, so
// that the incident does not auto-resolve on a partial view. The left-out
// alerts were checked like the others: a webhook is refused or accepted as
// a whole.
func capAlerts(msg *amWebhook, limit int) *truncation {
	n := len(msg.Alerts)
	if limit <= 0 || n <= limit {
		return nil
	}
	msg.capped = n - limit
	msg.Alerts = msg.Alerts[:limit:limit]
	msg.TruncatedAlerts += uint64(msg.capped) //nolint:gosec // a count of alerts, never negative
	return &truncation{Received: n, Kept: limit, LeftOut: n - limit, MaxAlerts: limit}
}

// ingest is the shape every webhook shares: read and decode (nothing is
// written for a refused body), apply in one durable transaction, count,
// answer 202 with the incidents touched.
func (s *Server) ingest(c echo.Context, src store.Source, decode func(body []byte) (decoded, error),
	apply func(tx store.Tx, now time.Time) (*change, error)) error {
	body, err := s.readBody(c)
	if err != nil {
		s.metrics.alertsRejected.WithLabelValues(string(src), "body").Inc()
		return err
	}
	d, err := decode(body)
	if err != nil {
		s.metrics.alertsRejected.WithLabelValues(string(src), "invalid").Inc()
		return err
	}
	res := []ingestResult{}
	err = s.write(c, func(tx store.Tx) error {
		res = res[:0]
		ch, err := apply(tx, s.now())
		if err != nil || ch == nil {
			return err
		}
		res = append(res, ingestResult{ID: ch.inc.ID, Created: ch.created, Severity: ch.inc.Severity})
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrBusy) || errors.Is(err, store.ErrClosed) {
			s.metrics.alertsRejected.WithLabelValues(string(src), "busy").Inc()
		}
		return err
	}
	s.metrics.alertsIngested.WithLabelValues(string(src)).Add(float64(d.alerts))
	for _, r := range res {
		if r.Created {
			s.metrics.incidentsOpened.WithLabelValues(r.Severity, string(src)).Inc()
		}
	}
	out := ingestResponse{Incidents: res, Truncated: d.truncated}
	if t := d.truncated; t != nil {
		s.metrics.alertsRejected.WithLabelValues(string(src), "max_alerts").Add(float64(t.LeftOut))
		out.Warning = fmt.Sprintf("kept the first %d of %d alerts (max_alerts is %d); the other %d count as truncated: "+
			"the incident will not auto-resolve until a webhook with every alert arrives", t.Kept, t.Received, t.MaxAlerts, t.LeftOut)
	}
	return c.JSON(http.StatusAccepted, out)
}

// ingestAlertmanager applies one webhook: the group is one incident. It
// returns nil when the webhook touched no incident (a resolved group never
// seen firing is recorded as unmatched).
func (s *Server) ingestAlertmanager(tx store.Tx, now time.Time, msg *amWebhook) (*change, error) {
	inc, err := tx.LatestByDedupKey(store.SourceAlertmanager, msg.GroupKey)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	var ch *change
	switch {
	case inc == nil && len(msg.Alerts.Firing()) == 0:
		return nil, tx.RecordUnmatched(store.Unmatched{At: now, Source: store.SourceAlertmanager, DedupKey: msg.GroupKey,
			Reason: "resolved alerts for a group never seen firing", Detail: fingerprints(msg.Alerts)})
	case inc == nil:
		ch, err = s.openAlertmanager(tx, now, msg)
	case inc.Status != store.StatusResolved, !s.hasNewFiring(tx, inc, msg.Alerts.Firing()):
		// Join the open incident; or, for a resolved one with nothing new
		// firing, keep its alerts' states true without reopening it.
		ch = s.changeOf(tx, inc, now)
	case s.policy.Reopens(*inc.ResolvedAt, now):
		ch = s.changeOf(tx, inc, now) // applyAlerts reopens it
	default:
		ch, err = s.openAlertmanager(tx, now, msg)
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
		s.policy.ProcessFor(mustSeverity(ch.inc.Severity)).AutoResolve {
		if err := ch.resolve("alertmanager", "every alert of the group is resolved"); err != nil {
			return nil, err
		}
	}
	return ch, ch.save()
}

// truncationNote says in the timeline which alerts of a webhook are missing
// and who left them out.
func truncationNote(msg *amWebhook) string {
	const after = ": the incident will not auto-resolve until a webhook with every alert arrives"
	if msg.capped == 0 {
		return fmt.Sprintf("Alertmanager left out %d alerts of this group (its max_alerts)%s", msg.TruncatedAlerts, after)
	}
	text := fmt.Sprintf("Responder stored the first %d of %d alerts of this webhook (alertmanager.max_alerts) and counts the other %d as truncated",
		len(msg.Alerts), len(msg.Alerts)+msg.capped, msg.capped)
	if sender := msg.TruncatedAlerts - uint64(msg.capped); sender > 0 { //nolint:gosec // a count of alerts, never negative
		text += fmt.Sprintf("; Alertmanager left out %d more", sender)
	}
	return text + after
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
	var joined []string
	var worst policy.Severity // the most severe alert now firing, and its name
	var worstName string
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

// mustSeverity parses a stored severity; stored values were validated.
func mustSeverity(s string) policy.Severity {
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
