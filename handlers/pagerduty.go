package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// pdSignatureHeader carries PagerDuty's v3 webhook signatures:
// "v1=<hex HMAC-SHA256 of the body>", comma-separated when several secrets
// sign (while one is rotated).
const pdSignatureHeader = "X-PagerDuty-Signature"

// postPagerDuty takes a PagerDuty v3 webhook, authenticated by its
// signature, checked on the raw body before anything is decoded.
func (s *Server) postPagerDuty(c echo.Context) error {
	var msg *incident.PagerDutyWebhook
	return s.ingest(c, store.SourcePagerDuty,
		func(body []byte) (*truncation, error) {
			if err := s.checkPagerDutySignature(c.Request().Header.Get(pdSignatureHeader), body); err != nil {
				return nil, err
			}
			var err error
			msg, err = decodePagerDuty(body)
			return nil, err
		},
		func(ctx context.Context) ([]incident.Touched, error) { return s.incidents.ApplyPagerDuty(ctx, msg) })
}

// checkPagerDutySignature accepts body when one of its v1 signatures is
// the HMAC-SHA256 of body under one of the configured secrets, compared in
// constant time.
func (s *Server) checkPagerDutySignature(header string, body []byte) error {
	if len(s.cfg.PagerDutySecrets) == 0 {
		return errorf(http.StatusForbidden, "PagerDuty webhooks are not accepted here: set notifications.pagerduty.webhook_secrets")
	}
	if strings.TrimSpace(header) == "" {
		return errorf(http.StatusUnauthorized, "%s: required: PagerDuty signs each webhook with the subscription's secret", pdSignatureHeader)
	}
	for _, secret := range s.cfg.PagerDutySecrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		want := mac.Sum(nil)
		for _, sig := range strings.Split(header, ",") {
			v, ok := strings.CutPrefix(strings.TrimSpace(sig), "v1=")
			if !ok {
				continue
			}
			got, err := hex.DecodeString(v)
			if err == nil && hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return errorf(http.StatusUnauthorized, "%s: no signature matches the body under a configured secret", pdSignatureHeader)
}

func decodePagerDuty(body []byte) (*incident.PagerDutyWebhook, error) {
	var msg incident.PagerDutyWebhook
	if err := decodeJSON(body, &msg, false, false); err != nil {
		return nil, err
	}
	ev := &msg.Event
	switch {
	case !strings.HasPrefix(ev.EventType, "incident."):
		return nil, badRequest("event.event_type: %q: want an incident event (incident.triggered, incident.acknowledged, incident.resolved, incident.annotated, ...)",
			integrations.Shorten(ev.EventType, 64))
	case ev.IncidentID() == "":
		return nil, badRequest("event.data.id: required (event.data.incident.id for incident.annotated)")
	case ev.EventType == "incident.triggered" && strings.TrimSpace(ev.Data.Title) == "":
		return nil, badRequest("event.data.title: required for incident.triggered")
	case ev.EventType == "incident.annotated" && strings.TrimSpace(ev.Data.Content) == "":
		return nil, badRequest("event.data.content: required for incident.annotated")
	}
	if err := incident.CheckText("event.data.id", ev.IncidentID(), incident.MaxLabelValue, true); err != nil {
		return nil, err
	}
	return &msg, nil
}
