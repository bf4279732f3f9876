package slack

import (
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/responder-sre/responder/integrations"
)

// Preview is, for the log notifier, the text Slack would show for a
// message: the root announcement when an incident opens (or customer
// engineering is told), a reply in the thread for what follows. Calls to
// the pager and the bridge are not Slack's.
func Preview(clk integrations.Clock) integrations.Preview {
	return integrations.Preview{Vendor: "slack", Render: func(m integrations.Message) string {
		var blocks []slackgo.Block
		switch m.Event {
		case integrations.EventPage, integrations.EventAddResponder, integrations.EventClose, integrations.EventBridge:
			return ""
		case integrations.EventOpened, integrations.EventCustomer, integrations.EventEscalated, integrations.EventRootUpdate:
			blocks, _ = rootMessage(m, clk, false)
		default:
			m.Thread = "thread" // a reply in the incident's thread
			blocks, _ = replyMessage(m, clk)
		}
		return blockText(blocks)
	}}
}

// blockText is the text of blocks, one block after another: a header, a
// section's text and its fields ("*Name*" and the value on one line), a
// context's texts.
func blockText(blocks []slackgo.Block) string {
	var lines []string
	add := func(t *slackgo.TextBlockObject) {
		if t != nil && strings.TrimSpace(t.Text) != "" {
			lines = append(lines, strings.TrimSpace(t.Text))
		}
	}
	for _, b := range blocks {
		switch b := b.(type) {
		case *slackgo.HeaderBlock:
			add(b.Text)
		case *slackgo.SectionBlock:
			add(b.Text)
			var fields []string
			for _, f := range b.Fields {
				fields = append(fields, strings.Replace(f.Text, "\n", ": ", 1))
			}
			if len(fields) > 0 {
				lines = append(lines, strings.Join(fields, " | "))
			}
		case *slackgo.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*slackgo.TextBlockObject); ok {
					add(t)
				}
			}
		}
	}
	return strings.Join(lines, "\n")
}
