package slack

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"github.com/responder-sre/responder/integrations"
)

// FuzzMessages feeds arbitrary incident text to every message the package
// builds and checks what Slack would refuse or be fooled by: a block over its
// limits, or a mention or link that the text did not ask for.
func FuzzMessages(f *testing.F) {
	f.Add("High error rate", "5xx above 5%", "alertname", "HighErrorRate", "https://runbooks.example.com/x", "web-1", uint8(3), false)
	f.Add("<!channel>", "<@U1> & <#C1>", "<!here>", "a`b<c>", "https://x.example/a|<!channel>", "<!everyone>", uint8(40), true)
	f.Add(strings.Repeat("t", 300), strings.Repeat("&", 4000), strings.Repeat("k", 300), strings.Repeat("<", 3000), "javascript:x", strings.Repeat(">", 500), uint8(255), true)
	f.Fuzz(func(t *testing.T, title, text, key, val, link, line string, nLines uint8, drill bool) {
		lines := make([]string, int(nLines))
		for i := range lines {
			lines[i] = line
		}
		inc := integrations.Incident{
			ID: "INC-1", Title: title, Description: text, Summary: text, Severity: "S1", Status: "resolved",
			Team: val, Source: val, AcknowledgedBy: val, ResolvedBy: val,
			Labels:     map[string]string{key: val, "alertname": val, "service": text},
			RunbookURL: link, SourceURL: link, ZoomURL: link, URL: link, Drill: drill,
		}
		m := integrations.Message{Event: integrations.EventOpened, Text: text, Lines: lines, Incident: inc}
		withButtons := func(m integrations.Message, clk integrations.Clock) ([]slackgo.Block, string) {
			return rootMessage(m, clk, true)
		}
		check(t, "root", drill, withButtons)(m)
		m.Incident.Status = "open"
		m.Incident.NextStepID, m.Incident.NextStep = "incident-process/1", text
		check(t, "open root with buttons", drill, withButtons)(m)
		m.Incident.Status = "resolved"
		m.Event = integrations.EventCustomer
		check(t, "customer root", drill, withButtons)(m)
		m.Event = "anything_" + key
		check(t, "unthreaded reply", drill, replyMessage)(m)
		m.Thread = "1700000000.000001"
		check(t, "reply", drill, replyMessage)(m)
	})
}

func check(t *testing.T, what string, drill bool, build func(integrations.Message, integrations.Clock) ([]slackgo.Block, string)) func(integrations.Message) {
	return func(m integrations.Message) {
		blocks, fallback := build(m, integrations.Clock{Zone: sydney})
		if len(blocks) == 0 || len(blocks) > maxBlocks {
			t.Fatalf("%s: %d blocks", what, len(blocks))
		}
		raw, err := json.Marshal(blocks)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var decoded []map[string]any
		if err := json.Unmarshal(raw, &decoded); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var first string
		textOf := func(v any, limit int, where string) {
			o, _ := v.(map[string]any)
			s, _ := o["text"].(string)
			n := utf8.RuneCountInString(s)
			if n < 1 || n > limit {
				t.Errorf("%s: %s text of %d characters (limit %d)", what, where, n, limit)
			}
			if first == "" {
				first = s
			}
			if o["type"] == "mrkdwn" {
				inertOutsideLinks(t, what+" "+where, s)
			}
		}
		for _, b := range decoded {
			switch b["type"] {
			case "header":
				textOf(b["text"], maxHeaderText, "header")
			case "section":
				if b["text"] != nil {
					textOf(b["text"], maxSectionText, "section")
				}
				fields, _ := b["fields"].([]any)
				if len(fields) > maxFields {
					t.Errorf("%s: %d fields", what, len(fields))
				}
				for _, fl := range fields {
					textOf(fl, maxFieldText, "field")
				}
			case "context":
				els, _ := b["elements"].([]any)
				if len(els) == 0 || len(els) > 10 {
					t.Errorf("%s: context of %d elements", what, len(els))
				}
				for _, e := range els {
					textOf(e, maxSectionText, "context")
				}
			case "actions":
				// The front door's buttons: each with an action and the
				// incident's ID as its value, at most 25 (Slack's limit).
				els, _ := b["elements"].([]any)
				if len(els) == 0 || len(els) > 25 {
					t.Errorf("%s: actions of %d elements", what, len(els))
				}
				for _, e := range els {
					o, _ := e.(map[string]any)
					value, _ := o["value"].(string)
					if o["type"] != "button" || o["action_id"] == "" || (value != "INC-1" && !strings.HasPrefix(value, "INC-1 ")) {
						t.Errorf("%s: button %v", what, o)
					}
				}
			default:
				t.Errorf("%s: unexpected block %v", what, b["type"])
			}
		}
		if n := utf8.RuneCountInString(fallback); n < 1 || n > maxFallback {
			t.Errorf("%s: fallback text of %d characters", what, n)
		}
		inertOutsideLinks(t, what+" fallback", fallback)
		if drill && (!strings.HasPrefix(first, drillPrefix) || !strings.HasPrefix(fallback, drillPrefix)) {
			t.Errorf("%s: drill without prefix: %q / %q", what, first, fallback)
		}
	}
}

// inertOutsideLinks fails unless every "<" in s opens one of our links,
// <http(s)://...|label>, with no "<" inside it.
func inertOutsideLinks(t *testing.T, what, s string) {
	t.Helper()
	for i := strings.IndexByte(s, '<'); i >= 0; i = strings.IndexByte(s, '<') {
		s = s[i:]
		end := strings.IndexByte(s, '>')
		if (!strings.HasPrefix(s, "<https://") && !strings.HasPrefix(s, "<http://")) || end < 0 ||
			strings.Contains(s[1:end], "<") || !strings.Contains(s[:end], "|") {
			t.Fatalf("%s: live control sequence in %q", what, s[:min(len(s), 80)])
		}
		s = s[end+1:]
	}
}

// sydney is a zone far from UTC: the fuzzed messages show their times
// beside it.
var sydney = time.FixedZone("AEDT", 11*3600)
