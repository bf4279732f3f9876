// Package slacktest is an in-process fake of the part of Slack's Web API
// that Responder uses, for tests in any package: chat.postMessage and
// chat.update, and for finding a message whose post was in doubt,
// conversations.history, conversations.replies and conversations.list. It
// listens on 127.0.0.1 only.
//
// It is stateful and strict like Slack: channels exist only once added,
// every message gets a unique, increasing ts, replies must name a message of
// the same channel, chat.update and the conversations methods must name a
// channel by ID, blocks are checked against Slack's limits, and a wrong token
// is refused. Message metadata (event_type, event_payload) is kept and shown
// by the conversations methods only with include_all_metadata, as Slack
// does. Errors are answered as Slack does, HTTP 200 with
// {"ok":false,"error":"..."}; outages, rate limits, a missing history scope
// and slow answers can be injected.
//
//	srv := slacktest.New("xoxb-test")
//	defer srv.Close()
//	ops := srv.AddChannel("ops")
//	// point the code under test at srv.URL() with token "xoxb-test"
//	msgs := srv.Messages(ops)
package slacktest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Method names as they appear in Post.Method, and the read methods.
const (
	MethodPostMessage = "chat.postMessage"
	MethodUpdate      = "chat.update"
	MethodHistory     = "conversations.history"
	MethodReplies     = "conversations.replies"
	MethodList        = "conversations.list"
	MethodPermalink   = "chat.getPermalink"
)

// Metadata is a message's metadata (Slack's event_type and event_payload).
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// Message is a message as the fake holds it now.
type Message struct {
	TS string
	// ThreadTS is the root's ts for a reply, "" for a root.
	ThreadTS string
	Text     string
	// Blocks is the blocks JSON array as last posted or updated; nil when
	// the message has none.
	Blocks json.RawMessage
	// Edits counts the chat.update calls that changed the message.
	Edits int
	// Metadata is the metadata posted with the message; nil for none.
	Metadata *Metadata
	// Replies are a root's thread replies, oldest first.
	Replies []Message
}

// Post is one accepted chat.postMessage or chat.update call.
type Post struct {
	Method   string // MethodPostMessage or MethodUpdate
	Channel  string // the channel ID
	TS       string // the new message's ts, or the edited message's
	ThreadTS string // the root's ts for a reply
	Text     string
	Blocks   json.RawMessage // nil when the call sent none
	Metadata *Metadata       // nil when the call sent none
	At       time.Time       // when the fake received the call
}

// Server is the fake Slack. Its methods are safe for concurrent use.
type Server struct {
	srv   *httptest.Server
	token string

	mu        sync.Mutex
	channels  map[string]*channel // by ID
	names     map[string]string   // name without "#" -> ID
	lastTS    int64               // the last ts given, in microseconds
	failN     int
	failCode  int
	limitN    int
	limitSecs int
	minGap    time.Duration
	delay     time.Duration
	noHistory bool
	posts     []Post
	requests  int
	reads     int
	app       appState // what interactivity calls read and leave
	holds     map[string]chan struct{}

	changeMu sync.Mutex
	change   chan struct{} // closed on every change (see WaitFor)
	waiting  int           // calls held back now

	// Socket Mode, under its own lock: connections outlive a call.
	sockMu sync.Mutex
	sock   socketState
}

type channel struct {
	id, name string
	roots    []*message
	byTS     map[string]*message
	last     time.Time // the last accepted chat.postMessage
}

type message struct {
	ts, threadTS string
	text         string
	blocks       json.RawMessage
	metadata     *Metadata
	edits        int
	replies      []*message
}

// New starts a fake that accepts token, given as "Authorization: Bearer"
// or, in a form body, as the token field (slack-go does the latter).
func New(token string) *Server {
	s := &Server{
		token:    token,
		channels: map[string]*channel{},
		names:    map[string]string{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close shuts the server down, and its Socket Mode connections; later
// calls fail to connect.
func (s *Server) Close() {
	s.closeSockets()
	s.srv.Close()
}

// URL is the API base URL, ending with "/api/".
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// AddChannel creates the channel name ("ops" or "#ops") and returns its
// ID; adding an existing name returns the existing ID. Messages can be
// posted to the ID, "name" or "#name".
func (s *Server) AddChannel(name string) string {
	name = strings.TrimPrefix(name, "#")
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.names[name]; ok {
		return id
	}
	id := fmt.Sprintf("C%09d", len(s.channels)+1)
	s.channels[id] = &channel{id: id, name: name, byTS: map[string]*message{}}
	s.names[name] = id
	return id
}

// FailNext makes the next n calls, whatever they are, fail with HTTP
// status and a small HTML body, as Slack's front end does in an outage.
// It replaces any failures still pending.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, status
}

// RateLimitNext makes the next n calls answer 429 with
// "Retry-After: retryAfter" and {"ok":false,"error":"ratelimited"}.
// Failures set by FailNext are answered first.
func (s *Server) RateLimitNext(n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limitN, s.limitSecs = n, retryAfter
}

// StrictRate enforces Slack's per-channel posting rate: a
// chat.postMessage to a channel less than minGap after the last accepted
// one to that channel is answered 429 with "Retry-After: 1". Zero turns it
// off (the default).
func (s *Server) StrictRate(minGap time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.minGap = minGap
}

// AnswerDelay makes every accepted chat.postMessage wait d after the
// message is stored before it is answered: a client that gives up or dies
// meanwhile has posted without knowing it, as over a slow network.
func (s *Server) AnswerDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// WithoutHistoryScope makes conversations.history and conversations.replies
// answer missing_scope, as for an app without channels:history.
func (s *Server) WithoutHistoryScope() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noHistory = true
}

// Reads counts the accepted calls of the conversations methods.
func (s *Server) Reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// Messages returns the roots of the channel (ID, "name" or "#name"),
// oldest first, each with its replies; nil for an unknown channel.
func (s *Server) Messages(ch string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(ch)
	if c == nil {
		return nil
	}
	out := make([]Message, 0, len(c.roots))
	for _, r := range c.roots {
		m := r.export()
		for _, rep := range r.replies {
			m.Replies = append(m.Replies, rep.export())
		}
		out = append(out, m)
	}
	return out
}

// Posts returns every accepted chat.postMessage and chat.update, in the
// order the fake accepted them.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Post, len(s.posts))
	for i, p := range s.posts {
		p.Blocks = cloneRaw(p.Blocks)
		out[i] = p
	}
	return out
}

// Requests counts every HTTP request received, refused or failed ones
// included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (m *message) export() Message {
	return Message{TS: m.ts, ThreadTS: m.threadTS, Text: m.text, Blocks: cloneRaw(m.blocks), Edits: m.edits,
		Metadata: m.metadata.clone()}
}

func (md *Metadata) clone() *Metadata {
	if md == nil {
		return nil
	}
	out := &Metadata{EventType: md.EventType, EventPayload: map[string]any{}}
	for k, v := range md.EventPayload {
		out.EventPayload[k] = v
	}
	return out
}

func cloneRaw(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage(nil), b...)
}

// lookup finds a channel by ID, "name" or "#name". s.mu is held.
func (s *Server) lookup(ch string) *channel {
	if c, ok := s.channels[ch]; ok {
		return c
	}
	if id, ok := s.names[strings.TrimPrefix(ch, "#")]; ok {
		return s.channels[id]
	}
	return nil
}

// nextTS is a new ts, greater than every earlier one. s.mu is held.
func (s *Server) nextTS() string {
	// Like Slack's: the time of posting, in microseconds, made unique.
	us := max(time.Now().UnixMicro(), s.lastTS+1)
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)
}

// request is a chat call's parameters, from a form or a JSON body.
type request struct {
	token    string
	channel  string
	text     string
	ts       string
	threadTS string
	blocks   json.RawMessage
	metadata *Metadata
	// The conversations methods' parameters.
	cursor      string
	limit       string
	oldest      string
	latest      string
	inclusive   bool
	allMetadata bool
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == socketPath {
		s.serveSocket(w, r) // a long-lived connection: not under s.mu
		return
	}
	if r.URL.Path == "/api/"+MethodConnectionsOpen {
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
		s.connectionsOpen(w, r)
		return
	}
	at := time.Now()
	s.mu.Lock()
	hold := s.holds[strings.TrimPrefix(r.URL.Path, "/api/")]
	if hold != nil {
		s.waiting++
	}
	s.mu.Unlock()
	if hold != nil {
		s.notify()
	}
	if hold != nil {
		select { // the call waits, outside the lock, until released
		case <-hold:
		case <-r.Context().Done():
		}
		s.mu.Lock()
		s.waiting--
		s.mu.Unlock()
		if r.Context().Err() != nil {
			return
		}
	}
	s.mu.Lock()
	delay := s.handle(w, r, at)
	s.mu.Unlock()
	s.notify()
	if delay > 0 {
		time.Sleep(delay) // the message is stored; its answer is late
	}
}

// Waiting counts the calls held back by Hold now.
func (s *Server) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// Hold makes every call of the Web API method wait, unanswered, until
// release is called (or the caller gives up): a Slack that is stuck on
// one method.
func (s *Server) Hold(method string) (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	if s.holds == nil {
		s.holds = map[string]chan struct{}{}
	}
	s.holds[method] = gate
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.holds, method)
			s.mu.Unlock()
			close(gate)
		})
	}
}

// handle answers one call with s.mu held, except for the body: it returns
// how long to hold the answer back.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, at time.Time) time.Duration {
	s.requests++

	if s.failN > 0 {
		s.failN--
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(s.failCode)
		_, _ = fmt.Fprintf(w, "<html><body><h1>%d %s</h1><p>slacktest: injected failure</p></body></html>\n",
			s.failCode, http.StatusText(s.failCode))
		return 0
	}
	if s.limitN > 0 {
		s.limitN--
		rateLimited(w, s.limitSecs)
		return 0
	}

	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	switch {
	case !ok:
		answer(w, map[string]any{"ok": false, "error": "unknown_method"})
		return 0
	case method == MethodPostMessage, method == MethodUpdate, method == MethodHistory, method == MethodReplies, method == MethodList:
	case method == MethodPermalink:
		s.permalink(w, r)
		return 0
	case appMethods[method]:
		s.appCall(w, r, method)
		return 0
	default:
		answer(w, map[string]any{"ok": false, "error": "unknown_method"})
		return 0
	}
	if r.Method != http.MethodPost {
		answer(w, map[string]any{"ok": false, "error": "invalid_request", "detail": "slacktest: POST only"})
		return 0
	}
	req, errCode := parse(r)
	if errCode != "" {
		answer(w, map[string]any{"ok": false, "error": errCode})
		return 0
	}
	switch {
	case req.token == "":
		answer(w, map[string]any{"ok": false, "error": "not_authed"})
		return 0
	case req.token != s.token:
		answer(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return 0
	}
	switch method {
	case MethodPostMessage:
		if s.postMessage(w, req, at) {
			return s.delay
		}
	case MethodUpdate:
		s.update(w, req, at)
	case MethodHistory:
		s.history(w, req)
	case MethodReplies:
		s.replies(w, req)
	case MethodList:
		s.list(w, req)
	}
	return 0
}

// postMessage answers chat.postMessage and reports whether it posted.
func (s *Server) postMessage(w http.ResponseWriter, req request, at time.Time) bool {
	c := s.lookup(req.channel)
	if c == nil {
		answer(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return false
	}
	if s.minGap > 0 && !c.last.IsZero() && at.Sub(c.last) < s.minGap {
		rateLimited(w, 1)
		return false
	}
	if code := checkContent(req); code != "" {
		answer(w, map[string]any{"ok": false, "error": code})
		return false
	}
	m := &message{text: req.text, blocks: req.blocks, metadata: req.metadata}
	if req.threadTS != "" {
		root, ok := c.byTS[req.threadTS]
		if !ok {
			answer(w, map[string]any{"ok": false, "error": "thread_not_found"})
			return false
		}
		if root.threadTS != "" { // a reply's ts: Slack threads under its root
			root = c.byTS[root.threadTS]
		}
		m.threadTS = root.ts
		m.ts = s.nextTS()
		root.replies = append(root.replies, m)
	} else {
		m.ts = s.nextTS()
		c.roots = append(c.roots, m)
	}
	c.byTS[m.ts] = m
	c.last = at
	s.posts = append(s.posts, Post{Method: MethodPostMessage, Channel: c.id, TS: m.ts, ThreadTS: m.threadTS,
		Text: m.text, Blocks: cloneRaw(m.blocks), Metadata: m.metadata.clone(), At: at})
	answer(w, map[string]any{"ok": true, "channel": c.id, "ts": m.ts, "message": m.json(true)})
	return true
}

func (s *Server) update(w http.ResponseWriter, req request, at time.Time) {
	c, ok := s.channels[req.channel] // chat.update wants the channel ID
	if !ok {
		answer(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	m, ok := c.byTS[req.ts]
	if !ok {
		answer(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	if code := checkContent(req); code != "" {
		answer(w, map[string]any{"ok": false, "error": code})
		return
	}
	m.text = req.text
	if req.blocks != nil {
		m.blocks = req.blocks
	}
	if req.metadata != nil {
		m.metadata = req.metadata
	}
	m.edits++
	s.posts = append(s.posts, Post{Method: MethodUpdate, Channel: c.id, TS: m.ts, ThreadTS: m.threadTS,
		Text: req.text, Blocks: cloneRaw(req.blocks), Metadata: req.metadata.clone(), At: at})
	answer(w, map[string]any{"ok": true, "channel": c.id, "ts": m.ts, "text": m.text, "message": m.json(true)})
}

// json is the message as Slack shows it; metadata only when asked for.
func (m *message) json(withMetadata bool) map[string]any {
	out := map[string]any{"type": "message", "text": m.text, "ts": m.ts, "user": "U0SLACKTEST", "bot_id": "B0SLACKTEST"}
	if m.threadTS != "" {
		out["thread_ts"] = m.threadTS
		out["parent_user_id"] = "U0SLACKTEST"
	}
	if len(m.replies) > 0 {
		out["thread_ts"] = m.ts
		out["reply_count"] = len(m.replies)
		out["latest_reply"] = m.replies[len(m.replies)-1].ts
	}
	if m.blocks != nil {
		out["blocks"] = m.blocks
	}
	if m.edits > 0 {
		out["edited"] = map[string]any{"user": "U0SLACKTEST", "ts": m.ts}
	}
	if withMetadata && m.metadata != nil {
		out["metadata"] = m.metadata.clone()
	}
	return out
}

// Paging of the conversations methods, as Slack documents it.
const (
	defaultHistoryLimit = 100
	defaultRepliesLimit = 1000
	defaultListLimit    = 100
	maxLimit            = 999
)

// page cuts items (already filtered and in answer order) at the request's
// cursor and limit; the cursor is an opaque offset.
func page[T any](items []T, req request, def int) (out []T, next string, code string) {
	limit := def
	if req.limit != "" {
		n, err := strconv.Atoi(req.limit)
		if err != nil || n < 1 {
			return nil, "", "invalid_limit"
		}
		limit = min(n, maxLimit)
	}
	start := 0
	if req.cursor != "" {
		raw, err := base64.StdEncoding.DecodeString(req.cursor)
		off, ok := strings.CutPrefix(string(raw), "offset:")
		n, err2 := strconv.Atoi(off)
		if err != nil || !ok || err2 != nil || n < 0 || n > len(items) {
			return nil, "", "invalid_cursor"
		}
		start = n
	}
	end := min(start+limit, len(items))
	if end < len(items) {
		next = base64.StdEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(end)))
	}
	return items[start:end], next, ""
}

// inRange applies oldest and latest (exclusive unless inclusive).
func inRange(ts string, req request) bool {
	v, _ := strconv.ParseFloat(ts, 64)
	if req.oldest != "" {
		o, _ := strconv.ParseFloat(req.oldest, 64)
		if v < o || (v == o && !req.inclusive) {
			return false
		}
	}
	if req.latest != "" {
		l, _ := strconv.ParseFloat(req.latest, 64)
		if v > l || (v == l && !req.inclusive) {
			return false
		}
	}
	return true
}

// readable checks a conversations call's channel (an ID, as Slack wants)
// and the history scope; it answers the refusal itself.
func (s *Server) readable(w http.ResponseWriter, req request) *channel {
	if s.noHistory {
		answer(w, map[string]any{"ok": false, "error": "missing_scope", "needed": "channels:history,groups:history", "provided": "chat:write"})
		return nil
	}
	c, ok := s.channels[req.channel]
	if !ok {
		answer(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return nil
	}
	return c
}

// history answers conversations.history: the channel's roots, newest
// first (thread replies are not in it).
func (s *Server) history(w http.ResponseWriter, req request) {
	c := s.readable(w, req)
	if c == nil {
		return
	}
	var items []map[string]any
	for i := len(c.roots) - 1; i >= 0; i-- {
		if m := c.roots[i]; inRange(m.ts, req) {
			items = append(items, m.json(req.allMetadata))
		}
	}
	got, next, code := page(items, req, defaultHistoryLimit)
	if code != "" {
		answer(w, map[string]any{"ok": false, "error": code})
		return
	}
	s.reads++
	answer(w, map[string]any{"ok": true, "messages": nonNil(got), "has_more": next != "", "pin_count": 0,
		"response_metadata": map[string]any{"next_cursor": next}})
}

// replies answers conversations.replies: the thread's root, then its
// replies oldest first.
func (s *Server) replies(w http.ResponseWriter, req request) {
	c := s.readable(w, req)
	if c == nil {
		return
	}
	root, ok := c.byTS[req.ts]
	if !ok {
		answer(w, map[string]any{"ok": false, "error": "thread_not_found"})
		return
	}
	if root.threadTS != "" {
		root = c.byTS[root.threadTS]
	}
	items := []map[string]any{root.json(req.allMetadata)}
	for _, m := range root.replies {
		if inRange(m.ts, req) {
			items = append(items, m.json(req.allMetadata))
		}
	}
	got, next, code := page(items, req, defaultRepliesLimit)
	if code != "" {
		answer(w, map[string]any{"ok": false, "error": code})
		return
	}
	s.reads++
	answer(w, map[string]any{"ok": true, "messages": nonNil(got), "has_more": next != "",
		"response_metadata": map[string]any{"next_cursor": next}})
}

// list answers conversations.list: every channel, as public channels.
func (s *Server) list(w http.ResponseWriter, req request) {
	ids := make([]string, 0, len(s.channels))
	for id := range s.channels {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var items []map[string]any
	for _, id := range ids {
		c := s.channels[id]
		items = append(items, map[string]any{"id": c.id, "name": c.name, "is_channel": true, "is_private": false,
			"is_archived": false, "is_member": true})
	}
	got, next, code := page(items, req, defaultListLimit)
	if code != "" {
		answer(w, map[string]any{"ok": false, "error": code})
		return
	}
	s.reads++
	answer(w, map[string]any{"ok": true, "channels": nonNil(got), "response_metadata": map[string]any{"next_cursor": next}})
}

func nonNil(items []map[string]any) []map[string]any {
	if items == nil {
		return []map[string]any{}
	}
	return items
}

func rateLimited(w http.ResponseWriter, secs int) {
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "ratelimited"})
}

func answer(w http.ResponseWriter, body map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

// parse reads a form or JSON body; the error is a Slack error code.
func parse(r *http.Request) (request, string) {
	var req request
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return req, "invalid_auth"
		}
		req.token = strings.TrimSpace(tok)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return req, "request_timeout"
	}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ctype {
	case "application/json":
		var v struct {
			Channel  string          `json:"channel"`
			Text     string          `json:"text"`
			TS       string          `json:"ts"`
			ThreadTS string          `json:"thread_ts"`
			Blocks   json.RawMessage `json:"blocks"`
			Metadata *Metadata       `json:"metadata"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return req, "invalid_json"
		}
		if req.token == "" {
			return req, "not_authed" // a JSON body must carry the token in the header
		}
		req.channel, req.text, req.ts, req.threadTS, req.metadata = v.Channel, v.Text, v.TS, v.ThreadTS, v.Metadata
		if len(v.Blocks) > 0 && string(v.Blocks) != "null" {
			req.blocks = v.Blocks
		}
	case "application/x-www-form-urlencoded", "":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return req, "invalid_form_data"
		}
		if req.token == "" {
			req.token = form.Get("token")
		}
		req.channel, req.text, req.ts, req.threadTS = form.Get("channel"), form.Get("text"), form.Get("ts"), form.Get("thread_ts")
		if b := form.Get("blocks"); b != "" {
			req.blocks = json.RawMessage(b)
		}
		if md := form.Get("metadata"); md != "" {
			var m Metadata
			if err := json.Unmarshal([]byte(md), &m); err != nil || m.EventType == "" {
				return req, "invalid_metadata_format"
			}
			req.metadata = &m
		}
		req.cursor, req.limit, req.oldest, req.latest = form.Get("cursor"), form.Get("limit"), form.Get("oldest"), form.Get("latest")
		req.inclusive = truthy(form.Get("inclusive"))
		req.allMetadata = truthy(form.Get("include_all_metadata"))
	default:
		return req, "invalid_form_data"
	}
	return req, ""
}

func truthy(v string) bool { return v == "1" || v == "true" }

// Slack's limits (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxText        = 40000
	maxBlocks      = 50
	maxHeaderText  = 150
	maxSectionText = 3000
	maxFields      = 10
	maxFieldText   = 2000
	maxContextEls  = 10
	maxBlockID     = 255
)

// checkContent checks the text and blocks of a post or an update and
// returns a Slack error code, or "".
func checkContent(req request) string {
	if strings.TrimSpace(req.text) == "" && req.blocks == nil {
		return "no_text"
	}
	if utf8.RuneCountInString(req.text) > maxText {
		return "msg_too_long"
	}
	if req.blocks == nil {
		return ""
	}
	var blocks []map[string]json.RawMessage
	if err := json.Unmarshal(req.blocks, &blocks); err != nil {
		return "invalid_blocks_format"
	}
	if len(blocks) > maxBlocks {
		return "invalid_blocks"
	}
	ids := map[string]bool{}
	for _, b := range blocks {
		var typ, id string
		_ = json.Unmarshal(b["type"], &typ)
		_ = json.Unmarshal(b["block_id"], &id)
		if id != "" {
			if ids[id] || len(id) > maxBlockID {
				return "invalid_blocks"
			}
			ids[id] = true
		}
		if !validBlock(typ, b) {
			return "invalid_blocks"
		}
	}
	return ""
}

type textObject struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji *bool  `json:"emoji"`
}

func (t *textObject) valid(limit int, plainOnly bool) bool {
	if t == nil || (t.Type != "plain_text" && t.Type != "mrkdwn") || (plainOnly && t.Type != "plain_text") {
		return false
	}
	if t.Type == "mrkdwn" && t.Emoji != nil {
		return false
	}
	n := utf8.RuneCountInString(t.Text)
	return n >= 1 && n <= limit
}

func validBlock(typ string, b map[string]json.RawMessage) bool {
	switch typ {
	case "header":
		var t *textObject
		if json.Unmarshal(b["text"], &t) != nil {
			return false
		}
		return t.valid(maxHeaderText, true)
	case "section":
		var t *textObject
		var fields []*textObject
		if raw, ok := b["text"]; ok && json.Unmarshal(raw, &t) != nil {
			return false
		}
		if raw, ok := b["fields"]; ok && json.Unmarshal(raw, &fields) != nil {
			return false
		}
		if t == nil && len(fields) == 0 {
			return false
		}
		if t != nil && !t.valid(maxSectionText, false) {
			return false
		}
		if len(fields) > maxFields {
			return false
		}
		for _, f := range fields {
			if !f.valid(maxFieldText, false) {
				return false
			}
		}
		return true
	case "context":
		var els []json.RawMessage
		if json.Unmarshal(b["elements"], &els) != nil || len(els) == 0 || len(els) > maxContextEls {
			return false
		}
		for _, e := range els {
			var t *textObject
			if json.Unmarshal(e, &t) != nil {
				return false
			}
			if t.Type == "image" {
				continue
			}
			if !t.valid(maxSectionText, false) {
				return false
			}
		}
		return true
	case "divider", "image", "actions", "rich_text", "markdown", "input", "file", "video":
		return true
	default:
		return false
	}
}

// permalink answers chat.getPermalink (a GET, as Slack's clients send it):
// a link to the message, in Slack's shape.
func (s *Server) permalink(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("token")
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(tok)
	}
	if token != s.token {
		answer(w, map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	c, ok := s.channels[q.Get("channel")]
	if !ok {
		answer(w, map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	ts := q.Get("message_ts")
	if _, ok := c.byTS[ts]; !ok {
		answer(w, map[string]any{"ok": false, "error": "message_not_found"})
		return
	}
	answer(w, map[string]any{"ok": true, "channel": c.id,
		"permalink": "https://slacktest.example/archives/" + c.id + "/p" + strings.ReplaceAll(ts, ".", "")})
}
