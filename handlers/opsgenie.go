package handlers

import (
	"context"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/store"
)

func decodeOpsGenie(body []byte) (*incident.OpsGenieWebhook, error) {
	var msg incident.OpsGenieWebhook
	if err := decodeJSON(body, &msg, false, false); err != nil {
		return nil, err
	}
	msg.Action = strings.TrimSpace(msg.Action)
	if msg.Action == "" {
		return nil, badRequest("action: required (Create, Acknowledge, Close, AddNote, ...)")
	}
	if err := incident.CheckText("action", msg.Action, incident.MaxLabelName, true); err != nil {
		return nil, err
	}
	if msg.Alert.Alias == "" {
		// OpsGenie uses the alert id as alias when the creator gave none.
		msg.Alert.Alias = msg.Alert.AlertID
	}
	// Alias and alert id become database keys; OpsGenie caps aliases at 512
	// characters. Nothing else is bounded beyond the body limit, so that no
	// sender's alert is refused for its size.
	if err := incident.CheckText("alert.alias", msg.Alert.Alias, incident.MaxLabelValue, true); err != nil {
		return nil, badRequest("%v (or alert.alertId)", err)
	}
	if err := incident.CheckText("alert.alertId", msg.Alert.AlertID, incident.MaxLabelValue, false); err != nil {
		return nil, err
	}
	if msg.Action == "Create" && strings.TrimSpace(msg.Alert.Message) == "" {
		return nil, badRequest("alert.message: required for Create")
	}
	if msg.Action == "AddNote" && strings.TrimSpace(msg.Alert.Note) == "" {
		return nil, badRequest("alert.note: required for AddNote")
	}
	return &msg, nil
}

func (s *Server) postOpsGenie(c echo.Context) error {
	return s.postOpsGenieShaped(c, store.SourceOpsGenie, (*incident.Service).ApplyOpsGenie)
}

// postJSM takes Jira Service Management Operations' outgoing webhook,
// which has OpsGenie's shape.
func (s *Server) postJSM(c echo.Context) error {
	return s.postOpsGenieShaped(c, store.SourceJSM, (*incident.Service).ApplyJSM)
}

func (s *Server) postOpsGenieShaped(c echo.Context, src store.Source,
	apply func(*incident.Service, context.Context, *incident.OpsGenieWebhook) ([]incident.Touched, error)) error {
	var msg *incident.OpsGenieWebhook
	return s.ingest(c, src,
		func(body []byte) (*truncation, error) {
			var err error
			msg, err = decodeOpsGenie(body)
			return nil, err
		},
		func(ctx context.Context) ([]incident.Touched, error) { return apply(s.incidents, ctx, msg) })
}
