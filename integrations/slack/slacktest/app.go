package slacktest

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// The Web API methods Slack as a front door calls.
const (
	MethodUsersInfo  = "users.info"
	MethodMembers    = "conversations.members"
	MethodGroupUsers = "usergroups.users.list"
	MethodEphemeral  = "chat.postEphemeral"
	MethodViewsOpen  = "views.open"
)

var appMethods = map[string]bool{MethodUsersInfo: true, MethodMembers: true, MethodGroupUsers: true, MethodEphemeral: true, MethodViewsOpen: true}

type appState struct {
	users      map[string]string   // user ID -> display name
	members    map[string][]string // channel ID -> user IDs
	groups     map[string][]string // user group ID -> user IDs
	ephemerals []Ephemeral
	views      []View
	userReads  int
}

// Ephemeral is a chat.postEphemeral call: a message only User sees.
type Ephemeral struct {
	Channel, User, ThreadTS, Text string
}

// View is a views.open call: the modal opened for TriggerID.
type View struct {
	TriggerID string
	View      json.RawMessage
}

// AddUser makes users.info know a user by ID, with a display name.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app.users == nil {
		s.app.users = map[string]string{}
	}
	s.app.users[id] = name
}

// SetMembers sets who is in a channel (conversations.members), by ID.
func (s *Server) SetMembers(channelID string, userIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app.members == nil {
		s.app.members = map[string][]string{}
	}
	s.app.members[channelID] = userIDs
}

// SetGroup sets who is in a user group (usergroups.users.list).
func (s *Server) SetGroup(groupID string, userIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.app.groups == nil {
		s.app.groups = map[string][]string{}
	}
	s.app.groups[groupID] = userIDs
}

// Ephemerals are the ephemeral messages posted, in order.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ephemeral(nil), s.app.ephemerals...)
}

// Views are the modals opened, in order.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]View(nil), s.app.views...)
}

// UserReads counts users.info calls.
func (s *Server) UserReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.app.userReads
}

// appCall answers an interactivity method, s.mu held. Like Slack it wants
// the token (a form field or a bearer header) and answers errors with ok
// false and a code.
func (s *Server) appCall(w http.ResponseWriter, r *http.Request, method string) {
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, _ := strings.Cut(h, " "); strings.EqualFold(scheme, "Bearer") {
			token = strings.TrimSpace(tok)
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		answer(w, map[string]any{"ok": false, "error": "request_timeout"})
		return
	}
	form := url.Values{}
	var jsonBody map[string]json.RawMessage
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype == "application/json" {
		if err := json.Unmarshal(body, &jsonBody); err != nil {
			answer(w, map[string]any{"ok": false, "error": "invalid_json"})
			return
		}
	} else if form, err = url.ParseQuery(string(body)); err != nil {
		answer(w, map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	for k, v := range r.URL.Query() {
		if form.Get(k) == "" {
			form[k] = v
		}
	}
	if token == "" {
		token = form.Get("token")
	}
	if token != s.token {
		answer(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	switch method {
	case MethodUsersInfo:
		s.app.userReads++
		id := form.Get("user")
		name, ok := s.app.users[id]
		if !ok {
			answer(w, map[string]any{"ok": false, "error": "user_not_found"})
			return
		}
		answer(w, map[string]any{"ok": true, "user": map[string]any{"id": id, "name": strings.ToLower(strings.ReplaceAll(name, " ", ".")),
			"real_name": name, "profile": map[string]any{"display_name": name, "real_name": name}}})
	case MethodMembers:
		ids, ok := s.app.members[form.Get("channel")]
		if !ok {
			answer(w, map[string]any{"ok": false, "error": "channel_not_found"})
			return
		}
		answer(w, map[string]any{"ok": true, "members": ids, "response_metadata": map[string]any{"next_cursor": ""}})
	case MethodGroupUsers:
		ids, ok := s.app.groups[form.Get("usergroup")]
		if !ok {
			answer(w, map[string]any{"ok": false, "error": "no_such_subteam"})
			return
		}
		answer(w, map[string]any{"ok": true, "users": ids})
	case MethodEphemeral:
		e := Ephemeral{Channel: form.Get("channel"), User: form.Get("user"), ThreadTS: form.Get("thread_ts"), Text: form.Get("text")}
		if e.Channel == "" || e.User == "" {
			answer(w, map[string]any{"ok": false, "error": "invalid_arguments"})
			return
		}
		s.app.ephemerals = append(s.app.ephemerals, e)
		answer(w, map[string]any{"ok": true, "message_ts": "0"})
	case MethodViewsOpen:
		var trigger string
		_ = json.Unmarshal(jsonBody["trigger_id"], &trigger)
		if trigger == "" {
			answer(w, map[string]any{"ok": false, "error": "invalid_trigger_id"})
			return
		}
		s.app.views = append(s.app.views, View{TriggerID: trigger, View: jsonBody["view"]})
		answer(w, map[string]any{"ok": true, "view": map[string]any{"id": "V0001"}})
	}
}
