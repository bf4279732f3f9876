package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// listResponse is a page of incidents, newest first. Next, when set, is the
// before= of the following page.
type listResponse struct {
	Incidents []store.Incident `json:"incidents"`
	Next      string           `json:"next,omitempty"`
}

// tokenName is the name of the token the request was authenticated with
// ("" when no tokens are configured): the actor of a write that does not
// name one.
func tokenName(c echo.Context) string {
	name, _ := c.Get(ctxTokenName).(string)
	return name
}

// declare opens a manual incident. Without a severity, policy classifies it
// from its labels.
func (s *Server) declare(c echo.Context) error {
	var req incident.DeclareRequest
	if err := s.bindStrict(c, &req, false); err != nil {
		return err
	}
	idem, err := idempotencyOf(c)
	if err != nil {
		return err
	}
	view, replayed, err := s.incidents.Declare(c.Request().Context(), req, tokenName(c), idem)
	if err != nil {
		return err
	}
	return answerOpened(c, view, replayed)
}

// startDrill opens a drill incident from a named scenario.
func (s *Server) startDrill(c echo.Context) error {
	var req incident.DrillRequest
	if err := s.bindStrict(c, &req, false); err != nil {
		return err
	}
	idem, err := idempotencyOf(c)
	if err != nil {
		return err
	}
	view, replayed, err := s.incidents.Drill(c.Request().Context(), req, tokenName(c), idem)
	if err != nil {
		return err
	}
	return answerOpened(c, view, replayed)
}

// answerOpened answers 201 with an incident just opened, or the one a
// replayed request opened before (Idempotent-Replayed: true).
// drillSchedule lists the scheduled drills with their next start, as the
// caller may see them: a surprise drill only to its organiser's token.
func (s *Server) drillSchedule(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"drills": s.incidents.UpcomingDrills(tokenName(c))})
}

func answerOpened(c echo.Context, view *incident.View, replayed bool) error {
	if replayed {
		c.Response().Header().Set(headerReplayed, "true")
	}
	return c.JSON(http.StatusCreated, view)
}

// Idempotency keys (draft-ietf-httpapi-idempotency-key-header).
const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
	maxIdempotencyKey    = 255
)

// idempotencyOf reads the request's Idempotency-Key (the zero value when
// none is sent), scoped to the token that sent it and the path.
func idempotencyOf(c echo.Context) (incident.Idempotency, error) {
	raw := c.Request().Header.Values(headerIdempotencyKey)
	if len(raw) == 0 {
		return incident.Idempotency{}, nil
	}
	k := strings.Trim(strings.TrimSpace(raw[0]), `"`)
	if len(raw) > 1 || k == "" || len(k) > maxIdempotencyKey || strings.IndexFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return incident.Idempotency{}, badRequest("%s header: want one key of 1 to %d visible ASCII characters (a UUID is typical)", headerIdempotencyKey, maxIdempotencyKey)
	}
	path := c.Request().URL.Path
	return incident.Idempotency{Key: tokenName(c) + "\x00" + path + "\x00" + k, Scope: path}, nil
}

func (s *Server) list(c echo.Context) error {
	page, err := s.incidents.List(c.Request().Context(), listQuery(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listResponse{Incidents: page.Incidents, Next: page.Next})
}

// listQuery is the list the query parameters ask for.
func listQuery(c echo.Context) incident.ListQuery {
	return incident.ListQuery{Status: c.QueryParam("status"), Severity: c.QueryParam("severity"),
		Limit: c.QueryParam("limit"), Before: c.QueryParam("before")}
}

func (s *Server) get(c echo.Context) error {
	view, err := s.incidents.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view)
}

// checklistAnswer is GET /api/v1/incidents/{id}/checklist.
type checklistAnswer struct {
	Incident string              `json:"incident"`
	Steps    []incident.StepView `json:"steps"`
	// Next is the first open step; absent when every step is marked.
	Next *incident.StepView `json:"next,omitempty"`
	// Runbooks are the configured runbooks that can be attached by hand.
	Runbooks []string `json:"runbooks"`
}

// checklist serves the steps of the runbooks attached to an incident.
func (s *Server) checklist(c echo.Context) error {
	view, err := s.incidents.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	a := checklistAnswer{Incident: view.ID, Steps: view.Checklist, Runbooks: s.incidents.Runbooks()}
	for i := range a.Steps {
		if a.Steps[i].State == store.StepOpen {
			a.Next = &a.Steps[i]
			break
		}
	}
	if a.Runbooks == nil {
		a.Runbooks = []string{}
	}
	return c.JSON(http.StatusOK, a)
}

// postmortem serves GET /api/v1/incidents/{id}/postmortem: the Markdown
// draft of the incident's post-mortem.
func (s *Server) postmortem(c echo.Context) error {
	md, err := s.incidents.Postmortem(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("inline; filename=%q", c.Param("id")+"-postmortem.md"))
	return c.Blob(http.StatusOK, "text/markdown; charset=utf-8", []byte(s.redactor.Answer(string(md))))
}

// postmortemVersions serves GET /api/v1/incidents/{id}/postmortem/versions:
// the stored post-mortem's state and its versions, without their text.
func (s *Server) postmortemVersions(c echo.Context) error {
	st, err := s.incidents.PostmortemStateOf(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

// postmortemVersion serves the Markdown of one kept version.
func (s *Server) postmortemVersion(c echo.Context) error {
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 1 {
		return badRequest("version: %q is not a version number (1, 2, ...)", integrations.Shorten(c.Param("n"), 32))
	}
	md, err := s.incidents.PostmortemVersion(c.Request().Context(), c.Param("id"), n)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("inline; filename=%q", fmt.Sprintf("%s-postmortem-v%d.md", c.Param("id"), n)))
	return c.Blob(http.StatusOK, "text/markdown; charset=utf-8", []byte(s.redactor.Answer(string(md))))
}

// change is a change people make to one incident, as the incident service
// offers it: the API and the web forms call the same ones.
type change[R any] func(s *incident.Service, ctx context.Context, id string, req R, actor string) (*incident.View, error)

// doChange makes a change to the incident named by the path's id, acting
// as the request's token.
func doChange[R any](s *Server, c echo.Context, do change[R], req R) (*incident.View, error) {
	return do(s.incidents, c.Request().Context(), c.Param("id"), req, tokenName(c))
}

// jsonChange is the JSON API's side of a change to one incident: the body
// decoded strictly into R (it may be empty when emptyOK), the change made,
// the incident answered.
func jsonChange[R any](s *Server, emptyOK bool, status int, do change[R]) echo.HandlerFunc {
	return jsonCall(s, "id", emptyOK, status, call[R, *incident.View](do))
}

// call is a write of the incident service on the thing a path names (an
// incident, an action item) that answers A.
type call[R, A any] func(s *incident.Service, ctx context.Context, id string, req R, actor string) (A, error)

// jsonCall is the JSON API's side of a call: the body decoded strictly
// into R (it may be empty when emptyOK), the call made on the path's
// param, acting as the request's token, its answer sent with status.
func jsonCall[R, A any](s *Server, param string, emptyOK bool, status int, do call[R, A]) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req R
		if err := s.bindStrict(c, &req, emptyOK); err != nil {
			return err
		}
		answer, err := do(s.incidents, c.Request().Context(), c.Param(param), req, tokenName(c))
		if err != nil {
			return err
		}
		return c.JSON(status, answer)
	}
}

// postHeartbeat records a ping of a heartbeat of the dead-man's switch
// (a job that calls it every run). The body, if any, is not read.
func (s *Server) postHeartbeat(c echo.Context) error {
	name := c.Param("name")
	by := tokenName(c)
	if by == "" {
		by = "api"
	}
	if err := s.incidents.Ping(c.Request().Context(), name, by); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"heartbeat": name})
}
