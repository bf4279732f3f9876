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
