package email

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"net/mail"
	"net/url"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/responder-sre/responder/integrations"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// Templates, by the file that defines them: incident.* for the SRE mail of
// every event, customer.* for customer engineering (event "customer").
const (
	tmplIncident = "incident"
	tmplCustomer = "customer"
)

func parseTemplates() (*texttemplate.Template, *htmltemplate.Template, error) {
	text, err := texttemplate.New("text").Option("missingkey=error").ParseFS(templateFS, "templates/*.txt.tmpl")
	if err != nil {
		return nil, nil, fmt.Errorf("email text templates: %w", err)
	}
	html, err := htmltemplate.New("html").Option("missingkey=error").ParseFS(templateFS, "templates/*.html.tmpl")
	if err != nil {
		return nil, nil, fmt.Errorf("email html templates: %w", err)
	}
	return text, html, nil
}

// view is what the templates show: every value already in words, times in
// UTC RFC 3339 with the display zone's local time beside them.
type view struct {
	Subject  string
	Headline string // the first line of both parts; "[DRILL] ..." in a drill
	Drill    bool

	ID, Title, Description string
	Severity               string // S1
	SeverityWord           string // critical
	SeverityPlain          string // for customer engineering: "Critical, the highest of four levels"
	Status                 string
	Team                   string
	Service                string // the "service" label, for customer engineering
	Event                  string // opened, acknowledged, ...
	Text                   string // what happened, one line
	Lines                  []string
	By                     string
	Labels                 []label

	RunbookURL, SourceURL, ZoomURL, URL string

	CustomerImpact, OutOfHours bool
	Resolved                   bool

	OpenedAt, At, ResolvedAt, Duration  string
	Zone                                string // the display zone beside UTC; empty for UTC only
	AcknowledgedBy, ResolvedBy, Summary string
	AlertsFiring, AlertsTotal           int
}

type label struct{ Key, Value string }

// severityWords is a severity in a word, and in a few for customer
// engineering.
func severityWords(sev string) (word, plain string) {
	switch sev {
	case "S1":
		return "critical", "Critical, the highest of four levels"
	case "S2":
		return "major", "Major, the second of four levels"
	case "S3":
		return "minor", "Minor, the third of four levels"
	case "S4":
		return "low", "Low, the lowest of four levels"
	}
	return "unknown", "Not assessed yet"
}

// eventWords is how a subject names an event.
func eventWords(event string) string {
	switch event {
	case integrations.EventAlertJoined:
		return "alerts joined"
	case integrations.EventSeverityRaised:
		return "severity raised"
	case integrations.EventRootUpdate:
		return "updated"
	}
	return strings.ReplaceAll(oneLine(event), "_", " ")
}

func (n *Notifier) view(m integrations.Message) view {
	inc := m.Incident
	at := m.At
	if at.IsZero() {
		at = n.now()
	}
	v := view{
		Drill:          inc.Drill,
		ID:             oneLine(inc.ID),
		Title:          oneLine(inc.Title),
		Description:    strings.TrimSpace(inc.Description),
		Severity:       oneLine(inc.Severity),
		Status:         oneLine(inc.Status),
		Team:           oneLine(inc.Team),
		Service:        oneLine(inc.Labels["service"]),
		Event:          oneLine(m.Event),
		Text:           strings.TrimSpace(m.Text),
		Lines:          m.Lines,
		By:             oneLine(m.By),
		RunbookURL:     strings.TrimSpace(inc.RunbookURL),
		SourceURL:      strings.TrimSpace(inc.SourceURL),
		ZoomURL:        strings.TrimSpace(inc.ZoomURL),
		URL:            strings.TrimSpace(inc.URL),
		CustomerImpact: inc.CustomerImpact,
		OutOfHours:     inc.OutOfHours,
		Resolved:       inc.Status == "resolved" || inc.ResolvedAt != nil,
		OpenedAt:       n.when(inc.CreatedAt),
		At:             n.when(at),
		Zone:           n.zoneName(),
		AcknowledgedBy: oneLine(inc.AcknowledgedBy),
		ResolvedBy:     oneLine(inc.ResolvedBy),
		Summary:        strings.TrimSpace(inc.Summary),
		AlertsFiring:   inc.AlertsFiring,
		AlertsTotal:    inc.AlertsTotal,
	}
	if v.ID == "" {
		v.ID = "incident"
	}
	if v.Title == "" {
		v.Title = "(no title)"
	}
	v.SeverityWord, v.SeverityPlain = severityWords(v.Severity)
	if inc.ResolvedAt != nil {
		v.ResolvedAt = n.when(*inc.ResolvedAt)
		if !inc.CreatedAt.IsZero() && inc.ResolvedAt.After(inc.CreatedAt) {
			v.Duration = inc.ResolvedAt.Sub(inc.CreatedAt).Round(time.Second).String()
		}
	}
	keys := make([]string, 0, len(inc.Labels))
	for k := range inc.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Labels = append(v.Labels, label{Key: k, Value: inc.Labels[k]})
	}

	if m.Event == integrations.EventCustomer {
		if v.Resolved {
			v.Subject = fmt.Sprintf("[Customer impact] %s resolved: %s", v.ID, v.Title)
		} else {
			v.Subject = fmt.Sprintf("[Customer impact] %s (%s): %s", v.ID, v.SeverityWord, v.Title)
		}
	} else {
		v.Subject = fmt.Sprintf("%s %s: %s", v.ID, eventWords(m.Event), v.Title)
		if v.Severity != "" {
			v.Subject = "[" + v.Severity + "] " + v.Subject
		}
	}
	if v.Drill {
		v.Subject = "[DRILL] " + v.Subject
	}
	v.Headline = v.Subject
	return v
}

// render writes m's mail: its view (with the subject), text and HTML
// parts; the HTML part is empty for customer engineering's own template.
func (n *Notifier) render(m integrations.Message) (v view, text, html string, err error) {
	v = n.view(m)
	name := tmplIncident
	if m.Event == integrations.EventCustomer {
		name = tmplCustomer
	}
	if name == tmplCustomer && n.customer != nil {
		// Customer engineering's own template: plain text only.
		subject, body, err := n.customer.render(customerView(v))
		if err != nil {
			return v, "", "", integrations.Permanent(fmt.Errorf("customer engineering template: %w", err))
		}
		v.Subject = subject
		return v, body, "", nil
	}
	var tb, hb bytes.Buffer
	if err := n.text.ExecuteTemplate(&tb, name+".txt", v); err != nil {
		return v, "", "", err
	}
	if err := n.html.ExecuteTemplate(&hb, name+".html", v); err != nil {
		return v, "", "", err
	}
	return v, tb.String(), hb.String(), nil
}

// compose renders m for rcpts: multipart/alternative, text then HTML.
func (n *Notifier) compose(m integrations.Message, rcpts []*mail.Address) (*gomail.Msg, error) {
	v, text, html, err := n.render(m)
	if err != nil {
		return nil, err
	}

	domain := n.idDomain
	if u, err := url.Parse(v.URL); err == nil && u.Hostname() != "" {
		// The incident's URL tells installations apart: staging's INC-4
		// must not thread with, or be deduplicated as, production's.
		domain = msgIDPart(u.Hostname())
	}
	thread := "<" + msgIDPart(v.ID) + "@" + domain + ">"

	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(n.from)
	msg.ToMailAddress(rcpts...)
	msg.Subject(v.Subject)
	at := m.At
	if at.IsZero() {
		at = n.now()
	}
	msg.SetDateWithValue(at.UTC())
	msg.SetMessageIDWithValue(messageIDLeft(m) + "@" + domain)
	msg.SetGenHeader(gomail.HeaderInReplyTo, thread)
	msg.SetGenHeader(gomail.HeaderReferences, thread)
	msg.SetGenHeader("X-Responder-Incident", v.ID)
	msg.SetGenHeader("X-Responder-Event", v.Event)
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetUserAgent("Responder")
	if (v.Severity == "S1" || v.Severity == "S2") && !v.Resolved {
		msg.SetImportance(gomail.ImportanceHigh)
	}
	msg.SetBodyString(gomail.TypeTextPlain, text)
	if html != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, html)
	}
	return msg, nil
}

// messageIDLeft is the left side of the Message-ID, from the delivery key:
// the same on every retry, so a server or client that has the message
// already can drop the copy.
func messageIDLeft(m integrations.Message) string {
	if m.Key != "" {
		return msgIDPart(m.Key)
	}
	// No key: derive one from what makes the delivery, still the same on
	// a retry.
	sum := sha256.Sum256([]byte(strings.Join([]string{
		m.Incident.ID, m.Event, m.Target, m.At.UTC().Format(time.RFC3339Nano), m.Text,
	}, "\x00")))
	return "d." + hex.EncodeToString(sum[:12])
}

// msgIDPart turns s into a dot-atom (RFC 5322 3.6.4) that is the same for
// the same s and different for different ones: atext is kept, any other
// byte and a misplaced dot become =XX, "=" itself too. A long result is
// cut and ends in a hash of s.
func msgIDPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		dotOK := c == '.' && i > 0 && i < len(s)-1 && s[i-1] != '.'
		if (atext(c) && c != '=') || dotOK {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	out := b.String()
	if out == "" {
		return "=00"
	}
	const limit = 120
	if len(out) > limit {
		sum := sha256.Sum256([]byte(s))
		out = strings.TrimRight(out[:limit-33], ".") + "." + hex.EncodeToString(sum[:16])
	}
	return out
}

func atext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// when writes t in UTC RFC 3339, with the local time of the display zone
// beside it: "2025-03-04T02:10:00Z (03:10 CET)".
func (n *Notifier) when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return n.cfg.Clock.Format(t, time.RFC3339)
}

// zoneName names the display zone for the mail's footer; empty for UTC.
func (n *Notifier) zoneName() string {
	if n.cfg.Clock.Local(time.Time{}) == "" {
		return ""
	}
	return n.cfg.Clock.Zone.String()
}

// oneLine folds line breaks and runs of spaces, for subjects and fields.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
