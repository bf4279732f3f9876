package slackapp

import (
	"fmt"
	"regexp"
	"strings"
)

// command is one slash command, as typed after the command's name:
//
//	declare [S1-S4] title
//	ack [INC-n]
//	roles [INC-n] @recovery @comms
//	update [INC-n] text [eta 30m|2h|2026-12-02 15:30|RFC 3339]
//	resolve [INC-n] summary
//	sev [INC-n] S1-S4 reason
//	status [INC-n]
//	help
//
// Without INC-n a command is about the open incident of the channel it is
// typed in.
type command struct {
	verb     string
	incident string   // INC-n, when named
	severity string   // declare, sev
	text     string   // the title, the update, the summary, the reason
	eta      string   // update: what follows "eta"
	users    []string // roles: the user IDs mentioned, in order
}

// Verbs of the slash command.
const (
	verbDeclare = "declare"
	verbAck     = "ack"
	verbRoles   = "roles"
	verbUpdate  = "update"
	verbResolve = "resolve"
	verbSev     = "sev"
	verbStatus  = "status"
	verbHelp    = "help"
)

var (
	incidentID = regexp.MustCompile(`^(?i)inc-[1-9][0-9]*$`)
	severity   = regexp.MustCompile(`^(?i)s[1-4]$`)
	// mention is a user as Slack escapes it in a command's text:
	// <@U024BE7LH> or <@U024BE7LH|maria>.
	mention = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$`)
)

// usage is the help the command answers, name being its name (/incident).
func usage(name string) string {
	return strings.Join([]string{
		"Responder commands:",
		fmt.Sprintf("• `%s declare [S1-S4] title`: declare an incident (S3 unless given)", name),
		fmt.Sprintf("• `%s ack`: acknowledge the incident of this channel", name),
		fmt.Sprintf("• `%s roles @recovery-lead @comms-lead`: assign the two roles (two different people)", name),
		fmt.Sprintf("• `%s update what is happening [eta 30m | eta 2026-12-02 15:30]`: post a progress update (an ETA in UTC or from now)", name),
		fmt.Sprintf("• `%s resolve summary`: resolve it", name),
		fmt.Sprintf("• `%s sev S1-S4 reason`: change its severity", name),
		fmt.Sprintf("• `%s status`: where it stands", name),
		"Name the incident (`INC-42`) after the verb when the channel has more than one open, or none.",
	}, "\n")
}

// parseCommand reads a command's text. Its errors say what to type.
func parseCommand(name, text string) (command, error) {
	words := strings.Fields(text)
	if len(words) == 0 {
		return command{verb: verbHelp}, nil
	}
	c := command{verb: strings.ToLower(words[0])}
	rest := words[1:]
	if c.verb != verbDeclare && len(rest) > 0 && incidentID.MatchString(rest[0]) {
		c.incident, rest = strings.ToUpper(rest[0]), rest[1:]
	}
	switch c.verb {
	case verbHelp:
		return c, nil
	case verbAck, verbStatus:
		if len(rest) > 0 {
			return c, fmt.Errorf("`%s %s` takes nothing more than an incident id, got %q", name, c.verb, strings.Join(rest, " "))
		}
	case verbDeclare:
		if len(rest) > 0 && severity.MatchString(rest[0]) {
			c.severity, rest = strings.ToUpper(rest[0]), rest[1:]
		}
		if c.text = strings.Join(rest, " "); c.text == "" {
			return c, fmt.Errorf("title: required: `%s declare [S1-S4] what is broken`", name)
		}
	case verbRoles:
		for _, w := range rest {
			m := mention.FindStringSubmatch(w)
			if m == nil {
				return c, fmt.Errorf("roles: %q is not a person: mention the recovery lead, then the comms lead (`%s roles @maria @dev`)", w, name)
			}
			c.users = append(c.users, m[1])
		}
		if len(c.users) != 2 {
			return c, fmt.Errorf("roles: mention two people, the recovery lead then the comms lead (`%s roles @maria @dev`)", name)
		}
	case verbUpdate:
		for i := len(rest) - 2; i >= 0; i-- {
			if strings.EqualFold(rest[i], "eta") {
				c.eta, rest = strings.Join(rest[i+1:], " "), rest[:i]
				break
			}
		}
		if c.text = strings.Join(rest, " "); c.text == "" {
			return c, fmt.Errorf("text: required: `%s update what is happening [eta 30m]`", name)
		}
	case verbResolve:
		c.text = strings.Join(rest, " ")
	case verbSev:
		if len(rest) == 0 || !severity.MatchString(rest[0]) {
			return c, fmt.Errorf("severity: give S1, S2, S3 or S4 then the reason (`%s sev S1 every checkout fails`)", name)
		}
		c.severity, c.text = strings.ToUpper(rest[0]), strings.Join(rest[1:], " ")
	default:
		return c, fmt.Errorf("%q is not a command: try `%s help`", c.verb, name)
	}
	return c, nil
}
