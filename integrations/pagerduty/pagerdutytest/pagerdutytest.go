// Package pagerdutytest is a fake PagerDuty on loopback for tests: the
// Events API v2 (/v2/enqueue: trigger, acknowledge, resolve by dedup_key,
// answered 202 as PagerDuty does, or 400 for an invalid event) and the
// few REST API calls Responder makes (incidents by incident_key, responder
// requests, notes; "Token token=" auth and a From header), with failures
// to inject: 429 with Retry-After, 5xx, and events PagerDuty has accepted
// but not yet turned into an incident.
package pagerdutytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Incident is what the fake holds for one dedup_key: PagerDuty's alert and
// the incident it opened.
type Incident struct {
	ID        string // PagerDuty's incident ID, "Q" and a number
	DedupKey  string
	Status    string // triggered, acknowledged, resolved
	Summary   string
	Severity  string
	Source    string
	Links     []map[string]string
	Details   map[string]any
	Triggers  int      // trigger events folded into it
	Responder []string // responder request targets, "user_reference:PXXXX"
	Notes     []string
}

// Event is an accepted Events API v2 event.
type Event struct {
	RoutingKey string         `json:"routing_key"`
	Action     string         `json:"event_action"`
	DedupKey   string         `json:"dedup_key"`
	Payload    map[string]any `json:"payload"`
	Links      []map[string]string
	Raw        []byte
}

// Server is a fake PagerDuty. Create it with New.
type Server struct {
	srv        *httptest.Server
	routingKey string
	token      string

	mu        sync.Mutex
	events    []Event
	incidents map[string]*Incident // by dedup key
	fails     []failure
	lag       int // lookups by incident_key that find nothing yet
	next      int
}

type failure struct {
	status     int
	retryAfter time.Duration
}

// New starts a fake PagerDuty on 127.0.0.1 for routingKey (Events API)
// and token (REST API). Close it when done.
func New(routingKey, token string) *Server {
	s := &Server{routingKey: routingKey, token: token, incidents: map[string]*Incident{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the base URL of both APIs.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// FailNext makes the next request answer status (with Retry-After when
// retryAfter > 0).
func (s *Server) FailNext(status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, failure{status: status, retryAfter: retryAfter})
}

// Lag makes the next n lookups by incident_key find nothing, as when
// PagerDuty has accepted a trigger and not yet opened its incident.
func (s *Server) Lag(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = n
}

// Events are the accepted events, in order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Incident is the fake's incident for dedupKey.
func (s *Server) Incident(dedupKey string) (Incident, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc, ok := s.incidents[dedupKey]
	if !ok {
		return Incident{}, false
	}
	c := *inc
	c.Responder = append([]string(nil), inc.Responder...)
	c.Notes = append([]string(nil), inc.Notes...)
	return c, true
}

// IncidentByID is the fake's incident with PagerDuty ID id.
func (s *Server) IncidentByID(id string) (Incident, bool) {
	s.mu.Lock()
	key := ""
	for k, inc := range s.incidents {
		if inc.ID == id {
			key = k
		}
	}
	s.mu.Unlock()
	if key == "" {
		return Incident{}, false
	}
	return s.Incident(key)
}

// Open opens an incident as if it had been triggered in PagerDuty itself,
// and returns its ID.
func (s *Server) Open(dedupKey, summary string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.newIncident(dedupKey)
	inc.Summary, inc.Triggers = summary, 1
	return inc.ID
}

func (s *Server) newIncident(key string) *Incident {
	s.next++
	inc := &Incident{ID: fmt.Sprintf("Q%05d", s.next), DedupKey: key, Status: "triggered"}
	s.incidents[key] = inc
	return inc
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fails) > 0 {
		f := s.fails[0]
		s.fails = s.fails[1:]
		if f.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter/time.Second)))
		}
		answer(w, f.status, map[string]any{"status": "error", "message": http.StatusText(f.status)})
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v2/enqueue":
		s.enqueue(w, raw)
	case strings.HasPrefix(r.URL.Path, "/incidents"):
		if r.Header.Get("Authorization") != "Token token="+s.token {
			answer(w, http.StatusUnauthorized, restError(2006, "Invalid Credentials"))
			return
		}
		s.rest(w, r, raw)
	default:
		answer(w, http.StatusNotFound, restError(2100, "Not Found"))
	}
}

func (s *Server) enqueue(w http.ResponseWriter, raw []byte) {
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		invalid(w, "Event object is invalid", "malformed JSON")
		return
	}
	ev.Raw = raw
	var links struct {
		Links []map[string]string `json:"links"`
	}
	_ = json.Unmarshal(raw, &links)
	ev.Links = links.Links
	switch {
	case ev.RoutingKey != s.routingKey:
		invalid(w, "Event object is invalid", "'routing_key' is invalid")
		return
	case ev.Action != "trigger" && ev.Action != "acknowledge" && ev.Action != "resolve":
		invalid(w, "Event object is invalid", "'event_action' is invalid")
		return
	case ev.Action != "trigger" && ev.DedupKey == "":
		invalid(w, "Event object is invalid", "'dedup_key' is missing")
		return
	case len(ev.DedupKey) > 255:
		invalid(w, "Event object is invalid", "'dedup_key' is too long")
		return
	}
	if ev.Action == "trigger" {
		sev, _ := ev.Payload["severity"].(string)
		summary, _ := ev.Payload["summary"].(string)
		source, _ := ev.Payload["source"].(string)
		switch {
		case summary == "" || source == "":
			invalid(w, "Event object is invalid", "'payload.summary' and 'payload.source' are required")
			return
		case sev != "critical" && sev != "error" && sev != "warning" && sev != "info":
			invalid(w, "Event object is invalid", "'payload.severity' is invalid")
			return
		}
		inc, ok := s.incidents[ev.DedupKey]
		if !ok || inc.Status == "resolved" {
			inc = s.newIncident(ev.DedupKey)
			inc.Summary, inc.Severity, inc.Source, inc.Links = summary, sev, source, ev.Links
			inc.Details, _ = ev.Payload["custom_details"].(map[string]any)
		}
		inc.Triggers++
	} else if inc, ok := s.incidents[ev.DedupKey]; ok && inc.Status != "resolved" {
		inc.Status = map[string]string{"acknowledge": "acknowledged", "resolve": "resolved"}[ev.Action]
	}
	s.events = append(s.events, ev)
	answer(w, http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

func (s *Server) rest(w http.ResponseWriter, r *http.Request, raw []byte) {
	if r.Method == http.MethodGet && r.URL.Path == "/incidents" {
		key := r.URL.Query().Get("incident_key")
		list := []map[string]any{}
		if inc, ok := s.incidents[key]; ok && key != "" {
			if s.lag > 0 {
				s.lag--
			} else {
				list = append(list, map[string]any{"id": inc.ID, "type": "incident", "incident_key": inc.DedupKey, "status": inc.Status})
			}
		}
		answer(w, http.StatusOK, map[string]any{"incidents": list, "limit": 1, "offset": 0, "more": false})
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/incidents/"), "/")
	if r.Method != http.MethodPost || len(parts) != 2 {
		answer(w, http.StatusNotFound, restError(2100, "Not Found"))
		return
	}
	if !strings.Contains(r.Header.Get("From"), "@") {
		answer(w, http.StatusBadRequest, restError(2001, "Invalid Input Provided: the From header is required"))
		return
	}
	var inc *Incident
	for _, i := range s.incidents {
		if i.ID == parts[0] {
			inc = i
		}
	}
	if inc == nil {
		answer(w, http.StatusNotFound, restError(2100, "Not Found"))
		return
	}
	switch parts[1] {
	case "responder_requests":
		var req struct {
			RequesterID string `json:"requester_id"`
			Message     string `json:"message"`
			Targets     []struct {
				Target struct {
					ID   string `json:"id"`
					Type string `json:"type"`
				} `json:"responder_request_target"`
			} `json:"responder_request_targets"`
		}
		if err := json.Unmarshal(raw, &req); err != nil || req.RequesterID == "" || len(req.Targets) == 0 {
			answer(w, http.StatusBadRequest, restError(2001, "Invalid Input Provided"))
			return
		}
		for _, t := range req.Targets {
			if t.Target.Type != "user_reference" && t.Target.Type != "escalation_policy_reference" {
				answer(w, http.StatusBadRequest, restError(2001, "Invalid Input Provided: responder_request_target type"))
				return
			}
			inc.Responder = append(inc.Responder, t.Target.Type+":"+t.Target.ID)
		}
		answer(w, http.StatusOK, map[string]any{"responder_request": map[string]any{"incident": map[string]any{"id": inc.ID}, "message": req.Message}})
	case "notes":
		var req struct {
			Note struct {
				Content string `json:"content"`
			} `json:"note"`
		}
		if err := json.Unmarshal(raw, &req); err != nil || req.Note.Content == "" {
			answer(w, http.StatusBadRequest, restError(2001, "Invalid Input Provided"))
			return
		}
		inc.Notes = append(inc.Notes, req.Note.Content)
		answer(w, http.StatusCreated, map[string]any{"note": map[string]any{"id": "N1", "content": req.Note.Content}})
	default:
		answer(w, http.StatusNotFound, restError(2100, "Not Found"))
	}
}

func invalid(w http.ResponseWriter, message, detail string) {
	answer(w, http.StatusBadRequest, map[string]any{"status": "invalid event", "message": message, "errors": []string{detail}})
}

func restError(code int, message string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": message}}
}

func answer(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
