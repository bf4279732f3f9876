// Package opsgenietest is a fake OpsGenie Alert API for tests, on an
// httptest server bound to 127.0.0.1, that the real opsgenie-go-sdk-v2
// accepts: point the SDK at it with client.ApiUrl(srv.Host()) (a host
// without "api" in it is called over plain http).
//
// It answers like OpsGenie: 202 {"result":"Request will be processed",...}
// with X-Request-Id, X-Response-Time and X-RateLimit-State, 401 without the
// right "GenieKey" header, 422 for a body OpsGenie would refuse, 404 for an
// unknown route (an alert identifier must be one path segment, so an alias
// with a raw "/" in the path does not reach an alert). It tolerates what the
// SDK adds to bodies (untagged IdentifierType and IdentifierValue fields,
// "username":"" in every responder). It records what it accepted, keeps the
// alerts' state by alias, and fails on demand.
package opsgenietest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Responder is a responder as OpsGenie reads it.
type Responder struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Name     string `json:"name"`
	Username string `json:"username"`
}

// CreateRequest is the body of POST /v2/alerts as OpsGenie reads it.
type CreateRequest struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description"`
	Responders  []Responder       `json:"responders"`
	VisibleTo   []Responder       `json:"visibleTo"`
	Actions     []string          `json:"actions"`
	Tags        []string          `json:"tags"`
	Details     map[string]string `json:"details"`
	Entity      string            `json:"entity"`
	Source      string            `json:"source"`
	Priority    string            `json:"priority"`
	User        string            `json:"user"`
	Note        string            `json:"note"`
}

// Create is an accepted create-alert request.
type Create struct {
	Request   CreateRequest
	Body      map[string]any // the body decoded to any
	Raw       []byte         // the body as sent
	RequestID string
}

// AddResponder is an accepted add-responder request.
type AddResponder struct {
	Identifier     string // the alert identifier from the path, unescaped
	IdentifierType string // the identifierType query parameter ("" when absent)
	Responder      Responder
	User           string
	Source         string
	Note           string
	Body           map[string]any
	Raw            []byte
	RequestID      string
}

// Close is an accepted close-alert request.
type Close struct {
	Identifier     string
	IdentifierType string
	User           string
	Source         string
	Note           string
	Body           map[string]any
	Raw            []byte
	RequestID      string
}

// Note is an accepted add-note request.
type Note struct {
	Identifier     string
	IdentifierType string
	User           string
	Source         string
	Note           string
	RequestID      string
}

// Request is any request the fake received, answered or not.
type Request struct {
	Method      string
	Path        string // decoded
	EscapedPath string // as sent
	Query       url.Values
	AuthOK      bool // it carried "Authorization: GenieKey <the key>"
	Status      int  // what the fake answered; 0 for a stalled request
	Body        []byte
}

// Alert is the state the fake keeps of an alert created with an alias.
type Alert struct {
	Alias        string
	Message      string
	Priority     string
	Responders   []Responder
	Status       string // open, closed
	Acknowledged bool
	Count        int // creates with this alias while open (OpsGenie deduplicates)
}

type failure struct {
	status     int
	retryAfter time.Duration
	stall      chan struct{}
}

// Server is a fake OpsGenie. Create it with New.
type Server struct {
	srv       *httptest.Server
	apiKey    string
	closing   chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	requests []Request
	creates  []Create
	adds     []AddResponder
	closes   []Close
	acks     []Close
	notes    []Note
	alerts   map[string]*Alert
	fails    []failure
	down     *failure // set by Down: every request fails until Up

	// jsm: the server is Jira Service Management Operations (NewJSM).
	jsm *JSMAccount
}

// JSMAccount is the REST API access a fake JSM accepts (NewJSM).
type JSMAccount struct {
	CloudID, Email, APIToken string
}

// JSM's paths: OpsGenie's alert API for integrations under the first, the
// REST API (with Basic auth) under the second, then the cloud id.
const (
	JSMIntegrationPrefix = "/jsm/ops/integration"
	JSMRESTPrefix        = "/jsm/ops/api/"
)

// New starts a fake OpsGenie on 127.0.0.1 that accepts apiKey. Close it
// when done.
func New(apiKey string) *Server {
	s := &Server{apiKey: apiKey, closing: make(chan struct{}), alerts: map[string]*Alert{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// NewJSM starts a fake Jira Service Management Operations on 127.0.0.1:
// OpsGenie's alert API under JSMIntegrationPrefix with apiKey (GenieKey),
// and the REST API's add-responder (by alias) under JSMRESTPrefix with
// account's Basic credentials. What it accepts is read as on New's.
func NewJSM(apiKey string, account JSMAccount) *Server {
	s := &Server{apiKey: apiKey, closing: make(chan struct{}), alerts: map[string]*Alert{}, jsm: &account}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the server's base URL (for JSM's REST API URL).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server; requests stalled by StallNext are let go.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
}

// Host is host:port, for the SDK's ApiUrl (the notifier's APIURL).
func (s *Server) Host() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// FailNext makes the next n requests answer status, with an OpsGenie error
// body.
func (s *Server) FailNext(n, status int) { s.inject(n, failure{status: status}) }

// RateLimitNext makes the next n requests answer 429 as OpsGenie throttles
// (X-RateLimit-State: THROTTLED), with Retry-After in whole seconds when
// retryAfter > 0.
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.inject(n, failure{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// Down starts an outage: every request answers status, with OpsGenie's
// error body and headers, until Up. A 429 is a lasting throttle
// (X-RateLimit-State: THROTTLED) with Retry-After in whole seconds when
// retryAfter > 0. The requests are recorded with the status answered.
// Failures queued by FailNext and the like wait until the outage ends.
func (s *Server) Down(status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = &failure{status: status, retryAfter: retryAfter}
}

// Up ends an outage started by Down.
func (s *Server) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = nil
}

// StallNext makes the next n requests hang until the client gives up. The
// returned channel receives once per stalled request, when it arrives.
func (s *Server) StallNext(n int) <-chan struct{} {
	ch := make(chan struct{}, n)
	s.inject(n, failure{stall: ch})
	return ch
}

// Creates returns the accepted create-alert requests, in order.
func (s *Server) Creates() []Create {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Create(nil), s.creates...)
}

// AddResponders returns the accepted add-responder requests, in order.
// Notes are the accepted add-note requests, in order.
func (s *Server) Notes() []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Note(nil), s.notes...)
}

func (s *Server) AddResponders() []AddResponder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AddResponder(nil), s.adds...)
}

// Closes returns the accepted close-alert requests, in order.
func (s *Server) Closes() []Close {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Close(nil), s.closes...)
}

// Acknowledges are the accepted acknowledge requests, in order.
func (s *Server) Acknowledges() []Close {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Close(nil), s.acks...)
}

// Requests returns every request received, in order, including refused
// ones.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Alert returns the state of the alert with this alias.
func (s *Server) Alert(alias string) (Alert, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.alerts[alias]
	if !ok {
		return Alert{}, false
	}
	c := *a
	c.Responders = append([]Responder(nil), a.Responders...)
	return c, true
}

func (s *Server) inject(n int, f failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fails = append(s.fails, f)
	}
}

// answer is what the handler decided, written after the lock is released.
type answer struct {
	status     int
	body       map[string]any
	retryAfter time.Duration
	stall      chan struct{}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	reqID := uuid()
	rec := Request{
		Method:      r.Method,
		Path:        r.URL.Path,
		EscapedPath: r.URL.EscapedPath(),
		Query:       r.URL.Query(),
		AuthOK:      r.Header.Get("Authorization") == "GenieKey "+s.apiKey,
		Body:        raw,
	}
	rest := false // JSM's REST API, not the integration API
	if s.jsm != nil {
		// JSM: the integration API under its prefix, the REST API (Basic
		// auth with the account's API token) under its own; nothing else.
		esc := r.URL.EscapedPath()
		switch {
		case strings.HasPrefix(esc, JSMIntegrationPrefix+"/"):
			r.URL.RawPath = strings.TrimPrefix(esc, JSMIntegrationPrefix)
			r.URL.Path = strings.TrimPrefix(r.URL.Path, JSMIntegrationPrefix)
		case strings.HasPrefix(esc, JSMRESTPrefix+url.PathEscape(s.jsm.CloudID)+"/v1/"):
			rest = true
			user, pass, ok := r.BasicAuth()
			rec.AuthOK = ok && user == s.jsm.Email && pass == s.jsm.APIToken
			r.URL.RawPath = "/v2/" + strings.TrimPrefix(esc, JSMRESTPrefix+url.PathEscape(s.jsm.CloudID)+"/v1/")
			r.URL.Path, _ = url.PathUnescape(r.URL.RawPath)
		default:
			rec.AuthOK = false
			r.URL.RawPath, r.URL.Path = "/not-found", "/not-found"
		}
	}

	s.mu.Lock()
	var a answer
	if f := s.down; f != nil {
		a = answer{status: f.status, retryAfter: f.retryAfter, body: errorBody(f.status)}
	} else if len(s.fails) > 0 {
		f := s.fails[0]
		s.fails = s.fails[1:]
		a = answer{status: f.status, retryAfter: f.retryAfter, stall: f.stall, body: errorBody(f.status)}
	} else if !rec.AuthOK {
		a = answer{status: http.StatusUnauthorized, body: map[string]any{"message": "Could not authenticate"}}
	} else if s.jsm != nil && rest != strings.HasSuffix(r.URL.Path, "/responders") {
		// JSM's integration API has no add-responder; its REST API has
		// (here) nothing else.
		a = answer{status: http.StatusNotFound, body: map[string]any{"message": "Could not find the requested resource"}}
	} else {
		a = s.route(r, raw, reqID)
	}
	rec.Status = a.status
	if a.stall != nil {
		rec.Status = 0
	}
	s.requests = append(s.requests, rec)
	s.mu.Unlock()

	if a.stall != nil {
		a.stall <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Request-Id", reqID)
	h.Set("X-Response-Time", "0.01")
	h.Set("X-RateLimit-State", "OK")
	if a.status == http.StatusTooManyRequests {
		h.Set("X-RateLimit-State", "THROTTLED")
		h.Set("X-RateLimit-Reason", "INTEGRATION")
		h.Set("X-RateLimit-Period-In-Sec", "60")
		if a.retryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(int(a.retryAfter/time.Second)))
		}
	}
	if a.body == nil {
		a.body = map[string]any{}
	}
	a.body["took"] = 0.01
	a.body["requestId"] = reqID
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

func errorBody(status int) map[string]any {
	msg := http.StatusText(status)
	switch status {
	case http.StatusTooManyRequests:
		msg = "You are making too many requests! To avoid errors, we recommend you limit requests."
	case http.StatusUnprocessableEntity:
		return map[string]any{
			"message": "Request body is not processable. Please check the errors.",
			"errors":  map[string]any{"responders": "Responder [team:nosuchteam] does not exist"},
		}
	}
	return map[string]any{"message": msg}
}

var accepted = map[string]any{"result": "Request will be processed"}

// route handles an authorised request; the caller holds s.mu.
func (s *Server) route(r *http.Request, raw []byte, reqID string) answer {
	if r.Method != http.MethodPost {
		return answer{status: http.StatusNotFound, body: map[string]any{"message": "Could not find the requested resource"}}
	}
	esc := r.URL.EscapedPath()
	if esc == "/v2/alerts" {
		return s.create(raw, reqID)
	}
	rest, ok := strings.CutPrefix(esc, "/v2/alerts/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 2 || parts[0] == "" {
		return answer{status: http.StatusNotFound, body: map[string]any{"message": "Could not find the requested resource"}}
	}
	id, err := url.PathUnescape(parts[0])
	if err != nil {
		return answer{status: http.StatusBadRequest, body: map[string]any{"message": "Invalid identifier"}}
	}
	idType := r.URL.Query().Get("identifierType")
	switch idType {
	case "", "id", "alias", "tiny":
	default:
		return unprocessable("identifierType", "Invalid identifier type ["+idType+"]")
	}
	switch parts[1] {
	case "responders":
		return s.addResponder(id, idType, raw, reqID)
	case "close":
		return s.close(id, idType, raw, reqID)
	case "acknowledge":
		return s.acknowledge(id, idType, raw, reqID)
	case "notes":
		return s.addNote(id, idType, raw, reqID)
	}
	return answer{status: http.StatusNotFound, body: map[string]any{"message": "Could not find the requested resource"}}
}

func unprocessable(field, msg string) answer {
	return answer{status: http.StatusUnprocessableEntity, body: map[string]any{
		"message": "Request body is not processable. Please check the errors.",
		"errors":  map[string]any{field: msg},
	}}
}

func decode(raw []byte, v any) (map[string]any, *answer) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		a := unprocessable("body", "Request body is not a JSON object")
		return nil, &a
	}
	if err := json.Unmarshal(raw, v); err != nil {
		a := unprocessable("body", err.Error())
		return nil, &a
	}
	return m, nil
}

func tooLong(s string, limit int) bool { return utf8.RuneCountInString(s) > limit }

func checkResponder(field string, r Responder, types ...string) *answer {
	known := false
	for _, t := range types {
		known = known || r.Type == t
	}
	var a answer
	switch {
	case !known:
		a = unprocessable(field, "Invalid responder type ["+r.Type+"]")
	case r.Type == "user" && r.ID == "" && r.Username == "":
		a = unprocessable(field, "User id or username should be provided")
	case r.Type != "user" && r.ID == "" && r.Name == "":
		a = unprocessable(field, "Id or name should be provided for "+r.Type)
	default:
		return nil
	}
	return &a
}

func (s *Server) create(raw []byte, reqID string) answer {
	var req CreateRequest
	body, bad := decode(raw, &req)
	if bad != nil {
		return *bad
	}
	switch {
	case req.Message == "":
		return unprocessable("message", "Message can not be empty.")
	case tooLong(req.Message, 130):
		return unprocessable("message", "Message can not be longer than 130 characters.")
	case tooLong(req.Alias, 512):
		return unprocessable("alias", "Alias can not be longer than 512 characters.")
	case tooLong(req.Description, 15000):
		return unprocessable("description", "Description can not be longer than 15000 characters.")
	case tooLong(req.Entity, 512):
		return unprocessable("entity", "Entity can not be longer than 512 characters.")
	case tooLong(req.Source, 100):
		return unprocessable("source", "Source can not be longer than 100 characters.")
	case tooLong(req.User, 100):
		return unprocessable("user", "User can not be longer than 100 characters.")
	case len(req.Tags) > 20:
		return unprocessable("tags", "Tags can not be more than 20.")
	}
	switch req.Priority {
	case "", "P1", "P2", "P3", "P4", "P5":
	default:
		return unprocessable("priority", "Priority should be one of [P1, P2, P3, P4, P5]")
	}
	for _, t := range req.Tags {
		if tooLong(t, 50) {
			return unprocessable("tags", "Tag can not be longer than 50 characters.")
		}
	}
	for _, r := range req.Responders {
		if bad := checkResponder("responders", r, "user", "team", "escalation", "schedule"); bad != nil {
			return *bad
		}
	}
	s.creates = append(s.creates, Create{Request: req, Body: body, Raw: raw, RequestID: reqID})
	if req.Alias != "" {
		if a, ok := s.alerts[req.Alias]; ok && a.Status == "open" {
			a.Count++
		} else {
			s.alerts[req.Alias] = &Alert{Alias: req.Alias, Message: req.Message, Priority: req.Priority,
				Responders: append([]Responder(nil), req.Responders...), Status: "open", Count: 1}
		}
	}
	return answer{status: http.StatusAccepted, body: copyMap(accepted)}
}

func (s *Server) addResponder(id, idType string, raw []byte, reqID string) answer {
	var req struct {
		Responder Responder `json:"responder"`
		User      string    `json:"user"`
		Source    string    `json:"source"`
		Note      string    `json:"note"`
	}
	body, bad := decode(raw, &req)
	if bad != nil {
		return *bad
	}
	// OpsGenie adds only a user or a team to an existing alert.
	if bad := checkResponder("responder", req.Responder, "user", "team"); bad != nil {
		return *bad
	}
	s.adds = append(s.adds, AddResponder{Identifier: id, IdentifierType: idType, Responder: req.Responder,
		User: req.User, Source: req.Source, Note: req.Note, Body: body, Raw: raw, RequestID: reqID})
	if a, ok := s.alerts[id]; ok && idType == "alias" {
		a.Responders = append(a.Responders, req.Responder)
	}
	return answer{status: http.StatusAccepted, body: copyMap(accepted)}
}

func (s *Server) close(id, idType string, raw []byte, reqID string) answer {
	return s.alertAction(id, idType, raw, reqID, &s.closes, func(a *Alert) { a.Status = "closed" })
}

func (s *Server) acknowledge(id, idType string, raw []byte, reqID string) answer {
	return s.alertAction(id, idType, raw, reqID, &s.acks, func(a *Alert) { a.Acknowledged = true })
}

// alertAction answers a close or an acknowledge (the same body: user,
// source, note), keeps it in into and applies it to the alert by alias.
func (s *Server) alertAction(id, idType string, raw []byte, reqID string, into *[]Close, apply func(*Alert)) answer {
	var req struct {
		User   string `json:"user"`
		Source string `json:"source"`
		Note   string `json:"note"`
	}
	body, bad := decode(raw, &req)
	if bad != nil {
		return *bad
	}
	switch {
	case tooLong(req.User, 100):
		return unprocessable("user", "User can not be longer than 100 characters.")
	case tooLong(req.Note, 25000):
		return unprocessable("note", "Note can not be longer than 25000 characters.")
	}
	*into = append(*into, Close{Identifier: id, IdentifierType: idType, User: req.User,
		Source: req.Source, Note: req.Note, Body: body, Raw: raw, RequestID: reqID})
	if a, ok := s.alerts[id]; ok && idType == "alias" {
		apply(a)
	}
	return answer{status: http.StatusAccepted, body: copyMap(accepted)}
}

func copyMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// addNote adds a note to an alert; as OpsGenie does, the answer is 202
// whether or not the alert exists (the request is processed later).
func (s *Server) addNote(id, idType string, raw []byte, reqID string) answer {
	var req struct {
		User   string `json:"user"`
		Source string `json:"source"`
		Note   string `json:"note"`
	}
	if _, bad := decode(raw, &req); bad != nil {
		return *bad
	}
	switch {
	case req.Note == "":
		return unprocessable("note", "Note can not be empty.")
	case tooLong(req.Note, 25000):
		return unprocessable("note", "Note can not be longer than 25000 characters.")
	}
	s.notes = append(s.notes, Note{Identifier: id, IdentifierType: idType, User: req.User, Source: req.Source, Note: req.Note, RequestID: reqID})
	return answer{status: http.StatusAccepted, body: map[string]any{"result": "Request will be processed"}}
}
