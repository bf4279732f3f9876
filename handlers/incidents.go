package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/responder-sre/responder/policy"
	"github.com/responder-sre/responder/store"
)

// incidentView is an incident as the API shows it: the document with its
// alerts, timeline and notification states.
type incidentView struct {
	*store.Incident
	// Report gives how long each step of the process took (drills above
	// all): to acknowledge, to roles, to the first update, to resolve.
	Report        *processReport `json:"report"`
	Alerts        []store.Alert  `json:"alerts"`
	Timeline      []store.Entry  `json:"timeline"`
	Notifications []store.Intent `json:"notifications"`
}

func loadView(tx store.Tx, id string) (*incidentView, error) {
	inc, err := tx.Incident(id)
	if err != nil {
		return nil, err
	}
	v := &incidentView{Incident: inc, Report: buildReport(inc)}
	if v.Alerts, err = tx.Alerts(id); err != nil {
		return nil, err
	}
	if v.Notifications, err = tx.IncidentIntents(id); err != nil {
		return nil, err
	}
	if v.Timeline, err = tx.Timeline(id); err != nil {
		return nil, err
	}
	return v, nil
}

// Limits on what people may send.
const (
	maxTitle       = 500
	maxText        = 20000
	maxLabels      = 64
	maxLabelName   = 128
	maxLabelValue  = 1024
	defaultListLen = 50
	maxListLen     = 500
	// maxListScan bounds the incidents one list request reads; past it the
	// answer carries "next" to continue from.
	maxListScan = 10000
)

// listResponse is a page of incidents, newest first. Next, when set, is the
// before= of the following page.
type listResponse struct {
	Incidents []store.Incident `json:"incidents"`
	Next      string           `json:"next,omitempty"`
}

// validID reports whether s looks like INC-<n>.
func validID(s string) bool {
	n, ok := strings.CutPrefix(s, "INC-")
	if !ok || n == "" || n[0] == '0' || len(n) > 19 {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

type declareRequest struct {
	Title          string            `json:"title"`
	Severity       string            `json:"severity"`
	Description    string            `json:"description"`
	Labels         map[string]string `json:"labels"`
	CustomerImpact bool              `json:"customer_impact"`
	DeclaredBy     string            `json:"declared_by"`
}

func checkText(field, v string, limit int, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return badRequest("%s: required", field)
	case !utf8.ValidString(v):
		return badRequest("%s: not valid UTF-8", field)
	case len(v) > limit:
		return badRequest("%s: %d bytes, at most %d allowed", field, len(v), limit)
	}
	return nil
}

func checkLabels(field string, lbls map[string]string) error {
	if len(lbls) > maxLabels {
		return badRequest("%s: %d labels, at most %d allowed", field, len(lbls), maxLabels)
	}
	for k, v := range lbls {
		if k == "" {
			return badRequest("%s: label names must not be empty", field)
		}
		if err := checkText(field+"."+k, k, maxLabelName, true); err != nil {
			return err
		}
		if err := checkText(field+"."+k, v, maxLabelValue, false); err != nil {
			return err
		}
	}
	return nil
}

// declare opens a manual incident. Without a severity, policy classifies it
// from its labels.
func (s *Server) declare(c echo.Context) error {
	var req declareRequest
	if err := s.bindStrict(c, &req, false); err != nil {
		return err
	}
	view, replayed, err := s.declareFrom(c, req)
	if err != nil {
		return err
	}
	return s.answerOpened(c, view, replayed)
}

// declareFrom validates a declaration and opens its incident: the one path
// of the API and the web form.
func (s *Server) declareFrom(c echo.Context, req declareRequest) (*incidentView, bool, error) {
	if err := checkText("title", req.Title, maxTitle, true); err != nil {
		return nil, false, err
	}
	if err := checkText("description", req.Description, maxText, false); err != nil {
		return nil, false, err
	}
	if err := checkLabels("labels", req.Labels); err != nil {
		return nil, false, err
	}
	cls := s.policy.Classify(req.Labels)
	if req.Severity != "" {
		sev, err := policy.ParseSeverity(req.Severity)
		if err != nil {
			return nil, false, badRequest("severity: %v", err)
		}
		cls.Severity = sev
	}
	by, err := actor(c, "declared_by", req.DeclaredBy)
	if err != nil {
		return nil, false, err
	}
	return s.openIncident(c, store.Incident{
		Title:          strings.TrimSpace(req.Title),
		Description:    req.Description,
		Severity:       cls.Severity.String(),
		Source:         store.SourceManual,
		Labels:         req.Labels,
		Team:           cls.Team,
		RunbookURL:     cls.RunbookURL,
		CustomerImpact: req.CustomerImpact || s.policy.CustomerImpact(req.Labels),
		DeclaredBy:     by,
	}, by)
}

// openIncident opens an incident that a person declared (or a drill) and
// returns it. With an Idempotency-Key header, a retry of the same request
// (its answer lost) gets the incident the first one opened, and replayed
// is true, instead of opening a second one.
func (s *Server) openIncident(c echo.Context, tmpl store.Incident, by string) (view *incidentView, replayed bool, err error) {
	key, digest, err := s.idempotencyKey(c, tmpl)
	if err != nil {
		return nil, false, err
	}
	err = s.write(c, func(tx store.Tx) error {
		replayed = false
		if key != "" {
			id, err := replayOf(tx, key, digest, s.now())
			if err != nil {
				return err
			}
			if id != "" {
				replayed = true
				view, err = loadView(tx, id)
				return err
			}
		}
		inc := tmpl // fn may run more than once: start from the template each time
		ch, err := s.open(tx, s.now(), &inc)
		if err != nil {
			return err
		}
		if err := ch.opened(store.KindDeclared, by); err != nil {
			return err
		}
		if err := ch.save(); err != nil {
			return err
		}
		if key != "" {
			if err := tx.PutRequest(key, store.Request{At: s.now(), Digest: digest, IncidentID: ch.inc.ID}); err != nil {
				return err
			}
		}
		view, err = loadView(tx, ch.inc.ID)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if !replayed {
		s.metrics.incidentsOpened.WithLabelValues(view.Severity, string(view.Source)).Inc()
	}
	return view, replayed, nil
}

// answerOpened answers 201 with an incident just opened, or the one a
// replayed request opened before (Idempotent-Replayed: true).
func (s *Server) answerOpened(c echo.Context, view *incidentView, replayed bool) error {
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
	// idempotencyWindow is how long a key is remembered: a retry comes
	// within minutes; after a day the same key opens a new incident.
	idempotencyWindow = 24 * time.Hour
)

// idempotencyKey reads the request's Idempotency-Key (empty when none is
// sent) and returns it as stored, scoped to the token that sent it and the
// path, with a digest of what the request asks for.
func (s *Server) idempotencyKey(c echo.Context, tmpl store.Incident) (key, digest string, err error) {
	raw := c.Request().Header.Values(headerIdempotencyKey)
	if len(raw) == 0 {
		return "", "", nil
	}
	k := strings.Trim(strings.TrimSpace(raw[0]), `"`)
	if len(raw) > 1 || k == "" || len(k) > maxIdempotencyKey || strings.IndexFunc(k, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return "", "", badRequest("%s header: want one key of 1 to %d visible ASCII characters (a UUID is typical)", headerIdempotencyKey, maxIdempotencyKey)
	}
	who, _ := c.Get(ctxTokenName).(string)
	what, err := json.Marshal(tmpl)
	if err != nil {
		return "", "", fmt.Errorf("digest of the request: %w", err)
	}
	sum := sha256.Sum256(append([]byte(c.Request().URL.Path+"\x00"), what...))
	return who + "\x00" + c.Request().URL.Path + "\x00" + k, hex.EncodeToString(sum[:]), nil
}

// replayOf is the incident a request with this key already opened, or ""
// when the key is new (or older than idempotencyWindow). A key reused for a
// different request is refused with 422.
func replayOf(tx store.Tx, key, digest string, now time.Time) (string, error) {
	prev, err := tx.Request(key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	case now.Sub(prev.At) > idempotencyWindow:
		return "", nil
	case prev.Digest != digest:
		return "", errorf(http.StatusUnprocessableEntity, "%s header: this key was used for a different request (which opened %s); send a new key for a new request", headerIdempotencyKey, prev.IncidentID)
	}
	return prev.IncidentID, nil
}

func (s *Server) list(c echo.Context) error {
	page, err := s.listIncidents(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listResponse{Incidents: page.Incidents, Next: page.Next})
}

// listIncidents reads the page of incidents the query parameters ask for
// (status, severity, limit, before), newest first.
func (s *Server) listIncidents(c echo.Context) (store.Page, error) {
	f := store.Filter{Limit: defaultListLen, MaxScan: maxListScan}
	if v := c.QueryParam("status"); v != "" {
		f.Status = store.Status(v)
		if !f.Status.Valid() {
			return store.Page{}, badRequest("status: %q is not one of open, acknowledged, resolved", v)
		}
	}
	if v := c.QueryParam("severity"); v != "" {
		sev, err := policy.ParseSeverity(v)
		if err != nil {
			return store.Page{}, badRequest("severity: %v", err)
		}
		f.Severity = sev.String()
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLen {
			return store.Page{}, badRequest("limit: %q is not a whole number from 1 to %d", v, maxListLen)
		}
		f.Limit = n
	}
	if v := c.QueryParam("before"); v != "" {
		if !validID(v) {
			return store.Page{}, badRequest("before: %q is not an incident id like INC-42", v)
		}
		f.Before = v
	}
	var page store.Page
	err := s.store.View(c.Request().Context(), func(tx store.Tx) error {
		var err error
		page, err = tx.ListIncidents(f)
		return err
	})
	if err != nil {
		return store.Page{}, err
	}
	if page.Incidents == nil {
		page.Incidents = []store.Incident{}
	}
	return page, nil
}

func (s *Server) get(c echo.Context) error {
	var view *incidentView
	err := s.store.View(c.Request().Context(), func(tx store.Tx) error {
		var err error
		view, err = loadView(tx, c.Param("id"))
		return err
	})
	if err != nil {
		return unknownIncident(c, err)
	}
	return c.JSON(http.StatusOK, view)
}

// unknownIncident turns the store's not-found into a 404 naming the id
// asked for, as sent (percent-encoding kept) and cut short: a path can be
// long. An id that is not INC-<n> (a path traversal, a name) is refused by
// the store's parsing before any key is read.
func unknownIncident(c echo.Context, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "unknown incident %q", shorten(c.Param("id"), 64))
	}
	return err
}

type ackRequest struct {
	By string `json:"by"`
}

type resolveRequest struct {
	By      string `json:"by"`
	Summary string `json:"summary"`
}

// changeIncident runs fn on the incident named by the path's id in one
// transaction and returns the incident as it is afterwards: the one path
// of every state change, for the API and the web forms.
func (s *Server) changeIncident(c echo.Context, fn func(ch *change) error) (*incidentView, error) {
	var view *incidentView
	err := s.write(c, func(tx store.Tx) error {
		inc, err := tx.Incident(c.Param("id"))
		if err != nil {
			return err
		}
		ch := s.changeOf(tx, inc, s.now())
		if err := fn(ch); err != nil {
			return err
		}
		if err := ch.save(); err != nil {
			return err
		}
		view, err = loadView(tx, inc.ID)
		return err
	})
	if err != nil {
		return nil, unknownIncident(c, err)
	}
	return view, nil
}

// doAck acknowledges the incident named by the path's id.
func (s *Server) doAck(c echo.Context, req ackRequest) (*incidentView, error) {
	by, err := actor(c, "by", req.By)
	if err != nil {
		return nil, err
	}
	return s.changeIncident(c, func(ch *change) error {
		switch ch.inc.Status {
		case store.StatusAcknowledged:
			return errorf(http.StatusConflict, "%s was already acknowledged by %s at %s", ch.inc.ID, ch.inc.AcknowledgedBy, ch.inc.AcknowledgedAt.Format(timeFormat))
		case store.StatusResolved:
			return errorf(http.StatusConflict, "%s is resolved: a resolved incident cannot be acknowledged", ch.inc.ID)
		}
		return ch.acknowledge(by)
	})
}

// doResolve resolves the incident named by the path's id.
func (s *Server) doResolve(c echo.Context, req resolveRequest) (*incidentView, error) {
	if err := checkText("summary", req.Summary, maxText, false); err != nil {
		return nil, err
	}
	by, err := actor(c, "by", req.By)
	if err != nil {
		return nil, err
	}
	return s.changeIncident(c, func(ch *change) error {
		if ch.inc.Status == store.StatusResolved {
			return errorf(http.StatusConflict, "%s was already resolved by %s at %s", ch.inc.ID, ch.inc.ResolvedBy, ch.inc.ResolvedAt.Format(timeFormat))
		}
		return ch.resolve(by, req.Summary)
	})
}

// timeFormat is how times appear in messages: RFC 3339 in UTC.
const timeFormat = "2006-01-02T15:04:05Z07:00"
