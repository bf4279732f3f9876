package opsgenie

import (
	"fmt"
	"strings"

	"github.com/responder-sre/responder/integrations"
)

// Preview is, for the log notifier, what OpsGenie or JSM would be asked to
// do for a page (the alert: priority, responder, message, the start of its
// description), a responder added, or a close. The log's page intents name
// the pager and the responder in their target ("jsm team:sre").
func Preview() integrations.Preview {
	return integrations.Preview{Vendor: "pager", Render: func(m integrations.Message) string {
		pager, who := integrations.PageTargetOf(m.Target)
		if pager != integrations.ChannelOpsGenie && pager != integrations.ChannelJSM {
			return ""
		}
		inc := m.Incident
		switch m.Event {
		case integrations.EventPage:
			lines := []string{fmt.Sprintf("%s: alert %s for %s: %s", pager, orP3(priority(inc.Severity)), who, message(inc))}
			for i, l := range strings.Split(strings.TrimSpace(description(inc)), "\n") {
				if i == 6 {
					break
				}
				lines = append(lines, l)
			}
			return strings.Join(lines, "\n")
		case integrations.EventAddResponder:
			return fmt.Sprintf("%s: add %s to the alert of %s: %s", pager, who, inc.ID, message(inc))
		}
		return ""
	}}
}

func orP3[T ~string](p T) T {
	if p == "" {
		return "P3"
	}
	return p
}
