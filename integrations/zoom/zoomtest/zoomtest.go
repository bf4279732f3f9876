// Package zoomtest is a fake Zoom for tests: the server-to-server OAuth token
// endpoint and the create-meeting endpoint, on an httptest server bound to
// 127.0.0.1. It answers the way Zoom does (status codes, error bodies with a
// code and a message, Retry-After on demand), records what it was sent, and
// fails on demand.
package zoomtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// TokenRequest is one call to the token endpoint.
type TokenRequest struct {
	ClientID  string // from the Basic credentials
	GrantType string
	AccountID string
	Status    int    // what the fake answered
	Token     string // the access token issued, when Status is 200
}

// Meeting is one call to the create-meeting endpoint.
type Meeting struct {
	User   string // the {userId} path segment
	Token  string // the bearer token it carried
	Status int    // what the fake answered
	// Raw is the body as sent; Body is the same decoded to any; Request is
	// the same decoded into Zoom's fields.
	Raw     []byte
	Body    map[string]any
	Request MeetingRequest
	ID      int64  // the meeting ID, when Status is 201
	JoinURL string // the join link, when Status is 201
}

// MeetingRequest is the part of Zoom's create-meeting body the fake reads.
type MeetingRequest struct {
	Topic     string   `json:"topic"`
	Type      int      `json:"type"`
	StartTime string   `json:"start_time"`
	Duration  int      `json:"duration"`
	Timezone  string   `json:"timezone"`
	Agenda    string   `json:"agenda"`
	Settings  Settings `json:"settings"`
}

// Settings are the meeting settings the fake reads; nil means not sent.
type Settings struct {
	JoinBeforeHost *bool `json:"join_before_host"`
	JbhTime        *int  `json:"jbh_time"`
	WaitingRoom    *bool `json:"waiting_room"`
}

// failure is an injected answer for the next requests to one endpoint.
type failure struct {
	status     int
	retryAfter time.Duration // 429 only; 0 sends no Retry-After
	stall      chan struct{} // non-nil: hang until the client gives up; signalled on arrival
}

// Server is a fake Zoom. The zero value is not usable: call New.
type Server struct {
	srv       *httptest.Server
	accountID string
	clientID  string
	secret    string
	closing   chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	tokens      map[string]bool // issued and not revoked
	tokenReqs   []TokenRequest
	meetings    []Meeting
	nextID      int64
	tokenFails  []failure
	meetingFail []failure
	down        *failure // set by Down: every request fails until Up
}

// New starts a fake Zoom on 127.0.0.1 that accepts exactly these account
// and client credentials. Close it when done.
func New(accountID, clientID, secret string) *Server {
	s := &Server{
		accountID: accountID,
		clientID:  clientID,
		secret:    secret,
		closing:   make(chan struct{}),
		tokens:    map[string]bool{},
		nextID:    85746065400,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/token", s.token)
	mux.HandleFunc("/v2/users/{user}/meetings", s.meeting)
	s.srv = httptest.NewServer(mux) // httptest listens on 127.0.0.1
	return s
}

// Close stops the server; requests stalled by StallNext are let go.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.srv.Close()
}

// TokenURL is the token endpoint, for the notifier's TokenURL.
func (s *Server) TokenURL() string { return s.srv.URL + "/oauth/token" }

// APIURL is the API base, for the notifier's APIURL.
func (s *Server) APIURL() string { return s.srv.URL + "/v2" }

// FailNext makes the next n create-meeting requests answer status.
func (s *Server) FailNext(n, status int) { s.inject(&s.meetingFail, n, failure{status: status}) }

// RateLimitNext makes the next n create-meeting requests answer 429, with
// Retry-After in whole seconds when retryAfter > 0.
func (s *Server) RateLimitNext(n int, retryAfter time.Duration) {
	s.inject(&s.meetingFail, n, failure{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// StallNext makes the next n create-meeting requests hang until the client
// gives up (its context ends or its timeout fires). The returned channel
// receives once per stalled request, when it arrives.
func (s *Server) StallNext(n int) <-chan struct{} {
	ch := make(chan struct{}, n)
	s.inject(&s.meetingFail, n, failure{stall: ch})
	return ch
}

// Down starts an outage of the whole API: every request, to the token and
// the create-meeting endpoints alike, answers status until Up. A 429 carries
// Retry-After in whole seconds when retryAfter > 0, as a lasting rate limit
// does. The requests are recorded with the status answered. Failures queued
// by FailNext and the like wait until the outage ends.
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

// failure returns the answer an outage or an injected failure of q imposes
// on the request; the caller holds s.mu.
func (s *Server) failure(q *[]failure) (failure, bool) {
	if s.down != nil {
		return *s.down, true
	}
	return next(q)
}

// FailTokenNext makes the next n token requests answer status.
func (s *Server) FailTokenNext(n, status int) { s.inject(&s.tokenFails, n, failure{status: status}) }

// RateLimitTokenNext makes the next n token requests answer 429, with
// Retry-After when retryAfter > 0.
func (s *Server) RateLimitTokenNext(n int, retryAfter time.Duration) {
	s.inject(&s.tokenFails, n, failure{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// StallTokenNext is StallNext for the token endpoint.
func (s *Server) StallTokenNext(n int) <-chan struct{} {
	ch := make(chan struct{}, n)
	s.inject(&s.tokenFails, n, failure{stall: ch})
	return ch
}

// RevokeTokens invalidates every token issued so far, as Zoom does when an
// app is deactivated or its credentials change: the API answers 401.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// TokenRequests returns the token requests received, in order.
func (s *Server) TokenRequests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenRequest(nil), s.tokenReqs...)
}

// Meetings returns the create-meeting requests received, in order,
// including refused ones (see Status).
func (s *Server) Meetings() []Meeting {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Meeting(nil), s.meetings...)
}

func (s *Server) inject(q *[]failure, n int, f failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		*q = append(*q, f)
	}
}

// next pops the first injected failure of q; the caller holds s.mu.
func next(q *[]failure) (failure, bool) {
	if len(*q) == 0 {
		return failure{}, false
	}
	f := (*q)[0]
	*q = (*q)[1:]
	return f, true
}

// fail answers an injected failure: a status, or a hang until the client
// gives up.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, f failure, oauth bool) {
	if f.stall != nil {
		f.stall <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	}
	if f.status == http.StatusTooManyRequests && f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter/time.Second)))
	}
	if oauth {
		writeJSON(w, f.status, map[string]any{"reason": http.StatusText(f.status), "error": "server_error"})
		return
	}
	writeZoomError(w, f.status, f.status, zoomMessage(f.status))
}

func zoomMessage(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "You have reached the maximum per-second rate limit for this API. Try again later."
	case http.StatusUnauthorized:
		return "Invalid access token."
	}
	return http.StatusText(status)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"reason": "Method not allowed", "error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	_ = r.ParseForm()
	rec := TokenRequest{ClientID: id, GrantType: r.PostForm.Get("grant_type"), AccountID: r.PostForm.Get("account_id")}

	s.mu.Lock()
	f, injected := s.failure(&s.tokenFails)
	var status int
	var body map[string]any
	switch {
	case injected:
		status = f.status
	case !ok || id != s.clientID || secret != s.secret:
		status, body = http.StatusUnauthorized, map[string]any{"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
	case rec.GrantType != "account_credentials":
		status, body = http.StatusBadRequest, map[string]any{"reason": "Unsupported grant type", "error": "unsupported_grant_type"}
	case rec.AccountID != s.accountID:
		status, body = http.StatusBadRequest, map[string]any{"reason": "Invalid request : account_id", "error": "invalid_request"}
	default:
		status = http.StatusOK
		rec.Token = randomToken()
		s.tokens[rec.Token] = true
		body = map[string]any{
			"access_token": rec.Token,
			"token_type":   "bearer",
			"expires_in":   3600,
			"scope":        "meeting:write:meeting",
			"api_url":      "https://api.zoom.us",
		}
	}
	if f.stall != nil {
		status = 0
	}
	rec.Status = status
	s.tokenReqs = append(s.tokenReqs, rec)
	s.mu.Unlock()

	if injected {
		s.fail(w, r, f, true)
		return
	}
	writeJSON(w, status, body)
}

func (s *Server) meeting(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeZoomError(w, http.StatusMethodNotAllowed, 405, "Method not allowed.")
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	m := Meeting{User: r.PathValue("user"), Raw: raw}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		m.Token = t
	}
	_ = json.Unmarshal(raw, &m.Body)

	s.mu.Lock()
	f, injected := s.failure(&s.meetingFail)
	var code int
	var msg string
	switch {
	case injected:
		m.Status = f.status
	case !s.tokens[m.Token]:
		m.Status, code, msg = http.StatusUnauthorized, 124, "Invalid access token."
	case m.User != "me":
		m.Status, code, msg = http.StatusNotFound, 1001, "User does not exist: "+m.User+"."
	default:
		if err := json.Unmarshal(raw, &m.Request); err != nil {
			m.Status, code, msg = http.StatusBadRequest, 300, "Request Body should be a valid JSON object."
		} else if problem := validate(m.Request); problem != "" {
			m.Status, code, msg = http.StatusBadRequest, 300, "Validation Failed. "+problem
		} else {
			m.Status = http.StatusCreated
			m.ID = s.nextID
			s.nextID++
			m.JoinURL = fmt.Sprintf("https://zoom.example/j/%d", m.ID)
		}
	}
	s.meetings = append(s.meetings, m)
	s.mu.Unlock()

	switch {
	case injected:
		s.fail(w, r, f, false)
	case m.Status != http.StatusCreated:
		writeZoomError(w, m.Status, code, msg)
	default:
		writeJSON(w, http.StatusCreated, map[string]any{
			"uuid":       base64.StdEncoding.EncodeToString([]byte(strconv.FormatInt(m.ID, 10))),
			"id":         m.ID,
			"host_id":    "z8yCxjabcdEFGhIJklmnoP",
			"topic":      m.Request.Topic,
			"type":       m.Request.Type,
			"start_time": m.Request.StartTime,
			"duration":   m.Request.Duration,
			"timezone":   m.Request.Timezone,
			"agenda":     m.Request.Agenda,
			"created_at": time.Now().UTC().Format(time.RFC3339),
			"start_url":  fmt.Sprintf("https://zoom.example/s/%d?zak=%s", m.ID, randomToken()),
			"join_url":   m.JoinURL,
			"settings":   m.Body["settings"],
		})
	}
}

// validate checks what Zoom checks of the fields the notifier sends.
func validate(m MeetingRequest) string {
	switch {
	case m.Topic == "":
		return "topic: must not be empty"
	case utf8.RuneCountInString(m.Topic) > 200:
		return "topic: must be at most 200 characters"
	case utf8.RuneCountInString(m.Agenda) > 2000:
		return "agenda: must be at most 2000 characters"
	case m.Type != 1 && m.Type != 2 && m.Type != 3 && m.Type != 8:
		return "type: must be 1, 2, 3 or 8"
	}
	if m.StartTime != "" {
		if _, err := time.Parse("2006-01-02T15:04:05Z", m.StartTime); err != nil {
			return "start_time: must be yyyy-MM-ddTHH:mm:ssZ"
		}
	}
	return ""
}

func writeZoomError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "eyJ" + hex.EncodeToString(b)
}
