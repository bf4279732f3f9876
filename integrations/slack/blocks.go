package slack

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"github.com/responder-sre/responder/integrations"
)

// Slack's limits for what this package sends
// (https://docs.slack.dev/reference/block-kit/blocks).
const (
	maxBlocks      = 50
	maxHeaderText  = 150
	maxSectionText = 3000
	maxFieldText   = 2000
	maxFields      = 10
	maxFallback    = 3000 // the top-level text: Slack truncates at 40,000; notifications show far less
)

// Rendering bounds of our own.
const (
	maxListedLines   = 20  // collapsed lines shown in one reply
	maxLineRunes     = 200 // one collapsed line
	maxOtherLabels   = 5   // labels beyond the key ones
	maxLabelKeyRunes = 60
	maxLabelValRunes = 200
	maxWordRunes     = 100 // team, source, a person's name
)

// keyLabels are shown first, in this order, when present.
var keyLabels = []string{"alertname", "service", "env", "instance", "job", "cluster", "namespace", "team"}

const drillPrefix = "[DRILL] "

const timeLayout = "2006-01-02 15:04 UTC"

// rootMessage is the root announcement: blocks and the plain fallback text
// that notifications show. It renders the snapshot m.Incident, so the same
// code draws the first post and the final edit.
func rootMessage(m integrations.Message, clk integrations.Clock, buttons bool) ([]slackgo.Block, string) {
	inc := m.Incident
	prefix := ""
	if inc.Drill {
		prefix = drillPrefix
	}
	headline := incidentName(inc) + ": "
	header := prefix + rootEmoji(inc) + " " + headline
	header += clipPlain(oneLine(inc.Title, 0), maxHeaderText-utf8.RuneCountInString(header))

	blocks := []slackgo.Block{
		slackgo.NewHeaderBlock(slackgo.NewTextBlockObject(slackgo.PlainTextType, header, true, false)),
	}
	switch {
	case m.Event == integrations.EventCustomer && strings.TrimSpace(m.Text) != "":
		blocks = append(blocks, mrkdwnSection(prefix+":busts_in_silhouette: "+escape(m.Text)))
	case m.Event == integrations.EventEscalated:
		line := prefix + ":arrow_double_up: " + escape(m.Text)
		if l := link(m.ThreadLink, "Join the conversation in the incident's thread"); l != "" {
			line += "\n" + l
		}
		blocks = append(blocks, mrkdwnSection(line))
	}
	blocks = append(blocks, slackgo.NewSectionBlock(nil, rootFields(inc, clk), nil))
	if markers := rootMarkers(inc); len(markers) > 0 {
		blocks = append(blocks, slackgo.NewContextBlock("", markers...))
	}
	if d := strings.TrimSpace(inc.Description); d != "" {
		blocks = append(blocks, mrkdwnSection(escape(d)))
	}
	if len(inc.FiringAlerts) > 0 {
		lines := make([]string, 0, len(inc.FiringAlerts))
		for _, a := range inc.FiringAlerts {
			lines = append(lines, "• "+escape(oneLine(a, 200)))
		}
		blocks = append(blocks, mrkdwnSection(joinBounded("*Firing alerts*", lines, "alerts", max(inc.AlertsFiring, len(lines)), maxSectionText)))
	}
	if s := strings.TrimSpace(inc.Summary); s != "" {
		blocks = append(blocks, mrkdwnSection("*Summary*\n"+escape(s)))
	}
	if labels, hidden := labelLines(inc.Labels); len(labels) > 0 {
		blocks = append(blocks, mrkdwnSection(joinBounded("*Labels*", labels, "labels", len(labels)+hidden, maxSectionText)))
	}
	if links := linkLines(inc); len(links) > 0 {
		blocks = append(blocks, mrkdwnSection(strings.Join(links, "\n")))
	}
	if buttons && inc.Status != "resolved" && (m.Event == integrations.EventOpened || m.Event == integrations.EventRootUpdate) {
		blocks = capBlocks(blocks)
		if len(blocks) == maxBlocks {
			blocks = blocks[:maxBlocks-1]
		}
		blocks = append(blocks, actionButtons(inc))
	}

	text := prefix + headline + oneLine(inc.Title, 0) + " (" + statusWord(inc.Status) + ")"
	return capBlocks(blocks), clip(escape(text), maxFallback)
}

// incidentName is "[S1] INC-4".
func incidentName(inc integrations.Incident) string {
	name := oneLine(inc.ID, 40)
	if name == "" {
		name = "incident"
	}
	if sev := oneLine(inc.Severity, 10); sev != "" {
		name = "[" + sev + "] " + name
	}
	return name
}

func rootEmoji(inc integrations.Incident) string {
	switch {
	case inc.Status == "resolved":
		return ":white_check_mark:"
	case inc.Severity == "S1" || inc.Severity == "S2":
		return ":rotating_light:"
	default:
		return ":warning:"
	}
}

func statusWord(s string) string {
	switch s {
	case "":
		return "open"
	default:
		return oneLine(s, 40)
	}
}

func rootFields(inc integrations.Incident, clk integrations.Clock) []*slackgo.TextBlockObject {
	var f []*slackgo.TextBlockObject
	add := func(name, value string) {
		if strings.TrimSpace(value) == "" || len(f) == maxFields {
			return
		}
		f = append(f, slackgo.NewTextBlockObject(slackgo.MarkdownType, clip("*"+name+"*\n"+value, maxFieldText), false, false))
	}
	status := statusWord(inc.Status)
	if inc.Status == "resolved" && inc.ResolvedBy != "" {
		status += " by " + word(inc.ResolvedBy)
	}
	add("Status", escape(status))
	add("Severity", escape(oneLine(inc.Severity, 10)))
	roles := "roles not assigned"
	if inc.RecoveryLead != "" || inc.CommsLead != "" {
		roles = "recovery " + escape(word(orNobody(inc.RecoveryLead))) + ", comms " + escape(word(orNobody(inc.CommsLead)))
	}
	add("Roles", roles)
	if inc.ETA != nil && !inc.ETA.IsZero() {
		add("ETA", clk.Format(*inc.ETA, timeLayout))
	}
	if inc.Status != "resolved" && inc.NextStep != "" {
		add("Next step", escape(oneLine(inc.NextStep, 200)))
	}
	if len(inc.Paged) > 0 {
		add("Paged", escape(strings.Join(inc.Paged, "\n")))
	}
	add("Team", escape(word(inc.Team)))
	add("Source", escape(word(inc.Source)))
	if !inc.CreatedAt.IsZero() {
		add("Opened", clk.Format(inc.CreatedAt, timeLayout))
	}
	if inc.AcknowledgedBy != "" {
		add("Acknowledged by", escape(word(inc.AcknowledgedBy)))
	}
	if inc.ResolvedAt != nil && !inc.ResolvedAt.IsZero() {
		add("Resolved", clk.Format(*inc.ResolvedAt, timeLayout))
	}
	if inc.AlertsTotal > 0 {
		add("Alerts", fmt.Sprintf("%d firing of %d", inc.AlertsFiring, inc.AlertsTotal))
	}
	return f
}

func rootMarkers(inc integrations.Incident) []slackgo.MixedElement {
	var els []slackgo.MixedElement
	add := func(s string) {
		els = append(els, slackgo.NewTextBlockObject(slackgo.MarkdownType, s, false, false))
	}
	if inc.Drill {
		add(":test_tube: *Drill*: practice, not a real incident")
	}
	if inc.OutOfHours {
		add(":crescent_moon: *Out of hours*")
	}
	if inc.CustomerImpact {
		add(":busts_in_silhouette: *Customer impact*")
	}
	return els
}

// labelLines lists the key labels present, in keyLabels order, then at most
// maxOtherLabels others in key order; hidden is how many others are left out.
func labelLines(labels map[string]string) (lines []string, hidden int) {
	line := func(k, v string) string {
		return "• *" + escape(oneLine(k, maxLabelKeyRunes)) + "*: " + code(oneLine(v, maxLabelValRunes))
	}
	isKey := map[string]bool{}
	for _, k := range keyLabels {
		isKey[k] = true
		if v := labels[k]; strings.TrimSpace(v) != "" {
			lines = append(lines, line(k, v))
		}
	}
	var others []string
	for k, v := range labels {
		if !isKey[k] && strings.TrimSpace(v) != "" {
			others = append(others, k)
		}
	}
	sort.Strings(others)
	for _, k := range others[:min(len(others), maxOtherLabels)] {
		lines = append(lines, line(k, labels[k]))
	}
	return lines, len(others) - min(len(others), maxOtherLabels)
}

// linkLines are the incident's links, one per line, the bridge first.
func linkLines(inc integrations.Incident) []string {
	var lines []string
	add := func(emoji, target, label string) {
		if l := link(target, label); l != "" {
			lines = append(lines, emoji+" "+l)
		}
	}
	add(":video_camera:", inc.ZoomURL, "Join the bridge (Zoom)")
	add(":link:", inc.URL, "Open "+oneLine(inc.ID, 40)+" in Responder")
	add(":book:", inc.RunbookURL, "Runbook")
	add(":mag:", inc.SourceURL, "Alert source")
	return lines
}

// replyMessage is a reply in the incident's thread: m.Text, then the
// collapsed lines when there are some.
func replyMessage(m integrations.Message, clk integrations.Clock) ([]slackgo.Block, string) {
	inc := m.Incident
	prefix := ""
	if inc.Drill {
		prefix = drillPrefix
	}
	text := strings.TrimSpace(m.Text)
	if text == "" && len(m.Lines) > 0 {
		text = collapsedHeader(m.Event, len(m.Lines))
	}
	if text == "" {
		text = strings.ReplaceAll(m.Event, "_", " ")
	}
	// The mention is the one piece of mrkdwn a reply may carry unescaped;
	// it goes in the first line of the blocks and of the fallback text
	// (which notifications show), after the drill prefix.
	lead := mention(m.Mention)
	if lead != "" {
		lead += " "
	}
	head := prefix + eventEmoji(m.Event) + " " + lead + escape(text)
	plain := prefix + text // escaped as a whole at the end
	if m.Thread == "" {
		// No thread to reply in: say which incident this is about.
		who := incidentName(inc) + ": " + oneLine(inc.Title, 150)
		head = prefix + "*" + escape(who) + "*\n" + eventEmoji(m.Event) + " " + lead + escape(text)
		plain = prefix + who + ": " + text
	}
	blocks := []slackgo.Block{mrkdwnSection(head)}

	if len(m.Lines) > 0 {
		shown := m.Lines[:min(len(m.Lines), maxListedLines)]
		lines := make([]string, 0, len(shown))
		for _, l := range shown {
			lines = append(lines, "• "+escape(oneLine(l, maxLineRunes)))
			plain += "\n• " + oneLine(l, maxLineRunes)
		}
		blocks = append(blocks, mrkdwnSection(joinBounded("", lines, "", len(m.Lines), maxSectionText)))
		if len(m.Lines) > len(shown) {
			plain += fmt.Sprintf("\n… and %d more", len(m.Lines)-len(shown))
		}
	}
	if !m.At.IsZero() {
		blocks = append(blocks, slackgo.NewContextBlock("",
			slackgo.NewTextBlockObject(slackgo.MarkdownType, clk.Format(m.At, "2006-01-02 15:04:05 UTC"), false, false)))
	}
	fallback := clip(escape(plain), maxFallback-utf8.RuneCountInString(lead))
	if lead != "" {
		fallback = prefix + lead + strings.TrimPrefix(fallback, prefix)
	}
	return capBlocks(blocks), fallback
}

// mention renders integrations.Message.Mention: "channel" calls on the
// whole channel (<!channel>), a Slack user ID (U or W and at least eight
// upper-case letters or digits) calls on that user (<@U…>), and any other
// name is shown as inert text, "@name", since Slack cannot resolve a
// display name to a user. Empty is nobody.
func mention(who string) string {
	who = strings.TrimSpace(who)
	switch {
	case who == "":
		return ""
	case who == "channel":
		return "<!channel>"
	case isSlackUserID(who):
		return "<@" + who + ">"
	default:
		return "@" + escape(word(strings.TrimPrefix(who, "@")))
	}
}

// isSlackUserID reports whether s looks like a Slack user ID: U or W, then
// eight or more upper-case letters or digits.
func isSlackUserID(s string) bool {
	if len(s) < 9 || len(s) > maxWordRunes || (s[0] != 'U' && s[0] != 'W') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func collapsedHeader(event string, n int) string {
	if event == integrations.EventAlertJoined {
		if n == 1 {
			return "1 more alert joined:"
		}
		return fmt.Sprintf("%d more alerts joined:", n)
	}
	if n == 1 {
		return "1 more update:"
	}
	return fmt.Sprintf("%d more updates:", n)
}

func eventEmoji(event string) string {
	switch event {
	case integrations.EventAlertJoined:
		return ":heavy_plus_sign:"
	case integrations.EventAcknowledged:
		return ":eyes:"
	case integrations.EventSeverityRaised:
		return ":arrow_double_up:"
	case integrations.EventSeverityLowered:
		return ":arrow_double_down:"
	case integrations.EventReopened:
		return ":repeat:"
	case integrations.EventNote:
		return ":memo:"
	case integrations.EventResolved:
		return ":white_check_mark:"
	case integrations.EventCustomer:
		return ":busts_in_silhouette:"
	case integrations.EventOpened:
		return ":rotating_light:"
	default:
		return ":speech_balloon:"
	}
}

// joinBounded joins title and lines with newlines within limit runes. When
// not all of total items fit (or were given), it ends with "… and N more".
func joinBounded(title string, lines []string, noun string, total, limit int) string {
	var b strings.Builder
	n := 0
	used := 0
	if title != "" {
		b.WriteString(title)
		used = utf8.RuneCountInString(title)
	}
	const reserve = 40 // room for the "… and N more" tail
	for _, l := range lines {
		cost := utf8.RuneCountInString(l)
		if b.Len() > 0 {
			cost++
		}
		if used+cost > limit-reserve {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
		used += cost
		n++
	}
	if rest := total - n; rest > 0 {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		if noun != "" {
			fmt.Fprintf(&b, "_… and %d more %s_", rest, noun)
		} else {
			fmt.Fprintf(&b, "_… and %d more_", rest)
		}
	}
	return b.String()
}

func mrkdwnSection(text string) *slackgo.SectionBlock {
	if strings.TrimSpace(text) == "" {
		text = " "
	}
	return slackgo.NewSectionBlock(slackgo.NewTextBlockObject(slackgo.MarkdownType, clip(text, maxSectionText), false, false), nil, nil)
}

func capBlocks(b []slackgo.Block) []slackgo.Block {
	if len(b) > maxBlocks {
		return b[:maxBlocks]
	}
	return b
}

// escape makes user-supplied text inert in Slack mrkdwn: "<!channel>" or
// "<https://evil|click>" show as typed instead of pinging or linking.
func escape(s string) string {
	return mrkdwnEscaper.Replace(s)
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// code shows v verbatim as inline code (a backtick would end it early).
func code(v string) string {
	return "`" + escape(strings.ReplaceAll(v, "`", "'")) + "`"
}

// link is a mrkdwn link to an http(s) target, or the target as inert text
// when it is something else, or "" when there is none.
func link(target, label string) string {
	target = strings.TrimSpace(target)
	if target == "" {
		return ""
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(target) > 2000 {
		return escape(label) + ": " + code(oneLine(target, 200))
	}
	// In <url|label> a "|" or ">" in the URL would end it: encode them.
	t := strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C", " ", "%20").Replace(u.String())
	return "<" + strings.ReplaceAll(t, "&", "&amp;") + "|" + escape(label) + ">"
}

// word is a short one-line value: a name, a team.
func word(s string) string { return oneLine(s, maxWordRunes) }

// oneLine folds white space (newlines included) into single spaces and,
// when limit > 0, clips to limit runes.
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(s), " ")
	if limit > 0 {
		s = clipPlain(s, limit)
	}
	return s
}

// clipPlain cuts s to at most limit runes, ending with "…" when cut.
func clipPlain(s string, limit int) string {
	if limit <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}

// clip is clipPlain for escaped text: it never leaves half an entity
// ("&am") nor half a link ("<https://x|Run") behind.
func clip(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	cut := string([]rune(s)[:limit-1])
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	if i := strings.LastIndexByte(cut, '<'); i >= 0 && !strings.Contains(cut[i:], ">") {
		cut = cut[:i]
	}
	return cut + "…"
}

// orNobody is a role's holder, or "nobody yet".
func orNobody(name string) string {
	if name == "" {
		return "nobody yet"
	}
	return name
}

// maxButtonText is Slack's limit on a button's text.
const maxButtonText = 75

// The action IDs of the root message's buttons (Slack as a front door):
// each button's value is the incident's ID.
const (
	ActionAcknowledge = "responder.ack"
	ActionRecovery    = "responder.recovery_lead"
	ActionComms       = "responder.comms_lead"
	ActionUpdate      = "responder.update"
	ActionResolve     = "responder.resolve"
	// ActionStep marks the checklist's next step done; its value is the
	// incident's ID and the step's, "INC-4 incident-process/2".
	ActionStep = "responder.step"
)

// actionButtons are the root's buttons while the incident is not
// resolved: what a responder does from the thread.
func actionButtons(inc integrations.Incident) slackgo.Block {
	button := func(id, text string) *slackgo.ButtonBlockElement {
		return slackgo.NewButtonBlockElement(id, inc.ID, slackgo.NewTextBlockObject(slackgo.PlainTextType, text, true, false))
	}
	var els []slackgo.BlockElement
	if inc.Status == "open" {
		ack := button(ActionAcknowledge, "Acknowledge")
		ack.Style = slackgo.StylePrimary
		els = append(els, ack)
	}
	els = append(els, button(ActionRecovery, "I'm recovery lead"), button(ActionComms, "I'm comms lead"),
		button(ActionUpdate, "Post update"))
	if inc.NextStepID != "" {
		step := button(ActionStep, clipPlain("Done: "+oneLine(inc.NextStep, 0), maxButtonText))
		step.Value = inc.ID + " " + inc.NextStepID
		els = append(els, step)
	}
	resolve := button(ActionResolve, "Resolve")
	resolve.Style = slackgo.StyleDanger
	els = append(els, resolve)
	return slackgo.NewActionBlock("responder.actions", els...)
}
