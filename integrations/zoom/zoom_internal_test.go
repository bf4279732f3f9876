package zoom

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/responder-sre/responder/integrations"
)

// The meeting body is built from incident text that comes from alerts:
// whatever it holds, the body encodes and stays within Zoom's limits.
func FuzzMeetingFor(f *testing.F) {
	f.Add("INC-4", "S1", "Checkout is down", "https://responder.example/incidents/INC-4", false)
	f.Add("", "", strings.Repeat("ü", 300), "", true)
	f.Add("INC-1", "S2", "\xff\xfe broken utf-8", "javascript:alert(1)", true)
	f.Fuzz(func(t *testing.T, id, sev, title, link string, drill bool) {
		m := integrations.Message{Event: integrations.EventBridge, At: time.Unix(0, 0), Incident: integrations.Incident{
			ID: id, Severity: sev, Title: title, URL: link, RunbookURL: link, Drill: drill,
		}}
		mt := meetingFor(m)
		if n := utf8.RuneCountInString(mt.Topic); n > maxTopic || !utf8.ValidString(mt.Topic) {
			t.Errorf("topic has %d characters, valid UTF-8 %v", n, utf8.ValidString(mt.Topic))
		}
		if n := utf8.RuneCountInString(mt.Agenda); n > maxAgenda || !utf8.ValidString(mt.Agenda) {
			t.Errorf("agenda has %d characters", n)
		}
		if _, err := json.Marshal(mt); err != nil {
			t.Errorf("marshal: %v", err)
		}
	})
}

// joinURL decodes Zoom's answer, outside input: it never panics and only
// returns an absolute http(s) link.
func FuzzJoinURL(f *testing.F) {
	f.Add([]byte(`{"id":85746065400,"join_url":"https://zoom.example/j/85746065400"}`))
	f.Add([]byte(`{"join_url":""}`))
	f.Add([]byte(`{"join_url":"/relative"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := joinURL(body)
		if err != nil {
			if got != "" {
				t.Errorf("error %v with link %q", err, got)
			}
			return
		}
		u, perr := url.Parse(got)
		if perr != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			t.Errorf("returned %q", got)
		}
	})
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven chars", 10, "eleven ch…"},
		{"ééééé", 3, "éé…"},
		{"a\xffb", 10, "a\uFFFDb"},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.limit); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
	}
}
