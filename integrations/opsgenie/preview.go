package opsgenie

import (
	"fmt"
	"strings"

	"github.com/responder-sre/responder/integrations"
)

// Preview is, for the log notifier, what OpsGenie would be asked to do for
// a page (the alert: priority, responder, message, the start of its
// description), a responder added, or a close.
func Preview() integrations.Preview {
	return integrations.Preview{Vendor: "opsgenie", Render: func(m integrations.Message) string {
		inc := m.Incident
		switch m.Event {
		case integrations.EventPage:
			lines := []string{fmt.Sprintf("alert %s for %s: %s", orP3(priority(inc.Severity)), m.Target, message(inc))}
			for i, l := range strings.Split(strings.TrimSpace(description(inc)), "\n") {
				if i == 6 {
					break
				}
				lines = append(lines, l)
			}
			return strings.Join(lines, "\n")
		case integrations.EventAddResponder:
			return fmt.Sprintf("add %s to the alert of %s: %s", m.Target, inc.ID, message(inc))
		case integrations.EventClose:
			return fmt.Sprintf("close the alert of %s: %s", inc.ID, message(inc))
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
