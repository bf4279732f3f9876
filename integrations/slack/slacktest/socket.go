package slacktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Socket Mode: apps.connections.open, called with the app-level token,
// answers a websocket URL on this server; the connection gets "hello",
// then the envelopes a test sends, and the client acknowledges each by
// its envelope_id. Like Slack, the server pings the client.

// MethodConnectionsOpen opens a Socket Mode connection.
const MethodConnectionsOpen = "apps.connections.open"

const socketPath = "/socket-mode"

// socketPing is how often the fake pings a connection: more often than
// slack-go's 30 s limit, after which it would reconnect.
const socketPing = 5 * time.Second

type socketState struct {
	appToken string
	conns    []*websocket.Conn
	opened   int              // connections made
	acks     map[string][]Ack // by envelope ID, in order
	sent     int
	ackCond  *sync.Cond
}

// Ack is a client's acknowledgement of an envelope, with its payload.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage
	At         time.Time
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// EnableSocketMode makes apps.connections.open accept appToken (xapp-).
func (s *Server) EnableSocketMode(appToken string) {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	s.sock.appToken = appToken
	if s.sock.acks == nil {
		s.sock.acks = map[string][]Ack{}
		s.sock.ackCond = sync.NewCond(&s.sockMu)
	}
}

func (s *Server) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	s.sockMu.Lock()
	want := s.sock.appToken
	s.sockMu.Unlock()
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case want == "":
		answer(w, map[string]any{"ok": false, "error": "not_allowed_token_type"})
	case !strings.EqualFold(scheme, "Bearer") || tok != want:
		answer(w, map[string]any{"ok": false, "error": "invalid_auth"})
	default:
		answer(w, map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + socketPath})
	}
}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.sockMu.Lock()
	s.sock.conns = append(s.sock.conns, conn)
	s.sock.opened++
	n := s.sock.opened
	s.sockMu.Unlock()
	s.notify()
	write := func(v any) error {
		s.sockMu.Lock()
		defer s.sockMu.Unlock()
		return conn.WriteJSON(v)
	}
	if err := write(map[string]any{"type": "hello", "num_connections": n, "connection_info": map[string]string{"app_id": "A0TEST"},
		"debug_info": map[string]any{"host": "slacktest", "approximate_connection_time": 3600}}); err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(socketPing)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.sockMu.Lock()
				err := conn.WriteControl(websocket.PingMessage, []byte("slacktest"), time.Now().Add(time.Second))
				s.sockMu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var a struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(msg, &a) != nil || a.EnvelopeID == "" {
			continue
		}
		s.sockMu.Lock()
		s.sock.acks[a.EnvelopeID] = append(s.sock.acks[a.EnvelopeID], Ack{EnvelopeID: a.EnvelopeID, Payload: a.Payload, At: time.Now()})
		s.sock.ackCond.Broadcast()
		s.sockMu.Unlock()
	}
}

// SocketConnections counts the Socket Mode connections made so far.
func (s *Server) SocketConnections() int {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	return s.sock.opened
}

// Envelope sends an envelope of type kind ("slash_commands",
// "interactive") with payload on the newest connection, as delivery
// attempt retry (0 for the first), under envelopeID ("" for a new one). It
// returns the envelope ID.
func (s *Server) Envelope(kind string, payload any, envelopeID string, retry int) (string, error) {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	if len(s.sock.conns) == 0 {
		return "", errors.New("slacktest: no Socket Mode connection")
	}
	if envelopeID == "" {
		s.sock.sent++
		envelopeID = fmt.Sprintf("env-%04d", s.sock.sent)
	}
	env := map[string]any{"envelope_id": envelopeID, "type": kind, "payload": payload, "accepts_response_payload": kind == "slash_commands",
		"retry_attempt": retry}
	if retry > 0 {
		env["retry_reason"] = "timeout"
	}
	conn := s.sock.conns[len(s.sock.conns)-1]
	if err := conn.WriteJSON(env); err != nil {
		return "", fmt.Errorf("slacktest: send envelope: %w", err)
	}
	return envelopeID, nil
}

// WaitAck waits up to limit for the n-th acknowledgement of an envelope
// (1 for the first delivery, 2 once it was sent again).
func (s *Server) WaitAck(envelopeID string, n int, limit time.Duration) (*Ack, error) {
	deadline := time.Now().Add(limit)
	timer := time.AfterFunc(limit, func() {
		s.sockMu.Lock()
		s.sock.ackCond.Broadcast()
		s.sockMu.Unlock()
	})
	defer timer.Stop()
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	for {
		if acks := s.sock.acks[envelopeID]; len(acks) >= n {
			c := acks[n-1]
			return &c, nil
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("slacktest: envelope %s not acknowledged %d times within %s", envelopeID, n, limit)
		}
		s.sock.ackCond.Wait()
	}
}

// DropSockets closes every Socket Mode connection, as Slack does when it
// refreshes them: the client should connect again by itself.
func (s *Server) DropSockets() { s.closeSockets() }

func (s *Server) closeSockets() {
	s.sockMu.Lock()
	defer s.sockMu.Unlock()
	for _, c := range s.sock.conns {
		_ = c.Close()
	}
	s.sock.conns = nil
}
