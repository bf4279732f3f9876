package email

import (
	"fmt"
	"strings"
	"time"

	"github.com/responder-sre/responder/integrations"
)

// previewLines is how many lines of a mail's text the log shows.
const previewLines = 8

// Preview is, for the log notifier, the subject and first lines of the mail
// sent when an incident opens, is resolved, or customer engineering is
// told (with customerTemplate, their own template, when given).
func Preview(clk integrations.Clock, customerTemplate string) (integrations.Preview, error) {
	text, html, err := parseTemplates()
	if err != nil {
		return integrations.Preview{}, err
	}
	n := &Notifier{cfg: Config{Clock: clk}, text: text, html: html, now: time.Now}
	if customerTemplate != "" {
		if n.customer, err = parseCustomerTemplate(customerTemplate); err != nil {
			return integrations.Preview{}, fmt.Errorf("customer_engineering.template_file: %w", err)
		}
	}
	return integrations.Preview{Vendor: "email", Render: func(m integrations.Message) string {
		switch m.Event {
		case integrations.EventOpened, integrations.EventResolved, integrations.EventCustomer:
		default:
			return ""
		}
		v, body, _, err := n.render(m)
		if err != nil {
			return "(the mail could not be written: " + err.Error() + ")"
		}
		lines := []string{"Subject: " + v.Subject}
		for _, l := range strings.Split(body, "\n") {
			if l = strings.TrimRight(l, " \r"); strings.TrimSpace(l) != "" && len(lines) <= previewLines {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}}, nil
}
