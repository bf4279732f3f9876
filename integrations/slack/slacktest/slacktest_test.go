package slacktest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations/slack/slacktest"
)

const token = "xoxb-fake-token"

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) str(k string) string { s, _ := a.body[k].(string); return s }

// form posts a form-encoded call, as slack-go does (token in the body).
func form(t *testing.T, s *slacktest.Server, method string, v url.Values) answer {
	t.Helper()
	return call(t, s, method, "application/x-www-form-urlencoded", "", v.Encode())
}

func call(t *testing.T, s *slacktest.Server, method, ctype, bearer, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+method, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
			t.Fatalf("%s: answer is not JSON: %v", method, err)
		}
	}
	return a
}

func post(channel, text string, extra ...string) url.Values {
	v := url.Values{"token": {token}, "channel": {channel}, "text": {text}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

func TestServerURLIsLoopback(t *testing.T) {
	s := slacktest.New(token)
	defer s.Close()
	u, err := url.Parse(s.URL())
	if err != nil || u.Hostname() != "127.0.0.1" || !strings.HasSuffix(u.Path, "/api/") {
		t.Fatalf("URL() = %q, want http://127.0.0.1:PORT/api/", s.URL())
	}
}

func TestRefusals(t *testing.T) {
	s := slacktest.New(token)
	defer s.Close()
	ops := s.AddChannel("#ops")
	root := form(t, s, "chat.postMessage", post(ops, "root")).str("ts")

	header := func(n int) string {
		return fmt.Sprintf(`[{"type":"header","text":{"type":"plain_text","text":%q}}]`, strings.Repeat("h", n))
	}
	section := func(n int) string {
		return fmt.Sprintf(`[{"type":"section","text":{"type":"mrkdwn","text":%q}}]`, strings.Repeat("s", n))
	}
	tests := []struct {
		name    string
		method  string
		ctype   string
		bearer  string
		body    string
		wantErr string // "" means ok
	}{
		{"form with token field", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "hi").Encode(), ""},
		{"form with bearer header", "chat.postMessage", "application/x-www-form-urlencoded", token, url.Values{"channel": {ops}, "text": {"hi"}}.Encode(), ""},
		{"JSON with bearer header", "chat.postMessage", "application/json", token, `{"channel":"` + ops + `","text":"hi","blocks":` + section(10) + `}`, ""},
		{"by name", "chat.postMessage", "application/x-www-form-urlencoded", "", post("ops", "hi").Encode(), ""},
		{"by #name", "chat.postMessage", "application/x-www-form-urlencoded", "", post("#ops", "hi").Encode(), ""},
		{"blocks only", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "", "blocks", section(3000)).Encode(), ""},
		{"reply", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "r", "thread_ts", root).Encode(), ""},
		{"wrong token", "chat.postMessage", "application/x-www-form-urlencoded", "", url.Values{"token": {"xoxb-other"}, "channel": {ops}, "text": {"x"}}.Encode(), "invalid_auth"},
		{"wrong bearer", "chat.postMessage", "application/json", "xoxb-other", `{"channel":"` + ops + `","text":"x"}`, "invalid_auth"},
		{"no token", "chat.postMessage", "application/x-www-form-urlencoded", "", url.Values{"channel": {ops}, "text": {"x"}}.Encode(), "not_authed"},
		{"JSON without header", "chat.postMessage", "application/json", "", `{"token":"` + token + `","channel":"` + ops + `","text":"x"}`, "not_authed"},
		{"unknown channel", "chat.postMessage", "application/x-www-form-urlencoded", "", post("#nope", "x").Encode(), "channel_not_found"},
		{"unknown thread", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "thread_ts", "1.000001").Encode(), "thread_not_found"},
		{"no text", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, " ").Encode(), "no_text"},
		{"text too long", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, strings.Repeat("x", 40001)).Encode(), "msg_too_long"},
		{"blocks not JSON", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", "[{").Encode(), "invalid_blocks_format"},
		{"header of 150", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", header(150)).Encode(), ""},
		{"header of 151", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", header(151)).Encode(), "invalid_blocks"},
		{"section of 3001", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", section(3001)).Encode(), "invalid_blocks"},
		{"empty section", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", section(0)).Encode(), "invalid_blocks"},
		{"51 blocks", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", "["+strings.Repeat(`{"type":"divider"},`, 50)+`{"type":"divider"}]`).Encode(), "invalid_blocks"},
		{"mrkdwn with emoji", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", `[{"type":"section","text":{"type":"mrkdwn","text":"x","emoji":true}}]`).Encode(), "invalid_blocks"},
		{"header in mrkdwn", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", `[{"type":"header","text":{"type":"mrkdwn","text":"x"}}]`).Encode(), "invalid_blocks"},
		{"11 fields", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", `[{"type":"section","fields":[`+strings.TrimSuffix(strings.Repeat(`{"type":"mrkdwn","text":"f"},`, 11), ",")+`]}]`).Encode(), "invalid_blocks"},
		{"unknown block type", "chat.postMessage", "application/x-www-form-urlencoded", "", post(ops, "x", "blocks", `[{"type":"banner"}]`).Encode(), "invalid_blocks"},
		{"update by ID", "chat.update", "application/x-www-form-urlencoded", "", post(ops, "edited", "ts", root).Encode(), ""},
		{"update by name", "chat.update", "application/x-www-form-urlencoded", "", post("#ops", "edited", "ts", root).Encode(), "channel_not_found"},
		{"update unknown ts", "chat.update", "application/x-www-form-urlencoded", "", post(ops, "edited", "ts", "1.000001").Encode(), "message_not_found"},
		{"unknown method", "chat.delete", "application/x-www-form-urlencoded", "", post(ops, "x", "ts", root).Encode(), "unknown_method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Posts())
			a := call(t, s, tt.method, tt.ctype, tt.bearer, tt.body)
			if a.status != http.StatusOK {
				t.Fatalf("HTTP %d, want 200: Slack answers errors in the body", a.status)
			}
			ok, _ := a.body["ok"].(bool)
			switch {
			case tt.wantErr == "" && !ok:
				t.Fatalf("refused with %q, want ok", a.str("error"))
			case tt.wantErr != "" && (ok || a.str("error") != tt.wantErr):
				t.Fatalf("answer %v, want error %q", a.body, tt.wantErr)
			}
			accepted := len(s.Posts()) - before
			if want := map[bool]int{true: 1, false: 0}[tt.wantErr == ""]; accepted != want {
				t.Errorf("%d posts recorded, want %d", accepted, want)
			}
			if ok && a.str("channel") != ops {
				t.Errorf("channel = %q, want the ID %s", a.str("channel"), ops)
			}
		})
	}
}

func TestThreadsAndUpdates(t *testing.T) {
	s := slacktest.New(token)
	defer s.Close()
	ops, cust := s.AddChannel("ops"), s.AddChannel("customers")
	if again := s.AddChannel("#ops"); again != ops {
		t.Errorf("AddChannel twice gave %s then %s", ops, again)
	}

	r1 := form(t, s, "chat.postMessage", post("#ops", "root 1")).str("ts")
	r2 := form(t, s, "chat.postMessage", post(ops, "root 2")).str("ts")
	a := form(t, s, "chat.postMessage", post(ops, "reply 1", "thread_ts", r1)).str("ts")
	form(t, s, "chat.postMessage", post(ops, "reply to a reply", "thread_ts", a))
	if got := form(t, s, "chat.postMessage", post(cust, "other channel", "thread_ts", r1)).str("error"); got != "thread_not_found" {
		t.Errorf("reply in the wrong channel: error %q, want thread_not_found", got)
	}
	blocks := `[{"type":"section","text":{"type":"mrkdwn","text":"done"}}]`
	up := form(t, s, "chat.update", post(ops, "root 1 resolved", "ts", r1, "blocks", blocks))
	if up.str("ts") != r1 || up.str("text") != "root 1 resolved" {
		t.Errorf("update answer %v", up.body)
	}

	msgs := s.Messages("ops")
	if len(msgs) != 2 || msgs[0].TS != r1 || msgs[1].TS != r2 {
		t.Fatalf("roots %+v, want %s then %s", msgs, r1, r2)
	}
	m := msgs[0]
	if m.Text != "root 1 resolved" || m.Edits != 1 || string(m.Blocks) != blocks {
		t.Errorf("edited root = %+v", m)
	}
	if len(m.Replies) != 2 || m.Replies[0].Text != "reply 1" || m.Replies[1].ThreadTS != r1 {
		t.Errorf("replies = %+v, want two, both in thread %s", m.Replies, r1)
	}
	if s.Messages("#nope") != nil || len(s.Messages(cust)) != 0 {
		t.Error("unknown or empty channels should hold nothing")
	}

	posts := s.Posts()
	methods := []string{}
	for i, p := range posts {
		methods = append(methods, p.Method)
		if p.At.IsZero() {
			t.Errorf("post %d has no time", i)
		}
		if i > 0 && p.Method == slacktest.MethodPostMessage && p.TS <= posts[i-1].TS {
			t.Errorf("ts %s after %s: not increasing", p.TS, posts[i-1].TS)
		}
	}
	if want := "chat.postMessage chat.postMessage chat.postMessage chat.postMessage chat.update"; strings.Join(methods, " ") != want {
		t.Errorf("posts %s, want %s", methods, want)
	}
	if got := s.Requests(); got != 6 {
		t.Errorf("Requests() = %d, want 6 (the refused reply included)", got)
	}
	// What the inspection methods return is a copy.
	msgs[0].Blocks[0] = 'X'
	if s.Messages(ops)[0].Blocks[0] != '[' {
		t.Error("Messages shares its blocks with the server")
	}
}

func TestInjectedFailures(t *testing.T) {
	s := slacktest.New(token)
	defer s.Close()
	ops := s.AddChannel("ops")
	s.FailNext(2, http.StatusServiceUnavailable)
	s.RateLimitNext(1, 3)

	want := []struct {
		status     int
		retryAfter string
		err        string
	}{
		{503, "", ""}, {503, "", ""}, {429, "3", "ratelimited"}, {200, "", ""},
	}
	for i, w := range want {
		a := form(t, s, "chat.postMessage", post(ops, fmt.Sprint(i)))
		if a.status != w.status || a.header.Get("Retry-After") != w.retryAfter || a.str("error") != w.err {
			t.Errorf("call %d: HTTP %d Retry-After %q error %q, want %d %q %q",
				i, a.status, a.header.Get("Retry-After"), a.str("error"), w.status, w.retryAfter, w.err)
		}
	}
	if n := len(s.Posts()); n != 1 {
		t.Errorf("%d posts accepted, want 1", n)
	}
	if n := s.Requests(); n != 4 {
		t.Errorf("Requests() = %d, want 4", n)
	}
}

func TestStrictRate(t *testing.T) {
	s := slacktest.New(token)
	defer s.Close()
	ops, dev := s.AddChannel("ops"), s.AddChannel("dev")
	const gap = 30 * time.Millisecond
	s.StrictRate(gap)

	root := form(t, s, "chat.postMessage", post(ops, "first"))
	if root.status != 200 {
		t.Fatalf("first post: HTTP %d", root.status)
	}
	if a := form(t, s, "chat.postMessage", post(ops, "too soon")); a.status != 429 || a.header.Get("Retry-After") != "1" {
		t.Errorf("second post at once: HTTP %d Retry-After %q, want 429 and 1", a.status, a.header.Get("Retry-After"))
	}
	if a := form(t, s, "chat.postMessage", post(dev, "other channel")); a.status != 200 {
		t.Errorf("post to another channel: HTTP %d, want 200", a.status)
	}
	if a := form(t, s, "chat.update", post(ops, "edit", "ts", root.str("ts"))); a.status != 200 {
		t.Errorf("chat.update: HTTP %d, want 200 (only posts are limited)", a.status)
	}
	time.Sleep(gap)
	if a := form(t, s, "chat.postMessage", post(ops, "later")); a.status != 200 {
		t.Errorf("post after the gap: HTTP %d, want 200", a.status)
	}
	s.StrictRate(0)
	if a := form(t, s, "chat.postMessage", post(ops, "unlimited")); a.status != 200 {
		t.Errorf("post with the limit off: HTTP %d, want 200", a.status)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := slacktest.New(token)
	defer s.Close()
	ops := s.AddChannel("ops")
	root := form(t, s, "chat.postMessage", post(ops, "root")).str("ts")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() { // t.Fatal may not be called here: plain calls
			resp, err := http.PostForm(s.URL()+"chat.postMessage", post(ops, fmt.Sprint(i), "thread_ts", root))
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			_ = s.Messages(ops)
			_ = s.Posts()
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range s.Messages(ops)[0].Replies {
		if seen[r.TS] {
			t.Errorf("ts %s given twice", r.TS)
		}
		seen[r.TS] = true
	}
	if len(seen) != 16 {
		t.Errorf("%d replies, want 16", len(seen))
	}
}

// The conversations methods answer like Slack: by channel ID only, history
// newest first without thread replies, replies root first, metadata only
// with include_all_metadata, paged with a cursor.
func TestConversations(t *testing.T) {
	s := slacktest.New(token)
	defer s.Close()
	ops := s.AddChannel("ops")
	meta := func(key string) string {
		return `{"event_type":"responder_notification","event_payload":{"key":"` + key + `"}}`
	}
	var roots []string
	for i := range 3 {
		a := form(t, s, slacktest.MethodPostMessage, post(ops, fmt.Sprintf("root %d", i), "metadata", meta(fmt.Sprint("r", i))))
		roots = append(roots, a.str("ts"))
	}
	form(t, s, slacktest.MethodPostMessage, post(ops, "reply", "thread_ts", roots[0], "metadata", meta("x")))
	if a := form(t, s, slacktest.MethodPostMessage, post(ops, "bad", "metadata", `{"event_payload":{}}`)); a.str("error") != "invalid_metadata_format" {
		t.Errorf("metadata without event_type: %v", a.body)
	}

	read := func(method string, v url.Values) answer {
		v.Set("token", token)
		return form(t, s, method, v)
	}
	if a := read(slacktest.MethodHistory, url.Values{"channel": {"#ops"}}); a.str("error") != "channel_not_found" {
		t.Errorf("history by name: %v, want channel_not_found", a.body)
	}
	a := read(slacktest.MethodHistory, url.Values{"channel": {ops}, "limit": {"2"}})
	msgs, _ := a.body["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["ts"] != roots[2] || a.body["has_more"] != true {
		t.Fatalf("history page 1: %v", a.body)
	}
	if _, ok := msgs[0].(map[string]any)["metadata"]; ok {
		t.Errorf("metadata shown without include_all_metadata")
	}
	cursor := a.body["response_metadata"].(map[string]any)["next_cursor"].(string)
	a = read(slacktest.MethodHistory, url.Values{"channel": {ops}, "limit": {"2"}, "cursor": {cursor}, "include_all_metadata": {"1"}})
	msgs, _ = a.body["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["ts"] != roots[0] || a.body["has_more"] != false {
		t.Fatalf("history page 2: %v", a.body)
	}
	if md, _ := msgs[0].(map[string]any)["metadata"].(map[string]any); md["event_payload"].(map[string]any)["key"] != "r0" {
		t.Errorf("metadata %v, want key r0", md)
	}
	a = read(slacktest.MethodHistory, url.Values{"channel": {ops}, "oldest": {roots[1]}})
	if msgs, _ := a.body["messages"].([]any); len(msgs) != 1 {
		t.Errorf("history after oldest (exclusive): %d messages, want 1", len(msgs))
	}
	a = read(slacktest.MethodReplies, url.Values{"channel": {ops}, "ts": {roots[0]}, "include_all_metadata": {"true"}})
	msgs, _ = a.body["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["ts"] != roots[0] || msgs[1].(map[string]any)["text"] != "reply" {
		t.Fatalf("replies: %v", a.body)
	}
	if a := read(slacktest.MethodReplies, url.Values{"channel": {ops}, "ts": {"1.000001"}}); a.str("error") != "thread_not_found" {
		t.Errorf("replies of an unknown ts: %v", a.body)
	}
	a = read(slacktest.MethodList, url.Values{})
	if chans, _ := a.body["channels"].([]any); len(chans) != 1 || chans[0].(map[string]any)["name"] != "ops" {
		t.Errorf("list: %v", a.body)
	}
	if s.Reads() != 5 {
		t.Errorf("%d reads counted, want 5 (refusals are not reads)", s.Reads())
	}
	s.WithoutHistoryScope()
	if a := read(slacktest.MethodHistory, url.Values{"channel": {ops}}); a.str("error") != "missing_scope" {
		t.Errorf("without the scope: %v", a.body)
	}
}

// With an answer delay the message is stored before the answer leaves: a
// client that gives up has posted all the same.
func TestAnswerDelay(t *testing.T) {
	s := slacktest.New(token)
	defer s.Close()
	ops := s.AddChannel("ops")
	s.AnswerDelay(500 * time.Millisecond)
	client := &http.Client{Timeout: 50 * time.Millisecond}
	v := post(ops, "hello")
	resp, err := client.PostForm(s.URL()+slacktest.MethodPostMessage, v)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("answered before the delay")
	}
	if msgs := s.Messages(ops); len(msgs) != 1 {
		t.Errorf("%d messages stored, want 1 although the client saw no answer", len(msgs))
	}
}
