package email

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	texttemplate "text/template"
	"time"
)

// CustomerView is what a customer engineering template
// (notifications.email.customer_engineering.template_file) is given: the
// incident in words a person who talks to customers can pass on, without
// alert labels, runbooks or bridges. docs/integrations.md lists the fields.
type CustomerView struct {
	ID            string // INC-4
	Title         string
	Description   string
	Service       string // the incident's "service" label, if any
	Team          string
	Severity      string // S1..S4
	SeverityWord  string // critical, major, minor, low
	SeverityPlain string // "Critical, the highest of four levels"
	Status        string // open, acknowledged, resolved
	Resolved      bool
	Drill         bool   // an exercise: customers are not affected
	Update        string // what this mail tells: "Customers are affected: ...", "Expected recovery: ...", "Resolved: ..."
	Since         string // when the incident opened (UTC, local time beside it)
	At            string // when this mail was sent
	ResolvedAt    string // empty until resolved
	Duration      string // how long it lasted, once resolved
	Summary       string // the resolution summary
	URL           string // the incident page
	Zone          string // the zone of the local times; empty when times are UTC only
}

// customerTemplate is customer engineering's own mail: the template's body
// is the mail's text, and its "subject" template, when defined, the
// subject.
type customerTemplate struct {
	body *texttemplate.Template
}

// CheckCustomerTemplate reports what is wrong with a customer engineering
// template, as New would (check-config calls it).
func CheckCustomerTemplate(src string) error {
	_, err := parseCustomerTemplate(src)
	return err
}

// parseCustomerTemplate reads a customer engineering template
// (text/template) and tries it on an ongoing, a resolved and a drill
// incident, so that a field that does not exist or a template that fails is
// found when the configuration loads, not when customers are affected.
func parseCustomerTemplate(src string) (*customerTemplate, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("the template is empty")
	}
	body, err := texttemplate.New("customer").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, err
	}
	ct := &customerTemplate{body: body}
	at := time.Date(2026, 3, 4, 2, 10, 0, 0, time.UTC)
	ongoing := CustomerView{ID: "INC-4", Title: "Checkout fails", Service: "checkout", Team: "payments", Severity: "S1",
		SeverityWord: "critical", SeverityPlain: "Critical, the highest of four levels", Status: "open",
		Update: "Customers are affected: Checkout fails", Since: at.Format(time.RFC3339), At: at.Format(time.RFC3339),
		URL: "https://responder.example.com/incidents/INC-4"}
	resolved := ongoing
	resolved.Status, resolved.Resolved, resolved.ResolvedAt, resolved.Duration, resolved.Summary =
		"resolved", true, at.Add(time.Hour).Format(time.RFC3339), "1h0m0s", "rolled back"
	drill := ongoing
	drill.Drill = true
	for _, v := range []CustomerView{ongoing, resolved, drill} {
		if _, _, err := ct.render(v); err != nil {
			return nil, err
		}
	}
	return ct, nil
}

// render writes the subject and the text of the mail for v. A drill's
// subject starts with [DRILL] and its text says it is an exercise, whatever
// the template says.
func (ct *customerTemplate) render(v CustomerView) (subject, text string, err error) {
	var b bytes.Buffer
	if err := ct.body.Execute(&b, v); err != nil {
		return "", "", err
	}
	text = b.String()
	if strings.TrimSpace(text) == "" {
		return "", "", errors.New("the template wrote an empty mail")
	}
	if t := ct.body.Lookup("subject"); t != nil {
		var s bytes.Buffer
		if err := t.Execute(&s, v); err != nil {
			return "", "", err
		}
		subject = oneLine(s.String())
	}
	if subject == "" {
		subject = fmt.Sprintf("[Customer impact] %s (%s): %s", v.ID, v.SeverityWord, v.Title)
		if v.Resolved {
			subject = fmt.Sprintf("[Customer impact] %s resolved: %s", v.ID, v.Title)
		}
	}
	if v.Drill {
		if !strings.HasPrefix(subject, "[DRILL]") {
			subject = "[DRILL] " + subject
		}
		if !strings.Contains(text, "DRILL") {
			text = "[DRILL] This is a drill: an exercise, not a real incident. Customers are not affected.\n\n" + text
		}
	}
	return subject, text, nil
}

// customerView is v as a customer engineering template sees it.
func customerView(v view) CustomerView {
	return CustomerView{
		ID: v.ID, Title: v.Title, Description: v.Description, Service: v.Service, Team: v.Team,
		Severity: v.Severity, SeverityWord: v.SeverityWord, SeverityPlain: v.SeverityPlain, Status: v.Status,
		Resolved: v.Resolved, Drill: v.Drill, Update: v.Text, Since: v.OpenedAt, At: v.At,
		ResolvedAt: v.ResolvedAt, Duration: v.Duration, Summary: v.Summary, URL: v.URL, Zone: v.Zone,
	}
}
