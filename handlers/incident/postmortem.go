package incident

import (
	"bytes"
	"context"
	_ "embed" // the post-mortem template
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/responder-sre/responder/integrations"
	"github.com/responder-sre/responder/store"
)

// postmortemTemplate is the Markdown layout of a post-mortem draft. Every
// value it shows is prepared by postmortemViewOf: already in words, times
// formatted, table cells escaped.
//
//go:embed templates/postmortem.md.tmpl
var postmortemTemplate string

// Postmortem is the incident id's post-mortem in Markdown: the stored one
// (its latest version) when there is one, else the draft built from the
// record. Its action items section shows the incident's action items as
// they are now.
func (s *Service) Postmortem(ctx context.Context, id string) ([]byte, error) {
	var md []byte
	err := s.store.View(ctx, func(tx store.Tx) error {
		inc, err := tx.Incident(id)
		if err != nil {
			return unknownIncident(id, err)
		}
		items, err := tx.ActionItems(store.ActionFilter{Incident: inc.ID})
		if err != nil {
			return err
		}
		p, err := tx.Postmortem(inc.ID)
		switch {
		case err == nil:
			md = []byte(bindActionItems(p.Markdown, items))
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		md, err = s.draft(tx, inc, items, s.now())
		return err
	})
	if err != nil {
		return nil, err
	}
	return md, nil
}

// draft renders the post-mortem draft of inc from what tx holds.
func (s *Service) draft(tx store.Tx, inc *store.Incident, items []store.ActionItem, now time.Time) ([]byte, error) {
	in := postmortemInput{Incident: inc, ActionItems: items, Now: now, ExternalURL: s.cfg.ExternalURL, Location: s.zone()}
	var err error
	if in.Alerts, err = tx.Alerts(inc.ID); err != nil {
		return nil, err
	}
	if in.Checklist, err = tx.Checklist(inc.ID); err != nil {
		return nil, err
	}
	if in.Report, err = reportOf(tx, inc, in.Checklist); err != nil {
		return nil, err
	}
	if in.Timeline, err = tx.Timeline(inc.ID); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := renderPostmortem(&b, in); err != nil {
		return nil, fmt.Errorf("render post-mortem of %s: %w", inc.ID, err)
	}
	return b.Bytes(), nil
}

// postmortemInput is everything a draft is made from.
type postmortemInput struct {
	Incident *store.Incident
	Alerts   []store.Alert
	Timeline []store.Entry
	// Location is the team's local zone, shown beside UTC; nil or UTC
	// shows UTC only.
	Location    *time.Location
	Now         time.Time // when the draft is made
	ExternalURL string
	// Report is the incident's report, compared with the previous drill
	// for a drill; nil: made from the incident alone.
	Report      *Report
	ActionItems []store.ActionItem
	Checklist   []store.Step
}

// renderPostmortem writes the Markdown draft of in to w.
func renderPostmortem(w io.Writer, in postmortemInput) error {
	tmpl, err := template.New("postmortem").Option("missingkey=error").Parse(postmortemTemplate)
	if err != nil {
		return fmt.Errorf("parse post-mortem template: %w", err)
	}
	return tmpl.Execute(w, postmortemViewOf(in))
}

// postmortemView is what the template shows. Fields named *Cell are
// escaped for a Markdown table cell; the others are inline text or
// paragraphs.
type postmortemView struct {
	Heading     string
	Drill       bool
	Scenario    string
	GeneratedAt string
	Required    string // "yes", "no", "not decided yet"
	RequiredWhy string
	Overview    []pmPair
	Summary     string
	Description string
	Customer    string
	Zone        string // the local zone's name; empty when only UTC is shown
	Steps       []pmStep
	People      []pmPair
	Updates     []pmUpdate
	Alerts      []pmAlert
	Truncated   uint64
	Timeline    []pmEntry
	Report      []pmReport // drills only
	// ComparedWith is the earlier drill the report compares with.
	ComparedWith string
	Checklist    []pmCheck
	// ActionItems is the action items section, bound to the real ones.
	ActionItems string
}

type pmReport struct{ NameCell, ValueCell, BeforeCell, ChangeCell string }

type pmCheck struct{ StepCell, TextCell, StateCell, ByCell, SinceCell, ReasonCell string }

type pmPair struct{ NameCell, ValueCell string }

type pmStep struct {
	NameCell, UTCCell, LocalCell, SincePrevCell, SinceStartCell, ByCell string
}

type pmUpdate struct {
	At, Local, By, ETA string
	Text               string // continuation lines indented into the list item
}

type pmAlert struct {
	FingerprintCell, NameCell, InstanceCell, StatusCell, SeverityCell, StartsCell, EndsCell string
}

type pmEntry struct{ AtCell, KindCell, ByCell, TextCell string }

// none marks a time or a value that does not exist (yet).
const none = "—"

// pmTimeFormat is how the draft writes a time in UTC.
const pmTimeFormat = "2006-01-02 15:04:05 UTC"

func pmUTC(t time.Time) string { return t.UTC().Format(pmTimeFormat) }

// pmLocal is t in loc beside its UTC form: the clock time and zone, with the
// date too when it differs from the UTC date (past midnight locally).
func pmLocal(t time.Time, loc *time.Location) string {
	return integrations.Clock{Zone: loc}.Local(t)
}

// pmDuration is d rounded to the second, as Go writes durations.
func pmDuration(d time.Duration) string { return d.Round(time.Second).String() }

// cellEscaper keeps text inside one Markdown table cell: a pipe would start
// a new column and a line break would end the row.
var cellEscaper = strings.NewReplacer("|", `\|`, "\r\n", "<br>", "\n", "<br>", "\r", "<br>")

// cell is s made safe for a table cell; empty is shown as none.
func cell(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return none
	}
	return cellEscaper.Replace(s)
}

// inline is s on one line, for a heading or a list item's first line.
func inline(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// indented keeps a multi-line text inside a list item: lines after the first
// are indented under it.
func indented(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\n  ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// severityMeaning is what a severity means in the incident process.
func severityMeaning(sev string) string {
	switch sev {
	case "S1":
		return "production customer systems are non-functional"
	case "S2":
		return "severe loss of service, important features unavailable with no acceptable workaround"
	case "S3":
		return "minor loss of service, an inconvenience that may need a workaround"
	case "S4":
		return "anything else, normally not run as an incident"
	}
	return ""
}

func postmortemViewOf(in postmortemInput) postmortemView {
	inc := in.Incident
	loc := in.Location
	if loc != nil && loc.String() == "UTC" {
		loc = nil
	}
	v := postmortemView{
		Heading:     inline(fmt.Sprintf("Post-mortem: %s — %s", inc.ID, inc.Title)),
		Drill:       inc.Drill,
		Scenario:    inline(inc.Scenario),
		GeneratedAt: pmUTC(in.Now),
		Summary:     strings.TrimSpace(inc.Summary),
		Description: strings.TrimSpace(inc.Description),
		Truncated:   inc.AlertsTruncated,
	}
	if inc.Drill {
		v.Heading = "[DRILL] " + v.Heading
	}
	if loc != nil {
		v.Zone = loc.String()
	}

	kind := inline(inc.Kind)
	switch {
	case inc.Status != store.StatusResolved:
		v.Required = "not decided yet"
		v.RequiredWhy = fmt.Sprintf("the incident is %s. When it is resolved, one is owed if no incident of its kind (%q) was resolved before.", inc.Status, kind)
	case inc.PostmortemRequired:
		v.Required = "yes"
		v.RequiredWhy = fmt.Sprintf("this is the first resolved incident of its kind (%q), and the first time is the one to learn from.", kind)
	default:
		v.Required = "no"
		v.RequiredWhy = fmt.Sprintf("an earlier incident of its kind (%q) was resolved before. Write one anyway if this one taught something new.", kind)
	}

	sev := inc.Severity
	if m := severityMeaning(sev); m != "" {
		sev += ": " + m
	}
	v.Overview = []pmPair{
		{"Incident", cell(inc.ID)},
		{"Link", cell(URL(in.ExternalURL, inc.ID))},
		{"Status", cell(string(inc.Status))},
		{"Severity", cell(sev)},
		{"Source", cell(string(inc.Source))},
		{"Kind", cell(inc.Kind)},
		{"Team", cell(inc.Team)},
		{"Labels", cell(labelList(inc.Labels))},
		{"Out of business hours", yesNo(inc.OutOfHours)},
		{"Zoom bridge", cell(inc.ZoomURL)},
		{"Runbook", cell(inc.RunbookURL)},
	}
	if inc.Drill {
		v.Overview = append(v.Overview, pmPair{"Drill scenario", cell(inc.Scenario)})
	}

	if inc.CustomerImpact {
		v.Customer = "yes: customers were affected."
	} else {
		v.Customer = "none recorded."
	}

	v.Steps = keySteps(in, loc)

	v.People = []pmPair{
		{"Recovery lead", cell(inc.Roles.RecoveryLead)},
		{"Communications lead", cell(inc.Roles.CommsLead)},
	}
	if inc.DeclaredBy != "" {
		v.People = append(v.People, pmPair{"Declared by", cell(inc.DeclaredBy)})
	}
	v.People = append(v.People,
		pmPair{"Acknowledged by", cell(inc.AcknowledgedBy)},
		pmPair{"Resolved by", cell(inc.ResolvedBy)})

	for _, e := range in.Timeline {
		text := e.Text
		if e.ETA != nil {
			text += " (ETA " + pmUTC(*e.ETA) + ")"
		}
		v.Timeline = append(v.Timeline, pmEntry{AtCell: pmUTC(e.At), KindCell: cell(e.Kind), ByCell: cell(e.By), TextCell: cell(text)})
		if e.Kind != store.KindUpdate {
			continue
		}
		u := pmUpdate{At: pmUTC(e.At), Local: pmLocal(e.At, loc), By: inline(e.By), Text: indented(e.Text)}
		if e.ETA != nil {
			u.ETA = pmUTC(*e.ETA)
			if l := pmLocal(*e.ETA, loc); l != "" {
				u.ETA += " (" + l + ")"
			}
		}
		v.Updates = append(v.Updates, u)
	}

	alerts := append([]store.Alert(nil), in.Alerts...)
	sort.SliceStable(alerts, func(i, j int) bool { return alerts[i].StartsAt.Before(alerts[j].StartsAt) })
	for _, a := range alerts {
		ends := none
		if a.EndsAt != nil && !a.EndsAt.IsZero() {
			ends = pmUTC(*a.EndsAt)
		}
		v.Alerts = append(v.Alerts, pmAlert{
			FingerprintCell: cell(a.Fingerprint),
			NameCell:        cell(a.Labels["alertname"]),
			InstanceCell:    cell(a.Labels["instance"]),
			StatusCell:      cell(a.Status),
			SeverityCell:    cell(a.Severity),
			StartsCell:      pmUTC(a.StartsAt),
			EndsCell:        ends,
		})
	}

	v.ActionItems = actionItemsSection(in.ActionItems)
	for _, st := range checklistOf(inc.CreatedAt, in.Checklist) {
		c := pmCheck{StepCell: cell(st.ID), TextCell: cell(st.Text), StateCell: st.State, ByCell: cell(st.By), SinceCell: none, ReasonCell: cell(st.Reason)}
		if st.SinceStart != nil {
			c.SinceCell = st.SinceStart.Duration
		}
		v.Checklist = append(v.Checklist, c)
	}

	if inc.Drill {
		r := in.Report
		if r == nil {
			r = buildReport(inc, in.Checklist)
		}
		v.ComparedWith = r.ComparedWith
		v.Report = []pmReport{
			reportRow("Acknowledge", r.TimeToAcknowledge),
			reportRow("Roles assigned", r.TimeToRoles),
			reportRow("First update", r.TimeToFirstUpdate),
			reportRow("Resolve", r.TimeToResolve),
		}
		for i := range r.Steps {
			st := &r.Steps[i]
			name := "Step " + st.ID + ": " + st.Text
			if st.State == store.StepSkipped {
				name += " (skipped)"
			}
			v.Report = append(v.Report, reportRow(name, &st.StepDuration))
		}
	}
	return v
}

// reportRow is one line of the drill report: the time taken, and the
// earlier drill's time and the change when there is one.
func reportRow(name string, d *StepDuration) pmReport {
	row := pmReport{NameCell: cell(name), ValueCell: none, BeforeCell: none, ChangeCell: none}
	if d == nil {
		return row
	}
	row.ValueCell = d.Duration
	if d.Before != nil {
		row.BeforeCell = (time.Duration(d.Before.Seconds) * time.Second).String()
		row.ChangeCell = cell(strings.TrimSuffix(d.Before.Says, " than "+d.Before.Incident))
	}
	return row
}

// labelList is name=value pairs, sorted by name.
func labelList(lbls map[string]string) string {
	keys := make([]string, 0, len(lbls))
	for k := range lbls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+lbls[k])
	}
	return strings.Join(parts, ", ")
}

// keySteps lists the steps of the process in the order they happened (the
// process order among equal times), then the steps that have not happened.
// The start is the earliest alert's start, or the detection when no alert
// started before it.
func keySteps(in postmortemInput, loc *time.Location) []pmStep {
	inc := in.Incident
	type step struct {
		name string
		at   *time.Time
		by   string
	}
	start := inc.CreatedAt
	startBy := ""
	for _, a := range in.Alerts {
		if !a.StartsAt.IsZero() && a.StartsAt.Before(start) {
			start, startBy = a.StartsAt, "first alert "+a.Fingerprint
		}
	}
	detectedBy := inc.DeclaredBy
	if detectedBy == "" {
		detectedBy = string(inc.Source)
	}
	firstUpdateBy := ""
	for _, e := range in.Timeline {
		if e.Kind == store.KindUpdate {
			firstUpdateBy = e.By
			break
		}
	}
	created := inc.CreatedAt
	steps := []step{
		{"Start", &start, startBy},
		{"Detection", &created, detectedBy},
		{"Acknowledgement", inc.AcknowledgedAt, inc.AcknowledgedBy},
		{"Roles assigned", inc.RolesAssignedAt, ""},
		{"First update", inc.FirstUpdateAt, firstUpdateBy},
		{"Resolution", inc.ResolvedAt, inc.ResolvedBy},
	}
	sort.SliceStable(steps, func(i, j int) bool {
		a, b := steps[i].at, steps[j].at
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		default:
			return a.Before(*b)
		}
	})
	out := make([]pmStep, 0, len(steps))
	var prev *time.Time
	for _, st := range steps {
		row := pmStep{NameCell: st.name, UTCCell: none, LocalCell: none, SincePrevCell: none, SinceStartCell: none, ByCell: cell(st.by)}
		if st.at != nil {
			row.UTCCell = pmUTC(*st.at)
			row.LocalCell = pmLocal(*st.at, loc)
			if prev != nil {
				row.SincePrevCell = pmDuration(st.at.Sub(*prev))
				row.SinceStartCell = pmDuration(st.at.Sub(start))
			}
			prev = st.at
		}
		out = append(out, row)
	}
	return out
}
