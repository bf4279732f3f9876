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
		bot      = "xoxb-front-door-test"
		appToken = "xapp-1-A0FRONT-1-front"
		secret   = "front-door-signing-secret"
	)
	fake := slacktest.New(bot)
	t.Cleanup(fake.Close)
	fake.AddChannel("incidents")
	fake.AddUser("U1", "Maria Schulz")
	fake.EnableSocketMode(appToken)
	slackCfg := func(interactivity string) string {
		return fmt.Sprintf("notifications:\n  log: false\n  slack:\n    token: %s\n    api_url: %s\n    channel: \"#incidents\"\n    rate_per_second: 10\n    burst: 10\n    interactivity:\n%s",
			bot, fake.URL(), interactivity)
	}

	t.Run("socket", func(t *testing.T) {
		d := startDaemon(t, slackCfg(fmt.Sprintf("      mode: socket\n      app_token: %s\n      allowed_teams: [T0001]\n", appToken)), nil, "http")
		deadline := time.Now().Add(15 * time.Second)
		for fake.SocketConnections() == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the daemon did not connect over Socket Mode:\n%s", d.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
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

// waitRoot waits (bounded) for the root in #incidents whose text holds
// title to satisfy ok, and returns it.
func waitRoot(t *testing.T, fake *slacktest.Server, title string, ok func(slacktest.Message) bool) slacktest.Message {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, m := range fake.Messages("incidents") {
			if strings.Contains(m.Text, title) && ok(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no root of %q as wanted in #incidents: %+v", title, fake.Messages("incidents"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
