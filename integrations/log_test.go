package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// The log notifier writes one line per message: a drill's is marked
// [DRILL] as on every vendor's channel, and a join link loses its passcode.
func TestLogNotifier(t *testing.T) {
	var b bytes.Buffer
	n := NewLogNotifier(zerolog.New(&b))
	for _, drill := range []bool{false, true} {
		b.Reset()
		_, err := n.Notify(context.Background(), Message{Event: EventOpened, Text: "S2 incident opened: Checkout down",
			Incident: Incident{ID: "INC-7", Severity: "S2", Drill: drill, URL: "https://responder.example.com/incidents/INC-7",
				ZoomURL: "https://zoom.example/j/123?pwd=secret"}})
		if err != nil {
			t.Fatal(err)
		}
		var line struct {
			Message, URL, Zoom string
		}
		if err := json.Unmarshal(b.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v", b.String(), err)
		}
		if got := strings.HasPrefix(line.Message, "[DRILL] "); got != drill {
			t.Errorf("drill %v: message %q", drill, line.Message)
		}
		if line.URL != "https://responder.example.com/incidents/INC-7" || line.Zoom != "https://zoom.example/j/123" {
			t.Errorf("url %q, zoom %q", line.URL, line.Zoom)
		}
	}
}

// Each preview that has something to show follows the message's line, as
// its own line naming the vendor, its text indented.
func TestLogNotifierPreviews(t *testing.T) {
	var b bytes.Buffer
	slackish := Preview{Vendor: "slack", Render: func(m Message) string { return "[" + m.Incident.Severity + "] " + m.Text + "\n" + m.Incident.ZoomURL }}
	silent := Preview{Vendor: "email", Render: func(Message) string { return "" }}
	n := NewLogNotifier(zerolog.New(&b), slackish, silent)
	_, err := n.Notify(context.Background(), Message{Event: EventOpened, Text: "opened", Incident: Incident{ID: "INC-7", Severity: "S2",
		ZoomURL: "https://zoom.example/j/123?pwd=secret"}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want the message and one preview, got:\n%s", b.String())
	}
	var preview struct{ Message, Preview, Incident string }
	if err := json.Unmarshal([]byte(lines[1]), &preview); err != nil {
		t.Fatal(err)
	}
	if preview.Preview != "slack" || preview.Incident != "INC-7" || preview.Message != "slack would receive:\n    [S2] opened\n    https://zoom.example/j/123" {
		t.Errorf("preview line %+v", preview)
	}
	if strings.Contains(b.String(), "pwd=") {
		t.Errorf("a join link's passcode reached the log:\n%s", b.String())
	}
}
