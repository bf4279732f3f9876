package slackapp_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/responder-sre/responder/configs"
	"github.com/responder-sre/responder/handlers/incident"
	"github.com/responder-sre/responder/handlers/slackapp"
	"github.com/responder-sre/responder/integrations/slack"
	"github.com/responder-sre/responder/integrations/slack/slacktest"
	"github.com/responder-sre/responder/store"
	"github.com/responder-sre/responder/store/bolt"
)

const (
	botToken = "xoxb-FAKE-slackapp-test"
	secret   = "FAKE-slackapp-signing-secret"
	team     = "T0001"
)

// env is the Slack front door over HTTP on a real service and bbolt file,
// Slack's Web API faked on loopback.
type env struct {
	t      *testing.T
	db     *bolt.DB
	svc    *incident.Service
	slack  *slacktest.Server
	srv    *httptest.Server
	now    atomic.Int64
	prefix int // trigger ids
}

func newEnv(t *testing.T, cfg slackapp.Config) *env {
	t.Helper()
	e := &env{t: t}
	e.now.Store(time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, e.now.Load()).UTC() }
	db, err := bolt.Open(filepath.Join(t.TempDir(), "responder.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e.db = db
	c, err := configs.Parse(configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := c.BuildPolicy()
	if err != nil {
		t.Fatal(err)
	}
	e.svc = incident.New(incident.Config{ExternalURL: "http://127.0.0.1:9095"}, incident.Deps{Store: db, Policy: pol, Log: zerolog.Nop(), Now: clock})
	e.slack = slacktest.New(botToken)
	t.Cleanup(e.slack.Close)
	e.slack.AddUser("U1", "Maria Schulz")
	e.slack.AddUser("U2", "Dev Patel")
	api, err := slack.NewApp(slack.Config{Token: botToken, APIURL: e.slack.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Teams) == 0 {
		cfg.Teams = []string{team}
	}
	app := slackapp.New(cfg, e.svc, api, zerolog.Nop(), clock)
	h := &slackapp.HTTP{App: app, Secret: secret}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// sign signs body as Slack does, at ts.
func sign(body string, ts int64, key string) string {
	mac := hmac.New(sha256.New, []byte(key))
	_, _ = fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

type answer struct {
	status int
	body   string
	text   string // the ephemeral reply
}

// post sends a signed slash command; header adds or overrides headers.
func (e *env) post(form url.Values, header ...string) answer {
	e.t.Helper()
	body := form.Encode()
	ts := time.Now().Unix()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/slack/commands", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", sign(body, ts, secret))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(b)}
	var v struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if len(b) > 0 && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &v); err != nil || v.ResponseType != "ephemeral" {
			e.t.Errorf("answer %q is not an ephemeral reply", b)
		}
		a.text = v.Text
	}
	return a
}

// command types text as user in channel, with a new trigger.
func (e *env) command(user, channel, text string) answer {
	e.t.Helper()
	e.prefix++
	return e.post(e.form(user, channel, text, fmt.Sprintf("trig-%d", e.prefix)))
}

func (e *env) form(user, channel, text, trigger string) url.Values {
	return url.Values{"team_id": {team}, "user_id": {user}, "channel_id": {channel}, "command": {"/incident"},
		"text": {text}, "trigger_id": {trigger}, "response_url": {"https://hooks.slack.invalid/x"}}
}

func (e *env) incident(id string) *incident.View {
	e.t.Helper()
	v, err := e.svc.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// announced records the incident's root message as posted in channel, as
// the dispatcher does once Slack answers.
func (e *env) announced(id, channel string) {
	e.t.Helper()
	err := e.db.Update(context.Background(), func(tx store.Tx) error {
		inc, err := tx.Incident(id)
		if err != nil {
			return err
		}
		inc.SlackChannel, inc.SlackTS = channel, "1700000000.000100"
		return tx.PutIncident(inc)
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) count() int {
	e.t.Helper()
	page, err := e.svc.List(context.Background(), incident.ListQuery{})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(page.Incidents)
}

// The slash command declares, acknowledges, staffs, updates, raises and
// resolves, acting as the Slack user by name; refusals answer the person
// with the service's message and write nothing.
func TestSlashCommand(t *testing.T) {
	e := newEnv(t, slackapp.Config{})
	a := e.command("U1", "C1", "declare S2 Checkout returns 500")
	if a.status != http.StatusOK || !strings.HasPrefix(a.text, "Declared INC-1 (S2): Checkout returns 500. http://127.0.0.1:9095/incidents/INC-1") {
		t.Fatalf("declare: %d %q", a.status, a.body)
	}
	if v := e.incident("INC-1"); v.DeclaredBy != "Maria Schulz (Slack)" || v.Severity != "S2" {
		t.Errorf("declared %+v", v.Incident)
	}

	if a := e.command("U1", "C1", "ack"); !strings.Contains(a.text, "No open incident has its thread in this channel") {
		t.Errorf("ack before the thread exists: %q", a.text)
	}
	e.announced("INC-1", "C1")
	if a := e.command("U1", "C1", "ack"); !strings.HasPrefix(a.text, "Done. INC-1 (S2, acknowledged): Checkout returns 500") {
		t.Errorf("ack: %q", a.text)
	}
	if a := e.command("U1", "C1", "ack"); !strings.HasPrefix(a.text, "Not done: INC-1 was already acknowledged by Maria Schulz (Slack)") {
		t.Errorf("ack again: %q", a.text)
	}
	if a := e.command("U1", "C1", "roles <@U1|maria> <@U1|maria>"); !strings.Contains(a.text, "different people") {
		t.Errorf("the same person twice: %q", a.text)
	}
	if a := e.command("U1", "C1", "roles <@U1|maria> <@U2|dev>"); !strings.Contains(a.text, "Recovery lead Maria Schulz, comms lead Dev Patel") {
		t.Errorf("roles: %q", a.text)
	}
	if a := e.command("U2", "C1", "update rolled back the deploy eta 30m"); !strings.Contains(a.text, "ETA 2026-12-02 03:30 UTC") {
		t.Errorf("update: %q", a.text)
	}
	if a := e.command("U2", "C1", "update still broken eta yesterday"); !strings.Contains(a.text, `Not done: eta: "yesterday" is not a time`) {
		t.Errorf("update with a bad ETA: %q", a.text)
	}
	if a := e.command("U1", "C1", "sev INC-1 S1 every checkout fails"); !strings.HasPrefix(a.text, "Done. INC-1 (S1, acknowledged)") {
		t.Errorf("sev: %q", a.text)
	}
	if a := e.command("U1", "C9", "status INC-1"); !strings.Contains(a.text, "Next step: Determine the severity") {
		t.Errorf("status from another channel, naming it: %q", a.text)
	}
	if a := e.command("U1", "C1", "resolve rolled back 2.41.4"); !strings.HasPrefix(a.text, "Done. INC-1 (S1, resolved)") {
		t.Errorf("resolve: %q", a.text)
	}
	if a := e.command("U1", "C1", "help"); !strings.Contains(a.text, "`/incident declare [S1-S4] title`") {
		t.Errorf("help: %q", a.text)
	}
	if a := e.command("U1", "C1", "reboot"); !strings.Contains(a.text, `"reboot" is not a command`) {
		t.Errorf("unknown verb: %q", a.text)
	}
	var by []string
	for _, en := range e.incident("INC-1").Timeline {
		if en.By != "" && en.By != "responder" {
			by = append(by, en.Kind+" "+en.By)
		}
	}
	want := []string{"declared Maria Schulz (Slack)", "acknowledged Maria Schulz (Slack)", "roles Maria Schulz (Slack)", "update Dev Patel (Slack)",
		"severity_raised Maria Schulz (Slack)", "resolved Maria Schulz (Slack)"}
	if strings.Join(by, ", ") != strings.Join(want, ", ") {
		t.Errorf("timeline by:\n%s\nwant:\n%s", strings.Join(by, "\n"), strings.Join(want, "\n"))
	}
	if n := e.slack.UserReads(); n != 2 {
		t.Errorf("users.info read %d times, want once per user", n)
	}
}

// A delivery Slack sends again (the same trigger, X-Slack-Retry-Num) acts
// once; a request without a good, fresh signature is refused before it is
// read, and acts not at all.
func TestSlackRequestsAreVerifiedAndActOnce(t *testing.T) {
	e := newEnv(t, slackapp.Config{})
	form := e.form("U1", "C1", "declare S3 Disk full on db-2", "trig-once")
	if a := e.post(form); !strings.HasPrefix(a.text, "Declared INC-1") {
		t.Fatalf("first delivery: %q", a.body)
	}
	if a := e.post(form, "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout"); a.status != http.StatusOK || a.body != "" {
		t.Errorf("a retry: %d %q, want 200 and nothing more", a.status, a.body)
	}
	if n := e.count(); n != 1 {
		t.Errorf("%d incidents after a retried declaration, want 1", n)
	}

	body := e.form("U1", "C1", "declare S1 forged", "trig-forged").Encode()
	ts := time.Now().Unix()
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
		says   string
	}{
		{"no signature", map[string]string{"X-Slack-Request-Timestamp": strconv.FormatInt(ts, 10)}, http.StatusUnauthorized, "required"},
		{"wrong secret", map[string]string{"X-Slack-Request-Timestamp": strconv.FormatInt(ts, 10), "X-Slack-Signature": sign(body, ts, "another-secret")}, http.StatusUnauthorized, "does not match"},
		{"stale", map[string]string{"X-Slack-Request-Timestamp": strconv.FormatInt(ts-600, 10), "X-Slack-Signature": sign(body, ts-600, secret)}, http.StatusUnauthorized, "five minutes"},
		{"body changed", map[string]string{"X-Slack-Request-Timestamp": strconv.FormatInt(ts, 10), "X-Slack-Signature": sign(strings.Replace(body, "forged", "other", 1), ts, secret)}, http.StatusUnauthorized, "does not match"},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/slack/commands", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.says) || strings.Contains(string(b), secret) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, resp.StatusCode, b, tc.status, tc.says)
		}
	}
	if n := e.count(); n != 1 {
		t.Errorf("%d incidents after refused requests, want 1", n)
	}
}

// Only the configured workspace acts, and, when listed, only members of
// the channels or user groups; a refused person is told why and nothing
// is written.
func TestWhoMayAct(t *testing.T) {
	e := newEnv(t, slackapp.Config{Channels: []string{"CSRE"}, UserGroups: []string{"SONCALL"}})
	e.slack.SetMembers("CSRE", "U1")
	e.slack.SetGroup("SONCALL", "U3")
	e.slack.AddUser("U3", "Ana Lima")
	e.slack.AddUser("U4", "Eve Stranger")

	form := e.form("U1", "C1", "declare S3 from another workspace", "trig-team")
	form.Set("team_id", "T0BAD")
	if a := e.post(form); !strings.Contains(a.text, "this Slack workspace is not allowed") {
		t.Errorf("another workspace: %q", a.text)
	}
	if a := e.command("U4", "C1", "declare S3 from a stranger"); !strings.Contains(a.text, "only members of <#CSRE> or <!subteam^SONCALL> may act") {
		t.Errorf("a stranger: %q", a.text)
	}
	if n := e.count(); n != 0 {
		t.Fatalf("refused people opened %d incidents", n)
	}
	if a := e.command("U1", "C1", "declare S3 by a channel member"); !strings.HasPrefix(a.text, "Declared INC-1") {
		t.Errorf("a member of the channel: %q", a.text)
	}
	if a := e.command("U3", "C1", "declare S3 by a group member"); !strings.HasPrefix(a.text, "Declared INC-2") {
		t.Errorf("a member of the group: %q", a.text)
	}
}

// Over Socket Mode: Responder connects with the app-level token, answers
// each envelope within Slack's 3 s with the reply as the acknowledgement's
// payload, acts once on an envelope Slack sends again, and connects again
// by itself when Slack drops the connection.
func TestSocketMode(t *testing.T) {
	e := newEnv(t, slackapp.Config{})
	e.startSocket(0)
	waitFor(t, e.slack, "a Socket Mode connection", func() bool { return e.slack.SocketConnections() == 1 })

	command := func(text, trigger, envelope string, retry int) (*slacktest.Ack, string) {
		t.Helper()
		payload := map[string]string{"team_id": team, "user_id": "U1", "channel_id": "C1", "command": "/incident", "text": text, "trigger_id": trigger}
		id, err := e.slack.Envelope("slash_commands", payload, envelope, retry)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := e.slack.WaitAck(id, retry+1, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var reply struct {
			ResponseType string `json:"response_type"`
			Text         string `json:"text"`
		}
		if len(ack.Payload) > 0 && string(ack.Payload) != "null" {
			if err := json.Unmarshal(ack.Payload, &reply); err != nil || reply.ResponseType != "ephemeral" {
				t.Errorf("ack payload %s is not an ephemeral reply", ack.Payload)
			}
		}
		return ack, reply.Text
	}
	_, text := command("declare S2 Orders API down", "trig-s1", "env-first", 0)
	if !strings.HasPrefix(text, "Declared INC-1 (S2): Orders API down") {
		t.Fatalf("declare over Socket Mode: %q", text)
	}
	if _, text := command("declare S2 Orders API down", "trig-s1", "env-first", 1); text != "" {
		t.Errorf("the envelope sent again: %q, want an empty acknowledgement", text)
	}
	if n := e.count(); n != 1 {
		t.Errorf("%d incidents after a re-sent envelope, want 1", n)
	}

	// A button over Socket Mode: acknowledged with nothing to say.
	e.announced("INC-1", "C1")
	id, err := e.slack.Envelope("interactive", map[string]any{"type": "block_actions", "team": map[string]string{"id": team},
		"user": map[string]string{"id": "U1"}, "channel": map[string]string{"id": "C1"}, "trigger_id": "trig-sb",
		"actions": []map[string]string{{"action_id": "responder.ack", "block_id": "responder.actions", "value": "INC-1", "type": "button"}}}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := e.slack.WaitAck(id, 1, 10*time.Second); err != nil || (len(ack.Payload) > 0 && string(ack.Payload) != "null") {
		t.Errorf("the button's ack: %+v, %v", ack, err)
	}
	if v := e.incident("INC-1"); v.AcknowledgedBy != "Maria Schulz (Slack)" {
		t.Errorf("acknowledged by %q over Socket Mode", v.AcknowledgedBy)
	}

	e.slack.DropSockets()
	waitFor(t, e.slack, "a second Socket Mode connection", func() bool { return e.slack.SocketConnections() == 2 })
	if _, text := command("status INC-1", "trig-s2", "", 0); !strings.HasPrefix(text, "INC-1 (S2, acknowledged): Orders API down") {
		t.Errorf("status after the reconnection: %q", text)
	}
}

// startSocket runs the Socket Mode way in against the fake until the
// test ends; ackWithin 0 is the default bound.
func (e *env) startSocket(ackWithin time.Duration) {
	t := e.t
	t.Helper()
	const appToken = "xapp-FAKE-slackapp-test"
	e.slack.EnableSocketMode(appToken)
	client, err := slack.NewSocket(slack.Config{Token: botToken, APIURL: e.slack.URL()}, appToken)
	if err != nil {
		t.Fatal(err)
	}
	api, err := slack.NewApp(slack.Config{Token: botToken, APIURL: e.slack.URL()})
	if err != nil {
		t.Fatal(err)
	}
	app := slackapp.New(slackapp.Config{Teams: []string{team}}, e.svc, api, zerolog.Nop(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&slackapp.Socket{App: app, Client: client, AckWithin: ackWithin}).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the socket runner: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("the socket runner did not stop")
		}
	})
}

// Envelopes are acted on side by side: one stuck on a slow Slack call
// does not hold back the acknowledgement of the next.
func TestSocketModeActsOnEnvelopesAtOnce(t *testing.T) {
	e := newEnv(t, slackapp.Config{})
	e.slack.AddUser("U3", "Lena Vogel")
	e.startSocket(time.Minute)
	waitFor(t, e.slack, "a Socket Mode connection", func() bool { return e.slack.SocketConnections() == 1 })
	send := func(user, text, trigger string) string {
		t.Helper()
		id, err := e.slack.Envelope("slash_commands", map[string]string{"team_id": team, "user_id": user, "channel_id": "C1",
			"command": "/incident", "text": text, "trigger_id": trigger}, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if _, err := e.slack.WaitAck(send("U1", "declare S3 First", "trig-1"), 1, 10*time.Second); err != nil {
		t.Fatal(err) // Maria's name is known from now on
	}
	release := e.slack.Hold(slacktest.MethodUsersInfo)
	defer release()
	stuck := send("U3", "declare S3 Lena's, stuck on users.info", "trig-2")
	waitFor(t, e.slack, "the stuck envelope to reach users.info", func() bool { return e.slack.Waiting() == 1 })
	ack, err := e.slack.WaitAck(send("U1", "status INC-1", "trig-3"), 1, 5*time.Second)
	if err != nil {
		t.Fatalf("the next envelope waited for the stuck one: %v", err)
	}
	if !strings.Contains(string(ack.Payload), "INC-1 (S3, open): First") {
		t.Errorf("status: %s", ack.Payload)
	}
	if _, err := e.slack.WaitAck(stuck, 1, 0); err == nil {
		t.Errorf("the stuck envelope was acknowledged before Slack answered")
	}
	release()
	if ack, err := e.slack.WaitAck(stuck, 1, 10*time.Second); err != nil || !strings.Contains(string(ack.Payload), "Declared INC-2") {
		t.Errorf("the stuck envelope once released: %+v, %v", ack, err)
	}
}

// waitFor waits up to 10 s for cond on the fake's state, woken by each
// change the fake sees.
func waitFor(t *testing.T, fake *slacktest.Server, what string, cond func() bool) {
	t.Helper()
	if err := fake.WaitFor(10*time.Second, what, cond); err != nil {
		t.Fatal(err)
	}
}

// interact posts a signed interaction (a button, a modal) and returns
// the answer's status and body.
func (e *env) interact(payload any) (int, string) {
	e.t.Helper()
	raw, err := json.Marshal(payload)
	if err != nil {
		e.t.Fatal(err)
	}
	body := url.Values{"payload": {string(raw)}}.Encode()
	ts := time.Now().Unix()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/slack/interactivity", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", sign(body, ts, secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// press is a button of INC-1's root pressed by user.
func (e *env) press(user, action, teamID string) (int, string) {
	e.t.Helper()
	return e.pressValue(user, action, teamID, "INC-1")
}

// pressValue is a button with this value pressed by user.
func (e *env) pressValue(user, action, teamID, value string) (int, string) {
	e.t.Helper()
	e.prefix++
	return e.interact(map[string]any{"type": "block_actions", "team": map[string]string{"id": teamID}, "user": map[string]string{"id": user},
		"channel": map[string]string{"id": "C1"}, "trigger_id": fmt.Sprintf("trig-b%d", e.prefix),
		"actions": []map[string]string{{"action_id": action, "block_id": "responder.actions", "value": value, "type": "button"}}})
}

// submitView submits a modal with its inputs' values (block ID -> value).
func (e *env) submitView(user, callback, viewID string, values map[string]string) (int, string) {
	e.t.Helper()
	state := map[string]any{}
	for block, v := range values {
		state[block] = map[string]any{"value": map[string]string{"type": "plain_text_input", "value": v}}
	}
	return e.interact(map[string]any{"type": "view_submission", "team": map[string]string{"id": team}, "user": map[string]string{"id": user},
		"trigger_id": "trig-" + viewID, "view": map[string]any{"id": viewID, "hash": "h-" + viewID, "callback_id": callback,
			"private_metadata": "INC-1", "state": map[string]any{"values": state}}})
}

// The root's buttons act as the person who pressed (a refusal is told to
// them alone); Post update and Resolve open modals whose submission acts,
// once however often Slack sends it, and keeps the modal open with the
// reason beside the input when refused.
func TestButtonsAndModals(t *testing.T) {
	e := newEnv(t, slackapp.Config{})
	e.command("U1", "C1", "declare S2 Checkout returns 500")
	e.announced("INC-1", "C1")

	if status, body := e.press("U2", "responder.ack", team); status != http.StatusOK || body != "" {
		t.Fatalf("ack button: %d %q", status, body)
	}
	if v := e.incident("INC-1"); v.AcknowledgedBy != "Dev Patel (Slack)" {
		t.Errorf("acknowledged by %q", v.AcknowledgedBy)
	}
	e.press("U2", "responder.ack", team)
	e.press("U1", "responder.recovery_lead", team)
	e.press("U2", "responder.comms_lead", team)
	e.press("U1", "responder.comms_lead", team) // Maria is the recovery lead already
	e.press("U9", "responder.ack", "T0BAD")
	got := e.slack.Ephemerals()
	if len(got) != 3 || !strings.Contains(got[0].Text, "Not done: INC-1 was already acknowledged by Dev Patel (Slack)") || got[0].User != "U2" ||
		got[0].Channel != "C1" || !strings.Contains(got[1].Text, "different people") || !strings.Contains(got[2].Text, "workspace is not allowed") {
		t.Errorf("ephemeral refusals %+v", got)
	}
	if v := e.incident("INC-1"); v.Roles.RecoveryLead != "Maria Schulz" || v.Roles.CommsLead != "Dev Patel" {
		t.Errorf("roles %+v", v.Roles)
	}

	// The checklist's next step: done by the person who pressed; pressed
	// again (a stale root), or naming a step that is not there, refused.
	e.pressValue("U1", "responder.step", team, "INC-1 incident-process/1")
	e.pressValue("U2", "responder.step", team, "INC-1 incident-process/1")
	e.pressValue("U2", "responder.step", team, "INC-1 incident-process/99")
	steps := e.incident("INC-1").Checklist
	if len(steps) == 0 || steps[0].State != store.StepDone || steps[0].By != "Maria Schulz (Slack)" || steps[1].State != store.StepOpen {
		t.Errorf("checklist %+v", steps)
	}
	if got := e.slack.Ephemerals(); len(got) != 5 || !strings.Contains(got[3].Text, "Not done: step incident-process/1 of INC-1 is already done") ||
		!strings.Contains(got[4].Text, `"incident-process/99" is not a step of INC-1`) {
		t.Errorf("ephemeral refusals %+v", got[3:])
	}

	// Post update: a modal; a bad ETA keeps it open, saying why.
	e.press("U2", "responder.update", team)
	views := e.slack.Views()
	if len(views) != 1 || !strings.Contains(string(views[0].View), `"callback_id":"responder.update"`) ||
		!strings.Contains(string(views[0].View), `"private_metadata":"INC-1"`) {
		t.Fatalf("views opened %+v", views)
	}
	status, body := e.submitView("U2", "responder.update", "V1", map[string]string{"text": "rolled back", "eta": "soon"})
	if status != http.StatusOK || !strings.Contains(body, `"response_action":"errors"`) || !strings.Contains(body, `"eta":"Not done: eta: \"soon\" is not a time`) {
		t.Errorf("an update with a bad ETA: %d %s", status, body)
	}
	for range 2 { // Slack sends the same submission twice: one update
		if status, body := e.submitView("U2", "responder.update", "V2", map[string]string{"text": "rolled back 2.41.4", "eta": "45m"}); status != http.StatusOK || body != "" {
			t.Errorf("an update: %d %s", status, body)
		}
	}
	v := e.incident("INC-1")
	updates := 0
	for _, en := range v.Timeline {
		if en.Kind == "update" {
			updates++
		}
	}
	if updates != 1 || v.ETA == nil || !v.ETA.Equal(time.Date(2026, 12, 2, 3, 45, 0, 0, time.UTC)) {
		t.Errorf("%d updates, ETA %v; want one, at 03:45", updates, v.ETA)
	}

	e.press("U1", "responder.resolve", team)
	if views := e.slack.Views(); len(views) != 2 || !strings.Contains(string(views[1].View), `"callback_id":"responder.resolve"`) {
		t.Fatalf("views opened %+v", views)
	}
	if status, body := e.submitView("U1", "responder.resolve", "V3", map[string]string{"summary": "bad deploy rolled back"}); status != http.StatusOK || body != "" {
		t.Errorf("resolve: %d %s", status, body)
	}
	if v := e.incident("INC-1"); v.Status != store.StatusResolved || v.ResolvedBy != "Maria Schulz (Slack)" || v.Summary != "bad deploy rolled back" {
		t.Errorf("resolved %+v", v.Incident)
	}
	// Resolving again from a stale modal: refused beside the summary.
	if _, body := e.submitView("U1", "responder.resolve", "V4", map[string]string{"summary": "again"}); !strings.Contains(body, `"summary":"Not done:`) {
		t.Errorf("a second resolve: %s", body)
	}
}
