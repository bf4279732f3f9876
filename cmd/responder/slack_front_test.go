package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/responder-sre/responder/integrations/slack/slacktest"
)

// The daemon as Slack's front door, both ways in, as configured: over
// Socket Mode it connects out with the app-level token and answers an
// envelope with the reply; over HTTP it serves the signed request URL.
// Either way the incident is declared as the Slack user, and its root is
// posted in the channel.
func TestSlackFrontDoor(t *testing.T) {
	const (
		bot      = "xoxb-FAKE-front-door-test"
		appToken = "xapp-FAKE-front-door-test"
		secret   = "front-door-signing-secret"
	)
	fake := slacktest.New(bot)
	t.Cleanup(fake.Close)
	fake.AddChannel("incidents")
	fake.AddUser("U1", "Maria Schulz")
	fake.AddUser("U2", "Dev Patel")
	fake.EnableSocketMode(appToken)
	slackCfg := func(interactivity string) string {
		return fmt.Sprintf("notifications:\n  log: false\n  slack:\n    token: %s\n    api_url: %s\n    channel: \"#incidents\"\n    rate_per_second: 10\n    burst: 10\n    interactivity:\n%s",
			bot, fake.URL(), interactivity)
	}

	t.Run("socket", func(t *testing.T) {
		d := startDaemon(t, slackCfg(fmt.Sprintf("      mode: socket\n      app_token: %s\n      allowed_teams: [T0001]\n", appToken)), nil, "http")
		if err := fake.WaitFor(15*time.Second, "a Socket Mode connection", func() bool { return fake.SocketConnections() > 0 }); err != nil {
			t.Fatalf("the daemon did not connect over Socket Mode: %v\n%s", err, d.logs.String())
		}
		id, err := fake.Envelope("slash_commands", map[string]string{"team_id": "T0001", "user_id": "U1", "channel_id": "C1",
			"command": "/incident", "text": "declare S2 Orders API down", "trigger_id": "trig-socket"}, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := fake.WaitAck(id, 1, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(ack.Payload), "Declared INC-1 (S2): Orders API down") {
			t.Errorf("ack payload %s", ack.Payload)
		}
		if body := getBody(t, d.client, d.base+"/api/v1/incidents/INC-1"); !strings.Contains(body, `"declared_by":"Maria Schulz (Slack)"`) {
			t.Errorf("the incident: %s", body)
		}
		runThroughButtons(t, d, fake)
		if strings.Contains(d.logs.String(), appToken) {
			t.Errorf("the app token is in the log")
		}
	})

	t.Run("http", func(t *testing.T) {
		d := startDaemon(t, slackCfg(fmt.Sprintf("      mode: http\n      signing_secret: %s\n      allowed_teams: [T0001]\n", secret)), nil, "http")
		body := url.Values{"team_id": {"T0001"}, "user_id": {"U1"}, "channel_id": {"C1"}, "command": {"/incident"},
			"text": {"declare S3 Disk full on db-2"}, "trigger_id": {"trig-http"}}.Encode()
		post := func(signature string) (int, string) {
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			req, _ := http.NewRequest(http.MethodPost, d.base+"/api/v1/slack/commands", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Slack-Request-Timestamp", ts)
			if signature == "" {
				mac := hmac.New(sha256.New, []byte(secret))
				_, _ = io.WriteString(mac, "v0:"+ts+":"+body)
				signature = "v0=" + hex.EncodeToString(mac.Sum(nil))
			}
			req.Header.Set("X-Slack-Signature", signature)
			resp, err := d.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if status, b := post("v0=" + strings.Repeat("0", 64)); status != http.StatusUnauthorized {
			t.Errorf("a forged request: %d %s", status, b)
		}
		status, b := post("")
		var reply struct{ Text string }
		_ = json.Unmarshal([]byte(b), &reply)
		if status != http.StatusOK || !strings.HasPrefix(reply.Text, "Declared INC-1 (S3): Disk full on db-2") {
			t.Fatalf("a signed command: %d %s", status, b)
		}
		// The root is announced in the channel as for any incident, with
		// the buttons.
		root := waitRoot(t, fake, "Disk full on db-2", func(m slacktest.Message) bool { return strings.Contains(string(m.Blocks), `"responder.ack"`) })
		// The root offers the checklist's next step.
		if !strings.Contains(string(root.Blocks), `"INC-1 incident-process/1"`) || !strings.Contains(string(root.Blocks), "Next step") {
			t.Errorf("the root offers no next step: %s", root.Blocks)
		}
		press := func(action, value, trigger string) {
			t.Helper()
			payload, _ := json.Marshal(map[string]any{"type": "block_actions", "team": map[string]string{"id": "T0001"}, "user": map[string]string{"id": "U1"},
				"channel": map[string]string{"id": "C1"}, "trigger_id": trigger, "message": map[string]string{"ts": root.TS},
				"actions": []map[string]string{{"action_id": action, "block_id": "responder.actions", "value": value, "type": "button"}}})
			body := url.Values{"payload": {string(payload)}}.Encode()
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			req, _ := http.NewRequest(http.MethodPost, d.base+"/api/v1/slack/interactivity", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Slack-Request-Timestamp", ts)
			mac := hmac.New(sha256.New, []byte(secret))
			_, _ = io.WriteString(mac, "v0:"+ts+":"+body)
			req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
			resp, err := d.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("the button %s: %d", action, resp.StatusCode)
			}
		}
		// Pressing Acknowledge acts as the person, and the root is edited:
		// acknowledged, without the Acknowledge button.
		press("responder.ack", "INC-1", "trig-button")
		waitRoot(t, fake, "Disk full on db-2", func(m slacktest.Message) bool {
			return m.Edits > 0 && !strings.Contains(string(m.Blocks), `"responder.ack"`) && strings.Contains(string(m.Blocks), `"responder.resolve"`) &&
				strings.Contains(string(m.Blocks), "acknowledged")
		})
		// Pressing the step's button marks it done by the person, and the
		// root moves on to the next step.
		press("responder.step", "INC-1 incident-process/1", "trig-step")
		waitRoot(t, fake, "Disk full on db-2", func(m slacktest.Message) bool {
			return strings.Contains(string(m.Blocks), `"INC-1 incident-process/2"`) && strings.Contains(string(m.Blocks), "Inform the team")
		})
		if body := getBody(t, d.client, d.base+"/api/v1/incidents/INC-1"); !strings.Contains(body, `"by":"Maria Schulz (Slack)"`) ||
			!strings.Contains(body, `step incident-process/1 \"Determine the severity`) {
			t.Errorf("the step is not marked by the person: %s", body)
		}
	})
}

// runThroughButtons runs INC-1, declared from Slack, to its end with the
// root's buttons and modals over Socket Mode: a person of another
// workspace changes nothing; a re-sent envelope acts once; the incident,
// its timeline, the thread and the edited root show each step.
func runThroughButtons(t *testing.T, d *daemon, fake *slacktest.Server) {
	t.Helper()
	const title = "Orders API down"
	waitRoot(t, fake, title, func(m slacktest.Message) bool { return strings.Contains(string(m.Blocks), `"responder.ack"`) })
	n := 0
	interact := func(payload map[string]any, retry int) json.RawMessage {
		t.Helper()
		n++
		envelope := fmt.Sprintf("env-button-%d", n)
		for try := range retry + 1 {
			if _, err := fake.Envelope("interactive", payload, envelope, try); err != nil {
				t.Fatal(err)
			}
		}
		ack, err := fake.WaitAck(envelope, retry+1, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Payload
	}
	press := func(team, user, action string) {
		t.Helper()
		interact(map[string]any{"type": "block_actions", "team": map[string]string{"id": team}, "user": map[string]string{"id": user},
			"channel": map[string]string{"id": "C1"}, "trigger_id": fmt.Sprintf("trig-press-%d", n),
			"actions": []map[string]string{{"action_id": action, "block_id": "responder.actions", "value": "INC-1", "type": "button"}}}, 0)
	}
	submit := func(user, callback string, values map[string]string, retry int) json.RawMessage {
		t.Helper()
		state := map[string]any{}
		for block, v := range values {
			state[block] = map[string]any{"value": map[string]string{"type": "plain_text_input", "value": v}}
		}
		return interact(map[string]any{"type": "view_submission", "team": map[string]string{"id": "T0001"}, "user": map[string]string{"id": user},
			"view": map[string]any{"id": "V-" + callback, "hash": "h1", "callback_id": callback, "private_metadata": "INC-1",
				"state": map[string]any{"values": state}}}, retry)
	}
	type view struct {
		Status         string `json:"status"`
		AcknowledgedBy string `json:"acknowledged_by"`
		ResolvedBy     string `json:"resolved_by"`
		ETA            string `json:"eta"`
		Roles          struct {
			Recovery string `json:"recovery_lead"`
			Comms    string `json:"comms_lead"`
		} `json:"roles"`
		Timeline []struct{ Kind, Text, By string } `json:"timeline"`
	}
	get := func() view {
		t.Helper()
		var v view
		if err := json.Unmarshal([]byte(getBody(t, d.client, d.base+"/api/v1/incidents/INC-1")), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	before := get()
	press("T0BAD", "U9", "responder.ack")
	if got := fake.Ephemerals(); len(got) != 1 || got[0].User != "U9" || !strings.Contains(got[0].Text, "workspace is not allowed") {
		t.Errorf("the refused person was told %+v", got)
	}
	// (Delivery adds notification entries meanwhile; people's do not.)
	people := func(v view) (n int) {
		for _, e := range v.Timeline {
			if e.Kind != "notification" {
				n++
			}
		}
		return n
	}
	if after := get(); after.Status != before.Status || people(after) != people(before) {
		t.Errorf("a refused press changed the incident: %+v, was %+v", after, before)
	}

	press("T0001", "U1", "responder.ack")
	press("T0001", "U1", "responder.recovery_lead")
	press("T0001", "U2", "responder.comms_lead")
	press("T0001", "U2", "responder.update")
	if views := fake.Views(); len(views) != 1 || !strings.Contains(string(views[0].View), `"callback_id":"responder.update"`) {
		t.Fatalf("the update modal: %+v", views)
	}
	if ack := submit("U2", "responder.update", map[string]string{"text": "rolled back 2.41.4", "eta": "45m"}, 1); len(ack) > 0 && string(ack) != "null" {
		t.Errorf("the update's acknowledgement %s", ack)
	}
	press("T0001", "U1", "responder.resolve")
	if views := fake.Views(); len(views) != 2 || !strings.Contains(string(views[1].View), `"callback_id":"responder.resolve"`) {
		t.Fatalf("the resolve modal: %+v", views)
	}
	submit("U1", "responder.resolve", map[string]string{"summary": "bad deploy rolled back"}, 0)

	v := get()
	updates := 0
	for _, e := range v.Timeline {
		if e.Kind == "update" {
			updates++
			if e.By != "Dev Patel (Slack)" || !strings.Contains(e.Text, "rolled back 2.41.4") {
				t.Errorf("the update in the timeline: %+v", e)
			}
		}
	}
	if v.Status != "resolved" || v.AcknowledgedBy != "Maria Schulz (Slack)" || v.ResolvedBy != "Maria Schulz (Slack)" || v.ETA == "" ||
		v.Roles.Recovery != "Maria Schulz" || v.Roles.Comms != "Dev Patel" || updates != 1 {
		t.Errorf("the incident after the buttons (%d updates): %+v", updates, v)
	}
	// The thread says each step; the root ends resolved, without buttons.
	root := waitRoot(t, fake, title, func(m slacktest.Message) bool {
		return strings.Contains(string(m.Blocks), "resolved by Maria Schulz (Slack)") && !strings.Contains(string(m.Blocks), `"actions"`) &&
			slices.ContainsFunc(m.Replies, func(r slacktest.Message) bool { return strings.HasPrefix(r.Text, "resolved by") })
	})
	var thread []string
	for _, r := range root.Replies {
		thread = append(thread, r.Text)
	}
	all := strings.Join(thread, "\n")
	for _, want := range []string{"acknowledged by Maria Schulz (Slack)", "Maria Schulz", "rolled back 2.41.4", "bad deploy rolled back"} {
		if !strings.Contains(all, want) {
			t.Errorf("the thread lacks %q:\n%s", want, all)
		}
	}
}

// waitRoot waits (bounded, woken by the fake's changes) for the root in #incidents whose text holds
// title to satisfy ok, and returns it.
func waitRoot(t *testing.T, fake *slacktest.Server, title string, ok func(slacktest.Message) bool) slacktest.Message {
	t.Helper()
	var root slacktest.Message
	err := fake.WaitFor(15*time.Second, "the root of "+title, func() bool {
		for _, m := range fake.Messages("incidents") {
			if strings.Contains(m.Text, title) && ok(m) {
				root = m
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("%v: #incidents holds %+v", err, fake.Messages("incidents"))
	}
	return root
}
