package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/common/model"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
)

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

// Webhooks are not held to the people-facing limits on labels: Alertmanager
// does not retry a 4xx, so refusing a large alert would lose the whole
// group. The body limit bounds them; only keys that become database keys
// are bounded (incident.MaxKey: bbolt keys must stay under 32 KiB).

// decodeAlertmanager decodes and checks a webhook body; every problem names
// its field. It fills in fingerprints that very old senders leave out.
func decodeAlertmanager(body []byte) (*incident.AlertmanagerWebhook, error) {
	var msg incident.AlertmanagerWebhook
	if err := decodeJSON(body, &msg, false, false); err != nil {
		return nil, locateAlertError(body, err)
	}
	if msg.Version != "4" {
		return nil, badRequest("version: got %q, want \"4\" (Alertmanager webhook format)", msg.Version)
	}
	if err := incident.CheckText("groupKey", msg.GroupKey, incident.MaxKey, true); err != nil {
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
		if err := incident.CheckText(field+".fingerprint", a.Fingerprint, incident.MaxLabelValue, true); err != nil {
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
	var msg *incident.AlertmanagerWebhook
	return s.ingest(c, store.SourceAlertmanager,
		func(body []byte) (*truncation, error) {
			var err error
			if msg, err = decodeAlertmanager(body); err != nil {
				return nil, err
			}
			return capAlerts(msg, s.cfg.MaxAlerts), nil
		},
		func(ctx context.Context) ([]incident.Touched, error) { return s.incidents.ApplyAlertmanager(ctx, msg) })
}

// capAlerts keeps the first max alerts of msg (all when max is 0) and
// counts the others as truncated, as Alertmanager's own max_alerts does, so
// that the incident does not auto-resolve on a partial view. The left-out
// alerts were checked like the others: a webhook is refused or accepted as
// a whole.
func capAlerts(msg *incident.AlertmanagerWebhook, limit int) *truncation {
	n := len(msg.Alerts)
	if limit <= 0 || n <= limit {
		return nil
	}
	msg.Capped = n - limit
	msg.Alerts = msg.Alerts[:limit:limit]
	msg.TruncatedAlerts += uint64(msg.Capped) //nolint:gosec // a count of alerts, never negative
	return &truncation{Received: n, Kept: limit, LeftOut: n - limit, MaxAlerts: limit}
}

// ingest is the shape every webhook shares: read and decode (nothing is
// written for a refused body), apply through the incident service (one
// durable transaction), answer 202 with the incidents touched.
func (s *Server) ingest(c echo.Context, src store.Source, decode func(body []byte) (*truncation, error),
	apply func(ctx context.Context) ([]incident.Touched, error)) error {
	body, err := s.readBody(c)
	if err != nil {
		s.metrics.alertsRejected.WithLabelValues(string(src), "body").Inc()
		return err
	}
	truncated, err := decode(body)
	if err != nil {
		s.metrics.alertsRejected.WithLabelValues(string(src), "invalid").Inc()
		return err
	}
	touched, err := apply(c.Request().Context())
	if err != nil {
		if errors.Is(err, store.ErrBusy) || errors.Is(err, store.ErrClosed) || errors.Is(err, store.ErrUnavailable) {
			s.metrics.alertsRejected.WithLabelValues(string(src), "busy").Inc()
		}
		return err
	}
	out := ingestResponse{Incidents: make([]ingestResult, 0, len(touched)), Truncated: truncated}
	for _, t := range touched {
		out.Incidents = append(out.Incidents, ingestResult{ID: t.ID, Created: t.Created, Severity: t.Severity})
	}
	if t := truncated; t != nil {
		s.metrics.alertsRejected.WithLabelValues(string(src), "max_alerts").Add(float64(t.LeftOut))
		out.Warning = fmt.Sprintf("kept the first %d of %d alerts (max_alerts is %d); the other %d count as truncated: "+
			"the incident will not auto-resolve until a webhook with every alert arrives", t.Kept, t.Received, t.MaxAlerts, t.LeftOut)
	}
	return c.JSON(http.StatusAccepted, out)
}
