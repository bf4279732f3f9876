package pagerduty

import (
	"fmt"
	"strings"

	"github.com/responder-sre/responder/integrations"
)

// Preview is, for the log notifier, what PagerDuty would be sent for a
// page: the trigger (severity, summary, links) and whom Responder asks to
// join. The log's page intents name the pager and the responder in their
// target ("pagerduty user:PLEAD01").
func Preview() integrations.Preview {
	return integrations.Preview{Vendor: "pager", Render: func(m integrations.Message) string {
		pager, who := integrations.PageTargetOf(m.Target)
		if pager != integrations.ChannelPagerDuty || !integrations.IsPage(m.Event) {
			return ""
		}
		inc := m.Incident
		var lines []string
		if m.Event == integrations.EventPage && inc.Source != integrations.ChannelPagerDuty {
			lines = append(lines, fmt.Sprintf("pagerduty: trigger (%s) %s", severity(inc.Severity), summary(inc)))
			for _, l := range []string{inc.URL, inc.ZoomURL} {
				if l != "" {
					lines = append(lines, "  link: "+l)
				}
			}
		}
		if who != "" && who != Label {
			lines = append(lines, fmt.Sprintf("pagerduty: ask %s to join the incident of %s", who, inc.ID))
		}
		return strings.Join(lines, "\n")
	}}
}
